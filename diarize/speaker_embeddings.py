"""One embedding per (chunk, local speaker), from a single frame-level encoder pass over the recording.

The naive way runs the encoder once per chunk and local speaker over overlapping windows, redoing
the same frames many times. Here the encoder's frame features are computed once, in blocks that
cover only the recording's speech, and each (chunk, local speaker) is a weighted pooling of the
frames where that speaker is active in that chunk, alone when it speaks alone long enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .embedding.base import SpeakerEncoder
from .reconstruct import chunk_frame_offsets
from .segmentation import Segmentation


@dataclass
class LocalEmbeddings:
    """embeddings: (num_chunks, num_local, dimension) raw, NaN where the local speaker is silent;
    seconds: (num_chunks, num_local) how much speech each embedding was pooled from;
    exclusive: (num_chunks, num_local) True where only frames without overlap were used."""

    embeddings: np.ndarray
    seconds: np.ndarray
    exclusive: np.ndarray


def speech_spans(segmentation: Segmentation, duration: float, pad: float = 0.5) -> list[tuple[float, float]]:
    """Merged (start, end) seconds where any chunk sees any speaker, widened by `pad` on each side."""
    any_active = segmentation.activity.max(axis=2) > 0  # (num_chunks, frames)
    offsets = chunk_frame_offsets(segmentation)
    num_frames = offsets[-1] + any_active.shape[1] if len(offsets) else 0
    grid = np.zeros(num_frames, dtype=bool)
    for chunk, offset in enumerate(offsets):
        grid[offset : offset + any_active.shape[1]] |= any_active[chunk]
    column = np.concatenate([[0], grid.astype(np.int8), [0]])
    changes = np.flatnonzero(np.diff(column))
    spans: list[list[float]] = []
    origin = segmentation.frame_start - segmentation.frame_step / 2
    for first, last in zip(changes[0::2], changes[1::2]):
        start = max(0.0, origin + first * segmentation.frame_step - pad)
        end = min(duration, origin + last * segmentation.frame_step + pad)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        elif end > start:
            spans.append([start, end])
    return [(start, end) for start, end in spans]


def recording_features(encoder: SpeakerEncoder, samples: np.ndarray, spans: list[tuple[float, float]],
                       block: float = 30.0, context: float = 1.0,
                       hook: Callable[[float], None] | None = None) -> np.ndarray:
    """Frame features of the whole recording, computed only inside `spans`.

    samples: (num_samples,) at the encoder's rate. Returns (num_encoder_frames, channels) float32,
    zeros outside the spans. Each block of at most `block` seconds is encoded with `context` seconds
    of audio on each side, so frames at block edges see the same context as inner ones.
    `hook(fraction)` is called after each block with the fraction of span audio done.
    """
    rate = encoder.sample_rate
    hop = int(round(rate / encoder.frame_rate))
    total_frames = len(samples) // hop
    features: np.ndarray | None = None
    pad = int(context * rate)
    span_total = max(sum(end - start for start, end in spans), 1e-9)
    span_done = 0.0
    for span_start, span_end in spans:
        first = int(span_start * rate) // hop * hop
        last = min(len(samples), int(np.ceil(span_end * rate)))
        for block_start in range(first, last, int(block * rate) // hop * hop):
            block_end = min(last, block_start + int(block * rate))
            begin = max(0, block_start - pad) // hop * hop
            block_features = encoder.frame_features(samples[begin : min(len(samples), block_end + pad)])
            if features is None:
                features = np.zeros((total_frames, block_features.shape[1]), dtype=np.float32)
            skip = (block_start - begin) // hop
            keep = min((block_end - block_start) // hop + 1, len(block_features) - skip, total_frames - block_start // hop)
            if keep > 0:
                features[block_start // hop : block_start // hop + keep] = block_features[skip : skip + keep]
            if hook:
                span_done += (block_end - block_start) / rate
                hook(min(1.0, span_done / span_total))
    if features is None:
        return np.zeros((total_frames, 0), dtype=np.float32)
    return features


def local_speaker_embeddings(encoder: SpeakerEncoder, features: np.ndarray, segmentation: Segmentation,
                             min_exclusive_seconds: float = 1.0) -> LocalEmbeddings:
    """Pool `features` (num_encoder_frames, channels) per chunk and local speaker.

    A local speaker is pooled from the frames where it speaks alone when those add up to at least
    `min_exclusive_seconds`; otherwise from every frame where it is active.
    """
    num_chunks, per_chunk, num_local = segmentation.activity.shape
    rate = encoder.frame_rate
    embeddings = np.full((num_chunks, num_local, encoder.dimension), np.nan, dtype=np.float32)
    seconds = np.zeros((num_chunks, num_local), dtype=np.float32)
    exclusive_used = np.zeros((num_chunks, num_local), dtype=bool)
    if features.shape[1] == 0:
        return LocalEmbeddings(embeddings, seconds, exclusive_used)
    for chunk in range(num_chunks):
        activity = segmentation.activity[chunk]
        if not activity.any():
            continue
        start = chunk * segmentation.step
        first = int(np.ceil(start * rate))
        last = min(len(features), int((start + segmentation.duration) * rate))
        if last <= first:
            continue
        times = (np.arange(first, last) + 0.5) / rate - start
        frame = np.clip(np.rint((times - segmentation.frame_start) / segmentation.frame_step), 0, per_chunk - 1).astype(np.int64)
        active = activity[frame].T  # (num_local, encoder frames)
        alone = active * (active.sum(axis=0, keepdims=True) == 1)
        use_alone = alone.sum(axis=1) >= min_exclusive_seconds * rate
        weights = np.where(use_alone[:, None], alone, active)
        present = weights.sum(axis=1) > 0
        if not present.any():
            continue
        pooled = encoder.pool(features[first:last], weights[present])
        embeddings[chunk, present] = pooled
        seconds[chunk, present] = weights[present].sum(axis=1) / rate
        exclusive_used[chunk] = use_alone & present
    return LocalEmbeddings(embeddings, seconds, exclusive_used)
