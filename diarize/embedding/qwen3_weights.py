"""Reading the Qwen3-TTS speaker encoder's weights out of the checkpoint layouts it ships in.

Three layouts are understood, all safetensors:

- a Qwen3-TTS **Base** checkpoint folder (`Qwen/Qwen3-TTS-12Hz-0.6B-Base`, `...-1.7B-Base`): `config.json`
  with `tts_model_type: "base"` and `speaker_encoder_config: {enc_dim, sample_rate}`, the weights in one
  `model.safetensors` or in shards listed by `model.safetensors.index.json`, encoder keys `speaker_encoder.*`;
- a **standalone encoder** folder (e.g. the community `Qwen3-Voice-Embedding-12Hz-*` extractions): the same
  tensors with the prefix dropped, optionally with a `config.json` holding the encoder fields;
- a **single `.safetensors` file** holding the encoder tensors, with or without the prefix.

Only the encoder's tensors are read: the index (or each file's header) says which shards hold them, and
`safe_open` reads those tensors alone, so the talker's gigabytes are never loaded. CustomVoice and VoiceDesign
checkpoints carry no encoder; they are recognized from `tts_model_type` and named in the error.

Hub checkpoints are found through the Hugging Face cache. A backend name such as `qwen3-0.6b` only ever looks
in the cache; the network is used only when the user names a hub id (see `diarize.models.from_hub`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..models import ModelNotFoundError, from_hub, looks_like_hub_id
from .base import EncoderError

#: backend size -> (hub id of the Base checkpoint, embedding size that checkpoint gives)
HUB_CHECKPOINTS = {
    "0.6b": ("Qwen/Qwen3-TTS-12Hz-0.6B-Base", 1024),
    "1.7b": ("Qwen/Qwen3-TTS-12Hz-1.7B-Base", 2048),
}

PREFIX = "speaker_encoder."
#: a tensor every encoder has and no other Qwen3-TTS module has; its key locates the encoder's prefix
_ANCHOR = "asp.tdnn.conv.weight"
_INDEX = "model.safetensors.index.json"
#: only these files are fetched when a hub id is named: the encoder lives in the safetensors
_HUB_META = ["config.json", _INDEX]
_VARIANT_NAMES = {"custom_voice": "CustomVoice", "voice_design": "VoiceDesign"}


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of one Qwen3-TTS speaker encoder; field names and defaults are those of
    qwen-tts's `Qwen3TTSSpeakerEncoderConfig`, so a `speaker_encoder_config` dict maps onto it."""

    mel_dim: int = 128
    enc_dim: int = 1024
    enc_channels: tuple[int, ...] = (512, 512, 512, 512, 1536)
    enc_kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    enc_dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    enc_attention_channels: int = 128
    enc_res2net_scale: int = 8
    enc_se_channels: int = 128
    sample_rate: int = 24000

    @classmethod
    def from_dict(cls, values: dict) -> "EncoderConfig":
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        for name in ("enc_channels", "enc_kernel_sizes", "enc_dilations"):
            if name in known:
                known[name] = tuple(int(v) for v in known[name])
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EncoderCheckpoint:
    """The encoder's tensors (float32, keys without prefix), its shape, and where they came from."""

    config: EncoderConfig
    state_dict: dict  # str -> torch.Tensor
    source: str
    layout: str  # "base-checkpoint" | "encoder-folder" | "safetensors-file"
    files: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Hash of the weights (float32 bytes, sorted keys): the same weights give the same id in any layout."""
        digest = hashlib.blake2b(digest_size=8)
        for key in sorted(self.state_dict):
            digest.update(key.encode())
            digest.update(self.state_dict[key].detach().contiguous().numpy().tobytes())
        return digest.hexdigest()


def quiet() -> None:
    """Turn dependency telemetry off before importing huggingface_hub or onnxruntime (they read it at import)."""
    try:
        from ..privacy import quiet_dependencies
    except ImportError:  # privacy.py is another module's job; until it exists, set the essentials here
        os.environ.update({"HF_HUB_DISABLE_TELEMETRY": "1", "ORT_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"})
        return
    quiet_dependencies()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EncoderError(f"{path}: unreadable JSON ({str(error).splitlines()[0]})") from error


def _safetensors_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys())
    except Exception as error:  # safetensors raises its own error types for bad headers
        raise EncoderError(f"{path}: not a readable safetensors file ({str(error).splitlines()[0]})") from error


def _encoder_prefix(keys, where: str) -> str | None:
    """The prefix in front of the encoder's tensor names, '' when there is none, None when no encoder is there."""
    prefixes = {key[: -len(_ANCHOR)] for key in keys if key.endswith(_ANCHOR)}
    if not prefixes:
        return None
    if len(prefixes) > 1:
        if PREFIX in prefixes:
            return PREFIX
        raise EncoderError(f"{where}: several speaker encoders in one checkpoint (prefixes {sorted(prefixes)})")
    return prefixes.pop()


def _check_variant(config: dict, where: str) -> None:
    variant = config.get("tts_model_type")
    if variant is not None and variant != "base":
        name = _VARIANT_NAMES.get(variant, variant)
        raise EncoderError(
            f"{where}: a Qwen3-TTS {name} checkpoint (tts_model_type {variant!r}) has no speaker encoder; "
            "only the Base checkpoints (Qwen/Qwen3-TTS-12Hz-0.6B-Base, -1.7B-Base) carry one"
        )


def _declared_config(config: dict | None) -> dict:
    """Encoder fields from a Base `config.json` (`speaker_encoder_config`) or a standalone one (top level)."""
    if not config:
        return {}
    nested = config.get("speaker_encoder_config")
    if isinstance(nested, dict):
        return nested
    return {name: config[name] for name in EncoderConfig.__dataclass_fields__ if name in config}


def _load_tensors(files: dict[Path, list[str]], prefix: str) -> dict:
    """Read only the listed tensors from each file, as float32 (real checkpoints are stored in bfloat16)."""
    import torch
    from safetensors import safe_open

    state = {}
    for path, keys in files.items():
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in keys:
                    state[key[len(prefix):]] = handle.get_tensor(key).to(torch.float32)
        except EncoderError:
            raise
        except Exception as error:
            raise EncoderError(f"{path}: cannot read the speaker-encoder tensors ({str(error).splitlines()[0]})") from error
    return state


def infer_config(state: dict, declared: dict, where: str) -> EncoderConfig:
    """The encoder's shape from its tensors, with dilations and sample rate from the declared config.

    Channel counts, kernel sizes and the embedding size are read off the tensors, so a file without a
    config still loads; a declared `enc_dim` that the tensors contradict is an error, because the
    dimension users rely on must be the one the weights produce.
    """
    def shape(key: str):
        if key not in state:
            raise EncoderError(f"{where}: speaker-encoder tensor {key!r} is missing")
        return tuple(state[key].shape)

    first = shape("blocks.0.conv.weight")
    num_blocks = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("blocks."))
    channels = [first[0]]
    kernels = [first[2]]
    for index in range(1, num_blocks):
        channels.append(shape(f"blocks.{index}.tdnn1.conv.weight")[0])
        kernels.append(shape(f"blocks.{index}.res2net_block.blocks.0.conv.weight")[2])
    mfa = shape("mfa.conv.weight")
    channels.append(mfa[0])
    kernels.append(mfa[2])
    scale = 1 + len({key.split(".")[4] for key in state if key.startswith("blocks.1.res2net_block.blocks.")})
    se = shape("blocks.1.se_block.conv1.weight")[0] if num_blocks > 1 else EncoderConfig.enc_se_channels
    inferred = EncoderConfig.from_dict({
        **declared,
        "mel_dim": first[1],
        "enc_dim": shape("fc.weight")[0],
        "enc_channels": channels,
        "enc_kernel_sizes": kernels,
        "enc_attention_channels": shape("asp.tdnn.conv.weight")[0],
        "enc_res2net_scale": scale,
        "enc_se_channels": se,
    })
    if "enc_dim" in declared and int(declared["enc_dim"]) != inferred.enc_dim:
        raise EncoderError(
            f"{where}: config declares enc_dim {declared['enc_dim']} but the weights give {inferred.enc_dim}-d embeddings"
        )
    if len(inferred.enc_dilations) != len(channels):
        raise EncoderError(f"{where}: {len(channels)} encoder layers but {len(inferred.enc_dilations)} dilations configured")
    return inferred


def read_checkpoint(spec: str | os.PathLike) -> EncoderCheckpoint:
    """Encoder tensors and shape from a Base folder, a standalone encoder folder or a .safetensors file."""
    path = Path(spec).expanduser()
    where = str(path)
    if not path.exists():
        raise ModelNotFoundError(f"{where}: no such file or folder")
    if path.is_file() and path.name == _INDEX:
        path = path.parent
    if path.is_file():
        if path.suffix != ".safetensors":
            raise EncoderError(f"{where}: expected a .safetensors file or a checkpoint folder, got a {path.suffix or 'suffix-less'} file")
        keys = _safetensors_keys(path)
        prefix = _encoder_prefix(keys, where)
        if prefix is None:
            raise EncoderError(f"{where}: no speaker-encoder tensors (no key ending in {_ANCHOR!r})")
        state = _load_tensors({path: [k for k in keys if k.startswith(prefix)]}, prefix)
        return EncoderCheckpoint(infer_config(state, {}, where), state, where, "safetensors-file", [path.name])

    config = _read_json(path / "config.json") if (path / "config.json").exists() else None
    if config is not None:
        _check_variant(config, where)
    index_path = path / _INDEX
    if index_path.exists():
        weight_map = _read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict):
            raise EncoderError(f"{index_path}: no weight_map")
        key_files = {key: path / name for key, name in weight_map.items()}
    else:
        shards = sorted(path.glob("*.safetensors"))
        if not shards:
            raise ModelNotFoundError(f"{where}: no *.safetensors files and no {_INDEX} in this folder")
        key_files = {key: shard for shard in shards for key in _safetensors_keys(shard)}
    prefix = _encoder_prefix(key_files, where)
    if prefix is None:
        hint = ("; CustomVoice and VoiceDesign checkpoints have no speaker encoder, use a Base checkpoint"
                if config is not None and "talker_config" in config else "")
        raise EncoderError(f"{where}: no speaker-encoder tensors (no key ending in {_ANCHOR!r}){hint}")
    wanted: dict[Path, list[str]] = {}
    for key, shard in key_files.items():
        if key.startswith(prefix):
            wanted.setdefault(shard, []).append(key)
    for shard in wanted:
        if not shard.exists():
            raise ModelNotFoundError(f"{where}: shard {shard.name} listed in {_INDEX} is missing")
    state = _load_tensors(wanted, prefix)
    layout = "base-checkpoint" if prefix == PREFIX or (config and "speaker_encoder_config" in config) else "encoder-folder"
    return EncoderCheckpoint(infer_config(state, _declared_config(config), where), state, where, layout,
                             sorted(shard.name for shard in wanted))


def cached_snapshot(repo_id: str, *, cache_dir: str | os.PathLike | None = None, label: str | None = None) -> Path:
    """Snapshot folder of `repo_id` in the Hugging Face cache; never touches the network.

    `label`: the name the user gave (e.g. `qwen3-0.6b`), put in front of the error message."""
    quiet()
    from huggingface_hub import constants, snapshot_download

    looked = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
    except Exception as error:
        named = f"{label}: {repo_id} is" if label else f"{repo_id}:"
        raise ModelNotFoundError(
            f"{named} not in the Hugging Face cache (looked in {looked}); a backend name never downloads: "
            f"pass the hub id itself to allow a download, or a local checkpoint path"
        ) from error
    return folder


def hub_checkpoint(repo_id: str) -> Path:
    """Folder of a hub checkpoint the user named: config and index first, then only the shards holding the encoder."""
    quiet()
    folder = from_hub(repo_id, allow_patterns=_HUB_META)
    index = folder / _INDEX
    if index.exists():
        weight_map = _read_json(index).get("weight_map", {})
        shards = sorted({name for key, name in weight_map.items() if key.startswith(PREFIX)})
    else:
        shards = ["model.safetensors"]
    if shards:
        folder = from_hub(repo_id, allow_patterns=_HUB_META + shards)
    return folder


def locate(spec: str | os.PathLike) -> Path:
    """Local path for a weights spec: an existing path as is, a hub id through the cache or a download."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if looks_like_hub_id(str(spec)):
        return hub_checkpoint(str(spec))
    raise ModelNotFoundError(f"{spec}: not a local path, and not a hub id of the form owner/name")
