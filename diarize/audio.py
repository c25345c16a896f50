"""Decode any audio input into one 16 kHz mono float32 array, holding a single decoded copy.

soundfile reads wav/flac/ogg/mp3 block by block; each block is downmixed and fed to a streaming
resampler that writes into one growing output, so a long file is never held at its native rate or
channel count. Other containers (m4a, mp4, webm, ...) go through ffmpeg, which already emits
16 kHz mono float32 on a pipe.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".webm", ".mkv", ".wma", ".aiff", ".aif"}
)
_BLOCK_FRAMES = 1 << 18  # ~5 s at 48 kHz: small enough to bound memory, large enough to be fast

AudioInput = Union[str, os.PathLike, bytes, np.ndarray]


class AudioError(ValueError):
    """An input that cannot be turned into usable audio; the message is one line naming the input."""


@dataclass(frozen=True)
class Waveform:
    """A decoded recording: `samples` has shape (num_samples,), float32 in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    uri: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def uri_of(source: AudioInput, default: str = "audio") -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).stem
    return default


class _GrowingArray:
    """Append-only float32 buffer that doubles its capacity, so appends cost amortized O(1)."""

    def __init__(self, capacity: int):
        self._data = np.empty(max(capacity, 1024), dtype=np.float32)
        self._size = 0

    def append(self, block: np.ndarray) -> None:
        needed = self._size + len(block)
        if needed > len(self._data):
            grown = np.empty(max(needed, 2 * len(self._data)), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = block
        self._size = needed

    def finish(self) -> np.ndarray:
        if self._size != len(self._data):
            # Shrink in place (realloc) to release the spare capacity: a trimmed copy would briefly hold
            # the recording twice. No view of the buffer has escaped, so refcheck is not needed.
            self._data.resize(self._size, refcheck=False)
        return self._data


def _downmix(block: np.ndarray) -> np.ndarray:
    return block if block.ndim == 1 else block.mean(axis=1, dtype=np.float32)


@contextlib.contextmanager
def _native_stderr_quiet(active: bool):
    """Silence writes to file descriptor 2 from native code (libmpg123 prints frame warnings such as
    "part2_3_length too large" for MP3s it then decodes fine); a real failure still raises, with its cause."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _decode_with_soundfile(source, name: str, target_rate: int) -> np.ndarray:
    with _native_stderr_quiet(isinstance(source, str) and source.lower().endswith((".mp3", ".mp2", ".mpga"))):
        return _decode_blocks(source, name, target_rate)


def _decode_blocks(source, name: str, target_rate: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    try:
        handle = sf.SoundFile(source)
    except Exception as error:  # soundfile raises several types for unreadable input
        raise _NotSoundfile(str(error).splitlines()[0] if str(error) else type(error).__name__) from error
    with handle:
        rate = handle.samplerate
        if rate <= 0:
            raise AudioError(f"{name}: invalid sample rate {rate}")
        expected = int(handle.frames * target_rate / rate) + 16 if handle.frames > 0 else target_rate * 60
        output = _GrowingArray(expected)
        resampler = None if rate == target_rate else soxr.ResampleStream(rate, target_rate, 1, dtype="float32")
        try:
            while True:
                block = handle.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < _BLOCK_FRAMES
                mono = _downmix(block)
                output.append(mono if resampler is None else resampler.resample_chunk(mono, last=last))
                if last:
                    break
        except sf.LibsndfileError as error:
            raise AudioError(f"{name}: truncated or corrupt audio ({error})") from error
        except RuntimeError as error:
            raise AudioError(f"{name}: truncated or corrupt audio ({error})") from error
    return output.finish()


class _NotSoundfile(Exception):
    pass


def ffmpeg_executable() -> str:
    """The ffmpeg binary: the one on PATH, else the static build that ships in the imageio-ffmpeg wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as error:
        raise AudioError(f"ffmpeg is needed for this format but was not found ({error})") from error


def _decode_with_ffmpeg(path: str, name: str, target_rate: int) -> np.ndarray:
    command = [
        ffmpeg_executable(), "-nostdin", "-v", "error", "-i", path,
        # rematrix_maxval 1 makes ffmpeg's stereo->mono the channel mean, as in the soundfile path;
        # its default (0.707 per channel) is 3 dB louder and clips in-phase full-scale stereo
        "-vn", "-ac", "1", "-rematrix_maxval", "1.0", "-ar", str(target_rate), "-f", "f32le", "-",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = _GrowingArray(target_rate * 60)
    pending = b""
    assert process.stdout is not None
    while True:
        raw = process.stdout.read(1 << 20)
        if not raw:
            break
        raw = pending + raw
        usable = len(raw) - len(raw) % 4
        output.append(np.frombuffer(raw[:usable], dtype=np.float32))
        pending = raw[usable:]
    stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    if process.wait() != 0:
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else f"ffmpeg exited with {process.returncode}"
        raise AudioError(f"{name}: not readable as audio ({reason})")
    return output.finish()


def _from_array(array: np.ndarray, name: str, rate: int, target_rate: int) -> np.ndarray:
    import soxr

    array = np.asarray(array)
    if array.ndim not in (1, 2):
        raise AudioError(f"{name}: expected a 1-d or 2-d array, got shape {array.shape}")
    # scale integers before the downmix: the mean turns them into floats and the scale would be lost
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    if array.ndim == 2:
        # (channels, samples) when channels are few, else (samples, channels)
        array = array.T if array.shape[0] < array.shape[1] and array.shape[0] <= 8 else array
        array = array.mean(axis=1, dtype=np.float32)
    array = array.astype(np.float32, copy=False)
    if rate != target_rate and len(array):
        array = soxr.resample(array, rate, target_rate).astype(np.float32, copy=False)
    return array


def load_audio(source: AudioInput, *, sample_rate: int = SAMPLE_RATE, input_rate: int | None = None,
               name: str | None = None) -> Waveform:
    """Decode `source` (a path, encoded bytes, or a raw array with `input_rate`) to mono float32 at `sample_rate`.

    Raises AudioError with a one-line message naming the input for empty, unreadable, truncated,
    zero-length or non-finite audio.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<audio>")
    uri = uri_of(source) if name is None else Path(name).stem
    if isinstance(source, np.ndarray):
        if input_rate is None:
            raise AudioError(f"{label}: a raw array needs its sample rate (input_rate)")
        samples = _from_array(source, label, input_rate, sample_rate)
    elif isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError(f"{label}: empty input (0 bytes)")
        try:
            samples = _decode_with_soundfile(io.BytesIO(source), label, sample_rate)
        except _NotSoundfile as error:
            raise AudioError(f"{label}: not a readable audio stream ({error})") from error
    else:
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{label}: no such file")
        if path.is_dir():
            raise AudioError(f"{label}: is a folder, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(f"{label}: empty file (0 bytes)")
        try:
            samples = _decode_with_soundfile(str(path), label, sample_rate)
        except _NotSoundfile:
            samples = _decode_with_ffmpeg(str(path), label, sample_rate)
    if len(samples) == 0:
        raise AudioError(f"{label}: contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{label}: contains NaN or infinite samples")
    return Waveform(samples=samples, sample_rate=sample_rate, uri=uri)
