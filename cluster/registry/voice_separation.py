"""How well the registry's voices can be told apart: each voice's own consistency and its nearest other voice.

A registry where two voices sit as close as one person's two recordings cannot name either safely: a speaker
of one would be as close to the other. `voice_separations` says so per voice, with the same AS-norm rule that
naming applies (cluster/registry/match.py), so that `voicemap enroll` and `voices list` can warn before a wrong name is
ever given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .match import named_spreads
from .score_norm import Impostors, normalized_scores
from ..vectors import unit_vectors


@dataclass(frozen=True)
class VoiceSeparation:
    """One enrolled voice of one encoder.

    files: its stored embeddings (one per enrolled file); consistency: the mean cosine of each file's vector
    with the centroid of its other files (None with one file), how alike its recordings sound;
    nearest: the other voice whose centroid is closest, with that cosine and the AS-norm score of this
    voice's centroid against it (NaN when too few impostors); too_close: that score would pass the naming
    bar, so a speaker of this voice could be named as the other."""

    name: str
    files: int
    consistency: float | None
    nearest: str | None
    nearest_cosine: float | None
    nearest_spreads: float | None
    too_close: bool


def consistency(vectors: np.ndarray) -> float | None:
    """(num_files, dim) raw vectors of one voice -> mean leave-one-out cosine, None for a single file."""
    units = unit_vectors(vectors, np.float64)
    if len(units) < 2:
        return None
    total = units.sum(axis=0)
    others = unit_vectors(total[None, :] - units, np.float64)
    return float(np.mean(np.sum(units * others, axis=1)))


def voice_separations(names: list[str], centroids: np.ndarray, file_vectors: list[np.ndarray],
                      cohort: np.ndarray) -> list[VoiceSeparation]:
    """names: (num_voices,); centroids: (num_voices, dim); file_vectors: per voice (num_files, dim);
    cohort: (num_cohort, dim) shipped impostor vectors (may be empty)."""
    voices = unit_vectors(centroids, np.float64)
    count = len(voices)
    cosines = voices @ voices.T
    spreads = np.full((count, count), np.nan)
    if count > 1:
        members, owners = [voices], [np.arange(count)]
        if np.size(cohort) and np.shape(cohort)[1] == voices.shape[1]:
            members.append(unit_vectors(cohort, np.float64))
            owners.append(np.full(len(cohort), -1))
        # each voice's centroid is the probe; it is member number `v` itself and never its own impostor
        spreads = normalized_scores(voices, voices, Impostors(np.vstack(members), np.concatenate(owners)),
                                    probe_members=np.arange(count))
    bar = named_spreads(count)
    result = []
    for v, name in enumerate(names):
        others = [u for u in range(count) if u != v]
        nearest = max(others, key=lambda u: cosines[v, u]) if others else None
        score = None if nearest is None or not np.isfinite(spreads[v, nearest]) else float(spreads[v, nearest])
        result.append(VoiceSeparation(
            name=name, files=len(file_vectors[v]), consistency=consistency(file_vectors[v]),
            nearest=None if nearest is None else names[nearest],
            nearest_cosine=None if nearest is None else float(cosines[v, nearest]),
            nearest_spreads=score, too_close=score is not None and score >= bar))
    return result


def registry_separations(registry, encoder_id: str) -> list[VoiceSeparation]:
    """`voice_separations` of the voices a cluster.registry.Registry holds for `encoder_id`."""
    from .score_norm import cohort_vectors

    names, centroids = registry.centroids(encoder_id)
    if not names:
        return []
    files = [np.stack([e.vector for e in registry.embeddings(name, encoder_id)]) for name in names]
    return voice_separations(names, centroids, files, cohort_vectors(encoder_id))


def separation_line(separation: VoiceSeparation) -> str:
    """`nearest Bob (cosine 0.61, 2.1 spreads)`, with a warning when the two cannot be told apart."""
    if separation.nearest is None:
        return "no other voice enrolled"
    spreads = "" if separation.nearest_spreads is None else f", {separation.nearest_spreads:.1f} spreads"
    text = f"nearest {separation.nearest} (cosine {separation.nearest_cosine:.2f}{spreads})"
    if separation.too_close:
        text += " - TOO CLOSE to tell apart: a speaker of one could be named as the other (one person enrolled twice?)"
    return text


__all__ = ["VoiceSeparation", "consistency", "registry_separations", "separation_line", "voice_separations"]
