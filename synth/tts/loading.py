"""Loading a Qwen3-TTS Base checkpoint (local folder or a hub id the user named) with qwen-tts's own classes.

Only Base checkpoints take a speaker vector: CustomVoice has a fixed speaker table and VoiceDesign describes
voices in words, and neither carries the speaker encoder whose output slot we fill. The checkpoint's
config.json is read and checked before any weight is loaded, so a wrong checkpoint fails in a second with a
one-line error instead of after minutes of loading.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

from diarize.models import ModelNotFoundError, resolve

#: no Qwen3-TTS weights ship with voicemap: the default name only appears in error messages
TTS_DEFAULT = "qwen3-tts-base"
TTS_EXAMPLE = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"


@contextmanager
def quiet_import_output():
    """Silence what qwen-tts's import writes to the terminal (a flash-attn banner on stdout, and a `sox` probe
    that a dependency runs in a shell). File-descriptor level, because the probe is a child process."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def import_qwen_tts():
    """`qwen_tts`, imported once with its import-time chatter silenced (errors still raise)."""
    if "qwen_tts" not in sys.modules:
        with quiet_import_output():
            import qwen_tts  # noqa: F401
    return sys.modules["qwen_tts"]


class TTSModelError(ValueError):
    """One line: which checkpoint, and why it cannot be used for speech from a speaker vector."""


def checkpoint_folder(spec: str | os.PathLike | None) -> Path:
    """Local folder of a Qwen3-TTS checkpoint: the path itself, or the snapshot of a hub id the user named."""
    if spec is None or str(spec) == "":
        raise ModelNotFoundError(
            f"no Qwen3-TTS checkpoint given; pass a local folder or a hub id such as {TTS_EXAMPLE}"
        )
    folder = resolve(spec, TTS_DEFAULT)
    if folder.is_file():
        folder = folder.parent
    return folder


def read_base_config(folder: Path, label: str | None = None) -> dict:
    """config.json of a checkpoint folder, checked to be a 12 Hz Base model; TTSModelError otherwise."""
    label = label or str(folder)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise TTSModelError(f"{label}: no config.json, not a Qwen3-TTS checkpoint folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TTSModelError(f"{label}: config.json is unreadable ({error})") from error
    if config.get("model_type") != "qwen3_tts":
        raise TTSModelError(f"{label}: model_type is {config.get('model_type')!r}, not a Qwen3-TTS checkpoint")
    kind = config.get("tts_model_type")
    if kind != "base":
        raise TTSModelError(
            f"{label}: a {kind or 'unknown'} checkpoint takes no speaker vector (only Base checkpoints carry the "
            "speaker-encoder slot); use a Qwen3-TTS Base checkpoint"
        )
    if config.get("tokenizer_type") not in (None, "qwen3_tts_tokenizer_12hz"):
        raise TTSModelError(
            f"{label}: speech tokenizer {config.get('tokenizer_type')!r} is not supported (only the 12 Hz codec)"
        )
    if not (folder / "speech_tokenizer" / "config.json").exists():
        raise TTSModelError(f"{label}: speech_tokenizer/ is missing, so codec tokens cannot become audio")
    return config


def load_tts(spec: str | os.PathLike, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
             attn_implementation: str | None = None):
    """A qwen-tts `Qwen3TTSModel` (model + text processor + generation defaults) for a Base checkpoint.

    `spec` is a local folder or a hub id; a hub id is looked up in the Hugging Face cache first and downloaded
    only because the user named it (see diarize.models). Everything then loads from that local folder.
    """
    folder = checkpoint_folder(spec)
    read_base_config(folder, label=str(spec))
    kwargs: dict = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(folder), **kwargs)
    tts.model.to(device).eval()
    tts.device = torch.device(device)
    tts.model.speech_tokenizer.model.to(device).eval()
    tts.model.speech_tokenizer.device = torch.device(device)
    return tts
