"""Cluster centroids of one recording <-> enrolled voices: open-set, one-to-one naming.

Each cluster (global speaker of a diarized recording) gets at most one enrolled name and each name goes to
at most one cluster: the assignment maximizes the total cosine margin above the threshold (Hungarian,
scipy's linear_sum_assignment). A cluster whose assigned score is below the threshold, or that lost its
best voice to a better-matching cluster and has no other voice above the threshold, stays unknown and is
labelled `unknown_1`, `unknown_2`, ... in cluster order, distinct within the recording.

Only vectors of one encoder are compared: the registry is asked for the centroids of `encoder_id` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .store import Registry, RegistryError
from .score_norm import Impostors, cohort_vectors, normalized_scores
from ..vectors import unit_rows_and_valid, unit_vectors

#: the chance that a speaker nobody enrolled gets a name, where impostor AS-norm scores are normal: a speaker
#: is compared with every voice, so past 100 voices each comparison gets this share divided by their number
#: (`named_spreads`); a wrong name is the worst error naming can make, an unknown the user can see and fix
STRANGER_NAMED_RATE = 0.01
#: and a lead of this many spreads over the cluster's runner-up voice: a speaker about equally close to two
#: enrolled voices is named neither (the one-to-one assignment would otherwise pick by a hair)
NAMING_LEAD = 1.0

#: Open-set thresholds on cosine(cluster centroid, enrolled centroid), per encoder id; override per call.
#: Each is the point where a normal fit of the encoder's impostor scores accepts 1e-4 of them
#: (cluster/registry/calibration.py says why), measured by benchmarks/registry_threshold.py (seed 0) on the
#: LibriSpeech test-other readers enrolled from 5 utterances and tested on 2-4 s crops of their other 5;
#: on that measurement each rejects no target. Figures and the check on real clusters: docs/registry.md.
NAMING_THRESHOLDS: dict[str, float] = {
    "campplus-common-advanced": 0.472,
    "ecapa-voxceleb": 0.411,
}


class MatchError(ValueError):
    """Cluster centroids that cannot be matched (wrong shape or encoder); one line."""


def named_spreads(num_voices: int) -> float:
    """The AS-norm score a name needs with `num_voices` enrolled: the 1e-4 tail per comparison of the raw
    thresholds (cluster/registry/calibration.py DEFAULT_FALSE_ACCEPT, 3.72 spreads), and past 100 voices the
    STRANGER_NAMED_RATE share split over them (3.89 for 200, 4.26 for 1000)."""
    from scipy.stats import norm

    from .calibration import DEFAULT_FALSE_ACCEPT

    return float(norm.isf(min(DEFAULT_FALSE_ACCEPT, STRANGER_NAMED_RATE / max(num_voices, 1))))


def default_naming_threshold(encoder_id: str) -> float:
    """The measured threshold for `encoder_id`; MatchError when none was measured (pass one explicitly)."""
    try:
        return NAMING_THRESHOLDS[encoder_id]
    except KeyError:
        raise MatchError(f"no measured matching threshold for encoder {encoder_id!r}: pass one "
                         f"(measured ones: {', '.join(NAMING_THRESHOLDS)})") from None


@dataclass(frozen=True)
class Assignment:
    """The naming of one recording's clusters.

    labels: per cluster, an enrolled name or `unknown_<n>`;
    scores: (num_clusters,) cosine with the assigned voice, or for an unknown cluster with its nearest
        voice (NaN when nothing could be compared);
    nearest: per cluster, the best-scoring enrolled name regardless of threshold and assignment (None when
        there are no voices), so a report can say "unknown, nearest Ada at 0.41";
    threshold: the raw cosine threshold used;
    normalized: (num_clusters,) the AS-norm score (cluster/registry/score_norm.py) of the same pair as `scores`, in
        units of the impostor spread; None when naming used raw cosines only.
    """

    labels: list[str]
    scores: np.ndarray
    nearest: list[str | None]
    threshold: float
    normalized: np.ndarray | None = None

    @property
    def known(self) -> np.ndarray:
        """(num_clusters,) bool: the clusters that got an enrolled name."""
        return np.array([not label.startswith("unknown_") for label in self.labels], dtype=bool)


def assign(cluster_centroids: np.ndarray, voice_centroids: np.ndarray, voice_names: list[str],
           threshold: float, weights: np.ndarray | None = None, *, cohort: np.ndarray | None = None) -> Assignment:
    """One-to-one open-set assignment of clusters to voices by cosine similarity.

    cluster_centroids: (num_clusters, dim) raw or normalized; a row with NaN or all zeros cannot be
        compared and stays unknown with score NaN.
    voice_centroids: (num_voices, dim) of the same encoder; voice_names: (num_voices,) their names.
    weights: optional (num_clusters,) evidence per cluster (seconds of speech), see `assign_scores`.
    cohort: (num_cohort, dim) shipped impostor vectors (cluster/registry/score_norm.py `cohort_vectors`, may be empty);
        given, a name also needs the AS-norm rule of `assign_scores` (scores against the other voices, the
        cohort and the recording's other clusters); None: raw cosines only.
    """
    clusters = np.asarray(cluster_centroids, dtype=np.float64)
    if clusters.ndim != 2:
        raise MatchError(f"cluster centroids: expected (num_clusters, dim), got shape {clusters.shape}")
    voices = np.asarray(voice_centroids, dtype=np.float64)
    if len(voice_names) != len(voices):
        raise MatchError(f"{len(voices)} voice centroids but {len(voice_names)} names")
    similarity = np.full((len(clusters), len(voices)), np.nan)
    normalized = None
    if len(clusters) and len(voices):
        if voices.ndim != 2 or voices.shape[1] != clusters.shape[1]:
            raise MatchError(f"cluster centroids have dimension {clusters.shape[1]} but the enrolled voices have "
                             f"{voices.shape[-1]} (different encoders?)")
        unit_clusters, valid = unit_rows_and_valid(clusters)
        unit_voices, _ = unit_rows_and_valid(voices)
        similarity = unit_clusters @ unit_voices.T
        similarity[~valid] = np.nan
        if cohort is not None:
            normalized = normalized_naming_scores(unit_clusters[valid], unit_voices, cohort, len(clusters), valid)
    return assign_scores(similarity, voice_names, threshold, weights, normalized)


def naming_impostors(voices: np.ndarray, cohort: np.ndarray, speakers: np.ndarray) -> Impostors:
    """The impostors the naming rule measures a score against: the enrolled voices ((num_voices, d) unit, each
    owned by itself), the shipped cohort ((num_cohort, d) raw, may be empty) and the recording's speakers
    ((num_speakers, d) unit; the last members), the last two owned by no voice."""
    members, owners = [voices], [np.arange(len(voices))]
    if np.size(cohort):
        members.append(unit_vectors(np.asarray(cohort, dtype=np.float64).reshape(-1, voices.shape[1]), np.float64))
        owners.append(np.full(len(members[-1]), -1))
    members.append(speakers)
    owners.append(np.full(len(speakers), -1))
    return Impostors(np.vstack(members), np.concatenate(owners))


def normalized_naming_scores(probes: np.ndarray, voices: np.ndarray, cohort: np.ndarray, num_rows: int,
                             valid: np.ndarray) -> np.ndarray:
    """(num_rows, num_voices) AS-norm scores of the `valid` rows' probes ((num_valid, dim) unit, a recording's
    speakers) against the voices, with the `naming_impostors`; each probe is kept out of its own statistics."""
    impostors = naming_impostors(voices, cohort, probes)
    own = len(impostors.vectors) - len(probes) + np.arange(len(probes))
    result = np.full((num_rows, len(voices)), np.nan)
    result[valid] = normalized_scores(probes, voices, impostors, own)
    return result


def assign_scores(similarity: np.ndarray, voice_names: list[str], threshold: float,
                  weights: np.ndarray | None = None, normalized: np.ndarray | None = None) -> Assignment:
    """`assign` on a precomputed (num_clusters, num_voices) similarity matrix (NaN: cannot compare).

    A pair is eligible when its similarity is >= threshold; among eligible pairs the assignment maximizes
    the summed margin (similarity - threshold), so it names as many clusters as it can with the best
    total fit, never giving one name to two clusters.

    normalized: optional (num_clusters, num_voices) AS-norm scores of the same pairs (cluster/registry/score_norm.py).
    Given, a pair is eligible only if it also scores at least `named_spreads(num_voices)` impostor spreads and
    leads the cluster's runner-up voice by NAMING_LEAD spreads, and the margins are counted in those units;
    a NaN (too few impostors to measure a spread) leaves that pair to the raw threshold alone.

    weights: optional (num_clusters,) non-negative evidence per cluster, the seconds of speech it holds;
    each margin is then multiplied by its cluster's weight, so the assignment maximizes the speech named
    with confidence (identification error is counted in time too). Without it a 1 s fragment of a speaker
    can outbid the 40 s cluster that holds most of the same speaker's speech: on a simulated
    conversation where diarization merged two readers into one 40 s cluster (cosine 0.68 with the main
    reader, 0.54 with the other) and left a 1.3 s fragment of the main reader (0.71), unweighted margins
    gave the 40 s cluster the other reader's name. Weighting gave no new wrong name and less wrongly named
    speech where measured (docs/registry.md).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[1] != len(voice_names):
        raise MatchError(f"similarity matrix of shape {similarity.shape} does not fit {len(voice_names)} voice names")
    if not np.isfinite(threshold):
        raise MatchError(f"threshold must be a finite number, got {threshold!r}")
    num_clusters = len(similarity)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (num_clusters,) or not np.isfinite(weights).all() or (weights < 0).any():
            raise MatchError(f"weights: expected {num_clusters} finite non-negative numbers, got {weights!r}")
    scores = np.full(num_clusters, np.nan)
    nearest: list[str | None] = [None] * num_clusters
    names: list[str | None] = [None] * num_clusters
    comparable = np.isfinite(similarity).any(axis=1)
    if similarity.size:
        filled = np.where(np.isfinite(similarity), similarity, -np.inf)
        best = filled.argmax(axis=1)
        for c in np.flatnonzero(comparable):
            nearest[c] = voice_names[best[c]]
            scores[c] = similarity[c, best[c]]
        eligible = nameable(similarity, normalized, threshold)
        margins = filled - threshold
        if normalized is not None:
            measured = np.isfinite(normalized)
            margins = np.where(measured, normalized - named_spreads(len(voice_names)), margins)
        # Only voices some cluster could take enter the assignment: a handful even in a large registry.
        columns = np.flatnonzero(eligible.any(axis=0))
        if len(columns):
            # Ineligible pairs gain 0, the same as leaving the cluster unknown; the tiny bonus makes a pair
            # exactly at the threshold preferable to no pair.
            margin = np.where(eligible[:, columns], margins[:, columns], 0.0)
            if weights is not None:
                margin = weights[:, None] * margin
            gain = np.where(eligible[:, columns], margin + 1e-9, 0.0)
            rows, cols = linear_sum_assignment(gain, maximize=True)
            for c, j in zip(rows, cols):
                v = columns[j]
                if eligible[c, v]:
                    names[c] = voice_names[v]
                    scores[c] = similarity[c, v]
    labels: list[str] = []
    unknown = 0
    for c in range(num_clusters):
        if names[c] is None:
            unknown += 1
            labels.append(f"unknown_{unknown}")
        else:
            labels.append(names[c])
    spreads = None
    if normalized is not None:
        spreads = np.full(num_clusters, np.nan)
        for c in range(num_clusters):
            voice = names[c] if names[c] is not None else nearest[c]
            if voice is not None:
                spreads[c] = normalized[c, voice_names.index(voice)]
    return Assignment(labels, scores, nearest, float(threshold), spreads)


def nameable(similarity: np.ndarray, normalized: np.ndarray | None, threshold: float) -> np.ndarray:
    """(num_probes, num_voices) bool: the pairs the naming rule allows, from their raw cosines (NaN: cannot
    compare) and, when given, their AS-norm scores: the cosine at `threshold`, `named_spreads` spreads and a
    lead of NAMING_LEAD over the probe's runner-up voice."""
    eligible = np.where(np.isfinite(similarity), similarity, -np.inf) >= threshold
    if normalized is not None:
        # where too few impostors exist to measure a spread (a registry of one or two voices of an encoder
        # without a shipped cohort), the raw threshold alone decides, as it did before normalisation
        measured = np.isfinite(normalized)
        spreads = np.where(measured, normalized, -np.inf)
        needed = named_spreads(similarity.shape[1])
        eligible &= ~measured | ((spreads >= needed) & (_lead(spreads) >= NAMING_LEAD))
    return eligible


def _lead(spreads: np.ndarray) -> np.ndarray:
    """(num_clusters, num_voices) -> each pair's lead over the best other voice of its cluster (+inf alone)."""
    if spreads.shape[1] < 2:
        return np.full(spreads.shape, np.inf)
    order = np.sort(spreads, axis=1)
    best, second = order[:, -1:], order[:, -2:-1]
    others = np.where(spreads == best, second, best)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(spreads), spreads - others, -np.inf)


def match_registry(cluster_centroids: np.ndarray, encoder_id: str, registry: Registry,
                   threshold: float | None = None, weights: np.ndarray | None = None) -> Assignment:
    """`assign` against the registry's voices of `encoder_id` (threshold: the measured default if None;
    weights: optional seconds of speech per cluster, see `assign_scores`)."""
    threshold = default_naming_threshold(encoder_id) if threshold is None else float(threshold)
    names, voices = registry.centroids(encoder_id)
    clusters = np.asarray(cluster_centroids)
    if names and clusters.ndim == 2 and clusters.shape[1] != voices.shape[1]:
        raise MatchError(f"cluster centroids have dimension {clusters.shape[1]} but {encoder_id} voices in "
                         f"{registry.path} have {voices.shape[1]}")
    return assign(clusters, voices, names, threshold, weights, cohort=cohort_vectors(encoder_id))


def name_speakers(centroids: np.ndarray, encoder_id: str, registry: Registry,
                  threshold: float | None = None) -> tuple[list[str], np.ndarray]:
    """Labels (enrolled names or `unknown_<n>`) and scores for a recording's (num_clusters, dim) centroids."""
    result = match_registry(centroids, encoder_id, registry, threshold)
    return result.labels, result.scores


__all__ = ["Assignment", "NAMING_THRESHOLDS", "MatchError", "RegistryError", "assign", "assign_scores", "default_naming_threshold",
           "match_registry", "name_speakers", "nameable"]
