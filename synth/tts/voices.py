"""Where a speaker vector comes from: a .npy file, or a voice enrolled in the registry (cluster.registry).

A registry voice can hold embeddings from several encoders; the TTS can only use vectors of its own speaker
encoder's kind. We prefer embeddings enrolled with this very checkpoint's encoder (the registry's encoder id
carries a fingerprint of those weights), and otherwise accept another Qwen3-TTS encoder of the same
dimension. The voice is the mean of its raw stored vectors, not the registry's unit-norm centroid: the talker
was trained on raw encoder outputs, whose norm is part of what it was shown.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VoiceSourceError(ValueError):
    """One line: which voice, and why no usable vector could be found for it."""


def load_vector_file(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise VoiceSourceError(f"{path}: not a readable .npy vector ({str(error).splitlines()[0]})") from error
    return np.asarray(array, dtype=np.float32)


def checkpoint_encoder_id(folder: str | os.PathLike) -> str | None:
    """The registry's encoder id for the speaker encoder inside a TTS checkpoint, or None if unknown."""
    try:
        from diarize.embedding.qwen3_weights import read_checkpoint
    except ImportError:
        return None
    try:
        checkpoint = read_checkpoint(folder)
    except Exception:  # not readable as an encoder checkpoint: fall back to matching by dimension
        return None
    return f"qwen3-tts-{checkpoint.config.enc_dim}d-{checkpoint.fingerprint()}"


def registry_vector(name: str, dimension: int, *, own_encoder_id: str | None = None,
                    registry_path: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """(mean raw vector, encoder id) of an enrolled voice, for a TTS whose speaker vectors have `dimension`."""
    from cluster.registry import Registry, RegistryError

    try:
        with Registry(registry_path, create=False) as registry:
            stored = registry.embeddings(name)
    except (RegistryError, FileNotFoundError, OSError) as error:
        raise VoiceSourceError(f"voice {name!r}: {str(error).splitlines()[0]}") from error
    by_encoder: dict[str, list[np.ndarray]] = {}
    for item in stored:
        by_encoder.setdefault(item.encoder_id, []).append(np.asarray(item.vector, dtype=np.float32))
    usable = [enc for enc, vectors in by_encoder.items()
              if enc.startswith("qwen3-tts-") and vectors[0].shape == (dimension,)]
    if own_encoder_id in by_encoder:
        chosen = own_encoder_id
    elif usable:
        chosen = sorted(usable)[0]
    else:
        have = ", ".join(f"{enc} ({vectors[0].shape[0]}d)" for enc, vectors in sorted(by_encoder.items())) or "none"
        raise VoiceSourceError(
            f"voice {name!r}: no {dimension}-dimensional Qwen3-TTS embedding enrolled (has: {have}); "
            "enroll it with this checkpoint's speaker encoder"
        )
    return np.mean(np.stack(by_encoder[chosen]), axis=0).astype(np.float32), chosen
