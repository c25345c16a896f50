"""Fitting synthesized speech into a transcript segment's duration, so a re-voiced turn keeps its timing.

The speech is time-stretched with WSOLA (pitch kept) to the segment's length. The ratio is limited to
MAX_STRETCH either way, because speech squeezed or spread further stops being intelligible; what is then
still too short is padded with silence at the end, what is still too long is cut. Both ends get a short
fade so the speech does not click in and out of the surrounding silence.
"""

from __future__ import annotations

import math

import numpy as np

from ..anonymize.voice_transforms import wsola_stretch

#: time-stretch ratios beyond this (either way) are not applied in full: silence pad / trim takes the rest
MAX_STRETCH = 2.0
#: raised-cosine fade at both ends of each placed segment, so speech does not click in and out of silence
FADE_SECONDS = 0.01
#: Qwen3-TTS 12 Hz codec frames per second
FRAME_RATE = 12.5


def frame_budget(duration: float) -> int:
    """Most codec frames worth generating for a segment of `duration` seconds (the longest usable stretch)."""
    return max(2, math.ceil(MAX_STRETCH * duration * FRAME_RATE) + 1)


def _fade(audio: np.ndarray, length: int) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of `length` samples each (shorter for very short audio)."""
    length = min(length, len(audio) // 2)
    if length < 2:
        return audio
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, length))
    audio = audio.copy()
    audio[:length] *= ramp
    audio[-length:] *= ramp[::-1]
    return audio


def fit_to_length(audio: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """(m,) speech -> (length,) speech: WSOLA stretch (ratio within MAX_STRETCH), then pad or trim; faded."""
    out = np.zeros(length)
    if len(audio) == 0 or length == 0:
        return out
    ratio = min(max(len(audio) / length, 1.0 / MAX_STRETCH), MAX_STRETCH)
    stretched = wsola_stretch(audio, max(1, int(round(len(audio) / ratio))), sample_rate)[:length]
    out[:len(stretched)] = _fade(stretched, int(FADE_SECONDS * sample_rate))
    return out
