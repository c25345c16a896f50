"""Anonymization of recordings: real speech (LibriSpeech readers), real diarization, real CAM++; no mocks.

One simulated two-reader conversation is written at 22.05 kHz (so the native-rate path is exercised) and
anonymized once through the CLI; the tests below read that output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

RATE = 16000


@pytest.fixture(scope="module")
def conversation(shared_data, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    from eval.simulate import SimulationConfig, SourceCache, plan_conversation, render, speakers_from_folder

    pool = speakers_from_folder(shared_data / "speakers" / "librispeech-test-other")
    config = SimulationConfig(target_duration=25.0)
    cache = SourceCache(config)
    turns = plan_conversation(pool, 2, seed=11, config=config, cache=cache)
    samples, reference = render(turns, config=config, cache=cache, uri="anon")
    return {"pool": pool, "turns": turns, "samples": samples, "reference": reference,
            "dir": tmp_path_factory.mktemp("anonymize")}


@pytest.fixture(scope="module")
def anonymized(conversation):
    import soxr

    from diarize.pipeline import Diarizer
    from synth.anonymize.recording import anonymize_file

    native = 22050
    path = conversation["dir"] / "conversation.wav"
    sf.write(path, soxr.resample(conversation["samples"], RATE, native), native, subtype="PCM_16")
    out = conversation["dir"] / "anonymized.wav"
    diarizer = Diarizer()
    result = anonymize_file(path, out, seed=5, diarizer=diarizer)  # the default method
    return {"input": path, "output": out, "result": result, "diarizer": diarizer}


@pytest.mark.slow
def test_output_has_the_input_rate_and_exact_length(anonymized):
    source, output = sf.info(str(anonymized["input"])), sf.info(str(anonymized["output"]))
    assert output.samplerate == source.samplerate == 22050
    assert output.frames == source.frames
    samples, _ = sf.read(anonymized["output"])
    assert np.isfinite(samples).all() and np.abs(samples).max() > 0.01


def test_sidecar_holds_drawn_parameters_only(anonymized):
    from synth.anonymize.recording import draw_pseudo_voices

    sidecar = json.loads(anonymized["output"].with_suffix(".json").read_text())
    labels = sorted(sidecar["speakers"])
    assert labels == sorted(anonymized["result"].annotation.labels()) and len(labels) >= 2
    assert sidecar["seed"] == 5 and sidecar["sample_rate"] == 22050
    method = sidecar["method"]
    drawn = draw_pseudo_voices(labels, 5, method)
    for label, entry in sidecar["speakers"].items():
        # exactly the drawn parameters the method uses and the speech time; no vector, no measured pitch
        assert set(entry) <= {"alpha", "target_f0_hz", "formant_scale", "speech_seconds"} and len(entry) >= 2
        assert entry == {**drawn[label].as_dict(method), "speech_seconds": entry["speech_seconds"]}
    text = json.dumps(sidecar)
    assert "embedding" not in text and "centroid" not in text and "[" not in text  # no list of numbers at all


@pytest.fixture(scope="module")
def rediarized(anonymized):
    from pyannote.metrics.detection import DetectionErrorRate

    from diarize.audio import load_audio
    from eval.metrics import DiarizationScores

    again = anonymized["diarizer"](load_audio(anonymized["output"]))
    original = anonymized["result"].annotation
    row = DiarizationScores().add("anon", original, again.annotation)
    row["speech_timing_error"] = DetectionErrorRate()(original, again.annotation)
    return row


def test_turn_taking_survives_diarization_of_the_anonymized_recording(rediarized):
    """Who-spoke-when timing: the speech the original's diarization found is found again, and no more
    (detection error rate of the speech timelines, missed + false alarm, at most 10 %)."""
    assert rediarized["speech_timing_error"] <= 0.10, rediarized


def test_full_der_against_the_original_diarization(rediarized):
    """On this two-speaker call the diarization of the anonymized recording matches the original's within the
    issue's 10 %. (Measured 4.9 %; 8.1 % before double talk went to the floor holder's voice, 10.6 % before the
    diarizer's second look at short turns; on the benchmark's
    simulated three-reader conversations the target is still not met, see docs/anonymization-experiments.md,
    "Reading the figures".)"""
    print(f"\nDER against the original's diarization: {100 * rediarized['der']:.1f} %")
    assert rediarized["der"] <= 0.10, rediarized


def test_voice_changes_more_than_between_two_recordings_of_the_reader(conversation, anonymized):
    """CAM++ cosine(original turn, its anonymized version) is below cosine(original turn, another recording
    of the same reader): the attacker's encoder finds the output less like the reader than the reader's
    own other recording."""
    import soxr

    from diarize.audio import load_audio
    from diarize.embedding import load_encoder

    encoder = load_encoder("campplus")
    output = soxr.resample(sf.read(anonymized["output"], dtype="float32")[0], 22050, RATE).astype(np.float32)
    original = conversation["samples"]
    turns = sorted(conversation["turns"], key=lambda t: -(t.regions[-1][1] - t.regions[0][0]))
    checked = set()
    for turn in turns:
        if turn.speaker in checked or turn.overlaps_previous:
            continue
        start, end = turn.regions[0][0], turn.regions[-1][1]
        if end - start < 2 * RATE:
            continue
        other = next(p for p in conversation["pool"][turn.speaker] if p != turn.path)
        unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
        reference = unit(encoder.embed(original[start:end]))
        same_reader = float(reference @ unit(encoder.embed(load_audio(other).samples)))
        after = float(reference @ unit(encoder.embed(output[start:end])))
        assert after < same_reader, (turn.speaker, after, same_reader)
        checked.add(turn.speaker)
    assert len(checked) == 2


def test_pseudo_voices_are_deterministic_distinct_and_spread():
    from synth.anonymize.recording import MIN_F0_GAP_SEMITONES, draw_pseudo_voices

    labels = ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03"]
    first, again = draw_pseudo_voices(labels, 3), draw_pseudo_voices(list(reversed(labels)), 3)
    assert first == again  # same seed, same labels -> same parameters, whatever the order
    assert draw_pseudo_voices(labels, 4) != first
    pitches = sorted(np.log2(v.target_f0) * 12 for v in first.values())
    assert np.min(np.diff(pitches)) >= MIN_F0_GAP_SEMITONES  # distinct speakers stay apart in pitch
    assert len({v.alpha for v in first.values()}) == len(labels)


def test_spread_sets_the_speakers_of_a_recording_apart_and_away_from_their_own_vocal_tract():
    """Method "spread": the lowest pitch target gets the formant warp down and the highest gets it up, so the
    pseudo-voices of one recording are far apart; no speaker's formant scale is within the margin of 1."""
    from synth.anonymize.recording import MIN_F0_GAP_SEMITONES, SPREAD_FORMANT_LOG2, draw_pseudo_voices

    for count in (2, 3, 4):
        labels = [f"SPEAKER_{i:02d}" for i in range(count)]
        for seed in range(20):
            voices = draw_pseudo_voices(labels, seed, "spread")
            assert voices == draw_pseudo_voices(list(reversed(labels)), seed, "spread")
            by_pitch = sorted(voices.values(), key=lambda v: v.target_f0)
            assert by_pitch[0].formant_scale < 1.0 < by_pitch[-1].formant_scale, (count, seed, voices)
            warps = np.abs(np.log2([v.formant_scale for v in voices.values()]))
            assert np.all(warps >= SPREAD_FORMANT_LOG2[0] - 1e-9) and np.all(warps <= SPREAD_FORMANT_LOG2[1] + 1e-9)
            pitches = np.log2([v.target_f0 for v in by_pitch]) * 12
            assert np.min(np.diff(pitches)) >= MIN_F0_GAP_SEMITONES
    # a lone speaker (an enrollment anonymized by an attacker, say) still moves, in either direction
    alone = [draw_pseudo_voices(["A"], seed, "spread")["A"].formant_scale for seed in range(40)]
    assert min(alone) < 1.0 < max(alone)


def test_pitch_lands_near_the_drawn_target(conversation):
    from diarize.audio import load_audio
    from synth.anonymize.recording import F0_RANGE
    from synth.anonymize.voice_transforms import PseudoVoice, median_f0, transform

    checked = 0
    for speaker in sorted({t.speaker for t in conversation["turns"]}):
        path = next(t.path for t in conversation["turns"] if t.speaker == speaker)
        speech = load_audio(path).samples[: 6 * RATE]
        source = median_f0(speech, RATE)
        assert source is not None
        # targets at both ends of the range pseudo-voices are drawn from, where `transform` can reach them
        # (it clips the move to an octave)
        for target in (F0_RANGE[0] * 1.2, F0_RANGE[1]):
            if not 0.5 <= target / source <= 2.0:
                continue
            # method "pitch" (no McAdams): the pole warp re-colours the harmonics, which biases this simple
            # autocorrelation estimate by about a semitone, so it would blur what is being checked here
            out = transform(speech, RATE, PseudoVoice(0.85, target, 1.0), "pitch", source_f0=source)
            assert len(out) == len(speech)
            assert abs(12 * np.log2(median_f0(out, RATE) / target)) < 1.5, (speaker, source, target)
            checked += 1
    assert checked >= 3


def test_same_seed_same_output_and_each_label_keeps_its_voice(conversation):
    """Two turns of one label get the same transform: anonymizing a recording equals anonymizing each
    labelled region alone with that label's pseudo-voice (away from edges)."""
    from pyannote.core import Annotation, Segment

    from synth.anonymize.recording import anonymize_samples

    samples = conversation["samples"][: 12 * RATE]
    annotation = Annotation()
    annotation[Segment(1.0, 4.0)] = "A"
    annotation[Segment(5.0, 8.0)] = "B"
    annotation[Segment(9.0, 11.0)] = "A"
    one = anonymize_samples(samples, RATE, annotation, seed=9, method="mcadams")
    two = anonymize_samples(samples, RATE, annotation, seed=9, method="mcadams")
    other = anonymize_samples(samples, RATE, annotation, seed=10, method="mcadams")
    assert np.array_equal(one.samples, two.samples) and len(one.samples) == len(samples)
    assert not np.allclose(one.samples, other.samples)
    assert one.voices["A"] != one.voices["B"]


def test_double_talk_is_rendered_by_the_floor_holders_voice_never_the_raw_signal(conversation):
    from pyannote.core import Annotation, Segment

    from synth.anonymize.recording import anonymize_samples
    from synth.anonymize.voice_transforms import lpc_warp

    samples = conversation["samples"][: 6 * RATE].astype(np.float64)
    annotation = Annotation()
    annotation[Segment(0.0, 4.0)] = "B"  # B holds the floor, A cuts in: ownership must not follow the names
    annotation[Segment(2.0, 6.0)] = "A"
    result = anonymize_samples(samples, RATE, annotation, seed=1, method="mcadams")
    voices = result.voices
    holder = lpc_warp(samples[: int(4.25 * RATE)], RATE, alpha=voices["B"].alpha)
    other = lpc_warp(samples[int(1.75 * RATE):], RATE, alpha=voices["A"].alpha)
    inner = slice(int(2.3 * RATE), int(3.7 * RATE))
    shifted = slice(inner.start - int(1.75 * RATE), inner.stop - int(1.75 * RATE))
    assert np.allclose(result.samples[inner], holder[inner], atol=1e-4)
    assert not np.allclose(result.samples[inner], other[shifted], atol=1e-3)
    assert not np.allclose(result.samples[inner], samples[inner], atol=1e-3)
    # once B stops, A's own voice takes over
    after = slice(int(4.3 * RATE), int(5.7 * RATE))
    assert np.allclose(result.samples[after], other[after.start - int(1.75 * RATE): after.stop - int(1.75 * RATE)],
                       atol=1e-4)


def test_each_stretch_of_double_talk_goes_to_the_speaker_already_talking():
    from synth.anonymize.recording import owned_samples

    first, second, third = (np.zeros(100, dtype=bool) for _ in range(3))
    first[0:40], second[20:60], third[30:90] = True, True, True
    owned = owned_samples({"x": third, "y": second, "z": first})
    assert np.array_equal(np.flatnonzero(owned["z"]), np.arange(0, 40))
    assert np.array_equal(np.flatnonzero(owned["y"]), np.arange(40, 60))
    assert np.array_equal(np.flatnonzero(owned["x"]), np.arange(60, 90))
    # nobody loses speech that nobody else renders
    assert np.array_equal(owned["x"] | owned["y"] | owned["z"], first | second | third)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all\n" * 40])
def test_bad_input_is_one_line_and_leaves_no_output(tmp_path, capsys, content):
    from pipelines.cli import main

    source = tmp_path / "broken.wav"
    source.write_bytes(content)
    out = tmp_path / "out" / "anon.wav"
    status = main(["anonymize", str(source), "-o", str(out), "--seed", "1", "-q"])
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert len(error.splitlines()) == 1 and "broken.wav" in error
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


@pytest.mark.slow
def test_cli_run_is_deterministic_for_a_seed(anonymized, tmp_path):
    """`voicemap anonymize` with the same seed rewrites the same samples and the same sidecar parameters."""
    from pipelines.cli import main

    out = tmp_path / "again.wav"
    assert main(["anonymize", str(anonymized["input"]), "-o", str(out), "--seed", "5", "-q"]) == 0
    first, _ = sf.read(anonymized["output"], dtype="int16")
    again, rate = sf.read(out, dtype="int16")
    assert rate == 22050 and np.array_equal(first, again)
    speakers = lambda path: json.loads(path.with_suffix(".json").read_text())["speakers"]  # noqa: E731
    assert speakers(out) == speakers(anonymized["output"])


def test_formant_warp_moves_the_envelope_without_tilting_it(conversation):
    """A formant scale of 0.8 or 1.25 keeps the level of each broad band within a few dB: moving LPC poles
    instead lifted 4-8 kHz by up to 20 dB at 1.25 (a resonance piled up at Nyquist) and emptied it at 0.8,
    and the diarizer then lost most of that speaker's speech. The spectral centroid of the speech band still
    moves the way the scale says."""
    from synth.anonymize.voice_transforms import lpc_warp

    turn = max(conversation["turns"], key=lambda t: t.speech_end - t.speech_start)
    speech = conversation["samples"][turn.speech_start : turn.speech_end].astype(np.float64)
    freq = np.fft.rfftfreq(len(speech), 1 / RATE)

    def bands(y):
        power = np.abs(np.fft.rfft(y)) ** 2
        levels = [10 * np.log10(power[(freq >= lo) & (freq < hi)].sum()) for lo, hi in
                  [(0, 1000), (1000, 2000), (2000, 4000), (4000, 6000), (6000, 8000)]]
        inside = (freq >= 300) & (freq < 4000)
        return np.array(levels), float((freq[inside] * power[inside]).sum() / power[inside].sum())

    before, centroid = bands(speech)
    for scale in (1 / 1.4, 0.8, 1.25, 1.4):  # 1.4 each way: the widest `spread` draws
        after, moved = bands(lpc_warp(speech, RATE, formant_scale=scale))
        assert np.max(np.abs(after - before)) < 8.0, (scale, before.round(1), after.round(1))
        assert (moved - centroid) * (scale - 1.0) > 0, (scale, centroid, moved)


def test_vtln_warp_is_monotonic_and_ends_at_nyquist():
    from synth.anonymize.voice_transforms import vtln_warp

    for nyquist in (8000.0, 11025.0, 24000.0):
        grid = np.linspace(0.0, nyquist, 2001)
        for scale in (0.8, 0.9, 1.12, 1.25):
            warped = vtln_warp(grid, nyquist, scale)
            assert np.all(np.diff(warped) > 0) and warped[0] == 0.0 and np.isclose(warped[-1], nyquist)
            formants = grid <= 4000.0  # F1-F4 are scaled exactly, at any rate
            assert np.allclose(warped[formants], scale * grid[formants])


def _band_level_db(samples: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(np.asarray(samples, dtype=np.float64))) ** 2
    freq = np.fft.rfftfreq(len(samples), 1.0 / RATE)
    return float(10 * np.log10(spectrum[(freq >= low) & (freq < high)].sum() + 1e-20))


@pytest.mark.slow
def test_telephone_band_input_keeps_its_band(conversation):
    """A telephone-band recording stays telephone-band: the LPC transforms whiten the empty band above
    3.4 kHz and an upward formant warp moves the band edge up, which filled 5-8 kHz to within 10-20 dB of the
    speech band and made the anonymized calls' diarization miss much of the speech (docs/anonymization-experiments.md,
    "How the transforms work", narrowband input)."""
    from scipy.signal import butter, sosfiltfilt

    from synth.anonymize.recording import anonymize_samples
    from synth.anonymize.voice_transforms import occupied_bandwidth

    wideband = np.asarray(conversation["samples"], dtype=np.float64)
    telephone = sosfiltfilt(butter(10, [300.0, 3400.0], btype="bandpass", fs=RATE, output="sos"), wideband)
    assert occupied_bandwidth(wideband, RATE) > 0.9 * RATE / 2
    assert 3000.0 < occupied_bandwidth(telephone, RATE) < 4200.0

    speech_level = _band_level_db(telephone, 300.0, 3400.0)
    assert _band_level_db(telephone, 5000.0, 8000.0) < speech_level - 60.0
    for seed in (5, 6):  # two draws, so both directions of the formant warp are met
        out = anonymize_samples(telephone, RATE, conversation["reference"], seed=seed, method="spread").samples
        assert len(out) == len(telephone)
        assert _band_level_db(out, 5000.0, 8000.0) < _band_level_db(out, 300.0, 3400.0) - 50.0
        # the speech band itself is kept (nothing is muted)
        assert _band_level_db(out, 300.0, 3400.0) > speech_level - 6.0
