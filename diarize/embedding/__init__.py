"""Speaker encoders behind one protocol (see base.py); `load_encoder` picks a backend by exact name or path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .base import EncoderError, SpeakerEncoder, resample_weights

DEFAULT_ENCODER = "campplus"


def _campplus(spec: str | None, device: str) -> SpeakerEncoder:
    from .campplus import CAMPPlusEncoder

    return CAMPPlusEncoder(weights=spec, device=device)


def _ecapa(spec: str | None, device: str) -> SpeakerEncoder:
    from .ecapa import ECAPAEncoder

    return ECAPAEncoder(weights=spec, device=device)


def _qwen3(size: str) -> Callable[[str | None, str], SpeakerEncoder]:
    def factory(spec: str | None, device: str) -> SpeakerEncoder:
        from .qwen3 import Qwen3Encoder

        return Qwen3Encoder.from_name(size, weights=spec, device=device)

    return factory


#: backend name -> factory(weights spec or None, device)
BACKENDS: dict[str, Callable[[str | None, str], SpeakerEncoder]] = {
    "campplus": _campplus,
    "ecapa": _ecapa,
    "qwen3-0.6b": _qwen3("0.6b"),
    "qwen3-1.7b": _qwen3("1.7b"),
}


def load_encoder(name: str | os.PathLike = DEFAULT_ENCODER, *, device: str = "cpu") -> SpeakerEncoder:
    """An encoder from a backend name (`campplus`, `qwen3-0.6b`, ...) or a local path / hub id of weights."""
    key = str(name)
    if key in BACKENDS:
        return BACKENDS[key](None, device)
    if ":" in key and key.split(":", 1)[0] in BACKENDS:
        backend, spec = key.split(":", 1)
        return BACKENDS[backend](spec, device)
    path = Path(key).expanduser()
    if path.exists() and path.suffix in {".pt", ".bin", ".ckpt"}:
        return _campplus(str(path), device)
    if path.exists() or "/" in key:
        from .qwen3 import Qwen3Encoder

        return Qwen3Encoder.from_weights(key, device=device)
    raise EncoderError(f"unknown embedding {key!r}: use one of {', '.join(BACKENDS)}, BACKEND:PATH, or a path")


def check_encoder_spec(name: str | os.PathLike) -> None:
    """Before any work: EncoderError unless `name` is a backend, BACKEND:PATH with an existing path or a hub id,
    or an existing weights path (a hub id the user names is looked up when loaded)."""
    from ..models import looks_like_hub_id

    key = str(name)
    if key in BACKENDS:
        return
    spec = key.split(":", 1)[1] if ":" in key and key.split(":", 1)[0] in BACKENDS else key
    if Path(spec).expanduser().exists() or looks_like_hub_id(spec):
        return
    raise EncoderError(f"--embedding {key}: not an encoder ({', '.join(BACKENDS)}), and no such file or folder")


__all__ = ["check_encoder_spec", "BACKENDS", "DEFAULT_ENCODER", "EncoderError", "SpeakerEncoder", "load_encoder",
           "resample_weights"]
