"""Voices as vectors: attribute directions, edits, interpolation and reading an attribute by projection.

Pure numpy, no I/O. The working space is the unit sphere of one encoder: every input vector is
L2-normalized first, because speaker encoders are scored by cosine and their raw norm mostly reflects
utterance length and loudness, not who speaks. Functions that return a voice can give it back at a raw
norm (`keep_norm`), for generators that consume raw vectors (the Qwen3-TTS x-vector prompt).

A direction is fitted from a small labelled set (binary or numeric label) as a slope vector
`b = cov(x, y) / var(y)` (dim,): how far the mean unit embedding moves per unit of label. For a 0/1 label
this is exactly the difference of class means. The "k most correlated dimensions" method keeps only the k
coordinates whose Pearson correlation with the label is largest in magnitude and zeroes the others, so an
edit moves only those coordinates. The "fisher" method turns the line so that it avoids the directions in
which items vary most for reasons other than the label (a few speakers' identities, recording conditions):
w = Σ⁻¹ d, with Σ the covariance of the items around their fitted label mean, shrunk towards a multiple of
the identity (Ledoit-Wolf, no tuning), and d the class-mean difference or a prior move such as the
speed-perturbation direction of `pair_direction`; the labels then only set its sign, length and threshold.

Units. `alpha` in `edit` is in label units: alpha = 1 moves a voice by `b`, i.e. by the class-mean
difference for a binary label (a typical negative lands on a typical positive), or by one label unit for
a numeric label. `read` returns the attribute in the same units, so reading an edited voice moves by about
alpha: `read` puts the moved vector back on the sphere, which bends the move by the factor 1 / |x̂ + alpha b|
(a few per cent for CAM++, where |b| is about 0.2 for sex and voices are nearly orthogonal to b).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from cluster.vectors import unit_vectors, vector_matrix

METHODS = ("mean", "topk", "fisher")


class AlgebraError(ValueError):
    """Bad input to a vector operation; one line naming the input and the cause."""


@dataclass(frozen=True)
class AttributeDirection:
    """A fitted attribute direction of one encoder's embedding space.

    vector:    (dim,) float64 slope `b` (zeros outside `dims` for topk): the move for one label unit
    dims:      (k,) int64 indices of the coordinates the direction moves (all of them for "mean")
    offset:    float, the label read at projection 0 (so that read(x) = offset + (x̂·b̂) / |b|)
    threshold: float or None: for a binary label the value of `read` that separates the classes, fitted on
               the training set (midpoint of the two class means of `read`); None for a numeric label
    labels:    (negative, positive) class names for a binary label, else None
    method, k: how it was fitted
    metadata:  extra facts stored with it (n, label_mean; "shrinkage" for fisher)
    spread:    float or None: the training items' spread of `read` around their own class mean (binary) or
               their label (numeric), pooled standard deviation in label units; the unit in which
               `read_direction` says how far a reading lies from the threshold. None for a direction stored
               before spreads were kept (it cannot be rebuilt from what was stored)
    """

    vector: np.ndarray
    dims: np.ndarray
    offset: float
    threshold: float | None
    labels: tuple[str, str] | None
    method: str
    k: int
    metadata: dict[str, Any] = field(default_factory=dict)
    spread: float | None = None

    @property
    def dimension(self) -> int:
        return int(self.vector.size)

    @property
    def scale(self) -> float:
        """|b|: how far (in unit-sphere distance along the direction) one label unit is."""
        return float(np.linalg.norm(self.vector))

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready description stored beside the vector in the registry (the vector itself is `b`)."""
        return {**self.metadata, "method": self.method, "k": self.k, "dims": [int(d) for d in self.dims],
                "offset": self.offset, "threshold": self.threshold, "spread": self.spread,
                "labels": list(self.labels) if self.labels else None}

    @classmethod
    def from_stored(cls, vector: Any, metadata: dict[str, Any]) -> "AttributeDirection":
        """Rebuild from a registry row (`Direction.vector`, `Direction.metadata`)."""
        b = as_matrix(vector, "stored direction")[0]
        try:
            dims = np.asarray(metadata.get("dims", range(b.size)), dtype=np.int64)
            labels = metadata.get("labels")
            threshold = metadata.get("threshold")
            spread = metadata.get("spread")  # absent from directions stored before it was kept
            if spread is not None and not (np.isfinite(float(spread)) and float(spread) > 0):
                raise ValueError(f"spread {spread!r} is not a positive number")
            return cls(b, dims, float(metadata.get("offset", 0.0)), None if threshold is None else float(threshold),
                       tuple(labels) if labels else None, str(metadata.get("method", "mean")),
                       int(metadata.get("k", b.size)),
                       {key: value for key, value in metadata.items()
                        if key not in ("method", "k", "dims", "offset", "threshold", "labels", "spread")},
                       None if spread is None else float(spread))
        except (TypeError, ValueError) as error:
            raise AlgebraError(f"stored direction: metadata is malformed ({error})") from None


# -- input checks ----------------------------------------------------------------------------------------


def as_matrix(vectors: Any, what: str, dimension: int | None = None) -> np.ndarray:
    """(dim,) or (n, dim) finite numbers -> (n, dim) float64; AlgebraError (one line) otherwise."""
    array = vector_matrix(vectors, what, AlgebraError)
    if dimension is not None and array.shape[1] != dimension:
        raise AlgebraError(f"{what}: dimension {array.shape[1]} but the direction has {dimension} (wrong encoder?)")
    return array


def unit(vectors: np.ndarray, what: str = "vector") -> np.ndarray:
    """(..., dim) -> same shape on the unit sphere; a zero vector has no direction, hence an error."""
    if (np.linalg.norm(vectors, axis=-1) == 0).any():
        raise AlgebraError(f"{what}: an all-zero vector has no direction")
    return unit_vectors(vectors)


def _finite_result(result: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(result).all():
        raise AlgebraError(f"{what}: the result contains NaN or infinite values")
    if np.abs(result).max() > np.finfo(np.float32).max:
        raise AlgebraError(f"{what}: the result overflows float32")
    return result


# -- fitting ---------------------------------------------------------------------------------------------


def encode_labels(labels: Sequence[Any], positive: str | None = None) -> tuple[np.ndarray, tuple[str, str] | None]:
    """Labels as given (strings or numbers) -> ((n,) float64 y, (negative, positive) or None if numeric).

    Exactly two distinct values make a binary label coded 0/1; the positive class is `positive` if given,
    else "1" for 0/1 labels, else the later name in sorted order (F/M -> M). More than two values must all be
    numbers, and form a numeric label.
    """
    texts = [str(label).strip() for label in labels]
    distinct = sorted(set(texts))
    if len(distinct) < 2:
        raise AlgebraError(f"labels: need at least two different values, got {distinct}")
    if len(distinct) == 2:
        if positive is None:
            numeric = _as_floats(distinct)
            positive = distinct[int(np.argmax(numeric))] if numeric is not None else distinct[1]
        if positive not in distinct:
            raise AlgebraError(f"positive label {positive!r}: not one of the labels {distinct}")
        negative = distinct[0] if distinct[1] == positive else distinct[1]
        return np.array([t == positive for t in texts], dtype=np.float64), (negative, positive)
    if positive is not None:
        raise AlgebraError(f"positive label {positive!r}: only for a binary label, got {len(distinct)} values")
    values = _as_floats(texts)
    if values is None:
        raise AlgebraError(f"labels: {len(distinct)} different values that are not all numbers "
                           f"(a binary label has exactly two)")
    return values, None


def _as_floats(texts: Sequence[str]) -> np.ndarray | None:
    try:
        values = np.array([float(t) for t in texts], dtype=np.float64)
    except ValueError:
        return None
    return values if np.isfinite(values).all() else None


def correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, dim), (n,) -> (dim,) Pearson correlation of each coordinate with y (0 for a constant coordinate)."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    denominator = np.sqrt((xc**2).sum(axis=0) * (yc**2).sum())
    return np.divide(xc.T @ yc, denominator, out=np.zeros(x.shape[1]), where=denominator > 0)


def label_residuals(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, dim), (n,) -> (n, dim) what the label does not explain: x - mean(x) - (y - mean(y)) slope.

    For a 0/1 label this is each item minus its class mean (the within-class scatter of LDA); for a numeric
    label, the residuals of the per-coordinate regression on the label.
    """
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    return xc - np.outer(yc, xc.T @ yc / (yc @ yc))


def ledoit_wolf(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """(n, dim) centred rows -> ((dim, dim) shrunk covariance, shrinkage in [0, 1]).

    (1 - s) S + s (tr S / dim) I with the intensity s of Ledoit & Wolf (2004), estimated from the rows
    themselves: with 90 items in 192 dimensions the sample covariance S is singular, and s says how far to
    trust it without a search over held-out data.
    """
    n, dimension = residuals.shape
    sample = residuals.T @ residuals / n
    target = np.trace(sample) / dimension
    # squared distance of S from the target, and the sampling variance of S (both per dimension)
    distance = np.sum((sample - target * np.eye(dimension)) ** 2) / dimension
    variance = (np.sum(np.sum(residuals**2, axis=1) ** 2) / n - np.sum(sample**2)) / (n * dimension)
    shrinkage = 1.0 if distance == 0 else float(min(variance, distance) / distance)
    return (1 - shrinkage) * sample + shrinkage * target * np.eye(dimension), shrinkage


def fit_direction(vectors: Any, labels: Sequence[Any], *, method: str = "mean", k: int | None = None,
                  positive: str | None = None, along: Any = None) -> AttributeDirection:
    """Fit an attribute direction.

    vectors: (n, dim) embeddings (raw or unit; normalized here) of n labelled items
    labels:  (n,) labels: two distinct values (binary) or numbers (numeric), see `encode_labels`
    method:  "mean": slope over all coordinates (difference of class means for a binary label);
             "topk": the same slope on the `k` coordinates most correlated (|Pearson r|) with the label only;
             "fisher": the line Σ⁻¹ d (Σ: Ledoit-Wolf shrunk covariance of `label_residuals`; d: the slope,
             or `along` when given), on which the labels fix the length and sign of b
    along:   optional (dim,) prior direction (e.g. from `pair_direction`): the labels then only fix the
             length and sign of b on that line, b = (slope·â) â ("mean"), or on its whitened line ("fisher")
    Returns an AttributeDirection whose `read` gives the label's value (binary: 0 = negative class mean,
    1 = positive class mean) and, for a binary label, a threshold fitted on these same items.
    """
    x = unit(as_matrix(vectors, "labelled vectors"), "labelled vectors")
    n, dimension = x.shape
    if len(labels) != n:
        raise AlgebraError(f"labels: {len(labels)} labels for {n} vectors")
    y, names = encode_labels(labels, positive)
    if method not in METHODS:
        raise AlgebraError(f"method {method!r}: use one of {', '.join(METHODS)}")
    if method != "topk":  # mean and fisher use every coordinate
        dims = np.arange(dimension)
    else:
        if k is None or not 1 <= int(k) <= dimension:
            raise AlgebraError(f"k {k!r}: the topk method needs 1 <= k <= {dimension}")
        # stable sort: ties keep the lower index, so the choice is deterministic
        dims = np.sort(np.argsort(-np.abs(correlations(x, y)), kind="stable")[: int(k)])
    yc = y - y.mean()
    # least-squares slope of each coordinate on the label; for 0/1 labels mean(x|1) - mean(x|0)
    slope = (x - x.mean(axis=0)).T @ yc / (yc @ yc)
    b = np.zeros(dimension)
    b[dims] = slope[dims]
    if along is not None and method == "topk":
        raise AlgebraError("along: a prior direction is used with the mean or fisher method only")
    prior = None if along is None else unit(as_matrix(along, "prior direction", dimension)[0], "prior direction")
    extra: dict[str, Any] = {}
    if method == "fisher":
        # Σ⁻¹ d: a direction where the items scatter a lot for other reasons (identities) reads mostly that
        # scatter, so it is down-weighted by its variance; shrinkage keeps the singular Σ invertible
        covariance, extra["shrinkage"] = ledoit_wolf(label_residuals(x, y))
        prior = unit(np.linalg.solve(covariance, b if prior is None else prior), "fisher direction")
    if prior is not None:
        b = (b @ prior) * prior
    if not np.any(b):
        raise AlgebraError("labels: the labelled vectors do not vary with the label (zero direction)")
    # Read so that the label mean sits at the mean projection: read(x) = y_mean + (x̂ - x_mean)·b / |b|^2.
    offset = float(y.mean() - x.mean(axis=0) @ b / (b @ b))
    direction = AttributeDirection(b, dims, offset, None, names, method, len(dims),
                                   {"n": int(n), "label_mean": float(y.mean()), **extra})
    threshold = None
    values = read(x, direction)
    if names is not None:
        # midpoint of the two classes' mean reading: no search over the training items (it would overfit
        # n = 10 speakers), and with "mean" it is the usual nearest-class-mean rule along b
        threshold = float((values[y == 1].mean() + values[y == 0].mean()) / 2)
        centres = np.where(y == 1, values[y == 1].mean(), values[y == 0].mean())
    else:
        centres = y
    return AttributeDirection(b, dims, offset, threshold, names, method, len(dims), direction.metadata,
                              training_spread(values, centres, 2 if names is not None else 1))


def training_spread(values: np.ndarray, centres: np.ndarray, fitted: int) -> float | None:
    """Pooled standard deviation of `values` around `centres`, with `fitted` degrees of freedom used up (the
    two class means, or the line): None when too few items remain or every item sits on its centre."""
    if len(values) <= fitted:
        return None
    spread = float(np.sqrt(((values - centres) ** 2).sum() / (len(values) - fitted)))
    return spread if spread > 0 else None


def pair_direction(before: Any, after: Any) -> np.ndarray:
    """(n, dim), (n, dim) paired vectors (one voice before/after a change) -> (dim,) mean move on the sphere.

    A direction that needs no labels: e.g. each utterance and itself played 15 % slower (lower pitch and
    formants, the acoustic core of sex differences), averaged over many utterances so that the speakers'
    identities cancel out. Use it as `fit_direction(..., along=...)`.
    """
    a, b = as_matrix(before, "vectors before"), as_matrix(after, "vectors after")
    if a.shape != b.shape:
        raise AlgebraError(f"pair_direction: shapes {a.shape} and {b.shape} differ")
    move = (unit(b, "vectors after") - unit(a, "vectors before")).mean(axis=0)
    if not np.any(move):
        raise AlgebraError("pair_direction: the pairs do not differ")
    return move


# -- using a direction -----------------------------------------------------------------------------------


def project(vectors: Any, direction: AttributeDirection) -> np.ndarray:
    """(n, dim) or (dim,) -> (n,) cosine-space projection x̂·b̂ of each unit vector on the unit direction."""
    x = unit(as_matrix(vectors, "vector", direction.dimension))
    return x @ (direction.vector / direction.scale)


def read(vectors: Any, direction: AttributeDirection) -> np.ndarray:
    """(n, dim) or (dim,) -> (n,) the attribute in label units (binary: ~0 negative class, ~1 positive)."""
    return direction.offset + project(vectors, direction) / direction.scale


@dataclass(frozen=True)
class Reading:
    """One vector read along a direction.

    projection: x̂·b̂, the cosine of the unit vector with the direction (between -1 and 1)
    value:      `read`, the attribute in label units (binary: ~0 the negative class, ~1 the positive)
    label:      the class on its side of the threshold (binary), else None
    margin:     value minus the threshold (binary; sign = side), else None
    spreads:    margin in units of the direction's training spread (binary), or, for a numeric label, the
                value's distance from the training label mean in spreads; None when the direction keeps no
                spread (stored before it was kept)
    """

    projection: float
    value: float
    label: str | None
    margin: float | None
    spreads: float | None


def read_direction(direction: AttributeDirection, vectors: Any) -> list[Reading]:
    """(n, dim) or (dim,) raw or unit vectors -> one Reading each along a fitted or stored direction."""
    projections = project(vectors, direction)
    values = direction.offset + projections / direction.scale
    readings = []
    for projection, value in zip(projections, values):
        if direction.threshold is not None:
            margin = float(value - direction.threshold)
            label = direction.labels[1] if margin > 0 else direction.labels[0]
            reference = margin
        else:
            margin, label = None, None
            reference = float(value - direction.metadata.get("label_mean", direction.offset))
        spreads = None if direction.spread is None else reference / direction.spread
        readings.append(Reading(float(projection), float(value), label, margin, spreads))
    return readings


def classify(vectors: Any, direction: AttributeDirection) -> np.ndarray:
    """(n, dim) -> (n,) bool: True where the reading is on the positive side of the fitted threshold."""
    if direction.threshold is None:
        raise AlgebraError("classify: the direction has a numeric label (no threshold); use read()")
    return read(vectors, direction) > direction.threshold


def edit(vector: Any, direction: AttributeDirection, alpha: float, *, keep_norm: bool = True) -> np.ndarray:
    """Move a voice along a direction.

    vector: (dim,) raw or unit embedding; alpha: strength in label units (see the module docstring)
    Returns (dim,): x̂ + alpha * b, put back on the sphere and scaled to the input's raw norm when
    `keep_norm` (what a generator consuming raw vectors wants), else left where the move put it (then only
    the direction's `dims` differ from x̂, which is what the topk method promises).
    """
    if not isinstance(alpha, (int, float, np.integer, np.floating)) or not np.isfinite(alpha):
        raise AlgebraError(f"alpha {alpha!r}: must be a finite number")
    x = as_matrix(vector, "vector", direction.dimension)
    if len(x) != 1:
        raise AlgebraError(f"vector: expected one vector, got {len(x)}")
    norm = float(np.linalg.norm(x[0]))
    with np.errstate(all="ignore"):
        moved = unit(x[0], "vector") + float(alpha) * direction.vector
        _finite_result(moved, f"edit with alpha {alpha:g}")
        if not keep_norm:
            return moved
        return _finite_result(unit(moved, f"edit with alpha {alpha:g}") * norm, f"edit with alpha {alpha:g}")


def interpolate(a: Any, b: Any, t: float, *, method: str = "slerp", keep_norm: bool = True) -> np.ndarray:
    """Mix two voices: (dim,), (dim,), t -> (dim,); t = 0 gives a, t = 1 gives b.

    "linear": (1 - t) â + t b̂ (the chord: its norm dips below 1 between the ends);
    "slerp":  along the great circle from â to b̂, constant unit norm, equal angle per step of t.
    With `keep_norm` the result is rescaled to (1 - t)|a| + t|b|, interpolating the raw norms too, so that
    t = 0 and t = 1 return a and b exactly; else it stays on (slerp) or inside (linear) the unit sphere.
    """
    if not isinstance(t, (int, float, np.integer, np.floating)) or not np.isfinite(t):
        raise AlgebraError(f"t {t!r}: must be a finite number")
    va, vb = as_matrix(a, "first voice"), as_matrix(b, "second voice")
    if va.shape != vb.shape or len(va) != 1:
        raise AlgebraError(f"interpolate: shapes {np.shape(a)} and {np.shape(b)} differ (wrong encoder?)")
    ua, ub = unit(va[0], "first voice"), unit(vb[0], "second voice")
    t = float(t)
    if method == "linear":
        mixed = (1 - t) * ua + t * ub
    elif method == "slerp":
        cosine = float(np.clip(ua @ ub, -1.0, 1.0))
        omega = np.arccos(cosine)
        if omega < 1e-6:  # (nearly) the same direction: slerp's sin(omega) -> 0, the chord is exact enough
            mixed = unit((1 - t) * ua + t * ub)
        elif np.pi - omega < 1e-6:
            raise AlgebraError("interpolate: the voices point in opposite directions (slerp is undefined)")
        else:
            mixed = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    else:
        raise AlgebraError(f"method {method!r}: use linear or slerp")
    if keep_norm:
        norm = (1 - t) * np.linalg.norm(va[0]) + t * np.linalg.norm(vb[0])
        if norm <= 0:
            raise AlgebraError(f"interpolate: t = {t:g} gives a non-positive norm")
        with np.errstate(all="ignore"):
            mixed = unit(mixed, f"mix at t = {t:g}") * norm
    return _finite_result(mixed, f"mix at t = {t:g}")


# -- measuring ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldOutReading:
    """Leave-one-group-out reading of a binary attribute: accuracies and the per-group detail."""

    item_accuracy: float  # over every held-out item
    group_accuracy: float  # each held-out group read once, from the mean of its unit vectors
    groups: list[str]
    group_correct: list[bool]
    margins: list[float]  # per group: reading of its mean minus the fold's threshold (sign = side)


def leave_one_group_out(vectors: Any, labels: Sequence[Any], groups: Sequence[Any], *, method: str = "mean",
                        k: int | None = None, positive: str | None = None,
                        pairs: tuple[Any, Any] | None = None) -> HeldOutReading:
    """For each group (speaker): fit direction and threshold on the other groups only, read the held-out one.

    vectors: (n, dim); labels: (n,) binary, constant within a group; groups: (n,) group ids.
    pairs:   optional ((n, dim) before, (n, dim) after) per item: each fold then fits along the
             `pair_direction` of its training items' pairs.
    Nothing of the held-out group enters its fold's fit: no tuning on the test speaker.
    """
    x = unit(as_matrix(vectors, "vectors"), "vectors")
    group_ids = np.array([str(g) for g in groups])
    texts = np.array([str(label).strip() for label in labels])
    if len(group_ids) != len(x) or len(texts) != len(x):
        raise AlgebraError(f"leave_one_group_out: {len(x)} vectors, {len(texts)} labels, {len(group_ids)} groups")
    _, names = encode_labels(list(texts), positive)
    if names is None:
        raise AlgebraError("leave_one_group_out: needs a binary label")
    correct_items: list[bool] = []
    names_out, correct_groups, margins = [], [], []
    for group in sorted(set(group_ids)):
        held = group_ids == group
        truth = set(texts[held])
        if len(truth) != 1:
            raise AlgebraError(f"group {group}: its items carry different labels {sorted(truth)}")
        along = None if pairs is None else pair_direction(np.asarray(pairs[0])[~held], np.asarray(pairs[1])[~held])
        fitted = fit_direction(x[~held], list(texts[~held]), method=method, k=k, positive=names[1], along=along)
        is_positive = texts[held][0] == names[1]
        correct_items.extend(classify(x[held], fitted) == is_positive)
        margin = float(read(x[held].mean(axis=0), fitted)[0] - fitted.threshold)
        names_out.append(group)
        correct_groups.append((margin > 0) == is_positive)
        margins.append(margin)
    return HeldOutReading(float(np.mean(correct_items)), float(np.mean(correct_groups)), names_out,
                          correct_groups, margins)
