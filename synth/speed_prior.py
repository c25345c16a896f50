"""The speed line: a label-free prior for attribute directions, from how an encoder's embedding of a voice
moves when the voice is played faster and slower.

Playing a clip 15 % faster raises pitch and formants together, much as they differ between the sexes; the
move, averaged over many clips, is a line in embedding space that needs no labels (`synth.algebra.
pair_direction`), and `fit_direction(..., along=...)` lets the labels set only its sign, length and threshold.
With few labelled speakers it reads sex on held-out readers far better than a line fitted from the labels
alone (docs/voice-directions.md).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: playback speed factor of the prior (x1.15 and x1 / 1.15): roughly the vocal-tract length ratio between
#: the sexes; fixed before it was measured, not tuned
SPEED_FACTOR = 1.15
#: each clip's first seconds are moved (the factor was fixed on 4 s crops)
CROP_SECONDS = 4.0


def played_faster(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """(num_samples,) -> (about num_samples / factor,) the clip played `factor` times faster at the same rate:
    pitch and formants rise by `factor` (factor < 1: slower and lower)."""
    import soxr

    return soxr.resample(np.asarray(samples, dtype=np.float32), sample_rate,
                         int(round(sample_rate / factor))).astype(np.float32)


def speed_pair(samples: np.ndarray, sample_rate: int,
               embed: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """-> ((dim,) slower, (dim,) faster): `embed` of the clip's first CROP_SECONDS played at 1 / SPEED_FACTOR
    and at SPEED_FACTOR. `samples` at `sample_rate`, the rate `embed` expects."""
    crop = np.asarray(samples, dtype=np.float32)[: int(CROP_SECONDS * sample_rate)]
    return (np.asarray(embed(played_faster(crop, sample_rate, 1.0 / SPEED_FACTOR))),
            np.asarray(embed(played_faster(crop, sample_rate, SPEED_FACTOR))))
