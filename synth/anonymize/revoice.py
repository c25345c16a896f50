"""Re-voicing a recording from its transcript: every diarized speaker's words, spoken by a pseudo-voice.

    INPUT --diarize--> who spoke when          transcript --> what was said, when
            each transcript segment -> the diarized speaker overlapping it most -> that speaker's pseudo vector
            Qwen3-TTS (x-vector-only prompt) speaks the segment's text in that voice
            the speech is fitted to the segment's duration and placed at its start

How the output is assembled (at the input's own sample rate and exactly its number of samples):

- fitting: the synthesized speech is time-stretched with WSOLA (pitch kept) to the segment's length, so turn
  timing is kept; the stretch ratio is limited to MAX_STRETCH either way (beyond that speech stops being
  intelligible), and what is still too short is padded with silence at the end, what is still too long is
  cut with a short fade. Generation is capped at the frames the longest allowed stretch can use;
- everything outside transcript segments is digital silence. Nothing of the original signal is copied into
  the output, not even its background: any original sound could carry speech that diarization or the
  transcript missed, and with it the real voice;
- overlapping transcript segments (double talk) are summed; the whole output is scaled down, never clipped,
  if a peak passes full scale.

Who speaks a segment: the diarized label with the most overlap inside it; if none overlaps, the label of
the nearest diarized turn; if diarization found no speech at all, the transcript's own speaker label. The
transcript's labels need not match diarization's.

The sidecar maps each label to the pseudo-voice's drawn parameters (seed, orthonormal draw index, vector
norm) and lists the segments' times and voices; it holds no vector and nothing of the original but the
single calibration norm (see pseudo_voices).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..tts.fitting import MAX_STRETCH, fit_to_length, frame_budget
from .transcripts import TranscriptSegment, check_within, read_transcript
from .pseudo_voices import draw_vectors, typical_norm

#: what the sidecar says about fitting
FIT_DESCRIPTION = (f"WSOLA time-stretch to the segment's duration, ratio limited to 1/{MAX_STRETCH:g}-{MAX_STRETCH:g}; "
                   "then silence padded at the end or trimmed with a fade")


@dataclass
class PlacedSegment:
    start: float  # seconds, from the transcript
    end: float
    speaker: str  # the diarized label whose pseudo-voice speaks it
    length_ratio: float  # synthesized duration / segment duration, before fitting (1.0: no stretch needed)
    vector: np.ndarray = field(repr=False)  # (dim,) the pseudo vector used; in memory only, never written

    def as_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker,
                "length_ratio": round(self.length_ratio, 3)}


@dataclass
class RevoiceResult:
    samples: np.ndarray  # (num_samples,) float32 at sample_rate: exactly the input's length
    sample_rate: int
    seed: int
    vector_norm: float
    vectors: dict[str, np.ndarray]  # label -> (dim,) pseudo vector; in memory only
    segments: list[PlacedSegment]
    speech_seconds: dict[str, float]  # diarized speech per label
    model: str = ""
    annotation: object = None  # the diarization the voices were assigned from (times and labels only)

    def sidecar(self, source: str | None = None) -> dict:
        """Drawn parameters per label and the segments' times and voices; no vector, no original embedding."""
        order = sorted(self.vectors)
        speakers = {label: {"seed": self.seed, "voice_index": order.index(label), "of_voices": len(order),
                            "vector_norm": round(self.vector_norm, 4),
                            "segments": sum(s.speaker == label for s in self.segments),
                            "speech_seconds": round(self.speech_seconds.get(label, 0.0), 2)}
                    for label in order}
        return {"input": source, "method": "tts", "seed": self.seed, "sample_rate": self.sample_rate,
                "num_samples": int(len(self.samples)), "tts_model": self.model, "fit": FIT_DESCRIPTION,
                "speakers": speakers, "segments": [segment.as_dict() for segment in self.segments]}


# -- who speaks each segment ------------------------------------------------------------------------------------

def overlap_seconds(annotation, label: str, start: float, end: float) -> float:
    return sum(max(0.0, min(end, turn.end) - max(start, turn.start))
               for turn in annotation.label_timeline(label).support())


def _distance(annotation, label: str, start: float, end: float) -> float:
    return min((max(turn.start - end, start - turn.end, 0.0) for turn in annotation.label_timeline(label)),
               default=math.inf)


def assign_speaker(segment: TranscriptSegment, annotation) -> str:
    """The diarized label overlapping `segment` most, else the nearest one, else the transcript's label."""
    labels = sorted(str(label) for label in annotation.labels())
    if not labels:
        return segment.speaker or "speaker"
    overlaps = {label: overlap_seconds(annotation, label, segment.start, segment.end) for label in labels}
    best = max(labels, key=lambda label: (overlaps[label], -labels.index(label)))
    if overlaps[best] > 0:
        return best
    return min(labels, key=lambda label: _distance(annotation, label, segment.start, segment.end))


# -- synthesis and assembly -------------------------------------------------------------------------------------

def segment_generator(seed: int, index: int) -> torch.Generator:
    """Sampling generator for one segment: the output is reproducible for a seed, whatever ran before."""
    mixed = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(mixed))


def speak(synthesizer, segment: TranscriptSegment, vector: np.ndarray, *, seed: int, index: int,
          language: str = "auto") -> np.ndarray:
    """The segment's text in `vector`'s voice: (n,) float32 at the synthesizer's rate (24 kHz)."""
    audio, _ = synthesizer.synthesize(segment.text, vector, language=language,
                                      generator=segment_generator(seed, index),
                                      max_new_tokens=frame_budget(segment.duration))
    return audio


def place(out: np.ndarray, speech: np.ndarray, speech_rate: int, segment: TranscriptSegment,
          sample_rate: int) -> float:
    """Add `speech` (at `speech_rate`), fitted to `segment`, into `out` (at `sample_rate`), in place.

    Returns the length ratio before fitting (synthesized / segment duration).
    """
    import soxr

    start = int(round(segment.start * sample_rate))
    end = min(int(round(segment.end * sample_rate)), len(out))
    if end <= start:
        return 0.0
    if speech_rate != sample_rate and len(speech):
        speech = soxr.resample(speech.astype(np.float64), speech_rate, sample_rate)
    out[start:end] += fit_to_length(np.asarray(speech, dtype=np.float64), end - start, sample_rate)
    return len(speech) / (end - start)


def speaker_speech(samples: np.ndarray, sample_rate: int, annotation, target_rate: int = 24000) -> list[np.ndarray]:
    """Each diarized speaker's speech, concatenated and resampled to `target_rate`: [(n_k,) float32]."""
    import soxr

    pieces = []
    for label in sorted(annotation.labels()):
        turns = [samples[int(turn.start * sample_rate):int(turn.end * sample_rate)]
                 for turn in annotation.label_timeline(label).support()]
        joined = np.concatenate(turns) if turns else np.zeros(0, dtype=np.float32)
        pieces.append(soxr.resample(joined, sample_rate, target_rate).astype(np.float32) if len(joined) else joined)
    return pieces


def speaker_speech_fallback(samples: np.ndarray, sample_rate: int, target_rate: int = 24000) -> np.ndarray:
    """The whole recording at `target_rate`: what calibrates the norm when diarization found no speech."""
    import soxr

    return soxr.resample(samples, sample_rate, target_rate).astype(np.float32)


def revoice_samples(num_samples: int, sample_rate: int, segments: list[TranscriptSegment], annotation,
                    synthesizer, *, seed: int, vector_norm: float, language: str = "auto",
                    on_segment=None) -> RevoiceResult:
    """Silence of `num_samples` at `sample_rate` with each segment spoken in its diarized speaker's pseudo-voice.

    `on_segment(index, total)` is called after each segment (progress reporting).
    """
    speakers = [assign_speaker(segment, annotation) for segment in segments]
    labels = sorted(set(speakers) | {str(label) for label in annotation.labels()})
    vectors = draw_vectors(labels, seed, synthesizer.speaker_dim, vector_norm)
    out = np.zeros(num_samples)
    placed = []
    for index, (segment, label) in enumerate(zip(segments, speakers)):
        speech = speak(synthesizer, segment, vectors[label], seed=seed, index=index, language=language)
        ratio = place(out, speech, synthesizer.sample_rate, segment, sample_rate)
        placed.append(PlacedSegment(segment.start, segment.end, label, ratio, vectors[label]))
        if on_segment is not None:
            on_segment(index + 1, len(segments))
    peak = float(np.max(np.abs(out))) if num_samples else 0.0
    if peak > 0.999:  # summed double talk can pass full scale; scaling keeps it undistorted
        out *= 0.999 / peak
    seconds = {str(label): float(annotation.label_duration(label)) for label in annotation.labels()}
    return RevoiceResult(out.astype(np.float32), sample_rate, seed, vector_norm, vectors, placed, seconds,
                         annotation=annotation)


def write_revoiced(result: RevoiceResult, out_path: str | os.PathLike, source: str | None = None) -> Path:
    """OUT (16-bit PCM at the input's rate) and OUT.json, as the signal-processing methods write them."""
    from .recording import write_audio_and_sidecar

    return write_audio_and_sidecar(out_path, result.samples, result.sample_rate, result.sidecar(source))


def _at_16k(waveform):
    """The waveform at the diarizer's 16 kHz (resampled only when the input has another rate)."""
    from diarize.audio import SAMPLE_RATE, Waveform

    if waveform.sample_rate == SAMPLE_RATE:
        return waveform
    import soxr

    return Waveform(soxr.resample(waveform.samples, waveform.sample_rate, SAMPLE_RATE).astype(np.float32),
                    SAMPLE_RATE, waveform.uri)


def revoice_file(path: str | os.PathLike, out_path: str | os.PathLike, transcript: str | os.PathLike, *,
                 model: str | os.PathLike | None = None, synthesizer=None, seed: int | None = None,
                 diarizer=None, language: str = "auto", device: str = "cpu", on_segment=None) -> RevoiceResult:
    """Re-voice `path` from `transcript` and write OUT plus OUT.json.

    Cheap checks come first, so a bad transcript, audio or checkpoint fails before diarization: the
    transcript is parsed, the audio read and the segments checked against its duration, then the TTS
    checkpoint (`model`, unless a loaded `synthesizer` is given) is loaded.
    """
    from .recording import native_waveform, random_seed

    seed = random_seed() if seed is None else int(seed)
    segments = read_transcript(transcript, recording=Path(path).stem)
    waveform = native_waveform(path)
    check_within(segments, len(waveform.samples) / waveform.sample_rate, str(transcript))
    if synthesizer is None:
        from ..tts import Synthesizer

        synthesizer = Synthesizer.load(model, device=device)
    if diarizer is None:
        from diarize.pipeline import Diarizer

        diarizer = Diarizer()
    at_16k = _at_16k(waveform)
    annotation = diarizer(at_16k).annotation
    speech = speaker_speech(at_16k.samples, at_16k.sample_rate, annotation)
    if not any(len(piece) for piece in speech):
        speech = [speaker_speech_fallback(at_16k.samples, at_16k.sample_rate)]
    norm = typical_norm(synthesizer.model, speech)
    result = revoice_samples(len(waveform.samples), waveform.sample_rate, segments, annotation, synthesizer,
                             seed=seed, vector_norm=norm, language=language, on_segment=on_segment)
    result.model = str(model) if model is not None else ""
    write_revoiced(result, out_path, source=str(path))
    return result

