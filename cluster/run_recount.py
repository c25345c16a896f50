"""Speakers counted again from single-voice runs, when their own embeddings tell the voices apart better.

Why: a local speaker of a 10 s window is a blend whenever the window holds more voices than the segmentation
can separate (three), which is every window when turns last a second or two. Clustered, such blends pull
voices together and the count comes out low. The second look embeds each single-voice run on its own; those
embeddings are one voice each, so clustering them can find the voices the windows merged. Which of the two
partitions of the runs to keep is decided on the recording itself, by which separates the runs' own
embeddings better (mean silhouette of recording-centred cosines), with no threshold to carry between domains.
The same test then merges speakers that are one voice split in two (`merged_by_silhouette`), as an acted
voice heard in two emotions often is.
"""

from __future__ import annotations

import numpy as np

from .clustering import SpeakerBounds, centroids_of, recording_centered, spectral
from .vectors import unit_vectors


def silhouette(embeddings: np.ndarray, labels: np.ndarray, precomputed: bool = False) -> float:
    """Mean silhouette of (n, d) unit vectors under (n,) labels, with cosine distance (or of an (n, n)
    distance matrix when `precomputed`); -1 for one cluster or as many clusters as points (nothing to
    compare)."""
    count = len(np.unique(labels))
    if count < 2 or count >= len(labels):
        return -1.0
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(embeddings, labels, metric="precomputed" if precomputed else "cosine"))


def recount_from_runs(run_embeddings: np.ndarray, run_speakers: np.ndarray, min_runs: int,
                      bounds: SpeakerBounds = SpeakerBounds()) -> np.ndarray | None:
    """Unit centroids of the runs' own clusters, or None when the speakers there are stand.

    run_embeddings: (num_runs, d) raw embeddings of the single-voice runs; run_speakers: (num_runs,) the
    speaker each run was given. With fewer than `min_runs` runs the eigengap of their affinity means little
    and nothing changes. Otherwise the runs are clustered on their own (`spectral`, within `bounds`) and the
    partition whose silhouette is higher on the recording-centred runs wins. -> (num_speakers', d) or None.
    """
    if len(run_embeddings) < max(min_runs, 3):
        return None
    runs = unit_vectors(np.asarray(run_embeddings, dtype=np.float64))
    labels = spectral(runs, bounds)
    compared = recording_centered(runs)
    if silhouette(compared, labels) <= silhouette(compared, np.asarray(run_speakers)):
        return None
    return unit_vectors(centroids_of(runs, labels))


def merged_by_silhouette(run_embeddings: np.ndarray, run_speakers: np.ndarray, min_runs: int,
                         min_speakers: int = 1) -> np.ndarray:
    """(num_runs,) the speaker each run keeps after merging, greedily, the pair of speakers whose merge
    raises the mean silhouette of the recording-centred runs most, until no merge raises it (or
    `min_speakers` remain). Under `min_runs` runs nothing is merged.

    Why: an acted voice heard in two emotions can come out as two speakers whose runs sit as close to each
    other as to the rest; the same test that decides the recount (do the runs' own embeddings separate
    better?) then says they are one. A speaker whose runs are a voice of its own keeps them apart.
    """
    speakers = np.asarray(run_speakers).copy()
    if len(speakers) < max(min_runs, 3):
        return speakers
    compared = recording_centered(unit_vectors(np.asarray(run_embeddings, dtype=np.float64)))
    distances = np.clip(1.0 - compared @ compared.T, 0.0, 2.0)  # cosine, computed once for every trial
    np.fill_diagonal(distances, 0.0)
    while len(np.unique(speakers)) > max(min_speakers, 2):
        best, pair = silhouette(distances, speakers, precomputed=True), None
        present = np.unique(speakers)
        for i, kept in enumerate(present):
            for gone in present[i + 1:]:
                score = silhouette(distances, np.where(speakers == gone, kept, speakers), precomputed=True)
                if score > best:
                    best, pair = score, (kept, gone)
        if pair is None:
            break
        speakers = np.where(speakers == pair[1], pair[0], speakers)
    return speakers


__all__ = ["merged_by_silhouette", "recount_from_runs", "silhouette"]
