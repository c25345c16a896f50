"""Voice activity detection: keep only the speech of a recording (silero-vad, weights shipped in its wheel).

Used where a whole file stands for one speaker (enrollment, search by example): silence and noise would
otherwise pull the speaker embedding towards "no one". Diarization itself finds speech with its
segmentation model instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

VAD_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Speech:
    """The speech of one recording: `samples` (num_samples,) float32 at `sample_rate`, the kept regions
    concatenated in order; `regions` their (start, end) times in seconds in the original recording."""

    samples: np.ndarray
    sample_rate: int
    regions: list[tuple[float, float]]

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


@lru_cache(maxsize=1)
def _silero():
    # The ONNX build of the model: same output as the TorchScript one, ~4x faster on CPU, one thread.
    from .privacy import quiet_dependencies

    quiet_dependencies()  # onnxruntime's uploader starts when its library loads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from silero_vad import load_silero_vad

        return load_silero_vad(onnx=True)


def speech_regions(samples: np.ndarray, sample_rate: int = VAD_SAMPLE_RATE, *, threshold: float = 0.5,
                   min_speech: float = 0.25, min_silence: float = 0.1, pad: float = 0.03) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in a 16 kHz mono waveform; silero-vad's defaults for the knobs."""
    if sample_rate != VAD_SAMPLE_RATE:
        raise ValueError(f"speech_regions needs {VAD_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    import torch
    from silero_vad import get_speech_timestamps

    if len(samples) < 512:  # shorter than one VAD window
        return []
    stamps = get_speech_timestamps(
        torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), _silero(), threshold=threshold,
        sampling_rate=sample_rate, min_speech_duration_ms=int(min_speech * 1000),
        min_silence_duration_ms=int(min_silence * 1000), speech_pad_ms=int(pad * 1000),
    )
    return [(stamp["start"] / sample_rate, stamp["end"] / sample_rate) for stamp in stamps]


def keep_speech(samples: np.ndarray, sample_rate: int = VAD_SAMPLE_RATE, **options) -> Speech:
    """The speech of a waveform, concatenated (see `speech_regions` for the options)."""
    regions = speech_regions(samples, sample_rate, **options)
    pieces = [samples[int(round(start * sample_rate)):int(round(end * sample_rate))] for start, end in regions]
    kept = np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, dtype=np.float32)
    return Speech(kept, sample_rate, regions)
