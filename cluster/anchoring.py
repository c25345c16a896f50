"""Enrolled voices as speakers that the local-speaker assignment may choose, when a registry is given.

Clustering alone merges two readers whose voices are close (on the registry benchmark it found 3 speakers
where 5 talked), and naming afterwards cannot undo a merge: one cluster gets one name. When the voices
are enrolled, the registry knows better. So, before each window's local speakers are assigned:
- a cluster that matches an enrolled voice (one-to-one, at the naming threshold) is represented by the
  average of its own centroid and that voice, which pulls the voice's speech towards it;
- an enrolled voice that no cluster claimed, but that is the best match of enough reliable local
  embeddings at the naming threshold, becomes a speaker of its own, so it can take its speech back from
  the cluster it was merged into.
Clusters that match nobody (unknown speakers) are left as they are. Candidates that end up with too
little speech are dropped again by the caller (diarize/pipeline.py), exactly as unsupported clusters are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vectors import unit_vectors

from .registry.match import assign


@dataclass(frozen=True)
class EnrolledVoices:
    """The voices of one encoder a recording may contain: `names` (num_voices,), `vectors`
    (num_voices, dim) centroids, `threshold` the open-set naming threshold on cosine similarity."""

    names: tuple[str, ...]
    vectors: np.ndarray
    threshold: float

    def __len__(self) -> int:
        return len(self.names)


def present_unclaimed_voices(embeddings: np.ndarray, voices: EnrolledVoices, claimed: set[str],
                             min_members: int) -> list[int]:
    """Indices of voices nobody claimed that at least `min_members` of `embeddings` (num_embeddings, dim)
    choose as their best voice with a score at or above the threshold, the most chosen first.

    Requiring several confident local embeddings keeps a large registry from flooding the recording with
    candidates: only voices that are heard become speakers.
    """
    if len(voices) == 0 or len(embeddings) == 0:
        return []
    scores = unit_vectors(embeddings, np.float64) @ unit_vectors(voices.vectors, np.float64).T
    best = scores.argmax(axis=1)
    confident = scores[np.arange(len(best)), best] >= voices.threshold
    counts = np.bincount(best[confident], minlength=len(voices))
    heard = [j for j in np.flatnonzero(counts >= min_members) if voices.names[j] not in claimed]
    return sorted(heard, key=lambda j: -counts[j])


def anchored_centroids(cluster_centroids: np.ndarray, embeddings: np.ndarray, voices: EnrolledVoices, *,
                       min_members: int = 3, max_speakers: int | None = None) -> np.ndarray:
    """Candidate speakers for the local-speaker assignment: (num_candidates, dim) unit vectors.

    cluster_centroids: (num_clusters, dim) of the recording's clusters; embeddings: (num_embeddings, dim)
    the reliable local-speaker embeddings that were clustered. The first num_clusters rows stand for the
    clusters (blended with their enrolled voice where they match one); unclaimed voices that are present
    (`present_unclaimed_voices`) follow, no more than `max_speakers` candidates in all.
    """
    clusters = unit_vectors(cluster_centroids, np.float64)
    if len(voices) == 0 or len(clusters) == 0:
        return clusters
    vectors = unit_vectors(voices.vectors, np.float64)
    names = list(voices.names)
    naming = assign(clusters, vectors, names, voices.threshold)
    candidates = []
    for centroid, label in zip(clusters, naming.labels):
        candidates.append(unit_vectors(centroid + vectors[names.index(label)], np.float64) if label in names else centroid)
    room = None if max_speakers is None else max(max_speakers - len(candidates), 0)
    extra = present_unclaimed_voices(embeddings, voices, set(naming.labels), min_members)[:room]
    candidates.extend(vectors[j] for j in extra)
    return np.stack(candidates)


__all__ = ["EnrolledVoices", "anchored_centroids", "present_unclaimed_voices"]
