"""load_audio: every input kind becomes 16 kHz mono float32 with its signal intact; bad inputs fail in one line.

Test signals put a 440 Hz tone (amplitude 0.4) in the left channel and a 1000 Hz tone (amplitude 0.2)
in the right, so the downmix must be the channel mean (0.2 at 440 Hz, 0.1 at 1000 Hz): reading only
one channel, or summing them, gives other amplitudes.
"""

from __future__ import annotations

import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from diarize.audio import SAMPLE_RATE, AudioError, ffmpeg_executable, load_audio

LEFT_HZ, LEFT_AMP = 440.0, 0.4
RIGHT_HZ, RIGHT_AMP = 1000.0, 0.2
SECONDS = 2.0
# Lossless paths only quantize to 16 bits and pass soxr's flat passband: far below 1 %.
LOSSLESS_TOLERANCE = 0.01
# Lossy codecs at their default bit rates keep a steady tone within about 1 dB.
LOSSY_TOLERANCE = 10 ** (1 / 20) - 1


def two_tone(rate: int, seconds: float = SECONDS) -> np.ndarray:
    """(frames, 2) float32: left 440 Hz at 0.4, right 1000 Hz at 0.2."""
    t = np.arange(int(rate * seconds)) / rate
    left = LEFT_AMP * np.sin(2 * np.pi * LEFT_HZ * t)
    right = RIGHT_AMP * np.sin(2 * np.pi * RIGHT_HZ * t)
    return np.stack([left, right], axis=1).astype(np.float32)


def tone_amplitude(samples: np.ndarray, hz: float, rate: int = SAMPLE_RATE) -> float:
    """Amplitude of the `hz` component over the middle second, away from codec and resampler edges."""
    middle = samples[len(samples) // 2 - rate // 2 : len(samples) // 2 + rate // 2]
    t = np.arange(len(middle)) / rate
    return float(2 * abs(np.sum(middle * np.exp(-2j * np.pi * hz * t))) / len(middle))


def strongest_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def assert_two_tone(samples: np.ndarray, tolerance: float, seconds: float = SECONDS) -> None:
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / SAMPLE_RATE - seconds) < 0.05
    assert abs(strongest_frequency(samples) - LEFT_HZ) <= 1.0
    assert tone_amplitude(samples, LEFT_HZ) == pytest.approx(LEFT_AMP / 2, rel=tolerance)
    assert tone_amplitude(samples, RIGHT_HZ) == pytest.approx(RIGHT_AMP / 2, rel=tolerance)


def ffmpeg_encode(source, target, *codec_args: str) -> None:
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-y", "-i", str(source), *codec_args, str(target)],
                   check=True, timeout=60)


@pytest.mark.parametrize("container", ["wav", "flac", "ogg"])
def test_lossless_and_vorbis_files_become_16k_mono(tmp_path, container):
    path = tmp_path / f"tones.{container}"
    sf.write(path, two_tone(44100), 44100, subtype="PCM_16" if container != "ogg" else None)
    waveform = load_audio(path)
    assert waveform.sample_rate == SAMPLE_RATE and waveform.uri == "tones"
    # 44.1 kHz -> 16 kHz is exact for whole seconds: no sample may be lost or invented
    assert len(waveform.samples) == int(SECONDS * SAMPLE_RATE)
    assert_two_tone(waveform.samples, LOSSLESS_TOLERANCE if container != "ogg" else LOSSY_TOLERANCE)


def test_mp3_file(tmp_path):
    path = tmp_path / "tones.mp3"
    if "MP3" in sf.available_formats():
        sf.write(path, two_tone(44100), 44100, format="MP3")
    else:  # libsndfile < 1.1 cannot write MP3
        wav = tmp_path / "source.wav"
        sf.write(wav, two_tone(44100), 44100, subtype="PCM_16")
        ffmpeg_encode(wav, path)
    assert_two_tone(load_audio(path).samples, LOSSY_TOLERANCE)


def test_m4a_goes_through_ffmpeg(tmp_path):
    wav = tmp_path / "source.wav"
    sf.write(wav, two_tone(44100), 44100, subtype="PCM_16")
    path = tmp_path / "tones.m4a"
    ffmpeg_encode(wav, path, "-c:a", "aac", "-b:a", "128k")
    with pytest.raises(sf.LibsndfileError):
        sf.info(path)  # proves this case exercises the ffmpeg branch, not soundfile
    assert_two_tone(load_audio(path).samples, LOSSY_TOLERANCE)


def test_44k_stereo_int16_keeps_level_and_frequency(tmp_path):
    path = tmp_path / "int16.wav"
    frames = np.round(two_tone(44100) * 32767).astype(np.int16)
    sf.write(path, frames, 44100, subtype="PCM_16")
    samples = load_audio(path).samples
    assert len(samples) == 32000
    assert_two_tone(samples, LOSSLESS_TOLERANCE)


def test_8k_stereo_is_upsampled_without_inventing_content(tmp_path):
    path = tmp_path / "phone.wav"
    sf.write(path, two_tone(8000), 8000, subtype="PCM_16")
    samples = load_audio(path).samples
    assert len(samples) == int(SECONDS * SAMPLE_RATE)
    assert_two_tone(samples, LOSSLESS_TOLERANCE)
    # the source had nothing above 4 kHz; upsampling must not put energy there
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    above = spectrum[np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE) > 4200].sum()
    assert above / spectrum.sum() < 1e-4


def test_encoded_bytes_decode_like_the_file(tmp_path):
    path = tmp_path / "tones.flac"
    sf.write(path, two_tone(44100), 44100, subtype="PCM_16")
    from_bytes = load_audio(path.read_bytes(), name="upload.flac")
    assert from_bytes.uri == "upload"
    np.testing.assert_array_equal(from_bytes.samples, load_audio(path).samples)


def test_raw_arrays_need_and_use_their_rate():
    stereo_int16 = np.round(two_tone(44100) * 32767).astype(np.int16)
    assert_two_tone(load_audio(stereo_int16, input_rate=44100).samples, LOSSLESS_TOLERANCE)
    channels_first = two_tone(8000).T.copy()  # (2, frames), as torchaudio returns it
    assert_two_tone(load_audio(channels_first, input_rate=8000).samples, LOSSLESS_TOLERANCE)
    with pytest.raises(AudioError, match="input_rate"):
        load_audio(two_tone(16000))


def _empty(path):
    path.write_bytes(b"")


def _no_frames(path):
    sf.write(path, np.zeros((0, 2), np.int16), 16000, subtype="PCM_16")


def _text(path):
    path.write_text("speaker,start,end\nalice,0.0,1.5\n")


def _nan(path):
    samples = two_tone(16000)[:, 0].copy()
    samples[100:110] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")


def _folder(path):
    path.mkdir()


def _missing(path):
    pass


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (_empty, "empty file"),
        (_no_frames, "no audio samples"),
        (_text, "not readable as audio"),
        (_nan, "NaN"),
        (_folder, "folder"),
        (_missing, "no such file"),
    ],
    ids=["empty", "zero-length", "text-as-wav", "nan", "folder", "missing"],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, make, cause):
    path = tmp_path / "bad input.wav"
    make(path)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and cause in message


def test_bad_bytes_name_the_input():
    with pytest.raises(AudioError, match=r"^<audio>: empty input"):
        load_audio(b"")
    with pytest.raises(AudioError, match=r"^upload\.wav: not a readable audio stream") as caught:
        load_audio(b"RIFF but not really a wave file", name="upload.wav")
    assert "\n" not in str(caught.value)


def test_truncated_flac_is_an_error_not_a_shorter_recording(tmp_path, wheel_call):
    """Decision: a FLAC cut short is refused, not decoded up to the cut.

    Diarizing the readable half would return a confident answer about a recording that is not the
    one the user has; an error names the file and a batch records it and goes on. (libsndfile
    reports FLAC's lost sync on every cut point we tried: 10 % to 99.9 % of the file.)
    """
    samples, rate = sf.read(wheel_call, dtype="int16")
    sf.write(tmp_path / "call.flac", samples, rate, subtype="PCM_16")
    whole = (tmp_path / "call.flac").read_bytes()
    path = tmp_path / "call-cut.flac"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: truncated or corrupt audio")


def test_long_file_is_decoded_into_a_single_copy(tmp_path):
    """20 minutes of 48 kHz stereo: the peak of traced numpy memory stays near one 16 kHz mono output.

    The bound is 1.5x the output: the output plus bounded per-block buffers (a few MB) and the
    finiteness mask (0.25x). Any second full-length copy, even a final trim of the 16 kHz result,
    would reach 2x; one at the native rate and channel count, 6x.
    """
    rate, minutes = 48000, 20
    path = tmp_path / "long.wav"
    t = np.arange(rate * 10) / rate
    block = np.stack([0.3 * np.sin(2 * np.pi * LEFT_HZ * t)] * 2, axis=1).astype(np.float32)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        for _ in range(minutes * 6):
            out.write(block)
    del block, t
    try:
        tracemalloc.start()
        waveform = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()  # 230 MB: do not leave it for pytest's kept temp folders
    assert len(waveform.samples) == minutes * 60 * SAMPLE_RATE
    assert peak < 1.5 * waveform.samples.nbytes, f"peak {peak / 1e6:.0f} MB for a {waveform.samples.nbytes / 1e6:.0f} MB output"
