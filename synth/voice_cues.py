"""Pitch and vocal-tract length of a voice: the acoustic cues that read sex where an embedding line does not.

An embedding's sex line is learned from whatever separated its training voices, so it moves with the room,
the channel and the reading style: fitted on audiobook readers and acted speech it read 68 % of held-out
readers' utterances and 64 % of meeting speech (docs/voice-directions.md). Two acoustic cues do not depend
on the recording the same way:
- **pitch**: the median F0 of the voiced frames (librosa pyin, 60-450 Hz);
- **spacing**: the formant spacing, which scales with the inverse of the vocal tract's length. F1-F4 are the
  medians of the LPC roots (order 18, pre-emphasis 0.97, bandwidth under 400 Hz) over the loudest 40 % of
  25 ms frames at 16 kHz, and the spacing is the least-squares fit of Fi = dF (2i - 1) / 2 (a uniform tube);
- **narrow spacing**: the same from F1-F3 at 8 kHz (LPC order 10), which a telephone channel leaves intact.
  A recording whose band stops at 4 kHz has no F4 and its wideband spacing is not measured (an LPC of the
  empty upper band puts every file on one side); readings then use the narrow spacing.
Pitch and spacing summed read 91 % of readers', 88 % of actors' and 87 % of meeting speakers' speech
leaving speakers out. Aroused speech lifts pitch, so a rule may hand aroused speech to the embedding line
instead (`pipelines/commands/voice_algebra.py`, `--gate`).

Each cue is compared in log units against the labelled files' class means, in their pooled spread around
those means; the sign makes the positive label positive. Pure numpy apart from the measuring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: the rate the cues are measured at; LPC order 18 is chosen for it (two poles per kHz plus two)
CUE_SAMPLE_RATE = 16000
#: the cues in the order of every array here
CUE_NAMES = ("pitch", "spacing", "narrow spacing")
#: the rate the narrow spacing is measured at: a telephone channel's, LPC order 10 for it
NARROW_SAMPLE_RATE = 8000
#: a power density falling by more than this many dB from 3.0-3.8 kHz to 4.2-5.0 kHz is a channel's edge:
#: wideband speech falls by -9 to +12 dB there (readers, actors, AMI), telephone speech by 28-80 dB
BAND_EDGE_DB = 20.0


class CueError(ValueError):
    """A cue model that cannot be fitted or read: one line, naming what is missing."""


def band_limited(samples: np.ndarray, sample_rate: int) -> bool:
    """True when (num_samples,) mono audio holds nothing above 4 kHz: sampled at 8 kHz or less, or with a
    channel's edge there (BAND_EDGE_DB)."""
    if sample_rate <= 2 * 4200:
        return True
    power = np.abs(np.fft.rfft(np.asarray(samples, dtype=np.float64))) ** 2
    frequency = np.fft.rfftfreq(len(samples), 1 / sample_rate)
    below = power[(frequency > 3000) & (frequency < 3800)].mean()
    above = power[(frequency > 4200) & (frequency < 5000)].mean()
    return bool(10 * np.log10((below + 1e-30) / (above + 1e-30)) > BAND_EDGE_DB)


def _formant_spacing(samples: np.ndarray, sample_rate: int, order: int, formants: int) -> float:
    """The uniform-tube spacing fitted to the median F1..F`formants` of the loudest 40 % of 25 ms frames;
    NaN when no frame shows that many formants."""
    import librosa
    from scipy.signal import lfilter

    length, hop = int(0.025 * sample_rate), int(0.01 * sample_rate)
    if len(samples) < length:
        return np.nan
    frames = librosa.util.frame(lfilter([1, -0.97], [1], samples), frame_length=length, hop_length=hop).T
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-12)
    window = np.hamming(length)
    found = []
    for frame in frames[level > np.percentile(level, 60)]:
        roots = np.roots(librosa.lpc((frame * window).astype(np.float64), order=order))
        roots = roots[np.imag(roots) > 0]
        frequency = np.angle(roots) * sample_rate / (2 * np.pi)
        bandwidth = -np.log(np.abs(roots)) * sample_rate / np.pi
        candidates = np.sort(frequency[(frequency > 200) & (bandwidth < 400)])
        if len(candidates) >= formants:
            found.append(candidates[:formants])
    if not found:
        return np.nan
    orders = (2 * np.arange(1, formants + 1) - 1) / 2
    return float(np.median(found, axis=0) @ orders / (orders ** 2).sum())


def measure_cues(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(num_samples,) mono -> (3,) [median F0 Hz, formant spacing Hz, narrow-band formant spacing Hz]; NaN for
    a cue that could not be measured (no voiced frame, too short, no band above 4 kHz for the spacing)."""
    import librosa
    import soxr

    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if len(samples) * CUE_SAMPLE_RATE < 1024 * sample_rate:  # under one pitch frame (or empty: a speaker never alone)
        return np.full(3, np.nan)
    narrow_band = band_limited(samples, sample_rate)
    if sample_rate != CUE_SAMPLE_RATE:
        samples = soxr.resample(samples, sample_rate, CUE_SAMPLE_RATE).astype(np.float32)
    f0, voiced, _ = librosa.pyin(samples, fmin=60, fmax=450, sr=CUE_SAMPLE_RATE, frame_length=1024, hop_length=256)
    voiced_f0 = f0[voiced & np.isfinite(f0)]
    pitch = float(np.median(voiced_f0)) if len(voiced_f0) else np.nan
    spacing = np.nan if narrow_band else _formant_spacing(samples, CUE_SAMPLE_RATE, order=18, formants=4)
    narrow = soxr.resample(samples.astype(np.float64), CUE_SAMPLE_RATE, NARROW_SAMPLE_RATE)
    return np.array([pitch, spacing, _formant_spacing(narrow, NARROW_SAMPLE_RATE, order=10, formants=3)])


#: cues a fit cannot do without; the wideband spacing may be missing (labelled files all band-limited)
REQUIRED_CUES = ("pitch", "narrow spacing")


@dataclass(frozen=True)
class CueModel:
    """Where a binary label's two classes sit on the cues (CUE_NAMES).

    centre: (3,) midpoint of the two class means of log cue (NaN: a cue the labelled files did not give);
    spread: (3,) pooled standard deviation of the labelled files around their class mean; sign: (3,) +1 where
    the positive label has the larger log cue; labels: (negative, positive); files: (3,) how many labelled
    files each cue was measured on."""

    centre: np.ndarray
    spread: np.ndarray
    sign: np.ndarray
    labels: tuple[str, str]
    files: tuple[int, ...]

    def to_metadata(self) -> dict[str, Any]:
        def listed(values):
            return [float(v) if np.isfinite(v) else None for v in values]

        return {"names": list(CUE_NAMES), "centre": listed(self.centre), "spread": listed(self.spread),
                "sign": listed(self.sign), "labels": list(self.labels), "files": list(self.files)}

    @classmethod
    def from_metadata(cls, stored: dict[str, Any]) -> "CueModel":
        def array(key):
            return np.array([np.nan if v is None else v for v in stored[key]], dtype=np.float64)

        try:
            if list(stored["names"]) != list(CUE_NAMES):
                raise ValueError(f"cues {stored['names']}, expected {list(CUE_NAMES)}")
            model = cls(array("centre"), array("spread"), array("sign"), tuple(stored["labels"]),
                        tuple(int(n) for n in stored["files"]))
        except (KeyError, TypeError, ValueError) as error:
            raise CueError(f"stored cues are malformed ({error}); fit the direction again") from None
        shapes = {model.centre.shape, model.spread.shape, model.sign.shape}
        required = [CUE_NAMES.index(name) for name in REQUIRED_CUES]
        if shapes != {(len(CUE_NAMES),)} or len(model.labels) != 2 or not (model.spread[required] > 0).all():
            raise CueError("stored cues are malformed (expected pitch and narrow spacing with positive spreads)")
        return model


def fit_cues(cues: np.ndarray, labels: Sequence[str], labels_order: tuple[str, str]) -> CueModel:
    """(n, 3) measured cues (NaN: not measured) of files labelled `labels` (each one of `labels_order`,
    (negative, positive)) -> CueModel. CueError when pitch or the narrow spacing is measured on fewer than 2
    files of a class; the wideband spacing is then left out of the model instead (NaN)."""
    cues = np.asarray(cues, dtype=np.float64)
    labels = np.asarray(labels)
    logs = np.log(np.where(cues > 0, cues, np.nan))
    count = len(CUE_NAMES)
    centre, spread, sign = np.full(count, np.nan), np.full(count, np.nan), np.full(count, np.nan)
    files = []
    for c, name in enumerate(CUE_NAMES):
        measured = np.isfinite(logs[:, c])
        files.append(int(measured.sum()))
        chosen = [measured & (labels == label) for label in labels_order]
        short = [(label, int(mask.sum())) for label, mask in zip(labels_order, chosen) if mask.sum() < 2]
        if short:
            if name in REQUIRED_CUES:
                label, found = short[0]
                raise CueError(f"{name} measured on {found} file(s) labelled {label!r}; at least 2 are needed")
            continue
        means = [logs[mask, c].mean() for mask in chosen]
        residuals = np.concatenate([logs[mask, c] - mean for mask, mean in zip(chosen, means)])
        centre[c], spread[c] = (means[0] + means[1]) / 2, max(float(residuals.std()), 1e-6)
        sign[c] = 1.0 if means[1] >= means[0] else -1.0
    return CueModel(centre, spread, sign, (str(labels_order[0]), str(labels_order[1])), tuple(files))


def cue_spreads(model: CueModel, cues: np.ndarray) -> np.ndarray:
    """(n, 3) or (3,) measured cues -> (n, 3) each cue's distance from the model's centre in its spreads,
    positive towards the positive label (NaN where not measured or not in the model)."""
    cues = np.atleast_2d(np.asarray(cues, dtype=np.float64))
    logs = np.log(np.where(cues > 0, cues, np.nan))
    return model.sign * (logs - model.centre) / model.spread


def pitch_and_spacing(model: CueModel, cues: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 3) or (3,) measured cues -> (n,) pitch in spreads, (n,) spacing in spreads, (n,) bool narrow: the
    wideband spacing where it was measured and is in the model, else the narrow-band one."""
    spreads = cue_spreads(model, cues)
    narrow = ~np.isfinite(spreads[:, 1])
    return spreads[:, 0], np.where(narrow, spreads[:, 2], spreads[:, 1]), narrow


__all__ = ["CUE_NAMES", "CUE_SAMPLE_RATE", "CueError", "CueModel", "band_limited", "cue_spreads", "fit_cues",
           "measure_cues", "pitch_and_spacing"]
