"""One embedding per (chunk, local speaker), from a single frame-level encoder pass over the recording.

The naive way runs the encoder once per chunk and local speaker over overlapping windows, redoing
the same frames many times. Here the encoder's frame features are computed once, in 30 s blocks
(silent blocks skipped), and each (chunk, local speaker) is a weighted pooling of the frames where
that speaker is active in that chunk, alone when it speaks alone long enough. Chunks are pooled as
soon as their frames exist, so only a block and a window of features are ever held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

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


def feature_blocks(encoder: SpeakerEncoder, samples: np.ndarray, spans: list[tuple[float, float]],
                   block: float = 30.0, context: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """Frame features of the recording's blocks that hold speech, in time order.

    samples: (num_samples,) at the encoder's rate. The recording is tiled in `block`-second blocks;
    those that meet no span in `spans` are skipped. Each kept block is encoded inside a window of
    exactly `block + 2 * context` seconds of real audio (shifted inward at the recording's ends), so
    frames at block edges see context and every encoder call has the same input length: the CPU
    convolution backend caches one kernel plan per input shape, and varied lengths grew memory by
    ~70 MB per block. Yields (index of the first encoder frame, (num_frames, channels) float32).
    """
    rate = encoder.sample_rate
    hop = int(round(rate / encoder.frame_rate))
    total_frames = len(samples) // hop
    step = int(block * rate) // hop * hop
    window = step + 2 * (int(context * rate) // hop * hop)
    for block_start in range(0, len(samples), step):
        block_end = min(len(samples), block_start + step)
        if not any(start * rate < block_end and end * rate > block_start for start, end in spans):
            continue
        begin = max(0, min(block_start - (window - step) // 2, len(samples) - window)) // hop * hop
        features = encoder.frame_features(samples[begin : begin + window])
        skip = (block_start - begin) // hop
        keep = min(-(-(block_end - block_start) // hop), len(features) - skip, total_frames - block_start // hop)
        if keep > 0:
            yield block_start // hop, features[skip : skip + keep]


class _RollingFrames:
    """Encoder frames of a sliding stretch of the recording; frames never computed read as zeros."""

    def __init__(self):
        self.start = 0  # recording frame index of row 0
        self.rows: np.ndarray | None = None

    def put(self, first: int, block: np.ndarray) -> None:
        if self.rows is None:
            self.start, self.rows = first, block.copy()
            return
        end = first + len(block)
        if end > self.start + len(self.rows):
            grown = np.zeros((end - self.start, block.shape[1]), dtype=np.float32)
            grown[: len(self.rows)] = self.rows
            self.rows = grown
        self.rows[first - self.start : end - self.start] = block

    def get(self, first: int, last: int, channels: int) -> np.ndarray:
        out = np.zeros((last - first, channels), dtype=np.float32)
        if self.rows is not None:
            lo, hi = max(first, self.start), min(last, self.start + len(self.rows))
            if hi > lo:
                out[lo - first : hi - first] = self.rows[lo - self.start : hi - self.start]
        return out

    def drop_before(self, frame: int) -> None:
        if self.rows is not None and frame > self.start:
            self.rows = self.rows[frame - self.start :].copy()
            self.start = frame


def pool_spans(encoder: SpeakerEncoder, samples: np.ndarray, spans: list[tuple[float, float]],
               frame_spans: list[tuple[int, int]], block: float = 30.0) -> np.ndarray:
    """Embeddings of encoder-frame spans [(start, end), ...] (they may overlap) pooled from the frame features of
    `feature_blocks` (rounded to float16, as `FrameStore` keeps them), computed block by block and
    dropped once no pending span needs them: memory stays flat whatever the recording's length.

    Returns (len(frame_spans), dimension)."""
    out = np.zeros((len(frame_spans), encoder.dimension), dtype=np.float64)
    order = sorted(range(len(frame_spans)), key=lambda index: frame_spans[index])
    frames = _RollingFrames()
    channels, done = 0, 0

    def pool_ready(computed_until: float) -> None:
        nonlocal done
        while done < len(order) and frame_spans[order[done]][1] <= computed_until:
            start, end = frame_spans[order[done]]
            features = frames.get(start, end, channels)
            out[order[done]] = encoder.pool(features, np.ones((1, len(features)), dtype=np.float32))[0]
            done += 1
        if done < len(order) and np.isfinite(computed_until):
            # never past what is computed: the next block must land after the rows kept
            frames.drop_before(min(frame_spans[order[done]][0], int(computed_until)))

    for first, features in feature_blocks(encoder, samples, spans, block=block):
        channels = features.shape[1]
        frames.put(first, features.astype(np.float16).astype(np.float32))
        pool_ready(first + len(features))
    if channels:
        pool_ready(np.inf)
    return out


def covered_seconds(frame_spans: list[tuple[int, int]], frame_rate: float, gap: float = 1.0) -> list[tuple[float, float]]:
    """The stretches (start, end) seconds that encoder-frame spans cover, spans closer than `gap` seconds
    joined: what `feature_blocks` must compute to pool them."""
    merged: list[list[float]] = []
    for start, end in sorted(frame_spans):
        start_s, end_s = start / frame_rate, end / frame_rate
        if merged and start_s <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end_s)
        else:
            merged.append([start_s, end_s])
    return [(start, end) for start, end in merged]


def pool_frame_spans(encoder: SpeakerEncoder, frames: np.ndarray, spans: list[tuple[int, int]],
                     reach: int = 1024, batch: int = 256) -> np.ndarray:
    """Embeddings of encoder-frame spans [(start, end), ...] (they may overlap) pooled from `frames`
    (num_frames, channels), e.g. `FrameStore.array`: spans close together share one `encoder.pool` call
    over the stretch they cover (at most `reach` frames wide unless one span is wider, `batch` spans).

    Returns (len(spans), dimension) float64, in the order of `spans`."""
    out = np.zeros((len(spans), encoder.dimension), dtype=np.float64)
    order = sorted(range(len(spans)), key=lambda index: spans[index])
    done = 0
    while done < len(order):
        group = [order[done]]
        lo, hi = spans[order[done]]
        while done + len(group) < len(order) and len(group) < batch:
            start, end = spans[order[done + len(group)]]
            if max(hi, end) - lo > reach:
                break
            group.append(order[done + len(group)])
            hi = max(hi, end)
        weights = np.zeros((len(group), hi - lo), dtype=np.float32)
        for row, index in enumerate(group):
            start, end = spans[index]
            weights[row, start - lo : end - lo] = 1.0
        out[group] = encoder.pool(np.asarray(frames[lo:hi], dtype=np.float32), weights)
        done += len(group)
    return out


class FrameStore:
    """Collects frame-feature blocks into one float16 array over the whole recording: float16 halves the
    memory (an hour of CAM++ frames: ~180 MB) and changed no measured DER."""

    def __init__(self, encoder: SpeakerEncoder, num_samples: int):
        self.num_frames = int(num_samples * encoder.frame_rate // encoder.sample_rate)
        self.array: np.ndarray | None = None  # (num_frames, channels) from the first block on; None: no speech

    def put(self, first: int, features: np.ndarray) -> None:
        if self.array is None:
            self.array = np.zeros((self.num_frames, features.shape[1]), dtype=np.float16)
        self.array[first:first + len(features)] = features


def local_speaker_embeddings(encoder: SpeakerEncoder, samples: np.ndarray, segmentation: Segmentation,
                             spans: list[tuple[float, float]], min_exclusive_seconds: float = 1.0,
                             block: float = 30.0, hook: Callable[[float], None] | None = None,
                             keep: "FrameStore | None" = None) -> LocalEmbeddings:
    """One embedding per chunk and local speaker, from a single streaming encoder pass over the speech.

    samples: (num_samples,) at the encoder's rate. A chunk is pooled as soon as the frames it covers
    are computed, and frames no pending chunk needs are dropped, so memory holds about one block plus
    one window of features whatever the recording's length. A local speaker is pooled from the frames
    where it speaks alone when those add up to at least `min_exclusive_seconds`; otherwise from every
    frame where it is active. `hook(fraction)` is called after each block. `keep`, when given, also
    receives every block of frame features (for the second look, which pools turns from them).
    """
    num_chunks, per_chunk, num_local = segmentation.activity.shape
    rate = encoder.frame_rate
    embeddings = np.full((num_chunks, num_local, encoder.dimension), np.nan, dtype=np.float32)
    seconds = np.zeros((num_chunks, num_local), dtype=np.float32)
    exclusive_used = np.zeros((num_chunks, num_local), dtype=bool)
    total_frames = len(samples) * encoder.frame_rate // encoder.sample_rate
    bounds = [(int(np.ceil(c * segmentation.step * rate)),
               int(min(total_frames, (c * segmentation.step + segmentation.duration) * rate))) for c in range(num_chunks)]
    frames = _RollingFrames()
    channels = 0
    next_chunk = 0

    def pool_ready(computed_until: float) -> None:
        nonlocal next_chunk
        while next_chunk < num_chunks and bounds[next_chunk][1] <= computed_until:
            _pool_chunk(encoder, segmentation, next_chunk, bounds[next_chunk], frames, channels,
                        min_exclusive_seconds, embeddings, seconds, exclusive_used)
            next_chunk += 1
        if next_chunk < num_chunks:
            frames.drop_before(bounds[next_chunk][0])

    for first, block_features in feature_blocks(encoder, samples, spans, block=block):
        channels = block_features.shape[1]
        frames.put(first, block_features)
        if keep is not None:
            keep.put(first, block_features)
        pool_ready(first + len(block_features))
        if hook:
            hook(min(1.0, (first + len(block_features)) / max(total_frames, 1)))
    if channels:
        pool_ready(np.inf)
    return LocalEmbeddings(embeddings, seconds, exclusive_used)


def _pool_chunk(encoder, segmentation, chunk, bounds, frames, channels, min_exclusive_seconds,
                embeddings, seconds, exclusive_used) -> None:
    """Fill row `chunk` of the output arrays from the rolling frames."""
    activity = segmentation.activity[chunk]
    first, last = bounds
    if last <= first or not activity.any():
        return
    rate = encoder.frame_rate
    start = chunk * segmentation.step
    times = (np.arange(first, last) + 0.5) / rate - start
    index = np.clip(np.rint((times - segmentation.frame_start) / segmentation.frame_step), 0, len(activity) - 1)
    active = activity[index.astype(np.int64)].T  # (num_local, encoder frames)
    alone = active * (active.sum(axis=0, keepdims=True) == 1)
    use_alone = alone.sum(axis=1) >= min_exclusive_seconds * rate
    weights = np.where(use_alone[:, None], alone, active)
    present = weights.sum(axis=1) > 0
    if not present.any():
        return
    embeddings[chunk, present] = encoder.pool(frames.get(first, last, channels), weights[present])
    seconds[chunk, present] = weights[present].sum(axis=1) / rate
    exclusive_used[chunk] = use_alone & present
