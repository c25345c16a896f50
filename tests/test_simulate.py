"""Simulated conversations: references exact by construction, statistics as configured, files readable.

Most tests use synthetic "speakers": each one a pure tone (a multiple of 50 Hz, so a 20 ms window
holds whole cycles and the tones are orthogonal there) in bursts on the 20 ms grid over a -60 dBFS
noise floor. Which voice sounds when can then be read back from the mixture itself and compared with
the reference. The statistics and the double-talk check also run on real read speech from the
shared data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from diarize.audio import load_audio
from eval.corpora import load_rttm, load_uem, read_manifest
from eval.simulate import (
    FRAME,
    SimulationConfig,
    SourceCache,
    plan_conversation,
    render,
    simulate_conversation,
    speakers_from_folder,
    speech_regions,
    telephone_band,
    write_simulated_set,
)

RATE = 16000
QUIETEST = math.sqrt(2) * 10 ** ((-26 - 4) / 20)  # a tone's amplitude at the -26 dBFS speech level, jittered -4 dB
TONES = {"ann": 300.0, "bob": 700.0, "cyd": 1100.0, "dee": 1900.0}
# (silence, burst) pairs in 20 ms frames; a 5-frame (0.1 s) gap is bridged, 20 frames (0.4 s) are cut
BURSTS = [
    [(25, 60), (20, 40), (5, 50), (20, 0)],
    [(10, 90), (30, 30), (20, 0)],
    [(15, 40), (5, 40), (25, 70), (15, 0)],
]


def tone_utterance(hz: float, pattern, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Samples and the tone bursts, (start, end) in samples."""
    noise = np.random.default_rng(seed).standard_normal(sum(s + b for s, b in pattern) * FRAME) * 1e-3
    samples = noise.copy()
    bursts, at = [], 0
    for silence, burst in pattern:
        at += silence * FRAME
        if burst:
            t = np.arange(burst * FRAME) / RATE
            # whole cycles from phase 0: bursts start and end at zero crossings, without clicks
            samples[at : at + burst * FRAME] += 0.3 * np.sin(2 * np.pi * hz * t)
            bursts.append((at, at + burst * FRAME))
        at += burst * FRAME
    return samples.astype(np.float32), bursts


def bridged(bursts, min_pause: int = int(0.3 * RATE)) -> list[tuple[int, int]]:
    """The reference convention applied by hand: pauses shorter than 0.3 s belong to the speech."""
    joined: list[tuple[int, int]] = []
    for start, end in bursts:
        if joined and start - joined[-1][1] < min_pause:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


@pytest.fixture(scope="module")
def tone_speakers(tmp_path_factory):
    """A folder <speaker>/<speaker>-<n>.flac of tone speakers, and each file's bursts."""
    root = tmp_path_factory.mktemp("tone-speakers")
    bursts_of = {}
    for index, (speaker, hz) in enumerate(TONES.items()):
        (root / speaker).mkdir()
        for number, pattern in enumerate(BURSTS):
            samples, bursts = tone_utterance(hz, pattern, seed=10 * index + number)
            path = root / speaker / f"{speaker}-{number}.flac"
            sf.write(path, samples, RATE, subtype="PCM_24")
            bursts_of[path] = bursts
    return root, bursts_of


@pytest.fixture(scope="module")
def librispeech(shared_data):
    return speakers_from_folder(shared_data / "speakers" / "librispeech-test-other")


def tone_amplitude(window: np.ndarray, hz: float) -> float:
    """Amplitude of an `hz` tone in a 20 ms window. Hann-weighted: exact for whole-cycle tones, and a
    neighbour's burst that starts inside the window leaks little."""
    n = np.arange(len(window))
    weights = np.hanning(len(window) + 2)[1:-1]
    return float(2 * abs(np.sum(weights * window * np.exp(-2j * np.pi * hz * n / RATE))) / weights.sum())


def windows(start: int, end: int):
    """Start indices of whole 20 ms windows inside [start, end)."""
    return range(start, end - FRAME + 1, FRAME)


def others_steady(at: int, speaker: str, sounding) -> bool:
    """No other voice starts or stops inside the window at `at`: a tone cut inside a window leaks into
    every frequency there, so only such windows measure one tone cleanly."""
    return not any(at < edge < at + FRAME for other, spans in sounding.items() if other != speaker
                   for start, end, _ in spans for edge in (start, end))


def samples_of(segment) -> tuple[int, int]:
    return round(segment.start * RATE), round(segment.end * RATE)


def test_speech_regions_cut_long_pauses_and_bridge_short_ones(tone_speakers):
    root, bursts_of = tone_speakers
    for path, bursts in bursts_of.items():
        found = speech_regions(load_audio(path).samples)
        assert list(found) == bridged(bursts), path.name


def test_speech_regions_drop_clicks_and_silence():
    quiet = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 1e-3
    clicked = quiet.copy()
    clicked[8000 : 8000 + FRAME] += 0.5  # one 20 ms click: shorter than min_speech (0.1 s)
    assert speech_regions(clicked) == ()
    assert speech_regions(np.zeros(RATE, np.float32)) == ()


def placed_bursts(turns, bursts_of, config) -> dict[str, list[tuple[int, int, float]]]:
    """Where each speaker's tone sounds in the conversation, and at which amplitude, worked out from the
    plan and the synthetic sources (not from the reference). Checks on the way that no crop cuts a burst
    and that each turn's reference regions are its placed bursts, bridged."""
    sounding: dict[str, list[tuple[int, int, float]]] = {}
    for turn in turns:
        shift = turn.offset - turn.crop_start
        inside = [(s + shift, e + shift) for s, e in bursts_of[turn.path] if turn.crop_start <= s and e <= turn.crop_end]
        cut = [(s, e) for s, e in bursts_of[turn.path] if s < turn.crop_end and e > turn.crop_start]
        assert len(inside) == len(cut), "a crop must never cut through a burst"
        assert list(turn.regions) == bridged(inside)
        # the recording's RMS over its reference speech is brought to -26 dBFS, then the turn's jitter applies
        source = load_audio(turn.path).samples.astype(np.float64)
        speech = np.concatenate([source[s:e] for s, e in bridged(bursts_of[turn.path])])
        amplitude = 0.3 * 10 ** ((config.speech_level_dbfs + turn.level_db) / 20) / math.sqrt(np.mean(speech**2))
        sounding.setdefault(turn.speaker, []).extend((s, e, amplitude) for s, e in inside)
    return {speaker: sorted(spans) for speaker, spans in sounding.items()}


def test_reference_matches_the_voices_in_the_mixture(tone_speakers):
    """Each turn's reference is its placed bursts, bridged; the mixture holds each tone exactly there."""
    root, bursts_of = tone_speakers
    config = SimulationConfig(target_duration=40.0, overlap_fraction=0.5, vad_confirmed=False)
    cache = SourceCache(config)
    turns = plan_conversation(speakers_from_folder(root), 3, seed=11, config=config, cache=cache)
    samples, reference = render(turns, config=config, cache=cache)
    assert any(turn.overlaps_previous for turn in turns)
    sounding = placed_bursts(turns, bursts_of, config)
    measured = 0
    for speaker, placed in sounding.items():
        expected = sorted((s / RATE, e / RATE) for turn in turns if turn.speaker == speaker for s, e in turn.regions)
        # flattened: pytest 9's approx compares flat sequences only
        found = [bound for seg in reference.label_timeline(speaker, copy=False) for bound in (seg.start, seg.end)]
        assert found == pytest.approx([bound for pair in expected for bound in pair])
        hz = TONES[speaker]
        for start, end, amplitude in placed:
            for at in windows(start, end):
                if others_steady(at, speaker, sounding):
                    assert tone_amplitude(samples[at : at + FRAME], hz) == pytest.approx(amplitude, rel=0.01)
                    measured += 1
        gaps = zip([0] + [e for _, e, _ in placed], [s for s, _, _ in placed] + [len(samples)])
        for start, end in gaps:
            for at in windows(start, end):
                if others_steady(at, speaker, sounding):
                    assert tone_amplitude(samples[at : at + FRAME], hz) < 0.01 * QUIETEST  # 40 dB under any voice
    assert measured > 0.9 * sum(e - s for spans in sounding.values() for s, e, _ in spans) / FRAME


def test_overlap_regions_hold_two_voices(tone_speakers):
    """Reference double talk is audible: both tones sound together over most of it, never three at once."""
    from pyannote.core import Segment

    root, bursts_of = tone_speakers
    config = SimulationConfig(target_duration=60.0, overlap_fraction=0.5, vad_confirmed=False)
    cache = SourceCache(config)
    turns = plan_conversation(speakers_from_folder(root), 3, seed=5, config=config, cache=cache)
    samples, reference = render(turns, config=config, cache=cache)
    sounding = placed_bursts(turns, bursts_of, config)
    talking = np.zeros(len(samples), dtype=np.int8)
    for segment, _, _ in reference.itertracks(yield_label=True):
        start, end = samples_of(segment)
        talking[start:end] += 1
    assert talking.max() == 2
    pairs = [(before, turn) for before, turn in zip(turns, turns[1:]) if turn.overlaps_previous]
    assert len(pairs) >= 3
    for before, turn in pairs:
        start, end = turn.speech_start, before.speech_end
        region = Segment(start / RATE, end / RATE)
        for speaker in (before.speaker, turn.speaker):
            assert reference.label_timeline(speaker).crop(region).duration() == pytest.approx(region.duration)
        heard = []
        for speaker in (before.speaker, turn.speaker):
            mask = np.zeros(end - start, dtype=bool)
            for s, e, _ in sounding[speaker]:
                mask[max(s - start, 0) : max(min(e, end) - start, 0)] = True
            heard.append(mask)
        together = heard[0] & heard[1]
        # the planner's promise: both voiced over at least half of the double talk
        assert together.mean() >= 0.5, (region, together.mean())
        edges = np.flatnonzero(np.diff(np.concatenate([[0], together.astype(np.int8), [0]])))
        for run_start, run_end in zip(edges[0::2], edges[1::2]):
            for at in windows(start + run_start, start + run_end):
                window = samples[at : at + FRAME]
                if not others_steady(at, "", sounding):
                    continue
                assert tone_amplitude(window, TONES[before.speaker]) > 0.5 * QUIETEST
                assert tone_amplitude(window, TONES[turn.speaker]) > 0.5 * QUIETEST


@pytest.mark.slow
def test_turns_follow_the_configured_structure(librispeech):
    config = SimulationConfig()
    cache = SourceCache(config)
    overlapping = transitions = 0
    for seed in range(30):
        num_speakers = 3 + seed % 3
        turns = plan_conversation(librispeech, num_speakers, seed=seed, config=config, cache=cache)
        assert len({turn.speaker for turn in turns}) == num_speakers  # everyone speaks
        assert turns[0].speech_start == int(config.lead_silence * RATE)
        assert max(turn.speech_end for turn in turns) >= config.target_duration * RATE
        for before, turn in zip(turns, turns[1:]):
            assert turn.speaker != before.speaker
            assert -4.0 <= turn.level_db <= 4.0
            if turn.overlaps_previous:
                double_talk = (before.speech_end - turn.speech_start) / RATE
                assert 0.2 <= double_talk <= 1.5
            else:
                pause = (turn.speech_start - max(t.speech_end for t in turns[: turns.index(turn)])) / RATE
                assert 0.1 <= pause <= 1.0
        overlapping += sum(turn.overlaps_previous for turn in turns)
        transitions += len(turns) - 1
    share = overlapping / transitions
    # binomial spread of the share over this many turns: a correct 15 % lies within 4 sigma
    sigma = math.sqrt(0.15 * 0.85 / transitions)
    assert abs(share - 0.15) < 4 * sigma, (share, transitions)


def test_reference_durations_and_overlap_are_exact(librispeech):
    config = SimulationConfig()
    cache = SourceCache(config)
    turns = plan_conversation(librispeech, 4, seed=3, config=config, cache=cache)
    samples, reference = render(turns, config=config, cache=cache, uri="exact")
    for speaker in {turn.speaker for turn in turns}:
        planned = sum(end - start for t in turns if t.speaker == speaker for start, end in t.regions) / RATE
        assert reference.label_duration(speaker) == pytest.approx(planned, abs=1e-6)
    planned_overlap = sum((before.speech_end - turn.speech_start) / RATE
                          for before, turn in zip(turns, turns[1:]) if turn.overlaps_previous)
    # double talk happens only where a turn was placed over the previous one, and lasts exactly that long
    assert reference.get_overlap().duration() == pytest.approx(planned_overlap, abs=1e-6)
    assert len(samples) / RATE >= reference.get_timeline().extent().end


def test_real_speech_mixture_is_the_placed_turns_and_overlaps_hold_both(librispeech):
    """The mixture is exactly the sum of the placed recordings; in each double talk both carry speech."""
    config = SimulationConfig(overlap_fraction=0.5, target_duration=60.0)
    cache = SourceCache(config)
    turns = plan_conversation(librispeech, 3, seed=8, config=config, cache=cache)
    samples, reference = render(turns, config=config, cache=cache)
    placed = []
    for turn in turns:
        source = cache.get(turn.speaker, turn.path)
        signal = np.zeros(len(samples))
        piece = source.samples[turn.crop_start : turn.crop_end] * source.gain * 10 ** (turn.level_db / 20)
        signal[turn.offset : turn.offset + len(piece)] = piece
        placed.append(signal)
    expected = np.sum(placed, axis=0)
    expected *= min(1.0, 0.99 / np.abs(expected).max())  # render's only rescale, against clipping
    np.testing.assert_allclose(samples, expected, atol=1e-6)

    def floor_db(turn):
        """The recording's noise floor as placed: 10th percentile of its 20 ms frame energies."""
        source = cache.get(turn.speaker, turn.path)
        frames = source.samples[: len(source.samples) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
        scale = source.gain * 10 ** (turn.level_db / 20)
        return np.percentile(10 * np.log10(np.mean(frames**2, axis=1) + 1e-20), 10) + 20 * np.log10(scale)

    checked = 0
    for index, turn in enumerate(turns):
        if not turn.overlaps_previous:
            continue
        start, end = turn.speech_start, turns[index - 1].speech_end
        for voice in (index - 1, index):
            # The planner voices both speakers on half the window at least, and a voiced frame is 40 % of
            # the floor-to-peak range (>= 8.1 dB on these 100 recordings) above the floor: the window's
            # mean power is then >= 5 dB above the floor. A voice missing there would sit at the floor.
            level = 10 * np.log10(np.mean(placed[voice][start:end] ** 2))
            assert level > floor_db(turns[voice]) + 5
        checked += 1
    assert checked >= 3


def test_same_seed_same_conversation(tone_speakers):
    root, _ = tone_speakers
    pool = speakers_from_folder(root)
    pairs = [(speaker, path) for speaker, paths in reversed(list(pool.items())) for path in paths]
    config = SimulationConfig(target_duration=30.0, vad_confirmed=False)
    first = simulate_conversation(pool, 3, seed=42, config=config)
    again = simulate_conversation(pairs, 3, seed=42, config=config)  # same pool given as shuffled pairs
    other = simulate_conversation(pool, 3, seed=43, config=config)
    np.testing.assert_array_equal(first[0], again[0])
    assert list(first[1].itertracks(yield_label=True)) == list(again[1].itertracks(yield_label=True))
    assert len(first[0]) != len(other[0]) or not np.array_equal(first[0], other[0])


def test_telephone_band_keeps_the_reference_and_removes_wideband(tone_speakers):
    root, _ = tone_speakers
    pool = speakers_from_folder(root)
    wide = simulate_conversation(pool, 4, seed=2, config=SimulationConfig(target_duration=20.0, vad_confirmed=False))
    phone = simulate_conversation(pool, 4, seed=2, config=SimulationConfig(target_duration=20.0, telephone=True,
                                                                                   vad_confirmed=False))
    assert list(wide[1].itertracks(yield_label=True)) == list(phone[1].itertracks(yield_label=True))
    noise = np.random.default_rng(0).standard_normal(4 * RATE)
    spectrum = np.abs(np.fft.rfft(telephone_band(noise))) ** 2
    frequency = np.fft.rfftfreq(4 * RATE, 1 / RATE)
    passband = spectrum[(frequency > 500) & (frequency < 3000)].mean()
    assert spectrum[frequency > 4200].mean() < 1e-4 * passband
    assert spectrum[frequency < 100].mean() < 1e-2 * passband


def test_written_set_is_readable_and_deterministic(tone_speakers, tmp_path):
    root, _ = tone_speakers
    config = SimulationConfig(target_duration=15.0, vad_confirmed=False)
    manifest = write_simulated_set(tmp_path / "a", root, n=2, seed=9, min_speakers=2, max_speakers=4, config=config)
    longer = write_simulated_set(tmp_path / "b", root, n=3, seed=9, min_speakers=2, max_speakers=4, config=config)
    assert manifest.read_text().splitlines()[0].split("\t") == ["uri", "audio", "rttm", "uem"]
    items = read_manifest(manifest)
    assert [item.uri for item in items] == ["sim000", "sim001"]
    used = [line.split("\t") for line in (tmp_path / "a" / "speakers.tsv").read_text().splitlines()[1:]]
    for item in items:
        waveform = load_audio(item.audio)
        uem = load_uem(item.uem, item.uri)
        assert uem.extent().start == 0.0 and uem.extent().end == pytest.approx(waveform.duration, abs=1e-3)
        reference = load_rttm(item.rttm, item.uri)
        speakers = {speaker for uri, speaker, _ in used if uri == item.uri}
        assert set(reference.labels()) == speakers and 2 <= len(speakers) <= 4
        assert all((root / file).is_file() for uri, _, file in used if uri == item.uri)
        # conversation i depends only on (seed, i): a longer set starts with the same files
        for folder, suffix in (("audio", "flac"), ("rttm", "rttm"), ("uem", "uem")):
            name = f"{folder}/{item.uri}.{suffix}"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert len(read_manifest(longer)) == 3


def test_vad_confirmed_reference_drops_the_noise_the_energy_rule_calls_speech(librispeech):
    """Reader 1688's recordings carry breath and room noise loud enough for the energy rule; asking
    silero-vad as well removes it (measured: 12.2 s of 64.5 s) and never adds speech."""
    from eval.simulate import SourceCache

    energy, both = SourceCache(SimulationConfig(vad_confirmed=False)), SourceCache(SimulationConfig())
    removed = total = 0
    for path in librispeech["1688"]:
        loose = np.zeros(len(energy.get("1688", path).samples), dtype=bool)
        strict = np.zeros_like(loose)
        for start, end in energy.get("1688", path).regions:
            loose[start:end] = True
        for start, end in both.get("1688", path).regions:
            strict[start:end] = True
        assert not (strict & ~loose).any()  # only ever removes
        removed, total = removed + (loose & ~strict).sum(), total + loose.sum()
    assert 0.05 < removed / total < 0.5, removed / total


def test_impossible_requests_are_refused(tone_speakers):
    root, _ = tone_speakers
    with pytest.raises(ValueError, match="num_speakers"):
        plan_conversation(speakers_from_folder(root), 5)
    with pytest.raises(ValueError, match="overlap_fraction"):
        SimulationConfig(overlap_fraction=1.5)


def test_silent_recordings_are_passed_over_and_a_speaker_with_only_silence_is_named(tone_speakers, tmp_path):
    """A few takes in a real speaker folder hold no speech (RAVDESS has some): a conversation is planned
    from the others, and only a speaker left with nothing to say stops the plan, by name."""
    root, _ = tone_speakers
    pool = {speaker: list(paths) for speaker, paths in speakers_from_folder(root).items()}
    hush = tmp_path / "hush.flac"
    sf.write(hush, np.zeros(RATE, dtype=np.float32), RATE)
    pool["ann"] = [hush, *pool["ann"], hush]
    config = SimulationConfig(target_duration=30.0, vad_confirmed=False)
    turns = plan_conversation(pool, 4, seed=1, config=config)
    assert {turn.speaker for turn in turns} == set(TONES)
    assert hush not in {turn.path for turn in turns}
    pool["ann"] = [hush]
    with pytest.raises(ValueError, match="ann: none of its 1 recordings holds speech"):
        plan_conversation(pool, 4, seed=1, config=config)
