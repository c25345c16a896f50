"""From local-speaker embeddings to global speakers: AHC, spectral or HDBSCAN behind one interface.

All methods take L2-normalized embeddings (num_embeddings, dimension) and return integer cluster labels
(num_embeddings,), honouring a fixed `num_speakers` or `min_speakers`/`max_speakers` bounds. The
"two local speakers of one chunk never share a cluster" constraint is enforced afterwards by
`assign_local_speakers`, which maps every active local speaker of a chunk to a distinct centroid.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .vectors import unit_vectors

METHODS = ("auto", "ahc", "spectral", "hdbscan")

#: "auto" uses spectral clustering from this many embeddings on, AHC below: the eigengap that sets spectral's
#: speaker count needs a few dozen points per speaker, and with fewer (30 s clips give 1-51 at the default
#: step) AHC's fixed cut is the steadier estimate (docs/diarization-experiments.md, "Why `--clustering auto`")
AUTO_SPECTRAL_FROM = 100


@dataclass(frozen=True)
class SpeakerBounds:
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int | None = None

    def __post_init__(self):
        for name in ("num_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.min_speakers < 1:
            raise ValueError(f"min_speakers must be at least 1, got {self.min_speakers}")
        if self.max_speakers is not None and self.max_speakers < self.min_speakers:
            raise ValueError(f"max_speakers ({self.max_speakers}) is below min_speakers ({self.min_speakers})")

    def clip(self, count: int, available: int) -> int:
        """A cluster count within the bounds and no larger than the number of embeddings."""
        if self.num_speakers is not None:
            return max(1, min(self.num_speakers, available))
        upper = available if self.max_speakers is None else min(self.max_speakers, available)
        return max(1, min(max(count, self.min_speakers), upper))


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..k-1 by first appearance."""
    _, first = np.unique(labels, return_index=True)
    order = np.unique(labels)[np.argsort(first)]
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping[value] for value in labels], dtype=np.int64)


def merge_small_clusters(embeddings: np.ndarray, labels: np.ndarray, min_size: int, keep_at_least: int) -> np.ndarray:
    """Move members of clusters smaller than `min_size` to the nearest large cluster (cosine).

    Short, noisy embeddings tend to form clusters of their own; a real speaker gathers many.
    Nothing moves when fewer than `keep_at_least` clusters would remain large.
    """
    sizes = np.bincount(labels)
    large = np.flatnonzero(sizes >= min_size)
    if len(large) == 0 or len(large) == len(sizes) or len(large) < keep_at_least:
        return labels
    centroids = unit_vectors(np.stack([embeddings[labels == k].mean(axis=0) for k in large]))
    small_members = ~np.isin(labels, large)
    nearest = large[np.argmax(embeddings[small_members] @ centroids.T, axis=1)]
    labels = labels.copy()
    labels[small_members] = nearest
    return _relabel(labels)


def fold_unsupported_clusters(embeddings: np.ndarray, labels: np.ndarray, supported: np.ndarray,
                              keep_at_least: int = 1) -> np.ndarray:
    """Members of unsupported clusters join the nearest supported cluster (cosine to its centroid).

    embeddings: (n, d) unit vectors; labels: (n,); supported: (num_clusters,) bool. A cluster with no
    single-voice speech to stand on is usually a mixture of two voices or a fragment of a speaker seen
    through overlap, not a speaker of its own. Nothing changes when fewer than `keep_at_least`
    clusters are supported.
    """
    kept = np.flatnonzero(supported)
    if len(kept) == len(supported) or len(kept) < max(1, keep_at_least):
        return labels
    centroids = unit_vectors(np.stack([embeddings[labels == k].mean(axis=0) for k in kept]))
    moved = ~np.isin(labels, kept)
    labels = labels.copy()
    labels[moved] = kept[np.argmax(embeddings[moved] @ centroids.T, axis=1)]
    return _relabel(labels)


def cut_to_count(tree: np.ndarray, num_leaves: int, count: int) -> np.ndarray:
    """Labels after replaying the first `num_leaves - count` merges of a linkage matrix: exactly `count` clusters.

    fcluster's "maxclust" cuts by height, which can give fewer clusters than asked on centroid linkage,
    whose merge heights are not monotonic.
    """
    parent = list(range(2 * num_leaves - 1))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for step in range(num_leaves - count):
        left, right = int(tree[step, 0]), int(tree[step, 1])
        parent[root(left)] = num_leaves + step
        parent[root(right)] = num_leaves + step
    return _relabel(np.array([root(leaf) for leaf in range(num_leaves)]))


def ahc(embeddings: np.ndarray, threshold: float, bounds: SpeakerBounds, min_cluster_size: int = 1) -> np.ndarray:
    """Centroid-linkage agglomerative clustering, cut at Euclidean distance `threshold` between unit vectors.

    (n, d) -> (n,). When the count from the threshold falls outside `bounds`, the dendrogram is cut at
    the nearest allowed count instead.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(embeddings)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    tree = linkage(embeddings.astype(np.float64), method="centroid", metric="euclidean")
    labels = fcluster(tree, threshold, criterion="distance") - 1
    labels = merge_small_clusters(embeddings, _relabel(labels), min_cluster_size, keep_at_least=1)
    count = len(np.unique(labels))
    wanted = bounds.clip(count, n)
    if wanted != count:
        labels = cut_to_count(tree, n, wanted)
    return _relabel(labels)


#: row pruning levels spectral clustering tries (share of each row's strongest links kept). One level fits
#: few speakers or many, not both: a row must keep fewer links than its own speaker's share of the
#: embeddings, or small speakers merge (6 readers in 130 s came out as 4 at 0.25), while a light pruning
#: lets a large speaker's graph fall apart. The level whose spectrum shows the clearest eigengap wins.
PRUNINGS = (0.25, 0.2, 0.15, 0.125, 0.1)
#: one voice split in two: two clusters whose mean directions are at this cosine or closer. A lighter
#: pruning that does it is refused, and such a pair in the result is merged when it stands out from the
#: recording's other pairs (`merge_split_voices`). Distinct readers' clusters reached 0.80 through the
#: telephone band (CAM++); readers split in two sat at 0.88 and 0.93.
SPLIT_VOICE_COSINE = 0.85
#: a count one above the chosen one whose eigengap is at least this share of the chosen gap is a near tie.
#: Two close voices (readers at cosine 0.68) sit right there, and the smallest change to the audio (a 1 ms
#: delay) flipped their count between 3 and 2; a near tie goes to the larger count when the extra cluster is
#: a voice of its own (no pair at SPLIT_VOICE_COSINE), so the decision no longer hangs on the noise.
NEAR_TIE_GAP = 0.9


def pruned_affinity(similarity: np.ndarray, pruning: float) -> np.ndarray:
    """Keep each row's strongest `pruning` share of links, then symmetrize. (n, n) -> (n, n)."""
    n = len(similarity)
    keep = max(1, int(round(n * pruning)))
    threshold = -np.sort(-similarity, axis=1)[:, keep - 1 : keep]
    affinity = np.where(similarity >= threshold, similarity, 0.0)
    return 0.5 * (affinity + affinity.T)


def eigengaps(affinity: np.ndarray, bounds: SpeakerBounds) -> np.ndarray:
    """Gaps between consecutive eigenvalues of the normalized Laplacian, smallest first: entry i is the gap
    that supports i + 1 clusters (up to the speaker bound). (n, n) -> (num_counts,), empty if none."""
    degree = affinity.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    laplacian = np.eye(len(affinity)) - inv_sqrt[:, None] * affinity * inv_sqrt[None]
    eigenvalues = np.sort(np.linalg.eigvalsh(laplacian))
    upper = len(affinity) - 1 if bounds.max_speakers is None else min(bounds.max_speakers, len(affinity) - 1)
    return np.diff(eigenvalues[: max(upper, 0) + 1])


def _largest_gap(gaps: np.ndarray) -> tuple[int, float]:
    """(number of clusters, size of the gap) for the largest of `eigengaps`; (1, 0.0) when there are none."""
    if len(gaps) == 0:
        return 1, 0.0
    return int(np.argmax(gaps)) + 1, float(gaps.max())


def _spectral_labels(affinity: np.ndarray, count: int) -> np.ndarray:
    """Spectral clustering of a precomputed (n, n) affinity into `count` clusters -> (n,) labels."""
    from sklearn.cluster import SpectralClustering

    if count == 1:
        return np.zeros(len(affinity), dtype=np.int64)
    model = SpectralClustering(n_clusters=count, affinity="precomputed", random_state=0, assign_labels="cluster_qr")
    with warnings.catch_warnings():
        # pruning leaves well-separated speakers as disconnected blocks of the graph: that is the expected
        # case here, not a problem to print to the user on every recording
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return _relabel(model.fit_predict(affinity))


def _centroid_cosines(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n, d), (n,) labels 0..k-1 -> (k, k) cosines between the clusters' mean directions."""
    centroids = unit_vectors(centroids_of(embeddings, labels))
    return centroids @ centroids.T


def _closest_centroids(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Highest cosine between two clusters' mean directions (-1 for a single cluster); labels 0..k-1."""
    if labels.max() < 1:
        return -1.0
    similarity = _centroid_cosines(embeddings, labels)
    np.fill_diagonal(similarity, -1.0)
    return float(similarity.max())


def merge_split_voices(embeddings: np.ndarray, labels: np.ndarray, cosine: float, margin: float = 0.25,
                       keep_at_least: int = 1) -> np.ndarray:
    """Merge the two clusters with the closest mean directions while they are one voice split in two: at
    `cosine` or closer, and closer by `margin` than the median of the recording's other cluster pairs.
    The margin keeps a narrow channel, where every pair of voices sounds alike, from being merged; with two
    clusters there is nothing to compare with, so they stay. (n, d), (n,) -> (n,) labels 0..k-1."""
    labels = _relabel(labels)
    while labels.max() + 1 > max(keep_at_least, 2):
        similarity = _centroid_cosines(embeddings, labels)
        pairs = np.triu_indices(len(similarity), 1)
        order = np.argsort(-similarity[pairs])
        closest = similarity[pairs][order[0]]
        if closest < cosine or closest - np.median(similarity[pairs][order[1:]]) < margin:
            break
        labels = _relabel(np.where(labels == pairs[1][order[0]], pairs[0][order[0]], labels))
    return labels


def recording_centered(embeddings: np.ndarray) -> np.ndarray:
    """(n, d) unit vectors -> (n, d) unit vectors with the recording's mean embedding taken away.

    What every voice of a recording shares (room, channel, language, the same scripted words) lifts every
    cosine between them alike; taken away, the affinity measures what tells this recording's voices apart.
    """
    return unit_vectors(embeddings - embeddings.mean(axis=0))


def spectral(embeddings: np.ndarray, bounds: SpeakerBounds, prunings: tuple[float, ...] = PRUNINGS,
             split_voice_cosine: float = SPLIT_VOICE_COSINE, centered: bool = True) -> np.ndarray:
    """Spectral clustering on a row-pruned cosine affinity between the embeddings, `recording_centered`
    first when `centered`. (n, d) -> (n,).

    Each pruning level in `prunings` gives a count (its largest eigengap); the level with the largest gap
    is used, ties going to the earlier level, unless its clusters split one voice (two centroids at cosine
    `split_voice_cosine` or more; the first level is never refused). A count given or bounded by `bounds`
    is clipped first. Unless the count was given, a near tie with one cluster more goes to the larger count
    when that splits no voice (`near_tie_split`), and a pair of the result's clusters that is one voice
    split in two is merged (`merge_split_voices`). Those split-voice tests use the embeddings as given: their
    cosine is a property of the encoder, not of the recording.
    """
    n = len(embeddings)
    if n <= 2:
        return ahc(embeddings, 1.0, bounds)
    compared = recording_centered(embeddings) if centered else embeddings
    similarity = np.clip(compared @ compared.T, 0.0, 1.0)
    best_gap, labels, chosen = -1.0, None, None
    for pruning in prunings:
        affinity = pruned_affinity(similarity, pruning)
        gaps = eigengaps(affinity, bounds)
        count, gap = _largest_gap(gaps)
        if gap <= best_gap:
            continue
        proposal = _spectral_labels(affinity, bounds.clip(count, n))
        if labels is not None and _closest_centroids(embeddings, proposal) >= split_voice_cosine:
            continue
        best_gap, labels, chosen = gap, proposal, (affinity, gaps)
    if bounds.num_speakers is not None:
        return labels
    labels = near_tie_split(embeddings, labels, *chosen, bounds, split_voice_cosine)
    return merge_split_voices(embeddings, labels, split_voice_cosine, keep_at_least=bounds.min_speakers)


def near_tie_split(embeddings: np.ndarray, labels: np.ndarray, affinity: np.ndarray, gaps: np.ndarray,
                    bounds: SpeakerBounds, split_voice_cosine: float, near_tie: float = NEAR_TIE_GAP) -> np.ndarray:
    """One cluster more than `labels` (labels 0..k-1, from `affinity`, whose `eigengaps` are `gaps`), when
    the eigengap for k + 1 is a near tie with the one for k and the k + 1 clusters are all distinct voices;
    else `labels` unchanged."""
    count = int(labels.max()) + 1
    if count >= len(gaps) or bounds.clip(count + 1, len(embeddings)) != count + 1:
        return labels
    if gaps[count] < near_tie * gaps[count - 1]:
        return labels
    more = _spectral_labels(affinity, count + 1)
    return more if _closest_centroids(embeddings, more) < split_voice_cosine else labels


def hdbscan_clusters(embeddings: np.ndarray, bounds: SpeakerBounds, min_cluster_size: int = 3) -> np.ndarray:
    """HDBSCAN on unit vectors; noise points join their nearest cluster. (n, d) -> (n,)."""
    import hdbscan

    n = len(embeddings)
    if n < max(3, min_cluster_size):
        return ahc(embeddings, 1.0, bounds)
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1, metric="euclidean")
    labels = model.fit_predict(embeddings.astype(np.float64))
    if (labels < 0).all():
        labels = np.zeros(n, dtype=np.int64)
    elif (labels < 0).any():
        clusters = np.unique(labels[labels >= 0])
        centroids = np.stack([embeddings[labels == k].mean(axis=0) for k in clusters])
        noise = labels < 0
        labels = labels.copy()
        labels[noise] = clusters[np.argmax(embeddings[noise] @ centroids.T, axis=1)]
    labels = _relabel(labels)
    count = len(np.unique(labels))
    if bounds.clip(count, n) != count:
        return ahc(embeddings, 1.0, SpeakerBounds(num_speakers=bounds.clip(count, n)))
    return labels


def cluster_embeddings(embeddings: np.ndarray, method: str = "auto", threshold: float = 0.8,
                       bounds: SpeakerBounds = SpeakerBounds(), min_cluster_size: int = 1,
                       centered: bool = True, spectral_from: int = AUTO_SPECTRAL_FROM,
                       split_voice_cosine: float = SPLIT_VOICE_COSINE) -> np.ndarray:
    """(num_embeddings, dimension) unit vectors -> (num_embeddings,) labels 0..k-1. `threshold`: AHC's cut, a
    distance between unit vectors. `centered`: spectral clustering compares `recording_centered` embeddings
    (AHC and HDBSCAN always compare them as given). `spectral_from`: "auto" is spectral from this many
    embeddings on. `split_voice_cosine`: spectral's test for one voice split in two."""
    if method not in METHODS:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    if len(embeddings) == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "auto":
        method = "spectral" if len(embeddings) >= spectral_from else "ahc"
    if method == "ahc":
        return ahc(embeddings, threshold, bounds, min_cluster_size)
    if method == "spectral":
        return spectral(embeddings, bounds, split_voice_cosine=split_voice_cosine, centered=centered)
    return hdbscan_clusters(embeddings, bounds)


def centroids_of(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n, d), (n,) -> (num_clusters, d) mean vector of each cluster."""
    return np.stack([embeddings[labels == k].mean(axis=0) for k in range(labels.max() + 1)])


def assign_local_speakers(embeddings: np.ndarray, active: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Map each chunk's active local speakers to distinct global speakers.

    embeddings: (num_chunks, num_local, d) unit vectors; active: (num_chunks, num_local) bool;
    centroids: (num_speakers, d) unit vectors. Returns (num_chunks, num_local) global labels, -1 where
    inactive. Within a chunk the assignment maximizes total cosine similarity with no label used twice,
    which is what keeps two simultaneous voices apart.
    """
    from scipy.optimize import linear_sum_assignment

    num_chunks, num_local, _ = embeddings.shape
    labels = np.full((num_chunks, num_local), -1, dtype=np.int64)
    scores = np.einsum("ckd,sd->cks", np.nan_to_num(embeddings), centroids)
    for chunk in range(num_chunks):
        local = np.flatnonzero(active[chunk])
        if len(local) == 0:
            continue
        rows, cols = linear_sum_assignment(-scores[chunk, local])
        labels[chunk, local[rows]] = cols
    return labels
