"""Speakers of many recordings -> archive voices: average-linkage clustering of speaker centroids with the
constraint that two speakers of one recording are never one voice. Vectors only; no audio, no files.

Each per-recording speaker is a unit centroid u_i with a weight w_i (its seconds of speech). The similarity
of two groups A and B is their seconds-weighted mean pairwise cosine,

    sim(A, B) = sum_{a in A, b in B} w_a w_b u_a.u_b / (W_A W_B) = (S_A / W_A) . (S_B / W_B),

with S_A = sum_a w_a u_a and W_A = sum_a w_a, so a group is held as one vector and one number however many
speakers it has, and a merge is two additions. Because the similarity is a mean of pair cosines it stays on
the scale of a single pair, so one threshold serves for a pair of speakers and for two voices of fifty
recordings each. A long speaker counts more than a short one both in what it pulls towards and in how much a
voice trusts it.

The threshold is read off the archive itself (`linking_threshold`): speakers that one recording's
diarization kept apart are known to be different people, so their cosines are a sample of impostor scores in
this archive's language, rooms and channel (CAM++ centroids: median 0.30 on the read speech of simconv-dev,
0.59 on the acted speech of simconv-emo-dev). The threshold is the highest score of that sample: two
voices are linked only when they are more alike than every pair of voices one recording told apart. The
maximum rather than a fixed quantile because it grows with the archive: a larger archive holds more pairs of
different voices that could be confused, and more within-recording pairs, whose maximum reaches further into
the tail (on synthetic archives of 1,000 speakers the 0.95 quantile merged 70 of 147 voices wrongly, see
docs/archive-linking.md). A person the diarizer split in two puts a same-voice pair into the sample and raises
the threshold: the archive then links less, it does not link wrongly. It is never below the encoder's own
open-set threshold; with too few such pairs, the encoder's threshold alone.

Only pairs at or above the threshold can ever start a merge (a weighted mean of scores below the threshold is
below it), so `candidate_pairs` finds them block by block without holding the n x n matrix, keeping at most
`max_neighbours` per speaker. When no speaker has more neighbours above the threshold than that, the result
is exactly constrained average linkage.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
import numpy as np

from .vectors import unit_rows_and_valid, unit_vectors

#: a speaker with less speech than this stays unlinked: its centroid scatters too much to be trusted across
#: recordings (the diarizer's own extra voices, from at most 2 s of speech, land here). Chosen among 2, 4 and
#: 8 s on simconv-dev and simconv-emo-dev: 2 s linked one more speaker rightly, 8 s left one out
MIN_LINK_SECONDS = 2.0
#: the threshold is this quantile of the within-recording pair cosines (1: their maximum). On simconv-dev and
#: simconv-emo-dev 0.9, 0.95 and 1 gave the same archive DER; synthetic archives of 1,000+ speakers and a third
#: choice set of acted speech chose 1 (docs/archive-linking.md)
WITHIN_QUANTILE = 1.0
#: with quantile 1, the threshold is the (IGNORE_TOP + 1)-th highest within-recording cosine. Ignoring the top
#: 1-3 pairs (to be robust to a mixed or split speaker) over-linked acted speech, so none are
#: (docs/archive-linking.md)
IGNORE_TOP = 0
#: fewer within-recording pairs than this do not describe the archive's impostor scores: use the encoder's
MIN_PAIRS = 20
#: neighbours above the threshold kept per speaker when looking for merges
MAX_NEIGHBOURS = 100


class LinkingError(ValueError):
    """Centroids that cannot be linked (shapes, encoder mismatch); one line."""


@dataclass(frozen=True)
class Threshold:
    """The cosine a pair of voices must reach to be linked, and where it came from.

    source: "within-recording pairs", "encoder" or "given"; pairs: how many within-recording pairs were
    measured; centre, spread: their median and robust standard deviation (NaN when not measured)."""

    value: float
    source: str
    pairs: int = 0
    centre: float = float("nan")
    spread: float = float("nan")
    quantile: float = float("nan")

    def describe(self) -> str:
        if self.source == "within-recording pairs":
            return (f"{self.value:.3f} (quantile {self.quantile:g} of {self.pairs} pairs of speakers within "
                    f"recordings; their median {self.centre:.3f})")
        return f"{self.value:.3f} ({self.source})"


@dataclass(frozen=True)
class FixedVoice:
    """Speakers that are one voice before linking starts.

    members: indices of speakers; can_absorb: whether other speakers may join it (a voice from an earlier
    run: yes; an enrolled name: no, the registry already said these other speakers are not that person);
    Two fixed voices never merge, so an earlier run's voice ids all survive."""

    members: tuple[int, ...]
    can_absorb: bool = True


@dataclass
class Linking:
    """voice: (num_speakers,) int, the voice index of each speaker, -1 for unlinked; fixed voices come first
    (voice g is fixed_voices[g]) then new voices by total seconds, longest first.
    similarity: (num_speakers,) cosine of each speaker with its voice's seconds-weighted mean direction
    (NaN when unlinked). num_voices: number of voice indices used (fixed voices that lost all members
    included)."""

    voice: np.ndarray
    similarity: np.ndarray
    num_voices: int
    threshold: Threshold
    merges: int = 0
    notes: list[str] = field(default_factory=list)


def unit_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) -> (unit rows float32, (n,) bool: rows that had a direction: finite and non-zero)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise LinkingError(f"centroids: expected (num_speakers, dim), got shape {vectors.shape}")
    unit, valid = unit_rows_and_valid(vectors)
    return unit.astype(np.float32), valid


def within_recording_scores(unit: np.ndarray, recordings: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Cosines of every pair of eligible speakers that share a recording: (num_pairs,).

    unit: (n, dim) unit rows; recordings: (n,) recording index; eligible: (n,) bool."""
    scores = []
    order = np.flatnonzero(eligible)
    by_recording: dict[int, list[int]] = {}
    for index in order:
        by_recording.setdefault(int(recordings[index]), []).append(int(index))
    for members in by_recording.values():
        if len(members) > 1:
            block = unit[members] @ unit[members].T
            scores.append(block[np.triu_indices(len(members), 1)])
    return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)


def linking_threshold(unit: np.ndarray, recordings: np.ndarray, eligible: np.ndarray, encoder_threshold: float | None,
                      quantile: float = WITHIN_QUANTILE, min_pairs: int = MIN_PAIRS,
                      ignore_top: int = IGNORE_TOP) -> Threshold:
    """The archive's linking threshold (module docstring): the `quantile` of the cosines of pairs of eligible
    speakers that share a recording (by default their maximum), and at least `encoder_threshold`."""
    if not 0 < quantile <= 1:
        raise LinkingError(f"quantile must be in (0, 1], got {quantile}")
    scores = within_recording_scores(unit, recordings, eligible)
    if len(scores) < min_pairs:
        if encoder_threshold is None:
            raise LinkingError(f"only {len(scores)} pairs of speakers share a recording (at least {min_pairs} "
                               "needed to measure the archive) and the encoder has no measured threshold: give one")
        return Threshold(float(encoder_threshold), "encoder", len(scores))
    centre = float(np.median(scores))
    spread = float(1.4826 * np.median(np.abs(scores - centre)))
    if quantile < 1:
        value = float(np.quantile(scores, quantile))
    else:
        value = float(np.sort(scores)[-1 - min(ignore_top, len(scores) - 1)])
    if encoder_threshold is not None and encoder_threshold > value:
        return Threshold(float(encoder_threshold), f"encoder; within-recording pairs reach only {value:.3f}",
                         len(scores), centre, spread, quantile)
    return Threshold(value, "within-recording pairs", len(scores), centre, spread, quantile)


def candidate_pairs(unit: np.ndarray, eligible: np.ndarray, threshold: float, max_neighbours: int = MAX_NEIGHBOURS,
                    block_elements: int = 1 << 25, progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of eligible speakers with cosine >= threshold, at most `max_neighbours` per speaker (its
    best), found a block of rows at a time so that memory stays about `block_elements` scores (128 MiB).
    progress: optional callable(fraction done), called after each block (the search is the n^2 part).

    unit: (n, dim) float32 unit rows. Returns (first, second, cosine), each (num_pairs,)."""
    index = np.flatnonzero(eligible)
    vectors = np.ascontiguousarray(unit[index], dtype=np.float32)
    m = len(index)
    block = max(16, min(4096, block_elements // max(m, 1)))
    firsts, seconds_, scores = [], [], []
    for start in range(0, m, block):
        sims = vectors[start:start + block] @ vectors.T  # (rows, m)
        rows = np.arange(start, min(start + block, m))
        sims[np.arange(len(rows)), rows] = -np.inf  # never a pair with itself
        above = sims >= threshold
        crowded = np.flatnonzero(above.sum(axis=1) > max_neighbours)
        if len(crowded):  # only these rows need sorting: keep their best max_neighbours
            best = np.argpartition(-sims[crowded], max_neighbours, axis=1)[:, :max_neighbours]
            above[crowded] = False
            above[crowded[:, None], best] = True
        r, c = np.nonzero(above)
        firsts.append(rows[r])
        seconds_.append(c)
        scores.append(sims[r, c])
        if progress is not None:
            progress(min(start + block, m) / m)
    if not firsts:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    a, b = np.concatenate(firsts), np.concatenate(seconds_)
    s = np.concatenate(scores).astype(np.float64)
    low, high = np.minimum(a, b), np.maximum(a, b)
    pairs, first = np.unique(np.stack([low, high], axis=1), axis=0, return_index=True)
    return index[pairs[:, 0]], index[pairs[:, 1]], s[first]


def link_speakers(vectors: np.ndarray, recordings: np.ndarray, seconds: np.ndarray, threshold: Threshold | float,
                  *, fixed_voices: list[FixedVoice] = (), min_seconds: float = MIN_LINK_SECONDS,
                  max_neighbours: int = MAX_NEIGHBOURS, progress=None) -> Linking:
    """Archive voices of per-recording speakers (module docstring).

    vectors: (n, dim) raw centroids of one encoder; recordings: (n,) int, which recording each speaker is
    from; seconds: (n,) its speech; threshold: a Threshold or a cosine; fixed_voices: voices that exist
    before linking (earlier runs, enrolled names); min_seconds: speakers with less speech are not linked
    (those inside a fixed voice stay in it); progress: optional callable(fraction) for the candidate search.
    Returns a Linking.
    """
    if not isinstance(threshold, Threshold):
        threshold = Threshold(float(threshold), "given")
    unit, valid = unit_rows(vectors)
    n = len(unit)
    recordings = np.asarray(recordings)
    seconds = np.asarray(seconds, dtype=np.float64)
    if recordings.shape != (n,) or seconds.shape != (n,):
        raise LinkingError(f"{n} centroids but {recordings.shape} recording indices and {seconds.shape} seconds")
    if not np.isfinite(seconds).all() or (seconds < 0).any():
        raise LinkingError("seconds of speech must be finite and non-negative")
    weight = np.maximum(seconds, 1e-3)  # a speaker of 0 s inside a fixed voice still has a direction
    fixed_of = np.full(n, -1)
    for g, fixed in enumerate(fixed_voices):
        members = np.asarray(fixed.members, dtype=int)
        if (fixed_of[members] >= 0).any():
            raise LinkingError(f"fixed voice {g} shares a speaker with another fixed voice")
        fixed_of[members] = g
    eligible = valid & ((seconds >= min_seconds) | (fixed_of >= 0))

    # cluster c: sums[c] = S_c, weights[c] = W_c; fixed voices take the first indices, then one per speaker
    num_fixed = len(fixed_voices)
    singles = np.flatnonzero(eligible & (fixed_of < 0))
    cluster_of = np.full(n, -1)
    cluster_of[fixed_of >= 0] = fixed_of[fixed_of >= 0]
    cluster_of[singles] = num_fixed + np.arange(len(singles))
    size = num_fixed + len(singles)
    live = eligible & (cluster_of >= 0)
    sums = np.zeros((size, unit.shape[1]), dtype=np.float64)
    np.add.at(sums, cluster_of[live], weight[live, None] * unit[live])
    weights = np.zeros(size)
    np.add.at(weights, cluster_of[live], weight[live])
    members_rec: list[set] = [set() for _ in range(size)]
    for i in np.flatnonzero(live):
        members_rec[cluster_of[i]].add(int(recordings[i]))
    frozen = np.zeros(size, dtype=bool)
    frozen[:num_fixed] = True
    absorbs = np.ones(size, dtype=bool)
    absorbs[:num_fixed] = [fixed.can_absorb for fixed in fixed_voices]
    alive = weights > 0
    parent = np.arange(size)
    version = np.zeros(size, dtype=np.int64)
    notes = []
    for g, fixed in enumerate(fixed_voices):
        recs = [int(recordings[i]) for i in fixed.members]
        if len(set(recs)) < len(recs):
            notes.append(f"fixed voice {g} holds two speakers of one recording")

    def allowed(a: int, b: int) -> bool:
        if not (absorbs[a] and absorbs[b]) or (frozen[a] and frozen[b]):
            return False
        small, large = sorted((members_rec[a], members_rec[b]), key=len)
        return small.isdisjoint(large)

    def similarity(a: int, others: np.ndarray) -> np.ndarray:
        return (sums[others] @ sums[a]) / (weights[others] * weights[a])

    first, second, _ = candidate_pairs(unit, live, threshold.value, max_neighbours, progress=progress)
    neighbours: list[set] = [set() for _ in range(size)]
    for i, j in zip(cluster_of[first], cluster_of[second]):
        if i != j:
            neighbours[i].add(int(j))
            neighbours[j].add(int(i))
    heap: list[tuple[float, int, int, int, int]] = []
    for a in range(size):
        others = np.array(sorted(x for x in neighbours[a] if x > a), dtype=int)
        if len(others):
            for b, score in zip(others, similarity(a, others)):
                if score >= threshold.value and allowed(a, int(b)):
                    heap.append((-float(score), a, int(b), 0, 0))
    heapq.heapify(heap)
    merges = 0
    while heap:
        negative, a, b, version_a, version_b = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or version[a] != version_a or version[b] != version_b or not allowed(a, b):
            continue
        if frozen[b] and not frozen[a]:
            a, b = b, a  # the fixed voice's index (its id) survives
        sums[a] += sums[b]
        weights[a] += weights[b]
        members_rec[a] |= members_rec[b]
        frozen[a] |= frozen[b]
        alive[b] = False
        version[a] += 1
        merges += 1
        parent[b] = a
        merged = (neighbours[a] | neighbours[b]) - {a, b}
        for x in neighbours[b]:
            neighbours[x].discard(b)
            if x != a:
                neighbours[x].add(a)
        neighbours[a], neighbours[b] = merged, set()
        candidates = np.array(sorted(x for x in merged if alive[x]), dtype=int)
        if len(candidates):
            for x, score in zip(candidates, similarity(a, candidates)):
                if score >= threshold.value and allowed(a, int(x)):
                    key = (a, int(x)) if a < x else (int(x), a)
                    heapq.heappush(heap, (-float(score), key[0], key[1], int(version[key[0]]), int(version[key[1]])))
    roots = np.array([_root(parent, int(c)) if c >= 0 else -1 for c in cluster_of])
    return _numbered(unit, roots, sums, weights, num_fixed, threshold, merges, notes)


def _root(parent: np.ndarray, c: int) -> int:
    while parent[c] != c:
        parent[c] = parent[parent[c]]
        c = int(parent[c])
    return c


def _numbered(unit, roots, sums, weights, num_fixed, threshold, merges, notes) -> Linking:
    """Voice indices from final clusters: fixed voices keep theirs, new ones follow by total seconds."""
    new_roots = sorted({int(r) for r in roots if r >= num_fixed}, key=lambda r: (-weights[r], r))
    number = {r: r for r in range(num_fixed)}
    number.update({r: num_fixed + k for k, r in enumerate(new_roots)})
    voice = np.array([number[int(r)] if r >= 0 else -1 for r in roots], dtype=int)
    similarity = np.full(len(roots), np.nan)
    linked = roots >= 0
    if linked.any():
        directions = sums[roots[linked]]
        directions = unit_vectors(directions)
        similarity[linked] = np.einsum("ij,ij->i", unit[linked].astype(np.float64), directions)
    return Linking(voice, similarity, num_fixed + len(new_roots), threshold, merges, notes)
