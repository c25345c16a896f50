"""Voice transforms that need no weights: LPC pole warping (McAdams, formant scaling) and pitch shifting.

All functions take and return 1-D float arrays at any sample rate, with the output exactly as long as the
input, so a transformed region can be pasted back in place.

- `lpc_warp`: the VoicePrivacy McAdams baseline, re-written from its description: 20 ms Hann frames with a
  10 ms hop, LPC analysis, the residual kept, the angle of every complex pole moved, re-synthesis from the
  residual, overlap-add. Pole angle phi (radians at 16 kHz) becomes phi ** alpha; we express that on
  frequencies with the 16 kHz pivot (f_pivot = 16000 / 2 pi) so the same alpha means the same warp at any
  rate. On top of that, `formant_scale` warps the spectral envelope along frequency (`vtln_warp`: linear
  below a knee, > 1 moves formants up, as from a longer to a shorter vocal tract), as a gain on each
  frame's spectrum (`warp_envelope`) rather than by moving poles, which tilted the spectrum by up to 20 dB.
- `pitch_shift`: resample (pitch and formants scale by `ratio`, duration by 1/ratio) then WSOLA back to the
  original length. `lpc_warp(pitch_ratio=...)` applies it to the LPC residual (a flat spectrum, so nothing
  but the pitch moves), which is how `transform` changes pitch and envelope independently.
- `median_f0`: a plain autocorrelation pitch estimate, used to move each speaker to a drawn target pitch.
- `occupied_bandwidth`, `keep_bandwidth`: where an input's spectrum ends, and a low-pass there, so that a
  telephone-band recording stays telephone-band after the transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

#: McAdams is defined on pole angles in radians at 16 kHz; this is the frequency of angle 1 there
MCADAMS_PIVOT_HZ = 16000 / (2 * np.pi)


def _frames(length: int, size: int, hop: int) -> np.ndarray:
    """Start indices of frames of `size` every `hop` covering [0, length) (the signal is padded by the caller)."""
    return np.arange(0, max(length - size, 0) + 1, hop)


def _lpc(frame: np.ndarray, order: int) -> np.ndarray | None:
    """LPC polynomial [1, a1..ap] of a windowed frame (autocorrelation method), or None for a silent frame."""
    spectrum = np.fft.rfft(frame, 2 * len(frame))
    r = np.fft.irfft(np.abs(spectrum) ** 2)[: order + 1]
    if r[0] <= 1e-10:
        return None
    r[0] *= 1.0 + 1e-6  # white-noise correction: keeps the Toeplitz system well conditioned on tonal frames
    try:
        a = solve_toeplitz(r[:order], -r[1 : order + 1])
    except np.linalg.LinAlgError:
        return None
    return np.concatenate(([1.0], a))


def vtln_warp(freq: np.ndarray, nyquist: float, scale: float, knee: float = 0.8) -> np.ndarray:
    """Piecewise-linear frequency warp (as in VTLN): f -> scale * f up to a knee, then a straight line to
    (nyquist, nyquist). (n,) Hz -> (n,) Hz, monotonic, never past nyquist.

    A plain f -> scale * f with scale > 1 pushes the 6-8 kHz poles of a 16 kHz frame onto Nyquist, where a
    pole and its conjugate meet as one sharp resonance: measured on a male turn at scale 1.25, the 6-8 kHz
    band rose by 26 dB while the speech bands fell by 20-25 dB (frame energy is kept), and the diarizer lost
    most of that speaker's speech. With scale < 1 the top band was left empty instead. The knee sits at
    `knee` * nyquist / max(scale, 1) so the line above it always rises.
    """
    # above 8 kHz (rates over 16 kHz) there are no formants to move: the knee is placed as at 16 kHz
    corner = knee * min(nyquist, 8000.0) / max(scale, 1.0)
    upper = scale * corner + (nyquist - scale * corner) * (freq - corner) / (nyquist - corner)
    return np.where(freq <= corner, scale * freq, upper)


def _move_poles(a: np.ndarray, sample_rate: int, alpha: float, formant_scale: float) -> np.ndarray:
    """LPC polynomial [1, a1..ap] -> the same order with every complex pole frequency f moved to
    pivot * (vtln_warp(f) / pivot) ** alpha (formant scale, then McAdams); radii and real poles kept."""
    poles = np.roots(a)
    upper = np.imag(poles) > 1e-8
    if not upper.any():
        return a
    real = poles[np.abs(np.imag(poles)) <= 1e-8]
    freq = np.abs(np.angle(poles[upper])) * sample_rate / (2 * np.pi)
    freq = MCADAMS_PIVOT_HZ * (vtln_warp(freq, sample_rate / 2, formant_scale) / MCADAMS_PIVOT_HZ) ** alpha
    # keep poles strictly inside (0, nyquist): a pole pushed past it would fold back as a mirror image
    freq = np.clip(freq, 20.0, sample_rate / 2 * 0.98)
    moved = np.abs(poles[upper]) * np.exp(1j * 2 * np.pi * freq / sample_rate)
    return np.real(np.poly(np.concatenate((real, moved, np.conj(moved)))))


def lpc_warp(samples: np.ndarray, sample_rate: int, *, alpha: float = 1.0, formant_scale: float = 1.0,
             pitch_ratio: float = 1.0, frame_seconds: float = 0.02) -> np.ndarray:
    """Source-filter transform on 20 ms Hann frames (10 ms hop): move the LPC pole frequencies
    f -> pivot * (formant_scale * f / pivot) ** alpha, and shift the pitch of the LPC residual by pitch_ratio.

    alpha < 1 is the McAdams transform (frequencies below the ~2.5 kHz pivot go up, above it go down);
    formant_scale warps the envelope linearly. Pitch is moved on the residual (resample + WSOLA), which is
    spectrally flat, so the envelope (formants) stays where the pole warp puts it instead of moving with the
    pitch. Pole radii (bandwidths) and real poles are kept, so every synthesis filter stays stable. Each
    frame's output is scaled to the energy of its input: a moved pole changes the filter gain, and levels
    must not jump between frames.
    """
    x = np.asarray(samples, dtype=np.float64)
    if alpha == 1.0 and formant_scale == 1.0 and pitch_ratio == 1.0:
        return x.copy()
    size = max(int(round(frame_seconds * sample_rate)) // 2 * 2, 16)
    hop = size // 2
    order = int(round(4 + sample_rate / 1000))  # 20 at 16 kHz, as in the baseline; scales with bandwidth
    window = np.hanning(size + 1)[:-1]  # periodic Hann: frames at 50 % overlap sum to exactly 1
    padded = np.concatenate((np.zeros(size), x, np.zeros(size)))
    starts = _frames(len(padded), size, hop)
    filters: list[np.ndarray | None] = []
    energies = np.zeros(len(starts))
    residual = np.zeros_like(padded)
    # pass 1: per-frame envelope (LPC) and the residual signal, overlap-added back into one excitation
    for index, start in enumerate(starts):
        frame = padded[start : start + size] * window
        energies[index] = float(np.dot(frame, frame))
        a = _lpc(frame, order)
        filters.append(a)
        residual[start : start + size] += lfilter(a, [1.0], frame) if a is not None else frame
    if pitch_ratio != 1.0:
        residual = pitch_shift(residual, sample_rate, pitch_ratio)
    # pass 2: each frame of the (shifted) excitation through its frame's moved envelope; out[i + half]
    # holds padded[i], so a frame's envelope-warped copy (centred in 2 * size samples) fits at any start
    half = size // 2
    out = np.zeros(len(padded) + size)
    for index, start in enumerate(starts):
        excitation = residual[start : start + size] * window
        a = filters[index]
        if a is None:
            out[start + half : start + half + size] += excitation
            continue
        moved = _move_poles(a, sample_rate, alpha, 1.0) if alpha != 1.0 else a
        synthesized = np.zeros(2 * size)
        synthesized[half : half + size] = lfilter([1.0], moved, excitation)
        if formant_scale != 1.0:
            synthesized = warp_envelope(synthesized, moved, sample_rate, formant_scale)
        energy_out = float(np.dot(synthesized, synthesized))
        if energy_out > 1e-20 and np.isfinite(energy_out):
            synthesized *= np.sqrt(energies[index] / energy_out)
        else:
            synthesized[:] = 0.0
            synthesized[half : half + size] = excitation
        out[start : start + 2 * size] += synthesized
    return out[half + size : half + size + len(x)]


def warp_envelope(frame: np.ndarray, a: np.ndarray, sample_rate: int, scale: float) -> np.ndarray:
    """(n,) frame whose spectral envelope is 1 / |A(f)| -> (n,) the same frame with that envelope read at
    vtln_warp^-1(f), i.e. formants moved by `scale` below the knee, the fine structure (harmonics) kept.

    A zero-phase gain |A(f)| / |A(w^-1(f))| in the frequency domain rather than moving LPC poles: moved
    poles interact (measured: scale 1.12 lifted 4-8 kHz by 8-20 dB, 0.8 sank it by 15-23 dB, and the frame
    energy kept constant then pulled the speech bands down), while this gain leaves the level at 0 Hz and at
    Nyquist where it was. The frame is expected centred with zeros around it, so the short, symmetric
    impulse response of a smooth gain does not wrap around.
    """
    grid = np.fft.rfftfreq(len(frame), 1.0 / sample_rate)
    envelope = np.abs(np.fft.rfft(a, len(frame)))  # |A(f)|, the inverse of the envelope
    source = np.interp(grid, vtln_warp(grid, sample_rate / 2, scale), grid)  # w^-1(f)
    gain = envelope / np.maximum(np.interp(source, grid, envelope), 1e-9)
    return np.fft.irfft(np.fft.rfft(frame) * gain, len(frame))


def wsola_stretch(samples: np.ndarray, length: int, sample_rate: int, *, frame_seconds: float = 0.04,
                  tolerance_seconds: float = 0.01) -> np.ndarray:
    """Time-stretch to exactly `length` samples without changing pitch (waveform-similarity overlap-add).

    Output frames of 40 ms at a 20 ms hop are read from the input at the stretched position, shifted by up
    to +-10 ms to where the waveform best continues the previous frame, so periods line up and no phase
    smearing (as in a phase vocoder) blurs the voice.
    """
    x = np.asarray(samples, dtype=np.float64)
    size = max(int(frame_seconds * sample_rate) // 2 * 2, 32)
    hop = size // 2
    tolerance = int(tolerance_seconds * sample_rate)
    window = np.hanning(size + 1)[:-1]
    padded = np.concatenate((np.zeros(size + tolerance), x, np.zeros(2 * size + tolerance)))
    base = size + tolerance
    out = np.zeros(length + 2 * size)
    rate = len(x) / max(length, 1)
    natural = None  # where the input would continue after the previous frame
    position = 0
    while position < length + size:
        centre = base + int(round((position - hop) * rate))
        centre = min(max(centre, tolerance), len(padded) - size - tolerance)
        if natural is None:
            start = centre
        else:
            region = padded[centre - tolerance : centre + tolerance + size]
            target = padded[natural : natural + size]
            scores = np.correlate(region, target, mode="valid")
            start = centre - tolerance + int(np.argmax(scores))
        out[position : position + size] += padded[start : start + size] * window
        natural = start + hop
        position += hop
    return out[hop : hop + length]


def pitch_shift(samples: np.ndarray, sample_rate: int, ratio: float) -> np.ndarray:
    """Raise pitch (and, by the resampling, formants) by `ratio`; output has the input's length."""
    import soxr

    x = np.asarray(samples, dtype=np.float64)
    if abs(ratio - 1.0) < 1e-6 or len(x) < 64:
        return x.copy()
    # read at `ratio` times the speed: duration / ratio, every frequency * ratio
    squeezed = soxr.resample(x, sample_rate * ratio, sample_rate)
    return wsola_stretch(squeezed, len(x), sample_rate)


def occupied_bandwidth(samples: np.ndarray, sample_rate: int, *, floor_db: float = 50.0) -> float:
    """The highest frequency (Hz) at which the long-term spectrum (Welch, 64 ms segments) comes within
    `floor_db` of its peak: about 3.4-4 kHz for telephone-band speech, near Nyquist for wideband speech."""
    from scipy.signal import welch

    x = np.asarray(samples, dtype=np.float64)
    if len(x) < 16:
        return sample_rate / 2
    freq, power = welch(x, sample_rate, nperseg=min(len(x), int(0.064 * sample_rate)))
    level = 10 * np.log10(power + 1e-30)
    return float(freq[np.nonzero(level >= level.max() - floor_db)[0][-1]])


def keep_bandwidth(samples: np.ndarray, sample_rate: int, bandwidth: float) -> np.ndarray:
    """(n,) -> (n,) low-passed just above `bandwidth` Hz (zero phase), so a transform leaves no energy where
    the input's channel had none."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(samples, dtype=np.float64)
    cutoff = min(1.05 * bandwidth, 0.95 * sample_rate / 2)
    if len(x) < 64:
        return x.copy()
    return sosfiltfilt(butter(10, cutoff, fs=sample_rate, output="sos"), x)


def median_f0(samples: np.ndarray, sample_rate: int, *, fmin: float = 60.0, fmax: float = 450.0) -> float | None:
    """Median pitch (Hz) over the clearly voiced 40 ms frames, by normalized autocorrelation; None if unvoiced.

    Per frame, the lag is the shortest one whose normalized correlation is within 10 % of the best: a
    period of T also correlates at 2T, 3T, and taking the best alone picks those sub-octaves half the time.
    """
    x = np.asarray(samples, dtype=np.float64)
    size = int(0.04 * sample_rate)
    hop = int(0.01 * sample_rate)
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    starts = range(0, len(x) - size - hi, hop)
    if len(starts) < 5:
        return None
    energies = np.array([np.dot(x[s : s + size], x[s : s + size]) for s in starts])
    floor = energies.max() * 1e-3  # frames 30 dB under the loudest are silence or breath
    pitches = []
    for start, energy in zip(starts, energies):
        if energy < floor or energy <= 0:
            continue
        frame = x[start : start + size + hi]
        head = frame[:size]
        correlation = np.correlate(frame[: size + hi], head, mode="valid")  # lags 0..hi
        squares = np.cumsum(np.concatenate(([0.0], frame**2)))
        tail_energy = squares[size : size + hi + 1] - squares[: hi + 1]  # energy of frame[lag : lag + size]
        normalized = correlation / np.sqrt(energy * tail_energy + 1e-20)
        window = normalized[lo : hi + 1]
        best = float(window.max())
        if best < 0.7:  # clearly periodic only; noisy frames would pull the median around
            continue
        candidates = np.nonzero(window >= 0.9 * best)[0]
        # first local peak among the candidates: the shortest period that explains the frame
        lag = lo + int(candidates[0])
        while lag + 1 <= hi and normalized[lag + 1] > normalized[lag]:
            lag += 1
        pitches.append(sample_rate / lag)
    return float(np.median(pitches)) if len(pitches) >= 5 else None


@dataclass(frozen=True)
class PseudoVoice:
    """The parameters of one pseudo-voice: all drawn, none measured from the original speaker.

    alpha: McAdams coefficient; target_f0: pitch (Hz) the speaker's median pitch is moved to;
    formant_scale: envelope warp relative to the original."""

    alpha: float
    target_f0: float
    formant_scale: float

    def as_dict(self, method: str = "combined") -> dict:
        """The parameters `method` uses (the sidecar should not list a draw that shaped nothing)."""
        used = {"alpha": round(self.alpha, 4), "target_f0_hz": round(self.target_f0, 2),
                "formant_scale": round(self.formant_scale, 4)}
        if method in ("pitch", "warp", "spread"):
            del used["alpha"]
        if method == "mcadams":
            del used["target_f0_hz"], used["formant_scale"]
        return used


#: mcadams: the baseline alone; pitch: pitch target + formant warp; combined: both; strong: both, with a
#: lower McAdams alpha (a larger warp, traded against intelligibility and diarizability); warp: pitch target
#: + a wide formant warp drawn apart from the pitch, no McAdams; spread: pitch target + a formant warp of
#: 20-40 % (SPREAD_FORMANT_LOG2) whose direction follows the pitch slot, dealt per recording (synth.anonymize)
METHODS = ("mcadams", "pitch", "combined", "strong", "warp", "spread")
#: the best trade-off measured on a dev set of simulated conversations (docs/anonymization-experiments.md): above warp
#: for both attackers at the same DER against the original
DEFAULT_METHOD = "spread"


def transform(samples: np.ndarray, sample_rate: int, voice: PseudoVoice, method: str, *,
              source_f0: float | None) -> np.ndarray:
    """Apply `voice` to one region of speech; `source_f0`: the speaker's median pitch (None: no pitch move).

    mcadams: the baseline alone (alpha). pitch, warp and spread: pitch to target_f0 plus formant_scale, no
    McAdams (they differ in how the pseudo-voices are drawn).
    combined and strong: both (they differ in the alpha range their pseudo-voices are drawn from). Pitch is moved to an absolute target, so the original pitch (a strong identity cue)
    does not survive as an offset; pitch moves on the LPC residual, so formants do not move with it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown anonymization method {method!r} (choose from {', '.join(METHODS)})")
    x = np.asarray(samples, dtype=np.float64)
    ratio = 1.0
    if method != "mcadams" and source_f0:
        ratio = float(np.clip(voice.target_f0 / source_f0, 0.5, 2.0))  # beyond an octave speech breaks up
    alpha = voice.alpha if method not in ("pitch", "warp", "spread") else 1.0
    scale = voice.formant_scale if method != "mcadams" else 1.0
    return lpc_warp(x, sample_rate, alpha=alpha, formant_scale=scale, pitch_ratio=ratio)
