"""A second look at short turns: each stretch where one speaker talks alone is embedded on its own and
given to the speaker whose centroid its voice matches best.

Why: a local speaker's embedding is pooled over its 10 s window, and every frame is decided by the votes
of the ~10 windows that cover it. A turn of 1-3 s shares all of its windows with its neighbours' speech,
so its votes scatter and it often lands on a neighbour (most of the confusion on simulated conversations
is such 1-3 s slivers). Its own audio, embedded alone, says whose voice it is.

The pipeline first cuts runs at near-silent pauses (diarize.edges.split_at_pauses): when two voices take
turns across short pauses, the votes often give all of it to one of them, as one long run; cut at its
pauses, each piece is looked at on its own.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def single_voice_runs(exclusive: np.ndarray, min_frames: int, max_frames: int | None = None) -> list[tuple[int, int, int]]:
    """(speaker, first, stop) frame runs where `exclusive` (num_frames, num_speakers) 0/1 has that speaker
    alone, at least `min_frames` long (and at most `max_frames` when given)."""
    runs = []
    for speaker in range(exclusive.shape[1]):
        column = np.concatenate([[0], exclusive[:, speaker].astype(np.int8), [0]])
        changes = np.flatnonzero(np.diff(column))
        for first, stop in zip(changes[0::2], changes[1::2]):
            if stop - first >= min_frames and (max_frames is None or stop - first <= max_frames):
                runs.append((speaker, int(first), int(stop)))
    return runs


def doubtful(runs: list[tuple[int, int, int]], scores: np.ndarray, max_margin: float) -> list[tuple[int, int, int]]:
    """The runs whose speaker won its frames by a mean margin of `scores` (num_frames, num_speakers: the
    share of covering windows that gave each speaker the frame) below `max_margin` over the runner-up."""
    kept = []
    for speaker, first, stop in runs:
        votes = scores[first:stop]
        others = np.delete(votes, speaker, axis=1)
        runner_up = others.max(axis=1) if others.shape[1] else np.zeros(len(votes))
        if float(np.mean(votes[:, speaker] - runner_up)) < max_margin:
            kept.append((speaker, first, stop))
    return kept


def best_speakers(run_embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(num_runs, d), (num_speakers, d) -> (num_runs,) index of the most cosine-similar centroid."""
    runs = run_embeddings / np.maximum(np.linalg.norm(run_embeddings, axis=1, keepdims=True), 1e-12)
    speakers = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return np.argmax(runs @ speakers.T, axis=1)


def move_runs(active: np.ndarray, runs: list[tuple[int, int, int]], targets: np.ndarray) -> np.ndarray:
    """`active` (num_frames, num_speakers) with each run's frames moved from its speaker to its target.

    Frames where the target already speaks keep the run's speaker: moving there would turn two voices
    into one."""
    moved = active.copy()
    for (speaker, first, stop), target in zip(runs, targets):
        if target == speaker:
            continue
        free = moved[first:stop, target] == 0
        moved[first:stop, speaker][free] = 0
        moved[first:stop, target][free] = 1
    return moved


def resegment(active: np.ndarray, exclusive: np.ndarray, centroids: np.ndarray, frame_span: Callable[[int, int], tuple[int, int]],
              embed: Callable[[int, int], np.ndarray] | None, min_frames: int, max_frames: int | None = None,
              scores: np.ndarray | None = None, max_margin: float | None = None,
              embed_all: Callable[[list[tuple[int, int]]], np.ndarray] | None = None) -> np.ndarray:
    """Re-decide every single-voice run of `min_frames`..`max_frames` frames by its own embedding.

    active, exclusive: (num_frames, num_speakers) 0/1; centroids: (num_speakers, d);
    frame_span(first, stop) -> (start, end) indices of those frames on the embedder's grid; embed(start, end)
    -> (d,), or embed_all([(start, end), ...]) -> (num_runs, d) for every run at once.
    Returns the new (num_frames, num_speakers) activity.
    """
    runs = single_voice_runs(exclusive, min_frames, max_frames)
    if scores is not None and max_margin is not None:
        runs = doubtful(runs, scores, max_margin)
    if not runs or len(centroids) < 2:
        return active
    spans = [frame_span(first, stop) for _, first, stop in runs]
    embeddings = embed_all(spans) if embed_all is not None else np.stack([embed(*span) for span in spans])
    return move_runs(active, runs, best_speakers(embeddings, np.asarray(centroids, dtype=np.float64)))


__all__ = ["best_speakers", "move_runs", "resegment", "single_voice_runs"]
