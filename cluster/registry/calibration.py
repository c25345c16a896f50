"""Choosing the open-set threshold of match.py from measured target and impostor cosine scores.

A *trial* compares an enrolled voice (the centroid of several utterances, as the registry stores it)
with one test segment: a *target* trial when both are the same speaker, an *impostor* trial otherwise.
Pure numpy on embeddings; computing the embeddings from audio is the caller's job
(benchmarks/registry_threshold.py does it with real CAM++ on LibriSpeech).

The rule (`calibrate`): the threshold where a normal fit of the impostor scores accepts a fraction
`DEFAULT_FALSE_ACCEPT = 1e-4` of impostor trials, ``t = mu_i + z * sd_i`` with ``P(Z > z) = 1e-4``
(z = 3.72), measured on short (2-4 s) test crops. Why a fixed false-accept point rather than the EER point:
- the error that matters most in open-set naming is a false accept: it puts a wrong name on a person
  (the issue asks that every speaker nobody enrolled stays `unknown`), whereas a miss leaves a known
  speaker `unknown`, which a user can see and fix;
- a cluster is compared with *every* enrolled voice, so an unknown speaker's chance of being named is
  about N x the per-comparison false-accept rate for N enrolled voices: 1e-4 keeps it near 1 % for a
  hundred voices, and the rule states that guarantee directly;
- target scores move with conditions (cluster length, overlap leaking into a cluster, microphone
  mismatch) far more than impostor scores do, so anchoring the threshold on the impostor side keeps
  the false-accept guarantee and leaves the most room for degraded targets;
- on clean sets a modern encoder separates the two distributions completely, so the empirical EER is 0
  and its threshold is anywhere in the gap, decided by two single scores. A normal fit uses every
  score; a 1e-4 tail cannot be read off a few thousand trials directly.
`gaussian_eer_threshold` (the equal-error point of normal fits of both sides) is reported beside it.
Caveat: 10 speakers give only 90 impostor pairs; a larger population has more similar-sounding pairs,
i.e. a heavier impostor tail, so re-run the measurement on your own population for a large registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import erfc, sqrt
from typing import Sequence

import numpy as np

from ..vectors import unit_vectors

#: per-comparison false-accept rate of the default threshold rule (see the module doc)
DEFAULT_FALSE_ACCEPT = 1e-4


def centroid(vectors: np.ndarray) -> np.ndarray:
    """(n, dim) raw embeddings -> (dim,) unit mean of their unit vectors (what the registry stores)."""
    return unit_vectors(unit_vectors(vectors, np.float64).mean(axis=0))


@dataclass(frozen=True)
class Trials:
    """Cosine scores of one verification experiment.

    target: (num_target,) scores of test segments against their own speaker's enrollment centroid;
    impostor: (num_impostor,) scores against every other enrolled speaker's centroid;
    open_set: (num_tests,) per test segment, the best score among the *other* speakers, i.e. the score
    that would wrongly name it if its own speaker were not enrolled.
    """

    target: np.ndarray
    impostor: np.ndarray
    open_set: np.ndarray


def trial_scores(enroll: np.ndarray, enroll_labels: Sequence, test: np.ndarray, test_labels: Sequence) -> Trials:
    """Score every test embedding against every enrolled speaker's centroid.

    enroll: (n, dim) embeddings with `enroll_labels` (n,); test: (m, dim) with `test_labels` (m,).
    Each speaker's enrollment centroid is `centroid` of its enroll rows. Test speakers must be enrolled.
    """
    enroll_labels = np.asarray(enroll_labels)
    test_labels = np.asarray(test_labels)
    speakers = sorted(set(enroll_labels.tolist()))
    missing = set(test_labels.tolist()) - set(speakers)
    if missing:
        raise ValueError(f"test speakers without enrollment: {sorted(missing)[:5]}")
    if len(speakers) < 2:
        raise ValueError("need at least two enrolled speakers to have impostor trials")
    centroids = np.stack([centroid(np.asarray(enroll)[enroll_labels == s]) for s in speakers])
    scores = unit_vectors(test, np.float64) @ centroids.T  # (m, num_speakers)
    own = np.array([speakers.index(label) for label in test_labels.tolist()])
    mask = np.zeros_like(scores, dtype=bool)
    mask[np.arange(len(own)), own] = True
    others = np.where(mask, -np.inf, scores)
    return Trials(target=scores[mask], impostor=scores[~mask], open_set=others.max(axis=1))


def split_enroll_test(labels: Sequence, num_enroll: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (enroll, test): the first `num_enroll` items of each label (in the given order) enroll."""
    labels = np.asarray(labels)
    enroll = np.zeros(len(labels), dtype=bool)
    for label in set(labels.tolist()):
        enroll[np.flatnonzero(labels == label)[:num_enroll]] = True
    return enroll, ~enroll


def error_rates(target: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false reject, false accept) rates when `score >= threshold` accepts."""
    return float(np.mean(np.asarray(target) < threshold)), float(np.mean(np.asarray(impostor) >= threshold))


def equal_error_rate(target: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Empirical (EER, threshold). When the scores separate, EER is 0 and the threshold is the gap's middle."""
    target = np.sort(np.asarray(target, dtype=np.float64))
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    if target[0] > impostor[-1]:
        return 0.0, float((target[0] + impostor[-1]) / 2)
    candidates = np.unique(np.concatenate([target, impostor]))
    frr = np.searchsorted(target, candidates, side="left") / len(target)
    far = 1.0 - np.searchsorted(impostor, candidates, side="left") / len(impostor)
    best = int(np.argmin(np.abs(frr - far)))
    return float((frr[best] + far[best]) / 2), float(candidates[best])


def gaussian_eer_threshold(target: np.ndarray, impostor: np.ndarray) -> float:
    """The score where normal fits of the two distributions have equal error rates (see module doc)."""
    mu_t, sd_t = float(np.mean(target)), float(np.std(target, ddof=1))
    mu_i, sd_i = float(np.mean(impostor)), float(np.std(impostor, ddof=1))
    if not mu_t > mu_i:
        raise ValueError(f"target scores (mean {mu_t:.3f}) are not above impostor scores (mean {mu_i:.3f})")
    return (mu_i * sd_t + mu_t * sd_i) / (sd_i + sd_t)


def gaussian_error_rates(target: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false reject, false accept) of the normal fits at `threshold`: the tails a small set cannot show."""
    mu_t, sd_t = float(np.mean(target)), float(np.std(target, ddof=1))
    mu_i, sd_i = float(np.mean(impostor)), float(np.std(impostor, ddof=1))
    tail = lambda z: 0.5 * erfc(z / sqrt(2))  # noqa: E731 - P(Z > z)
    return tail((mu_t - threshold) / sd_t), tail((threshold - mu_i) / sd_i)


def false_accept_threshold(impostor: np.ndarray, rate: float) -> float:
    """The lowest threshold whose empirical false-accept rate is at most `rate`."""
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))
    keep = int(np.floor(rate * len(impostor)))  # impostor scores allowed at or above the threshold
    return float(np.nextafter(impostor[len(impostor) - keep - 1], np.inf))


@dataclass(frozen=True)
class Calibration:
    threshold: float
    eer: float
    eer_threshold: float
    false_reject: float  # empirical, at `threshold`
    false_accept: float  # empirical, at `threshold`
    open_set_false_accept: float  # fraction of tests whose best other-speaker score passes `threshold`
    fitted_false_reject: float
    fitted_false_accept: float
    gaussian_eer_threshold: float

    def summary(self) -> str:
        return (f"threshold {self.threshold:.3f} (empirical EER {100 * self.eer:.2f}% at {self.eer_threshold:.3f}; "
                f"fitted EER point {self.gaussian_eer_threshold:.3f}); "
                f"at threshold: FRR {100 * self.false_reject:.2f}%, FAR {100 * self.false_accept:.3f}%, "
                f"open-set FA {100 * self.open_set_false_accept:.2f}%, fitted FRR {self.fitted_false_reject:.1e}, "
                f"fitted FAR {self.fitted_false_accept:.1e}")


def fitted_false_accept_threshold(impostor: np.ndarray, rate: float = 1e-4) -> float:
    """mean + z * sd of the impostor scores, with z the standard normal's upper `rate` quantile."""
    from statistics import NormalDist

    if not 0 < rate < 1:
        raise ValueError(f"false-accept rate must be in (0, 1), got {rate}")
    z = NormalDist().inv_cdf(1 - rate)
    return float(np.mean(impostor) + z * np.std(impostor, ddof=1))


def calibrate(trials: Trials, false_accept: float = DEFAULT_FALSE_ACCEPT) -> Calibration:
    """The default threshold rule (`fitted_false_accept_threshold`) with the error rates it implies."""
    threshold = fitted_false_accept_threshold(trials.impostor, false_accept)
    eer, eer_threshold = equal_error_rate(trials.target, trials.impostor)
    frr, far = error_rates(trials.target, trials.impostor, threshold)
    fitted_frr, fitted_far = gaussian_error_rates(trials.target, trials.impostor, threshold)
    open_set = float(np.mean(trials.open_set >= threshold))
    return Calibration(threshold, eer, eer_threshold, frr, far, open_set, fitted_frr, fitted_far,
                       gaussian_eer_threshold(trials.target, trials.impostor))


def describe(scores: np.ndarray) -> str:
    """One line of summary statistics of a score sample."""
    scores = np.asarray(scores, dtype=np.float64)
    q = np.percentile(scores, [0, 1, 5, 50, 95, 99, 100])
    return (f"n={len(scores)} mean={scores.mean():.3f} sd={scores.std(ddof=1):.3f} "
            f"min={q[0]:.3f} p1={q[1]:.3f} p5={q[2]:.3f} median={q[3]:.3f} p95={q[4]:.3f} p99={q[5]:.3f} max={q[6]:.3f}")
