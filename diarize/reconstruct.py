"""From per-chunk global-speaker activity back to one timeline: aggregation, speaker count, annotations."""

from __future__ import annotations

import numpy as np

from .segmentation import Segmentation


def chunk_frame_offsets(segmentation: Segmentation) -> np.ndarray:
    """(num_chunks,) index of each chunk's first frame on the recording's frame grid."""
    return np.round(np.arange(segmentation.num_chunks) * segmentation.step / segmentation.frame_step).astype(np.int64)


def num_recording_frames(segmentation: Segmentation, duration: float) -> int:
    """Frames of the recording's grid up to `duration` seconds."""
    return max(1, int(np.ceil((duration - segmentation.frame_start) / segmentation.frame_step)))


def overlap_add(chunks: np.ndarray, offsets: np.ndarray, num_frames: int) -> np.ndarray:
    """Average of overlapping chunks on the recording grid.

    chunks: (num_chunks, frames_per_chunk, num_classes); offsets: (num_chunks,) first frame of each.
    Returns (num_frames, num_classes); frames no chunk covers are 0.
    """
    num_chunks, per_chunk, num_classes = chunks.shape
    total = np.zeros((max(num_frames, offsets[-1] + per_chunk if num_chunks else 0), num_classes), dtype=np.float64)
    covered = np.zeros(len(total), dtype=np.float64)
    for chunk, offset in enumerate(offsets):
        total[offset : offset + per_chunk] += chunks[chunk]
        covered[offset : offset + per_chunk] += 1.0
    return (total / np.maximum(covered, 1.0)[:, None])[:num_frames]


def speaker_count(segmentation: Segmentation, num_frames: int) -> np.ndarray:
    """(num_frames,) number of simultaneous speakers per frame: the chunks' local counts, averaged and rounded."""
    local_count = segmentation.activity.sum(axis=2, keepdims=True)
    averaged = overlap_add(local_count, chunk_frame_offsets(segmentation), num_frames)[:, 0]
    return np.rint(averaged).astype(np.int64)


def single_voice_seconds(segmentation: Segmentation, chunk_index: np.ndarray, local_index: np.ndarray,
                         labels: np.ndarray) -> np.ndarray:
    """(num_clusters,) seconds of the recording where some member of each cluster speaks alone.

    chunk_index, local_index, labels: (num_members,) which (chunk, local speaker) each clustered
    embedding came from and its cluster. Time is counted once however many overlapping windows see it.
    """
    activity = segmentation.activity
    alone = (activity > 0) & (activity.sum(axis=2, keepdims=True) == 1)
    offsets = chunk_frame_offsets(segmentation)
    per_chunk = activity.shape[1]
    num_clusters = int(labels.max()) + 1 if len(labels) else 0
    grid = np.zeros((num_clusters, offsets[-1] + per_chunk if len(offsets) else 0), dtype=bool)
    for chunk, local, label in zip(chunk_index, local_index, labels):
        grid[label, offsets[chunk] : offsets[chunk] + per_chunk] |= alone[chunk, :, local]
    return grid.sum(axis=1) * segmentation.frame_step


def global_activity(segmentation: Segmentation, local_labels: np.ndarray, num_speakers: int) -> np.ndarray:
    """(num_chunks, frames_per_chunk, num_speakers): each chunk's activity with local speakers renamed globally.

    local_labels: (num_chunks, num_local) global speaker of each local speaker, -1 if none.
    """
    num_chunks, per_chunk, num_local = segmentation.activity.shape
    out = np.zeros((num_chunks, per_chunk, num_speakers), dtype=np.float32)
    for local in range(num_local):
        chunk_index = np.flatnonzero(local_labels[:, local] >= 0)
        speakers = local_labels[chunk_index, local]
        out[chunk_index, :, speakers] = np.maximum(out[chunk_index, :, speakers], segmentation.activity[chunk_index, :, local])
    return out


def binarize_by_count(scores: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(num_frames, num_speakers) scores, (num_frames,) counts -> (num_frames, num_speakers) 0/1.

    In each frame the `count` highest-scoring speakers with a positive score are marked active.
    """
    num_frames, num_speakers = scores.shape
    active = np.zeros_like(scores, dtype=np.int8)
    if num_speakers == 0:
        return active
    order = np.argsort(-scores, axis=1)
    count = np.minimum(count, num_speakers)
    for rank in range(int(count.max(initial=0))):
        frames = np.flatnonzero(count > rank)
        speakers = order[frames, rank]
        keep = scores[frames, speakers] > 0
        active[frames[keep], speakers[keep]] = 1
    return active


def exclusive_of(active: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(num_frames, num_speakers) -> same shape with at most one speaker per frame (the highest-scoring)."""
    exclusive = np.zeros_like(active)
    if active.shape[1] == 0:
        return exclusive
    speaking = active.any(axis=1)
    best = np.argmax(np.where(active > 0, scores, -np.inf), axis=1)
    exclusive[np.flatnonzero(speaking), best[speaking]] = 1
    return exclusive


def to_annotation(active: np.ndarray, labels: list[str], segmentation: Segmentation, duration: float,
                  uri: str, min_duration_off: float = 0.0):
    """(num_frames, num_speakers) 0/1 on the recording grid -> pyannote.core.Annotation.

    Frame f spans [start + f * step, start + (f + 1) * step) with start = frame_start - frame_step / 2;
    gaps shorter than `min_duration_off` inside one speaker's speech are filled.
    """
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    step = segmentation.frame_step
    origin = segmentation.frame_start - step / 2
    for speaker, label in enumerate(labels):
        column = np.concatenate([[0], active[:, speaker].astype(np.int8), [0]])
        changes = np.flatnonzero(np.diff(column))
        starts, ends = changes[0::2], changes[1::2]
        merged: list[list[float]] = []
        for first, last in zip(starts, ends):
            onset = max(0.0, origin + first * step)
            offset = min(duration, origin + last * step)
            if offset <= onset:
                continue
            if merged and onset - merged[-1][1] < min_duration_off:
                merged[-1][1] = offset
            else:
                merged.append([onset, offset])
        for onset, offset in merged:
            annotation[Segment(onset, offset), len(annotation)] = label
    return annotation
