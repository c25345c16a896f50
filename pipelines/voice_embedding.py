"""One voice vector from a recording of one speaker: its speech (silero-vad), at the encoder's rate, embedded
in pieces whose unit vectors are averaged. What `enroll`, `voices`, `search` and the voice directions share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cluster.vectors import unit_vectors

#: speech is embedded in pieces of at most this length and the unit vectors averaged, bounding memory
#: for long files while each piece is still long enough for a stable embedding
CHUNK_S = 30.0


class EnrollError(ValueError):
    """One line naming the input and the cause."""


class TooLittleSpeech(EnrollError):
    """A file with less speech than asked for; `seconds` of speech found in `total` seconds of audio."""

    def __init__(self, message: str, seconds: float, total: float):
        super().__init__(message)
        self.seconds = seconds
        self.total = total


def floor2(seconds: float) -> str:
    # rounded down, so 2.99 s never reads as enough ("only 3.00 s ... at least 3 s needed")
    return f"{math.floor(seconds * 100) / 100:.2f}"


@dataclass(frozen=True)
class SpeechEmbedding:
    vector: np.ndarray  # (dimension,) float32 raw (mean of the pieces' unit vectors)
    speech_seconds: float
    total_seconds: float


def speech_for_encoder(samples: np.ndarray, sample_rate: int, encoder, *, label: str,
                       min_speech: float) -> tuple[np.ndarray, float, float]:
    """The speech of a 16 kHz waveform (silero-vad), at the encoder's rate -> (speech samples, speech seconds,
    total seconds); EnrollError when it holds < `min_speech` s of speech."""
    from diarize.vad import keep_speech

    speech = keep_speech(samples, sample_rate)
    total = len(samples) / sample_rate
    if speech.seconds < min_speech or not len(speech.samples):  # no speech at all is never embeddable
        raise TooLittleSpeech(f"{label}: only {floor2(speech.seconds)} s of speech found in {total:.1f} s of audio "
                              f"(at least {min_speech:g} s needed)", speech.seconds, total)
    audio = speech.samples
    if encoder.sample_rate != sample_rate:  # resample at the encoder's door (Qwen3 wants 24 kHz)
        import soxr

        audio = soxr.resample(audio, sample_rate, encoder.sample_rate).astype(np.float32, copy=False)
    return audio, speech.seconds, total


def embed_speech_audio(audio: np.ndarray, encoder, *, label: str) -> np.ndarray:
    """(num_samples,) speech at the encoder's rate -> (dimension,) float32 raw vector: the mean of the unit
    vectors of its pieces of at most CHUNK_S."""
    step = int(CHUNK_S * encoder.sample_rate)
    starts = list(range(0, len(audio), step))
    # a short last piece would embed poorly: fold it into the previous one
    if len(starts) > 1 and len(audio) - starts[-1] < step // 3:
        starts.pop()
    bounds = list(zip(starts, starts[1:] + [len(audio)]))
    vectors = np.stack([encoder.embed(audio[a:b]) for a, b in bounds]).astype(np.float64)
    if not np.isfinite(vectors).all():
        raise EnrollError(f"{label}: the encoder returned non-finite values")
    units = unit_vectors(vectors)
    return units.mean(axis=0).astype(np.float32)


def file_speech(path: str, encoder, *, min_speech: float) -> tuple[np.ndarray, float, float]:
    """`speech_for_encoder` of an audio file; a file that cannot be decoded is an EnrollError."""
    from diarize.audio import AudioError, load_audio

    try:
        waveform = load_audio(path)
    except AudioError as error:
        raise EnrollError(str(error)) from None
    return speech_for_encoder(waveform.samples, waveform.sample_rate, encoder, label=path, min_speech=min_speech)


def embed_file(path: str, encoder, *, min_speech: float) -> SpeechEmbedding:
    audio, seconds, total = file_speech(path, encoder, min_speech=min_speech)
    return SpeechEmbedding(embed_speech_audio(audio, encoder, label=path), seconds, total)
