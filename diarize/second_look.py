"""A second look at short turns: each stretch where one speaker talks alone is embedded on its own and
given to the speaker whose centroid its voice matches best.

Why: a local speaker's embedding is pooled over its 10 s window, and every frame is decided by the votes
of the ~10 windows that cover it. A turn of 1-3 s shares all of its windows with its neighbours' speech,
so its votes scatter and it often lands on a neighbour (most of the confusion on simulated conversations
is such 1-3 s slivers). Its own audio, embedded alone, says whose voice it is.

Runs whose own voice is close to no speaker's, when there are enough of them, become a new speaker
(`unmatched_runs`): a voice heard too briefly to form a cluster of window embeddings still stands out here.

The pipeline first cuts runs at near-silent pauses (diarize.edges.split_at_pauses): when two voices take
turns across short pauses, the votes often give all of it to one of them, as one long run; cut at its
pauses, each piece is looked at on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cluster.vectors import unit_vectors


#: the default of SecondLookConfig.max_new_voices: a handful of voices heard too briefly to form a cluster is
#: plausible in one recording, dozens would be the second look splitting real speakers
MAX_NEW_VOICES = 3


@dataclass
class RunVoices:
    """What the second look heard in the runs: embeddings (num_runs, d) raw, each run's own voice; speakers
    (num_runs,) the speaker each run was given; spans (num_runs, 2) each run's first and stop frame, when
    known."""

    embeddings: np.ndarray
    speakers: np.ndarray
    spans: np.ndarray | None = None


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


def best_speakers(run_embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(num_runs, d), (num_speakers, d) -> (num_runs,) index of the most cosine-similar centroid."""
    return np.argmax(unit_vectors(run_embeddings) @ unit_vectors(centroids).T, axis=1)


def unmatched_runs(run_embeddings: np.ndarray, centroids: np.ndarray, lengths: np.ndarray, max_cosine: float,
                   min_each: int, min_total: int) -> np.ndarray:
    """(num_runs,) bool: the runs that are one voice of no speaker's, when there is enough of it.

    run_embeddings: (num_runs, d); centroids: (num_speakers, d); lengths: (num_runs,) frames. A run is a
    candidate when its own embedding is under `max_cosine` to every centroid and it is at least `min_each`
    frames long. The longest candidate stands for the new voice; the candidates within `max_cosine` of it
    are that voice, kept when they add up to `min_total` frames. Measured on every shared and simulated set
    (docs/diarization-experiments.md): runs of 1 s or more that far from every speaker belonged, every time, to a speaker the
    clustering had missed.
    """
    none = np.zeros(len(run_embeddings), dtype=bool)
    if len(run_embeddings) == 0:
        return none
    runs = unit_vectors(run_embeddings)
    nearest = (runs @ unit_vectors(centroids).T).max(axis=1) if len(centroids) else np.full(len(runs), -1.0)
    candidate = (nearest < max_cosine) & (lengths >= min_each)
    if lengths[candidate].sum() < min_total:
        return none
    seed = np.flatnonzero(candidate)[np.argmax(lengths[candidate])]
    kept = candidate & (runs @ runs[seed] >= max_cosine)
    return kept if lengths[kept].sum() >= min_total else none


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


def redecide_runs(active: np.ndarray, exclusive: np.ndarray, centroids: np.ndarray,
                  frame_span: Callable[[int, int], tuple[int, int]],
                  embed_all: Callable[[list[tuple[int, int]]], np.ndarray], min_frames: int,
                  max_frames: int | None = None, new_voice: tuple[float, int, int] | None = None,
                  max_new_voices: int = MAX_NEW_VOICES, return_runs: bool = False):
    """Re-decide every single-voice run of `min_frames`..`max_frames` frames by its own embedding.

    active, exclusive: (num_frames, num_speakers) 0/1; centroids: (num_speakers, d);
    frame_span(first, stop) -> (start, end) indices of those frames on the embedder's grid;
    embed_all([(start, end), ...]) -> (num_runs, d), an embedding per run.
    new_voice: (max_cosine, min_each, min_total) of `unmatched_runs`; runs that are a voice of no speaker's
    become a new speaker (a column appended to the activity, its centroid to the centroids), up to
    `max_new_voices` times. None: runs only move between the speakers there are.
    Returns the new (num_frames, num_speakers') activity and (num_speakers', d) centroids, and with
    `return_runs` a `RunVoices` of the runs (None when no run was looked at).
    """
    dtype = np.asarray(centroids).dtype
    centroids = np.asarray(centroids, dtype=np.float64)
    runs = single_voice_runs(exclusive, min_frames, max_frames)
    if not runs or len(centroids) < (1 if new_voice is not None else 2):
        return (active, centroids.astype(dtype), None) if return_runs else (active, centroids.astype(dtype))
    spans = [frame_span(first, stop) for _, first, stop in runs]
    embeddings = embed_all(spans)
    lengths = np.array([stop - first for _, first, stop in runs])
    for _ in range(max_new_voices if new_voice is not None else 0):
        unmatched = unmatched_runs(embeddings, centroids, lengths, *new_voice)
        if not unmatched.any():
            break
        voice = (unit_vectors(embeddings[unmatched]) * lengths[unmatched, None]).sum(axis=0)
        # scaled like the other centroids (raw means), so downstream consumers see a comparable vector
        scale = float(np.mean(np.linalg.norm(centroids, axis=1))) if len(centroids) else 1.0
        centroids = np.vstack([centroids, scale * voice / max(float(np.linalg.norm(voice)), 1e-12)])
        active = np.hstack([active, np.zeros((len(active), 1), dtype=active.dtype)])
    targets = best_speakers(embeddings, centroids)
    moved = move_runs(active, runs, targets), centroids.astype(dtype)
    run_frames = np.array([(first, stop) for _, first, stop in runs], dtype=np.int64).reshape(-1, 2)
    return (*moved, RunVoices(embeddings, targets, run_frames)) if return_runs else moved


def with_new_speaker_votes(active: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Votes for (num_frames, num_speakers') `active`, whose columns past `scores`' (num_frames, num_speakers)
    are speakers added after the votes were cast: such a speaker has no votes of its own, so where it speaks
    it holds the highest vote its frames had."""
    if active.shape[1] <= scores.shape[1]:
        return scores
    new = active[:, scores.shape[1]:]
    return np.hstack([scores, new * scores.max(axis=1, keepdims=True)])


def merge_speakers(active: np.ndarray, scores: np.ndarray, runs: RunVoices, merged: np.ndarray):
    """Speakers merged as `merged` (num_runs,) re-labels their runs: -> (num_frames, num_speakers) activity
    and votes where each merged-away speaker's frames and votes belong to the speaker its runs joined (its
    own column left empty, so it is dropped as a speaker that never speaks), and the runs re-labelled."""
    merged = np.asarray(merged)
    if (merged == runs.speakers).all():
        return active, scores, runs
    active, scores = active.copy(), scores.copy()
    for gone in np.unique(runs.speakers[merged != runs.speakers]):
        kept = int(merged[runs.speakers == gone][0])
        active[:, kept] = np.maximum(active[:, kept], active[:, gone])
        scores[:, kept] = np.maximum(scores[:, kept], scores[:, gone])
        active[:, gone] = 0
        scores[:, gone] = 0
    return active, scores, RunVoices(runs.embeddings, merged, runs.spans)


#: a speaker's voice centroid comes from its runs once it has this many: one run can be a single short word
RUN_CENTROID_MIN_RUNS = 2


def run_centroids(centroids: np.ndarray, runs: RunVoices, min_runs: int = RUN_CENTROID_MIN_RUNS) -> np.ndarray:
    """(num_speakers, d) raw centroids -> the same, each speaker with `min_runs` or more runs given the mean
    raw embedding of its runs instead.

    The centroids the clustering left are means over windows' local speakers, and in fast turn-taking those
    are often blends of two voices; a run is one voice alone. Naming and archive linking compare a speaker's
    centroid with other voices, so a blended centroid sits between voices (acted registry conversations:
    enrolled actors' clusters scored 1.9-6.9 spreads against their voices, 2.9-9.9 from their runs)."""
    result = np.array(centroids, dtype=np.float32, copy=True)
    for speaker in range(len(result)):
        mine = runs.speakers == speaker
        if mine.sum() >= min_runs:
            result[speaker] = runs.embeddings[mine].mean(axis=0)
    return result


__all__ = ["RUN_CENTROID_MIN_RUNS", "RunVoices", "best_speakers", "merge_speakers", "move_runs", "redecide_runs", "run_centroids",
           "single_voice_runs", "unmatched_runs", "with_new_speaker_votes"]
