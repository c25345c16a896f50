"""A percentile bootstrap over files for a corpus total such as DER (sum of errors / sum of scored time).

Files are drawn with replacement, as many as there are, and the total is recomputed from the drawn files'
sums: the interval says how much the total depends on which files happened to be in the set. With few files
it is wide, and it says nothing about errors within a file.
"""

from __future__ import annotations

from dataclasses import dataclass

#: resamples per interval; the seed is fixed so that a rerun prints the same interval
RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    resamples: int
    seed: int

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "level": self.level, "resamples": self.resamples,
                "seed": self.seed, "over": "files"}


def ratio_interval(errors, totals, level: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED) -> Interval | None:
    """Percentile interval of sum(errors) / sum(totals) over files drawn with replacement; None without files.
    A draw whose scored time sums to 0 counts as rate 0, as the total does."""
    import numpy as np

    errors, totals = np.asarray(errors, dtype=float), np.asarray(totals, dtype=float)
    if errors.size == 0:
        return None
    draws = np.random.default_rng(seed).integers(0, errors.size, size=(resamples, errors.size))
    error_sums, total_sums = errors[draws].sum(axis=1), totals[draws].sum(axis=1)
    rates = np.divide(error_sums, total_sums, out=np.zeros(resamples), where=total_sums > 0)
    tail = (1 - level) / 2
    low, high = np.quantile(rates, [tail, 1 - tail])
    return Interval(float(low), float(high), level, resamples, seed)


def difference_interval(errors_a, totals_a, errors_b, totals_b, level: float = 0.95, resamples: int = RESAMPLES,
                        seed: int = SEED) -> Interval | None:
    """Percentile interval of rate(a) - rate(b) with the same files drawn for both systems (a paired bootstrap:
    the files' own difficulty cancels, so it is narrower than the two intervals side by side suggest)."""
    import numpy as np

    arrays = [np.asarray(values, dtype=float) for values in (errors_a, totals_a, errors_b, totals_b)]
    if arrays[0].size == 0:
        return None
    draws = np.random.default_rng(seed).integers(0, arrays[0].size, size=(resamples, arrays[0].size))
    sums = [values[draws].sum(axis=1) for values in arrays]
    rate_a = np.divide(sums[0], sums[1], out=np.zeros(resamples), where=sums[1] > 0)
    rate_b = np.divide(sums[2], sums[3], out=np.zeros(resamples), where=sums[3] > 0)
    tail = (1 - level) / 2
    low, high = np.quantile(rate_a - rate_b, [tail, 1 - tail])
    return Interval(float(low), float(high), level, resamples, seed)
