"""Simulated conversations from single-speaker recordings, with references exact by construction.

A conversation is a sequence of turns. Each turn is a piece of one speaker's recording, cut at pauses
(never inside a phrase), placed after a pause or, for about `overlap_fraction` of the turns, over the
end of the previous turn (true double talk), at a level jittered by +-`level_jitter_db`.

The reference follows the convention of `shared/data/simconv-dev`: speech is marked from the frame
energy of each source recording (20 ms frames), pauses of `min_pause` (0.3 s) or more inside a turn are
cut out and shorter ones bridged, so a system that bridges short pauses pays false alarm there.
By default a voiced frame must also lie in speech found by silero-vad on the clean source: the energy
rule alone marks the noisy pauses of some LibriSpeech readers as speech (19 % of reader 1688's
"speech" is breath and room noise that silero-vad and the segmentation model both reject), and a
reference should not. `vad_confirmed=False` (`--energy-only`) gives simconv-dev's convention exactly.
Times are exact to the sample and written in milliseconds.

    speakers = speakers_from_folder("../shared/data/speakers/librispeech-test-other")
    samples, reference = simulate_conversation(speakers, num_speakers=4, seed=7)
    write_simulated_set("sim", "../shared/data/speakers/librispeech-test-other", n=20, seed=0)
    python -m eval.simulate sim --speakers ../shared/data/speakers/librispeech-test-other -n 20 --seed 0
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diarize.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio

FRAME = 320  # 20 ms at 16 kHz: the frame of the simconv-dev references


@dataclass(frozen=True)
class SimulationConfig:
    """How conversations are drawn. Times in seconds, levels in dB."""

    overlap_fraction: float = 0.15  # share of turns after the first that start over the previous one
    overlap_range: tuple[float, float] = (0.2, 1.5)  # seconds of double talk when a turn overlaps
    pause_range: tuple[float, float] = (0.1, 1.0)  # silence between turns that do not overlap
    level_jitter_db: float = 4.0  # each turn's level is uniform in +-this around the common speech level
    speech_level_dbfs: float = -26.0  # active speech level every source is first normalised to
    target_duration: float = 90.0  # turns are added until this length is reached and everyone has spoken
    turn_range: tuple[float, float] = (1.0, 8.0)  # a turn's speech span, drawn per turn (one phrase at least)
    lead_silence: float = 0.5  # before the first speech, as in simconv-dev
    tail_silence: float = 0.5
    min_pause: float = 0.3  # pauses this long inside a recording are not speech in the reference
    min_speech: float = 0.1  # shorter bursts (clicks, breaths) are not speech
    energy_threshold: float = 0.4  # speech: above the noise floor by this share of the floor-to-peak range (dB)
    vad_confirmed: bool = True  # a voiced frame must also be speech to silero-vad (see the module docstring)
    telephone: bool = False  # band-limit to 300-3400 Hz through an 8 kHz channel, then back to 16 kHz
    noise_snr_db: float | None = None  # white noise at this SNR (to the speech level), for harder sets

    def __post_init__(self):
        if not 0.0 <= self.overlap_fraction <= 1.0:
            raise ValueError(f"overlap_fraction must be in [0, 1], got {self.overlap_fraction}")
        for name in ("overlap_range", "pause_range", "turn_range"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {(low, high)}")


@dataclass(frozen=True)
class Source:
    """One decoded single-speaker recording and its speech regions as (start, end) sample indices."""

    speaker: str
    path: Path
    samples: np.ndarray
    regions: tuple[tuple[int, int], ...]
    active: np.ndarray  # voiced or not, per 20 ms frame
    gain: float  # brings the recording's active speech to the configured level

    def voiced(self, start: int, end: int) -> np.ndarray:
        """Per 20 ms step from sample `start` to `end` of this recording, whether it is voiced there."""
        frames = np.arange(start, end, FRAME) // FRAME
        inside = (frames >= 0) & (frames < len(self.active))
        return np.where(inside, self.active[np.clip(frames, 0, max(len(self.active) - 1, 0))], False)


@dataclass(frozen=True)
class Turn:
    """A piece of `source` (samples [crop_start, crop_end)) placed so that its first sample lands at `offset`."""

    speaker: str
    path: Path
    crop_start: int
    crop_end: int
    offset: int
    level_db: float
    regions: tuple[tuple[int, int], ...]  # speech inside the turn, in conversation samples
    overlaps_previous: bool

    @property
    def speech_start(self) -> int:
        return self.regions[0][0]

    @property
    def speech_end(self) -> int:
        return self.regions[-1][1]


class SilentRecording(ValueError):
    """A source recording with no speech in it (a few RAVDESS takes are all breath and room noise)."""


@dataclass
class SourceCache:
    """Decoded sources by path, so a set of conversations decodes each recording once."""

    config: SimulationConfig
    _sources: dict[Path, Source] = field(default_factory=dict)

    def get(self, speaker: str, path: Path) -> Source:
        key = Path(path)
        if key not in self._sources:
            samples = load_audio(key).samples
            active = frame_activity(samples, threshold=self.config.energy_threshold)
            if self.config.vad_confirmed:
                active &= vad_activity(samples, len(active))
            regions = regions_of(active, min_pause=self.config.min_pause, min_speech=self.config.min_speech)
            if not regions:
                raise SilentRecording(f"{key}: no speech found (silent recording)")
            self._sources[key] = Source(speaker, key, samples, regions, active, _speech_gain(samples, regions, self.config))
        return self._sources[key]


def frame_activity(samples: np.ndarray, *, threshold: float = 0.4, frame: int = FRAME) -> np.ndarray:
    """Per 20 ms frame (from sample 0), whether the recording is voiced there: bool array.

    A frame is voiced when its energy (dB) is above the recording's noise floor (10th percentile of
    frames) by more than `threshold` of the floor-to-loudest range. Relative to each recording, the
    rule holds for quiet and noisy recordings alike; of the simple rules tried it agreed best with
    the simconv-dev references (92 % of frames on 113 turns realigned to their sources).
    """
    count = len(samples) // frame
    if count == 0:
        return np.zeros(0, dtype=bool)
    energy = np.mean(np.square(samples[: count * frame].reshape(count, frame), dtype=np.float64), axis=1)
    level = 10.0 * np.log10(np.maximum(energy, 1e-20))
    floor, loudest = np.percentile(level, 10), level.max()
    if loudest - floor < 1e-6:  # constant level (silence included): nothing stands out as speech
        return np.zeros(count, dtype=bool)
    return level > floor + threshold * (loudest - floor)


def speech_regions(samples: np.ndarray, *, threshold: float = 0.4, min_pause: float = 0.3, min_speech: float = 0.1,
                   frame: int = FRAME, sample_rate: int = SAMPLE_RATE) -> tuple[tuple[int, int], ...]:
    """Reference speech of a single-speaker recording: (start, end) sample indices on the frame grid.

    Voiced frames (`frame_activity`) closer than `min_pause` seconds are joined, so every gap between
    regions is >= min_pause; then regions shorter than `min_speech` seconds are dropped.
    """
    active = frame_activity(samples, threshold=threshold, frame=frame)
    return regions_of(active, min_pause=min_pause, min_speech=min_speech, frame=frame, sample_rate=sample_rate)


def vad_activity(samples: np.ndarray, count: int, *, frame: int = FRAME) -> np.ndarray:
    """Per 20 ms frame (`count` of them, from sample 0), whether silero-vad finds speech in it: bool array."""
    from diarize.vad import VAD_SAMPLE_RATE, speech_regions as vad_regions

    active = np.zeros(count, dtype=bool)
    for start, end in vad_regions(samples, VAD_SAMPLE_RATE):
        active[int(start * VAD_SAMPLE_RATE) // frame:math.ceil(end * VAD_SAMPLE_RATE / frame)] = True
    return active


def regions_of(active: np.ndarray, *, min_pause: float = 0.3, min_speech: float = 0.1, frame: int = FRAME,
               sample_rate: int = SAMPLE_RATE) -> tuple[tuple[int, int], ...]:
    """Speech regions from per-frame activity: (start, end) sample indices; gaps under `min_pause` seconds
    are bridged, then regions under `min_speech` seconds dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = list(zip(edges[0::2], edges[1::2]))
    merged: list[list[int]] = []
    shortest_pause = math.ceil(round(min_pause * sample_rate / frame, 6))
    for start, end in runs:
        if merged and start - merged[-1][1] < shortest_pause:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    shortest_speech = math.ceil(round(min_speech * sample_rate / frame, 6))
    return tuple((int(start) * frame, int(end) * frame) for start, end in merged if end - start >= shortest_speech)


def _speech_gain(samples: np.ndarray, regions, config: SimulationConfig) -> float:
    speech = np.concatenate([samples[start:end] for start, end in regions]).astype(np.float64)
    level = 10.0 * np.log10(max(float(np.mean(speech**2)), 1e-20))
    return float(10.0 ** ((config.speech_level_dbfs - level) / 20.0))


def speakers_from_folder(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """`<folder>/<speaker>/<recording>.<audio extension>` -> {speaker: sorted recordings}."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of speakers")
    found = {
        child.name: sorted(p for p in child.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        for child in sorted(root.iterdir())
        if child.is_dir()
    }
    found = {speaker: paths for speaker, paths in found.items() if paths}
    if not found:
        raise FileNotFoundError(f"{root}: no <speaker>/<recording> audio files")
    return found


def _as_mapping(utterances: Mapping[str, Sequence] | Iterable[tuple[str, str | os.PathLike]]) -> dict[str, list[Path]]:
    if isinstance(utterances, Mapping):
        pairs = [(str(speaker), path) for speaker, paths in utterances.items() for path in paths]
    else:
        pairs = [(str(speaker), path) for speaker, path in utterances]
    grouped: dict[str, list[Path]] = {}
    for speaker, path in pairs:
        grouped.setdefault(speaker, []).append(Path(path))
    return {speaker: sorted(set(paths)) for speaker, paths in sorted(grouped.items())}


def _pick_piece(source: Source, rng: np.random.Generator, config: SimulationConfig) -> tuple[int, int, tuple]:
    """A run of consecutive speech regions whose span is close to a drawn turn length; cut inside pauses."""
    regions = source.regions
    wanted = rng.uniform(*config.turn_range) * SAMPLE_RATE
    first = int(rng.integers(len(regions)))
    last = first
    while last + 1 < len(regions) and regions[last + 1][1] - regions[first][0] <= wanted:
        last += 1
    # Margins of silence around the piece, never more than half the neighbouring pause, so the crop
    # holds no speech beyond the chosen regions.
    margin = int(0.1 * SAMPLE_RATE)
    before = regions[first - 1][1] if first > 0 else 0
    after = regions[last + 1][0] if last + 1 < len(regions) else len(source.samples)
    crop_start = max(regions[first][0] - margin, (before + regions[first][0]) // 2 if first > 0 else 0)
    crop_end = min(regions[last][1] + margin, (regions[last][1] + after) // 2 if last + 1 < len(regions) else after)
    return crop_start, crop_end, regions[first : last + 1]


def plan_conversation(utterances_by_speaker, num_speakers: int, *, seed: int | np.random.SeedSequence = 0,
                      config: SimulationConfig = SimulationConfig(), cache: SourceCache | None = None) -> list[Turn]:
    """Draw the turns of one conversation: who speaks, which piece of which recording, where, how loud.

    Speakers are drawn without replacement from `utterances_by_speaker` ({speaker: paths} or
    (speaker, path) pairs); the next speaker is never the current one and, until everyone has spoken,
    speakers not heard yet are three times as likely. Each speaker's recordings are used in a shuffled
    cycle. Deterministic for a seed.
    """
    pool = _as_mapping(utterances_by_speaker)
    if not 2 <= num_speakers <= len(pool):
        raise ValueError(f"num_speakers must be between 2 and the {len(pool)} speakers available, got {num_speakers}")
    cache = cache or SourceCache(config)
    rng = np.random.default_rng(seed)
    speakers = [str(s) for s in rng.choice(sorted(pool), size=num_speakers, replace=False)]
    queues = {speaker: [] for speaker in speakers}

    def next_recording(speaker: str) -> Path:
        if not queues[speaker]:
            queues[speaker] = [pool[speaker][i] for i in rng.permutation(len(pool[speaker]))]
        return queues[speaker].pop()

    def next_source(speaker: str) -> Source:
        # a silent recording is passed over; a speaker with nothing but silent ones cannot take part
        for _ in range(len(pool[speaker])):
            try:
                return cache.get(speaker, next_recording(speaker))
            except SilentRecording:
                continue
        raise ValueError(f"{speaker}: none of its {len(pool[speaker])} recordings holds speech")

    turns: list[Turn] = []
    heard: set[str] = set()
    owed_overlaps = 0  # drawn overlaps that did not fit, tried again on later turns to keep the share
    target = config.target_duration * SAMPLE_RATE
    current = None
    while not turns or turns[-1].speech_end < target or len(heard) < num_speakers:
        others = [s for s in speakers if s != current]
        weights = np.array([3.0 if s not in heard else 1.0 for s in others])
        speaker = others[int(rng.choice(len(others), p=weights / weights.sum()))]
        source = next_source(speaker)
        crop_start, crop_end, regions = _pick_piece(source, rng, config)
        level_db = float(rng.uniform(-config.level_jitter_db, config.level_jitter_db))
        drawn = rng.random() < config.overlap_fraction
        wants_overlap = bool(turns) and (drawn or owed_overlaps > 0)
        overlap = int(rng.uniform(*config.overlap_range) * SAMPLE_RATE)
        pause = int(rng.uniform(*config.pause_range) * SAMPLE_RATE)
        overlaps = False
        if not turns:
            onset = int(config.lead_silence * SAMPLE_RATE)
        else:
            previous = turns[-1]
            earlier_end = max((t.speech_end for t in turns[:-1]), default=0)
            # Double talk only where the previous speaker is surely talking (its last region) and
            # nobody else still is, and only as long as the new speaker's first phrase lasts.
            room = min(previous.regions[-1][1] - max(previous.regions[-1][0], earlier_end),
                       regions[0][1] - regions[0][0])
            overlap = min(overlap, room)
            if wants_overlap and overlap >= int(config.overlap_range[0] * SAMPLE_RATE) and overlap > 0:
                # Bridged pauses (< min_pause) count as speech in the reference, but double talk placed
                # into one would be heard as one voice: most of the window must voice both speakers.
                before = cache.get(previous.speaker, previous.path)
                tail_start = previous.speech_end - overlap - previous.offset + previous.crop_start
                both = before.voiced(tail_start, tail_start + overlap) & source.voiced(regions[0][0], regions[0][0] + overlap)
                if both.mean() >= 0.5:
                    onset, overlaps = previous.speech_end - overlap, True
            if not overlaps:
                onset = max(previous.speech_end, earlier_end) + pause
            owed_overlaps += (drawn and not overlaps) - (overlaps and not drawn)
        offset = onset - (regions[0][0] - crop_start)
        if offset < 0:  # the crop's leading silence would start before the recording does
            crop_start -= offset
            offset = 0
        shift = offset - crop_start
        turns.append(Turn(speaker, source.path, crop_start, crop_end, offset, level_db,
                          tuple((start + shift, end + shift) for start, end in regions), overlaps))
        heard.add(speaker)
        current = speaker
    return turns


def render(turns: Sequence[Turn], *, config: SimulationConfig = SimulationConfig(), cache: SourceCache | None = None,
           uri: str = "sim", seed: int | np.random.SeedSequence = 0):
    """Mix `turns` into 16 kHz mono float32 samples and build their reference Annotation."""
    from pyannote.core import Annotation, Segment

    cache = cache or SourceCache(config)
    length = max(t.offset + (t.crop_end - t.crop_start) for t in turns) + int(config.tail_silence * SAMPLE_RATE)
    mix = np.zeros(length, dtype=np.float64)
    for turn in turns:
        source = cache.get(turn.speaker, turn.path)
        piece = source.samples[turn.crop_start : turn.crop_end].astype(np.float64)
        mix[turn.offset : turn.offset + len(piece)] += piece * source.gain * 10.0 ** (turn.level_db / 20.0)
    if config.noise_snr_db is not None:
        noise_rms = 10.0 ** ((config.speech_level_dbfs - config.noise_snr_db) / 20.0)
        mix += np.random.default_rng(seed).standard_normal(length) * noise_rms
    if config.telephone:
        mix = telephone_band(mix)
    peak = float(np.max(np.abs(mix))) if length else 0.0
    if peak > 0.99:  # keep the 16-bit file from clipping; relative levels are what matter
        mix *= 0.99 / peak
    reference = Annotation(uri=uri)
    for turn in turns:
        for start, end in turn.regions:
            reference[Segment(start / SAMPLE_RATE, end / SAMPLE_RATE), len(reference)] = turn.speaker
    return mix.astype(np.float32), reference


def telephone_band(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Through a telephone channel: 8 kHz sampling (nothing above 4 kHz) and a 300 Hz high-pass."""
    import soxr
    from scipy.signal import butter, sosfilt

    narrow = soxr.resample(np.asarray(samples, dtype=np.float64), sample_rate, 8000)
    narrow = sosfilt(butter(4, 300, btype="highpass", fs=8000, output="sos"), narrow)
    wide = soxr.resample(narrow, 8000, sample_rate)
    out = np.zeros(len(samples), dtype=np.float64)
    out[: min(len(wide), len(out))] = wide[: len(out)]
    return out


def simulate_conversation(utterances_by_speaker, num_speakers: int, seed: int | np.random.SeedSequence = 0,
                          config: SimulationConfig = SimulationConfig(), *, uri: str = "sim",
                          cache: SourceCache | None = None):
    """One simulated conversation -> (16 kHz mono float32 samples, reference pyannote.core.Annotation)."""
    cache = cache or SourceCache(config)
    plan_seed, noise_seed = child_seeds(seed, 2)
    turns = plan_conversation(utterances_by_speaker, num_speakers, seed=plan_seed, config=config, cache=cache)
    return render(turns, config=config, cache=cache, uri=uri, seed=noise_seed)


def write_simulated_set(out_dir: str | os.PathLike, speakers_dir: str | os.PathLike, n: int, seed: int = 0, *,
                        min_speakers: int = 3, max_speakers: int = 5, config: SimulationConfig = SimulationConfig(),
                        prefix: str = "sim") -> Path:
    """Write `n` conversations in the layout of shared/data/diarization; returns the manifest path.

    `out_dir` receives audio/<uri>.flac (16-bit), rttm/<uri>.rttm, uem/<uri>.uem (the whole file),
    manifest.tsv (uri audio rttm uem, relative paths) and speakers.tsv (uri speaker file: the
    recordings used, relative to `speakers_dir`). Conversation i depends only on (seed, i), so a
    larger n extends a set without changing its first conversations.
    """
    import soundfile as sf

    from cluster.atomic_files import atomic_write_text
    from diarize.output import rttm_lines

    pool = speakers_from_folder(speakers_dir)
    if not 2 <= min_speakers <= max_speakers <= len(pool):
        raise ValueError(f"need 2 <= min_speakers <= max_speakers <= {len(pool)} speakers in {speakers_dir}, "
                         f"got {min_speakers}..{max_speakers}")
    out = Path(out_dir)
    for folder in ("audio", "rttm", "uem"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    cache = SourceCache(config)
    manifest = ["uri\taudio\trttm\tuem"]
    used = ["uri\tspeaker\tfile"]
    for index, child in enumerate(child_seeds(seed, n)):
        uri = f"{prefix}{index:03d}"
        count_seed, plan_seed, noise_seed = child_seeds(child, 3)
        num_speakers = int(np.random.default_rng(count_seed).integers(min_speakers, max_speakers + 1))
        turns = plan_conversation(pool, num_speakers, seed=plan_seed, config=config, cache=cache)
        samples, reference = render(turns, config=config, cache=cache, uri=uri, seed=noise_seed)
        sf.write(out / "audio" / f"{uri}.flac", samples, SAMPLE_RATE, subtype="PCM_16")
        atomic_write_text(out / "rttm" / f"{uri}.rttm", "".join(line + "\n" for line in rttm_lines(reference, uri)))
        atomic_write_text(out / "uem" / f"{uri}.uem", f"{uri} 1 0.000 {len(samples) / SAMPLE_RATE:.3f}\n")
        manifest.append(f"{uri}\taudio/{uri}.flac\trttm/{uri}.rttm\tuem/{uri}.uem")
        for speaker, path in sorted({(t.speaker, t.path) for t in turns}):
            used.append(f"{uri}\t{speaker}\t{_relative(path, Path(speakers_dir))}")
    atomic_write_text(out / "speakers.tsv", "\n".join(used) + "\n")
    atomic_write_text(out / "manifest.tsv", "\n".join(manifest) + "\n")
    return out / "manifest.tsv"


def child_seeds(seed: int | np.random.SeedSequence, count: int) -> list[np.random.SeedSequence]:
    """Independent child seeds that depend only on `seed` and their index (SeedSequence.spawn would also
    depend on how often the same object was spawned from before)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, index)) for index in range(count)]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.simulate", description=write_simulated_set.__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--speakers", type=Path, required=True, help="folder of <speaker>/<recording> files")
    parser.add_argument("-n", type=int, default=8, help="number of conversations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-speakers", type=int, default=3)
    parser.add_argument("--max-speakers", type=int, default=5)
    parser.add_argument("--duration", type=float, default=SimulationConfig.target_duration, help="seconds per conversation")
    parser.add_argument("--overlap-fraction", type=float, default=SimulationConfig.overlap_fraction)
    parser.add_argument("--telephone", action="store_true", help="300-3400 Hz through an 8 kHz channel")
    parser.add_argument("--noise-snr-db", type=float, default=None)
    parser.add_argument("--energy-only", action="store_true",
                        help="mark reference speech from frame energy alone, as simconv-dev does (by default a "
                             "voiced frame must also be speech to silero-vad)")
    parser.add_argument("--prefix", default="sim")
    args = parser.parse_args(argv)
    config = SimulationConfig(target_duration=args.duration, overlap_fraction=args.overlap_fraction,
                              telephone=args.telephone, noise_snr_db=args.noise_snr_db,
                              vad_confirmed=not args.energy_only)
    manifest = write_simulated_set(args.out_dir, args.speakers, args.n, args.seed, min_speakers=args.min_speakers,
                                   max_speakers=args.max_speakers, config=config, prefix=args.prefix)
    print(manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
