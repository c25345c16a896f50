"""Unit-length vectors: the one normalisation every comparison of voices goes through (cosine = dot product
of unit vectors)."""

from __future__ import annotations

import numpy as np

#: norms below this count as zero: such a vector has no direction and stays all zeros
ZERO_NORM = 1e-12


def unit_vectors(vectors, dtype=None) -> np.ndarray:
    """(..., dim) -> the same shape with unit L2 norm along the last axis; zero vectors stay zero. `dtype`:
    the precision to compute in (float64 where scores are compared against fine thresholds); None keeps the
    input's."""
    vectors = np.asarray(vectors, dtype=dtype)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), ZERO_NORM)


def unit_distance(cosine: float) -> float:
    """The Euclidean distance between two unit vectors at this cosine similarity, sqrt(2 - 2 cos): how a cut
    given as a cosine becomes the distance a linkage compares."""
    return float(np.sqrt(max(2.0 - 2.0 * cosine, 0.0)))


def unit_rows_and_valid(matrix) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) -> (n, dim) float64 unit rows, and (n,) bool: the rows that had a direction (finite and
    non-zero). Rows without one come back as zeros, so they score 0 against everything."""
    matrix = np.asarray(matrix, dtype=np.float64)
    finite = np.isfinite(matrix).all(axis=1)
    safe = np.where(finite[:, None], matrix, 0.0)
    norm = np.linalg.norm(safe, axis=1)
    valid = finite & (norm > 0)
    return safe / np.where(valid, norm, 1.0)[:, None], valid


def vector_matrix(vectors, what: str, error: type[Exception] = ValueError) -> np.ndarray:
    """(dim,) or (n, dim) finite numbers -> (n, dim) float64. Otherwise `error`, one line naming `what`: not
    numbers, another shape, or NaN or infinite values."""
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as cause:
        raise error(f"{what}: not a numeric vector ({cause})") from None
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or 0 in array.shape:
        raise error(f"{what}: expected one vector (dim,) or a non-empty matrix (n, dim), got shape {np.shape(vectors)}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise error(f"{what}: {bad} of {len(array)} vector(s) contain NaN or infinite values")
    return array
