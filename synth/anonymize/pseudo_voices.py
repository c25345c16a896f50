"""Pseudo speaker vectors for re-voicing: one per diarized speaker, drawn from a seed, not from the speaker.

Each speaker label of a recording gets a random unit direction in the TTS's speaker space, scaled to the
typical raw norm of the checkpoint's own speaker-encoder output. The directions of one recording are
orthonormalised (QR of a seeded Gaussian matrix), so two speakers never share a voice, and the draw
depends only on (seed, sorted labels): the same speaker gets the same vector in every one of its segments.

Why the norm matters: the talker was trained on raw encoder outputs, so a vector of a very different
length lands where it has never seen a speaker. The norm is measured once per recording as the median,
over its diarized speakers, of the encoder's output norm on that speaker's speech; the embeddings
themselves are dropped at once and only that single number is kept (and written to the sidecar).
"""

from __future__ import annotations

import numpy as np
import torch

#: seconds of each speaker's speech the encoder reads to measure the norm (bounds memory on long files)
NORM_SPEECH_SECONDS = 60.0
#: pieces shorter than this give the encoder too few frames for a stable statistics pooling
MIN_PIECE_SECONDS = 0.5


@torch.inference_mode()
def encoder_norm(model, samples: np.ndarray, sample_rate: int = 24000) -> float:
    """Raw output norm of the checkpoint's speaker encoder for (n,) float32 `samples` at 24 kHz."""
    embedding = model.extract_speaker_embedding(np.ascontiguousarray(samples, dtype=np.float32), sample_rate)
    return float(torch.linalg.vector_norm(embedding.float()))


def typical_norm(model, speech: list[np.ndarray], sample_rate: int = 24000) -> float:
    """Median encoder output norm over per-speaker 24 kHz speech arrays (each cut to NORM_SPEECH_SECONDS).

    Raises ValueError when no array is long enough to measure.
    """
    limit = int(NORM_SPEECH_SECONDS * sample_rate)
    norms = [encoder_norm(model, piece[:limit], sample_rate) for piece in speech
             if len(piece) >= MIN_PIECE_SECONDS * sample_rate]
    if not norms:
        raise ValueError(f"no diarized speech of {MIN_PIECE_SECONDS} s or more to calibrate the pseudo-voices")
    return float(np.median(norms))


def draw_vectors(labels, seed: int, dim: int, norm: float) -> dict[str, np.ndarray]:
    """{label: (dim,) float32 vector of length `norm`}, mutually orthogonal, deterministic in (seed, labels)."""
    ordered = sorted(str(label) for label in labels)
    if len(ordered) > dim:
        raise ValueError(f"{len(ordered)} speakers but only {dim} orthogonal directions")
    if not ordered:
        return {}
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, len(ordered)])
    gaussian = rng.standard_normal((dim, len(ordered)))
    directions, triangle = np.linalg.qr(gaussian)
    directions *= np.sign(np.diag(triangle))  # QR's sign convention would otherwise depend on the LAPACK build
    return {label: (directions[:, index] * norm).astype(np.float32) for index, label in enumerate(ordered)}
