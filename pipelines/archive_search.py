"""Searching an archive by voice: a query vector -> the index rows (recording speakers) nearest to it.

Brute force: one (num_rows, dim) x (dim,) product and a partial sort. benchmarks/bench_link.py measured it
on synthetic CAM++-sized centroids (docs/archive-linking.md): well under a second at 100,000 speakers, so an
approximate index would only add a dependency and a second copy of the vectors to keep in step.
"""

from __future__ import annotations

import numpy as np


def nearest_rows(vectors: np.ndarray, query: np.ndarray, top: int, block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """The `top` rows of `vectors` (num_rows, dim), unit, most cosine-similar to `query` (dim,), best first.

    Returns (row indices (k,), cosines (k,)), k = min(top, num_rows). Rows are read `block` at a time so that
    a memory-mapped index is never copied whole."""
    query = np.asarray(query, dtype=np.float64)
    norm = np.linalg.norm(query)
    if not np.isfinite(query).all() or norm == 0:
        raise ValueError("the query voice vector has no direction (silent or broken audio)")
    query = (query / norm).astype(np.float32)
    scores = np.concatenate([np.asarray(vectors[start:start + block], dtype=np.float32) @ query
                             for start in range(0, len(vectors), block)]) if len(vectors) else np.zeros(0, np.float32)
    k = min(int(top), len(scores))
    if k <= 0:
        return np.zeros(0, int), np.zeros(0)
    best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    best = best[np.argsort(-scores[best], kind="stable")]
    return best, scores[best].astype(np.float64)
