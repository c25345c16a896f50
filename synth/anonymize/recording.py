"""Per-speaker consistent anonymization of one recording: diarize, then give each speaker a pseudo-voice.

How a recording is put back together (at its own sample rate, so the output has exactly its rate and
number of samples):

- each diarized speaker k gets a pseudo-voice drawn from (seed, its rank among the recording's labels);
  every region that k owns (below; padded by 0.25 s so the transform has context) is transformed with it;
- the output is sum_k w_k(t) T_k(x)(t) + w_bg(t) B(x)(t), with w_k where speaker k owns the signal,
  smoothed by a 20 ms raised-cosine ramp (no clicks at turn edges);
- in double talk one transform owns the mixture: the speaker who already held the floor (whose turn started
  first). Its pitch and envelope move then apply to both voices alike, so the two stay two voices. Summing
  each speaker's transform of the mixture at half weight would give four pitch tracks at half level, and
  the anonymized recording's diarization would lose much of the double talk
  (docs/anonymization-experiments.md). The overlap is never the raw signal;
- a narrowband input (telephone-band speech) keeps its band: the output is cut at the input's band edge,
  where the LPC transforms would otherwise put energy the channel never carried;
- w_bg = 1 - sum_k w_k covers what diarization calls non-speech. It is lightly processed (McAdams with a
  fixed alpha), not left raw: speech that diarization misses would otherwise keep the real voice.

The sidecar maps labels to drawn parameters only (alpha, target pitch, formant scale): nothing measured
from the speakers (no embedding, no original pitch) is written.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .voice_transforms import (DEFAULT_METHOD, METHODS, PseudoVoice, keep_bandwidth, lpc_warp, median_f0,
                               occupied_bandwidth, transform)

#: McAdams alpha range of the VoicePrivacy baseline's random variant, and the lower one of method "strong"
ALPHA_RANGES = {"strong": (0.6, 0.75)}
ALPHA_RANGE = (0.75, 0.9)
#: target median pitch range (Hz), covering low male to high female voices
F0_RANGE = (90.0, 240.0)
#: envelope warp around the value that matches the target pitch (see draw_pseudo_voices)
FORMANT_JITTER = (0.94, 1.06)
#: method "warp": formant scales spread over this range in slots of their own, independent of the pitch
WIDE_FORMANT_RANGE = (0.8, 1.25)
#: pitch slots of different speakers in one recording are at least this many semitones apart
MIN_F0_GAP_SEMITONES = 2.0
#: method "spread": |log2 formant_scale| in [margin, max], so no speaker keeps its own vocal tract. 20-40 %
#: (about a child's to a large man's vocal tract from an adult's) hides speakers better than smaller moves at
#: about the same DER against the original; larger ones gained nothing (docs/anonymization-experiments.md)
SPREAD_FORMANT_LOG2 = (np.log2(1.2), np.log2(1.4))
BACKGROUND_ALPHA = 0.85
#: an input whose spectrum ends below this share of Nyquist (telephone-band speech at 16 kHz: about 3.9 of
#: 8 kHz) is narrowband: the output is cut at the input's band edge. The LPC transforms otherwise fill the
#: empty band (the residual is whitened there, and an upward formant warp moves the band edge up), and the
#: anonymized call's diarization then misses much of the speech (docs/anonymization-experiments.md)
NARROWBAND_SHARE = 0.6
CONTEXT_SECONDS = 0.25
RAMP_SECONDS = 0.02


def draw_pseudo_voices(labels, seed: int, method: str = "combined") -> dict[str, PseudoVoice]:
    """One pseudo-voice per label, deterministic for (seed, set of labels).

    Target pitches are spread over F0_RANGE on a log scale: the range is cut into one slot per speaker,
    slots are dealt to the (sorted) labels in a seeded random order and a pitch is drawn inside each, so two
    speakers of one recording never get pitches closer than the slot width allows (distinguishable), while
    the assignment itself is random. Method "warp" spreads formant scales over WIDE_FORMANT_RANGE the same
    way, independently of the pitch. Otherwise the formant scale follows the target pitch on average
    ((f0 / 150) ** 0.3, roughly how formants and pitch co-vary between men and women) with a random jitter,
    so pseudo-voices sound like plausible vocal tracts rather than chipmunks.
    """
    ordered = sorted(str(label) for label in labels)
    if method == "spread":
        return _spread(ordered, seed)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, len(ordered)])
    low, high = np.log2(F0_RANGE[0]), np.log2(F0_RANGE[1])
    width = (high - low) / max(len(ordered), 1)
    margin = min(MIN_F0_GAP_SEMITONES / 12.0 / 2.0, width / 4.0)
    slots = rng.permutation(len(ordered))
    # a stream of its own, so that adding this method left every other method's draws unchanged
    wide = np.random.default_rng([int(seed) & 0xFFFFFFFF, len(ordered), 1])
    wide_low, wide_high = np.log2(WIDE_FORMANT_RANGE[0]), np.log2(WIDE_FORMANT_RANGE[1])
    wide_width = (wide_high - wide_low) / max(len(ordered), 1)
    wide_slots = wide.permutation(len(ordered))
    voices = {}
    for label, slot, wide_slot in zip(ordered, slots, wide_slots):
        f0 = 2.0 ** rng.uniform(low + slot * width + margin, low + (slot + 1) * width - margin)
        alpha = rng.uniform(*ALPHA_RANGES.get(method, ALPHA_RANGE))
        scale = (f0 / 150.0) ** 0.3 * rng.uniform(*FORMANT_JITTER)
        if method == "warp":
            scale = 2.0 ** wide.uniform(wide_low + wide_slot * wide_width, wide_low + (wide_slot + 1) * wide_width)
        voices[label] = PseudoVoice(float(alpha), float(f0), float(scale))
    return voices


def _spread(ordered: list[str], seed: int) -> dict[str, PseudoVoice]:
    """Method "spread": the k sorted labels are dealt, in a seeded random order, to positions u evenly
    spaced over [-1, 1]; u sets both the pitch slot (low to high) and the direction of the formant warp
    (down for u < 0, up for u > 0, a random direction at u = 0), whose size is drawn in SPREAD_FORMANT_LOG2.
    So the pseudo-voices of one recording sit at opposite corners of (pitch, vocal tract) space rather than
    wherever independent draws put them, and no speaker keeps its own vocal tract (|log2 scale| >= margin).
    The deal is random rather than by the speakers' own pitch: a deal by pitch keeps the speakers' order, a
    cue an attacker uses, and the reverse deal costs DER as well (docs/anonymization-experiments.md).
    """
    k = len(ordered)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, k, 2])
    low, high = np.log2(F0_RANGE[0]), np.log2(F0_RANGE[1])
    width = (high - low) / max(k, 1)
    margin = min(MIN_F0_GAP_SEMITONES / 12.0 / 2.0, width / 4.0)
    voices = {}
    for label, slot in zip(ordered, rng.permutation(k)):
        f0 = 2.0 ** rng.uniform(low + slot * width + margin, low + (slot + 1) * width - margin)
        u = 2.0 * slot / (k - 1) - 1.0 if k > 1 else 0.0
        sign = np.sign(u) if abs(u) > 1e-9 else rng.choice([-1.0, 1.0])
        scale = 2.0 ** (sign * rng.uniform(*SPREAD_FORMANT_LOG2))
        voices[label] = PseudoVoice(1.0, float(f0), float(scale))
    return voices


def _smooth_mask(active: np.ndarray, ramp: int) -> np.ndarray:
    """0/1 activity -> the same with raised-cosine edges `ramp` samples long, centred on each edge."""
    if ramp < 2:
        return active.astype(np.float64)
    kernel = np.hanning(ramp + 2)[1:-1]
    kernel /= kernel.sum()
    return np.clip(np.convolve(active.astype(np.float64), kernel, mode="same"), 0.0, 1.0)


def owned_samples(actives: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per label, the samples whose signal its transform renders: (num_samples,) bool each.

    Alone, a speaker owns its speech. Where several talk, the one whose current turn started first owns it
    (ties: the first label in `actives`' order). Membership only changes at turn edges, so the decision is
    made once per stretch between edges, not per sample."""
    labels = list(actives)
    if len(labels) < 2:
        return {label: active.copy() for label, active in actives.items()}
    starts, edges = {}, set()
    for label, active in actives.items():
        change = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
        starts[label] = change[0::2]
        edges.update(change.tolist())
    owned = {label: active.copy() for label, active in actives.items()}
    bounds = sorted(edges)
    for begin, end in zip(bounds[:-1], bounds[1:]):
        talking = [label for label in labels if actives[label][begin]]
        if len(talking) < 2:
            continue
        # the start of each talker's current turn: the last turn start at or before `begin`
        turn_start = [starts[label][np.searchsorted(starts[label], begin, side="right") - 1] for label in talking]
        holder = talking[int(np.argmin(turn_start))]
        for label in talking:
            if label != holder:
                owned[label][begin:end] = False
    return owned


def _regions(active: np.ndarray, pad: int) -> list[tuple[int, int]]:
    """Runs of True in `active`, each padded by `pad` samples, merged where the padding meets."""
    edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    merged: list[list[int]] = []
    for start, end in zip(starts - pad, ends + pad):
        start, end = max(int(start), 0), min(int(end), len(active))
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


@dataclass
class AnonymizationResult:
    samples: np.ndarray  # (num_samples,) float32 at sample_rate, as long as the input
    sample_rate: int
    seed: int
    method: str
    voices: dict[str, PseudoVoice]
    speech_seconds: dict[str, float]
    annotation: object = None  # the diarization the pseudo-voices were assigned to (times and labels only)

    def sidecar(self, source: str | None = None) -> dict:
        """What is safe to keep beside the output: drawn parameters per label, never anything measured."""
        return {"input": source, "method": self.method, "seed": self.seed, "sample_rate": self.sample_rate,
                "num_samples": int(len(self.samples)),
                "speakers": {label: {**voice.as_dict(self.method),
                                     "speech_seconds": round(self.speech_seconds[label], 2)}
                             for label, voice in self.voices.items()}}


def anonymize_samples(samples: np.ndarray, sample_rate: int, annotation, *, seed: int,
                      method: str = DEFAULT_METHOD) -> AnonymizationResult:
    """Anonymize mono `samples` at `sample_rate` given its diarization `annotation` (pyannote, overlapping)."""
    if method not in METHODS:
        raise ValueError(f"unknown anonymization method {method!r} (choose from {', '.join(METHODS)})")
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    labels = sorted(str(label) for label in annotation.labels())
    ramp = int(RAMP_SECONDS * sample_rate)
    actives = {}
    for label in labels:
        active = np.zeros(n, dtype=bool)
        for segment in annotation.label_timeline(label).support():
            active[int(round(segment.start * sample_rate)) : int(round(segment.end * sample_rate))] = True
        actives[label] = active
    owned = owned_samples(actives)
    masks = {label: _smooth_mask(owned[label], ramp) for label in labels}
    regions = {label: _regions(owned[label], int(CONTEXT_SECONDS * sample_rate)) for label in labels}
    source_f0 = {}
    for label in labels:
        # the speaker's own pitch, over all its speech (double talk included), sets how far to move it to
        # the drawn target
        pieces = [x[s:e] for s, e in _regions(actives[label], int(CONTEXT_SECONDS * sample_rate))]
        source_f0[label] = median_f0(np.concatenate(pieces), sample_rate) if pieces and method != "mcadams" else None
    voices = draw_pseudo_voices(labels, seed, method)
    total = sum(masks.values()) if masks else np.zeros(n)
    share = 1.0 / np.maximum(total, 1.0)  # where one owner hands over to the next, keep the weights' sum <= 1
    out = np.zeros(n)
    covered = np.zeros(n)
    speech_seconds = {}
    for label in labels:
        weight = masks[label] * share
        speech_seconds[label] = float(annotation.label_duration(label))
        for start, end in regions[label]:
            out[start:end] += weight[start:end] * transform(x[start:end], sample_rate, voices[label], method,
                                                            source_f0=source_f0[label])
        covered += weight
    background = np.clip(1.0 - covered, 0.0, 1.0)
    for start, end in _regions(background > 1e-6, int(CONTEXT_SECONDS * sample_rate)):
        out[start:end] += background[start:end] * lpc_warp(x[start:end], sample_rate, alpha=BACKGROUND_ALPHA)
    bandwidth = occupied_bandwidth(x, sample_rate)
    if bandwidth < NARROWBAND_SHARE * sample_rate / 2:
        out = keep_bandwidth(out, sample_rate, bandwidth)
    peak = float(np.max(np.abs(out))) if n else 0.0
    if peak > 0.999:  # a transform can raise a peak; scale rather than clip, clipping adds distortion
        out *= 0.999 / peak
    return AnonymizationResult(out.astype(np.float32), sample_rate, seed, method, voices, speech_seconds, annotation)


def native_waveform(path: str | os.PathLike):
    """The input as mono float32 at its own sample rate (soundfile formats), or at 16 kHz where only ffmpeg
    can decode it (those containers have no rate we could write back to WAV anyway)."""
    import soundfile as sf

    from diarize.audio import SAMPLE_RATE, AudioError, load_audio

    path = Path(path)
    rate = SAMPLE_RATE
    if path.is_file() and path.stat().st_size > 0:
        try:
            rate = int(sf.info(str(path)).samplerate)
        except (RuntimeError, sf.LibsndfileError):
            rate = SAMPLE_RATE
    waveform = load_audio(path, sample_rate=rate)
    if rate != SAMPLE_RATE:
        try:
            expected = int(sf.info(str(path)).frames)
        except (RuntimeError, sf.LibsndfileError):
            expected = len(waveform.samples)
        if len(waveform.samples) != expected:
            raise AudioError(f"{path}: decoded {len(waveform.samples)} samples where the header says {expected}")
    return waveform


def write_audio_and_sidecar(out_path: str | os.PathLike, samples: np.ndarray, sample_rate: int, sidecar: dict) -> Path:
    """Write OUT (16-bit PCM at `sample_rate`) and OUT.json (`sidecar`), each to a temporary file renamed
    into place; on any failure neither is left behind."""
    import soundfile as sf

    from cluster.atomic_files import atomic_path, atomic_write_text

    out_path = Path(out_path)
    sidecar_path = out_path.with_suffix(".json")
    try:
        with atomic_path(out_path, suffix=out_path.suffix or ".wav") as temporary:
            sf.write(temporary, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16",
                     format=(out_path.suffix.lstrip(".") or "wav").upper())
            atomic_write_text(sidecar_path, json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n")
    except BaseException:
        sidecar_path.unlink(missing_ok=True)
        raise
    return out_path


def write_outputs(result: AnonymizationResult, out_path: str | os.PathLike, source: str | None = None) -> Path:
    """OUT and OUT.json of an anonymization (`write_audio_and_sidecar`)."""
    return write_audio_and_sidecar(out_path, result.samples, result.sample_rate, result.sidecar(source))


def random_seed() -> int:
    """A fresh seed when the user gives none: a fixed default would let anyone redraw every pseudo-voice."""
    return secrets.randbelow(2**31)


def anonymize_file(path: str | os.PathLike, out_path: str | os.PathLike, *, seed: int | None = None,
                   method: str = DEFAULT_METHOD, diarizer=None) -> AnonymizationResult:
    """Diarize `path`, anonymize it at its own rate and write OUT plus its OUT.json sidecar."""
    from diarize.audio import SAMPLE_RATE, Waveform
    from diarize.pipeline import Diarizer

    if method not in METHODS:
        raise ValueError(f"unknown anonymization method {method!r} (choose from {', '.join(METHODS)})")
    seed = random_seed() if seed is None else int(seed)
    waveform = native_waveform(path)
    if waveform.sample_rate == SAMPLE_RATE:
        for_diarization = waveform
    else:
        import soxr

        for_diarization = Waveform(soxr.resample(waveform.samples, waveform.sample_rate, SAMPLE_RATE)
                                   .astype(np.float32), SAMPLE_RATE, waveform.uri)
    diarization = (diarizer or Diarizer())(for_diarization)
    result = anonymize_samples(waveform.samples, waveform.sample_rate, diarization.annotation, seed=seed,
                               method=method)
    write_outputs(result, out_path, source=str(path))
    return result

