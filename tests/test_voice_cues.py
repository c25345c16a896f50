"""Pitch and formant spacing (synth/voice_cues.py) and `voices direction --cues` / `voices read --cues --gate`:
the cues measured on voices built with known pitch and formants, the fit's arithmetic, and the commands on
real LibriSpeech and RAVDESS audio with the real CAM++ encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_run import cli, dump

RATE = 16000


def vowel(f0: float, spacing: float, seconds: float = 1.5) -> np.ndarray:
    """A steady vowel of a uniform tube: a pulse train at `f0` through every resonance at spacing * (2i - 1) / 2
    under 6 kHz, each 80 Hz wide (what the cues should recover)."""
    from scipy.signal import lfilter

    n = int(seconds * RATE)
    pulses = np.zeros(n)
    pulses[:: int(round(RATE / f0))] = 1.0
    signal = pulses
    for i in range(1, int(6000 / spacing + 0.5) + 1):
        centre = spacing * (2 * i - 1) / 2
        radius = np.exp(-np.pi * 80 / RATE)
        signal = lfilter([1.0], [1, -2 * radius * np.cos(2 * np.pi * centre / RATE), radius ** 2], signal)
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


@pytest.mark.parametrize("f0, spacing", [(110.0, 1000.0), (220.0, 1200.0)])
def test_cues_recover_the_pitch_and_spacing_a_voice_was_built_with(f0, spacing):
    from synth.voice_cues import measure_cues

    pitch, measured_spacing, narrow_spacing = measure_cues(vowel(f0, spacing), RATE)
    assert pitch == pytest.approx(f0, rel=0.03)
    assert measured_spacing == pytest.approx(spacing, rel=0.05)
    assert narrow_spacing == pytest.approx(spacing, rel=0.05)


def test_a_telephone_channel_leaves_pitch_and_the_narrow_spacing_and_removes_the_wideband_spacing():
    from eval.simulate import telephone_band
    from synth.voice_cues import band_limited, measure_cues

    voice = vowel(120.0, 1050.0)
    call = telephone_band(voice).astype(np.float32)
    assert not band_limited(voice, RATE) and band_limited(call, RATE) and band_limited(voice[::2], RATE // 2)
    pitch, spacing, narrow_spacing = measure_cues(call, RATE)
    assert np.isnan(spacing)  # no F4 in the band: an LPC of the empty upper band would misplace it
    assert pitch == pytest.approx(120.0, rel=0.03) and narrow_spacing == pytest.approx(1050.0, rel=0.05)


def test_cues_are_the_same_at_another_sample_rate_and_nan_for_silence():
    from scipy.signal import resample_poly

    from synth.voice_cues import measure_cues

    voice = vowel(150.0, 1100.0)
    at_24k = resample_poly(voice, 3, 2).astype(np.float32)
    assert measure_cues(at_24k, 24000) == pytest.approx(measure_cues(voice, RATE), rel=0.03)
    assert np.isnan(measure_cues(np.zeros(RATE, np.float32), RATE)).all()
    assert np.isnan(measure_cues(np.zeros(100, np.float32), RATE)).all()  # shorter than a pitch frame
    assert np.isnan(measure_cues(np.zeros(0, np.float32), RATE)).all()  # a diarized speaker never heard alone


def test_fit_places_the_centre_between_the_class_means_in_log_units_and_skips_unmeasured_files():
    from synth.voice_cues import CueModel, cue_spreads, fit_cues

    from synth.voice_cues import pitch_and_spacing

    cues = np.array([[200.0, 1200.0, 1180.0], [250.0, 1300.0, 1290.0], [np.nan, 1250.0, 1240.0],
                     [100.0, 1000.0, 990.0], [125.0, 1050.0, 1060.0], [110.0, np.nan, 1000.0]])
    labels = ["F", "F", "F", "M", "M", "M"]
    model = fit_cues(cues, labels, ("F", "M"))
    log = np.log
    mean_f = [np.mean(log([200, 250])), np.mean(log([1200, 1300, 1250])), np.mean(log([1180, 1290, 1240]))]
    mean_m = [np.mean(log([100, 125, 110])), np.mean(log([1000, 1050])), np.mean(log([990, 1060, 1000]))]
    assert model.centre == pytest.approx((np.array(mean_f) + mean_m) / 2)
    assert list(model.sign) == [-1.0, -1.0, -1.0]  # the positive label (M) has the lower pitch and spacings
    assert model.files == (5, 5, 6)
    # a male voice reads positive on every cue, a female one negative; an unmeasured cue stays NaN, and the
    # spacing read falls back on the narrow-band one
    read = cue_spreads(model, np.array([[105.0, 1010.0, 1000.0], [240.0, np.nan, 1250.0]]))
    assert (read[0] > 0).all() and read[1, 0] < 0 and np.isnan(read[1, 1]) and read[1, 2] < 0
    pitch, spacing, narrow = pitch_and_spacing(model, np.array([[105.0, 1010.0, 1000.0], [240.0, np.nan, 1250.0]]))
    assert spacing == pytest.approx([read[0, 1], read[1, 2]]) and list(narrow) == [False, True]
    assert CueModel.from_metadata(json.loads(json.dumps(model.to_metadata()))).centre == pytest.approx(model.centre)
    # labelled files that are all band-limited leave the wideband spacing out of the model, not the fit
    calls = fit_cues(np.where(np.arange(3) == 1, np.nan, cues), labels, ("F", "M"))
    assert np.isnan(calls.centre[1]) and calls.files[1] == 0
    stored = json.loads(json.dumps(calls.to_metadata()))
    assert stored["centre"][1] is None and np.isnan(CueModel.from_metadata(stored).centre[1])


def test_fit_refuses_a_cue_measured_on_too_few_files_of_a_class():
    from synth.voice_cues import CueError, CueModel, fit_cues

    cues = np.array([[200.0, 1200.0, 1200.0], [np.nan, 1250.0, 1250.0], [100.0, 1000.0, 1000.0],
                     [110.0, 1010.0, 1010.0]])
    with pytest.raises(CueError, match="pitch measured on 1 file\\(s\\) labelled 'F'; at least 2 are needed"):
        fit_cues(cues, ["F", "F", "M", "M"], ("F", "M"))
    names = ["pitch", "spacing", "narrow spacing"]
    with pytest.raises(CueError, match="malformed"):
        CueModel.from_metadata({"names": names, "centre": [0, 0, 0], "spread": [0, 1, 1], "sign": [1, 1, 1],
                                "labels": ["F", "M"], "files": [2, 2, 2]})
    with pytest.raises(CueError, match="malformed"):  # a model of other cues
        CueModel.from_metadata({"names": names[:2], "centre": [0, 0], "spread": [1, 1], "sign": [1, 1],
                                "labels": ["F", "M"], "files": [2, 2]})


# -- the commands, on real audio ------------------------------------------------------------------------


def reader_files(readers, speaker: str, number: int) -> list:
    return sorted((readers / speaker).glob("*.flac"))[:number]


def actor_files(actors, number: int, emotions: tuple[str, ...], intensity: str | None = None) -> list:
    return sorted(p for p in (actors / f"Actor_{number:02d}").glob("*.flac")
                  if p.stem.split("-")[2] in emotions and (intensity is None or p.stem.split("-")[3] == intensity))


def run(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    import torch

    from pipelines.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main(argv)
    finally:
        torch.set_num_threads(threads)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def cue_registry(shared_data, tmp_path_factory):
    """A sex direction fitted with --cues on four readers (1998, 3080 F; 2033, 2414 M) and actors 1-8's calm
    files, and an arousal direction on actors 1-8 -> (registry, readers folder, actors folder, fit stdout)."""
    readers = shared_data / "speakers" / "librispeech-test-other"
    actors = shared_data / "speakers" / "ravdess-dev"
    folder = tmp_path_factory.mktemp("cues")
    rows = [f"{p}\t{sex}" for speaker, sex in (("1998", "F"), ("3080", "F"), ("2033", "M"), ("2414", "M"))
            for p in reader_files(readers, speaker, 3)]
    rows += [f"{p}\t{'M' if n % 2 else 'F'}" for n in range(1, 9) for p in actor_files(actors, n, ("01", "02"))]
    (folder / "sex.tsv").write_text("path\tlabel\n" + "\n".join(rows) + "\n")
    aroused = [f"{p}\t{'high' if p.stem.split('-')[2] in ('05', '08') else 'low'}" for n in range(1, 9)
               for p in actor_files(actors, n, ("01", "02", "04", "05", "08"))]
    (folder / "arousal.tsv").write_text("path\tlabel\n" + "\n".join(aroused) + "\n")
    registry = folder / "voices.sqlite"
    code, out = run(["voices", "direction", "sex", "--labels", str(folder / "sex.tsv"), "--method", "fisher",
                     "--cues", "--registry", str(registry)])
    assert code == 0, out
    code, arousal_out = run(["voices", "direction", "arousal", "--labels", str(folder / "arousal.tsv"),
                             "--positive", "high", "--registry", str(registry)])
    assert code == 0, arousal_out
    return registry, readers, actors, out


@pytest.mark.slow
def test_fit_with_cues_stores_where_the_classes_sit(cue_registry):
    from cluster.registry import Registry

    registry, _, _, out = cue_registry
    with Registry(registry) as opened:
        cues = opened.get_direction("sex", "campplus-common-advanced").metadata["cues"]
    assert cues["labels"] == ["F", "M"] and cues["sign"] == [-1.0, -1.0, -1.0]
    # the midpoints lie between typical female and male voices: about 180 Hz pitch, 1100-1300 Hz spacing
    assert 130 < np.exp(cues["centre"][0]) < 230
    assert 1000 < np.exp(cues["centre"][1]) < 1400 and 1000 < np.exp(cues["centre"][2]) < 1400
    assert (f"cues: pitch measured on {cues['files'][0]}, formant spacing on {cues['files'][1]} and narrow-band "
            f"spacing on {cues['files'][2]} of") in out
    code, listed = run(["voices", "directions", "--registry", str(registry)])
    assert code == 0
    assert [line.endswith("with cues (voices read --cues)") for line in listed.splitlines()] == [False, True], listed


@pytest.mark.slow
def test_cues_read_a_held_out_reader_the_line_misreads(cue_registry, tmp_path, capsys):
    """Reader 367 (F), held out of the fit: pitch and spacing read every one of her ten files as female, and
    the JSON's and the line's numbers are the library's."""
    from cluster.registry import Registry
    from pipelines.commands.voice_algebra import file_cues
    from synth.voice_cues import CueModel, pitch_and_spacing

    registry, readers, _, _ = cue_registry
    files = reader_files(readers, "367", 10)
    report = tmp_path / "read.json"
    code, out, err = cli(capsys, "voices", "read", "sex", *map(str, files), "--cues", "--registry", str(registry),
                         "--json", str(report))
    assert code == 0, err
    record = json.loads(report.read_text())
    rows = record["readings"]
    assert [row["path"] for row in rows] == [str(p) for p in files]
    assert [row["cues"]["label"] for row in rows] == ["F"] * len(files), out
    with Registry(registry) as opened:
        model = CueModel.from_metadata(opened.get_direction("sex", "campplus-common-advanced").metadata["cues"])
    assert record["cues"]["centre"] == pytest.approx(list(model.centre)) and record["gate"] is None
    for row, path in zip(rows, files):
        measured = file_cues(str(path))
        assert row["cues"]["rule"] == "pitch + spacing"
        assert row["cues"]["pitch_hz"] == pytest.approx(measured[0], abs=0.1)
        pitch, spacing, narrow = pitch_and_spacing(model, measured)
        assert not narrow[0] and row["cues"]["spreads"] == pytest.approx(pitch[0] + spacing[0], abs=1e-3)
        assert f"cues: F {row['cues']['spreads']:+.2f} spreads by pitch + spacing" in out


@pytest.mark.slow
def test_the_arousal_gate_hands_raised_male_pitch_to_the_line(cue_registry, capsys):
    """Held-out actor 11 (M) shouting: his pitch sits on the female side, the arousal line reads the files as
    aroused, and the line with the spacing reads him male."""
    registry, _, actors, _ = cue_registry
    files = actor_files(actors, 11, ("05",), intensity="02")
    code, out, err = cli(capsys, "voices", "read", "sex", *map(str, files), "--cues", "--gate", "arousal",
                         "--registry", str(registry))
    assert code == 0, err
    lines = [line for line in out.splitlines() if not line.startswith("(")]
    assert len(lines) == len(files) == 2
    for line in lines:
        assert "by line + spacing" in line and "cues: M +" in line, line
        pitch = float(line.split("(pitch ")[1].split(" Hz")[0])
        assert pitch > 180, line  # higher than the fit's midpoint: pitch alone would call him female


def test_a_gate_without_cues_is_refused_before_any_work(tmp_path, capsys):
    audio = tmp_path / "clip.flac"
    audio.write_bytes(b"not audio")
    code, out, err = cli(capsys, "voices", "read", "sex", str(audio), "--gate", "arousal",
                         "--registry", str(tmp_path / "none.sqlite"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "--gate arousal: only with --cues" in err, err
    assert not (tmp_path / "none.sqlite").exists()


def test_cues_need_a_direction_fitted_with_them(tmp_path, capsys):
    from cluster.registry import Registry

    registry = tmp_path / "voices.sqlite"
    with Registry(registry) as opened:
        opened.store_direction("sex", "campplus-common-advanced", np.ones(192),
                               {"threshold": 0.5, "labels": ["F", "M"], "spread": 0.1})
    before = dump(registry)
    code, out, err = cli(capsys, "voices", "read", "sex", str(tmp_path / "never-read.flac"), "--cues",
                         "--registry", str(registry))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "direction 'sex' was fitted without --cues; fit it again with" in err
    assert dump(registry) == before


def test_fit_with_cues_refuses_voices_and_labels_of_more_than_two_values(tmp_path, capsys):
    voices = tmp_path / "voices.tsv"
    voices.write_text("voice\tlabel\nada\tF\nbob\tM\n")
    code, _, err = cli(capsys, "voices", "direction", "sex", "--labels", str(voices), "--cues",
                       "--registry", str(tmp_path / "r.sqlite"))
    assert code == 1 and "--cues: needs the labelled audio itself" in err and err.count("\n") == 1
    three = tmp_path / "three.tsv"
    three.write_text("path\tlabel\na.flac\tx\nb.flac\ty\nc.flac\tz\n")
    code, _, err = cli(capsys, "voices", "direction", "age", "--labels", str(three), "--cues",
                       "--registry", str(tmp_path / "r.sqlite"))
    assert code == 1 and "--cues: needs a label with two values; " in err and err.count("\n") == 1
    assert not (tmp_path / "r.sqlite").exists()


@pytest.mark.slow
def test_cues_read_a_held_out_reader_over_the_telephone_by_the_narrow_band_spacing(cue_registry, tmp_path, capsys):
    """Reader 367's files as a phone call stores them (8 kHz, 300 Hz high-pass): no wideband spacing is
    measured, the narrow-band one stands in, and she is still read female."""
    import soundfile as sf

    from diarize.audio import load_audio
    from eval.simulate import telephone_band

    registry, readers, _, _ = cue_registry
    calls = []
    for path in reader_files(readers, "367", 10):
        call = telephone_band(load_audio(str(path), sample_rate=RATE).samples)[::2]  # the channel is 8 kHz
        calls.append(tmp_path / f"{path.stem}-call.flac")
        sf.write(calls[-1], call.astype(np.float32), RATE // 2)
    report = tmp_path / "read.json"
    code, out, err = cli(capsys, "voices", "read", "sex", *map(str, calls), "--cues", "--registry", str(registry),
                         "--json", str(report))
    assert code == 0, err
    rows = json.loads(report.read_text())["readings"]
    assert all(row["cues"]["narrow_band"] and row["cues"]["spacing_hz"] is None for row in rows)
    assert all(900 < row["cues"]["narrow_spacing_hz"] < 1600 for row in rows)
    assert [row["cues"]["label"] for row in rows] == ["F"] * len(calls), out
    assert out.count("(pitch ") == len(calls) and out.count("narrow spacing ") == len(calls)


@pytest.mark.slow
def test_cues_read_each_diarized_speaker_from_the_turns_it_holds_alone(cue_registry, shared_data, tmp_path, capsys):
    """dsim004 holds three readers none of whom the fit saw: 3005 (M), 3331 and 367 (F). Each speaker found
    is read from its own turns heard alone, so the one conversation gets a male and two female readings, the
    male one at a male pitch."""
    from pyannote.database.util import load_rttm

    registry, _, _, _ = cue_registry
    folder = shared_data / "simconv-dev"
    reference = load_rttm(folder / "rttm" / "dsim004.rttm")["dsim004"]
    assert sorted(reference.labels()) == ["3005", "3331", "367"]
    report = tmp_path / "read.json"
    code, out, err = cli(capsys, "voices", "read", "sex", str(folder / "audio" / "dsim004.flac"), "--speakers",
                         "--cues", "--registry", str(registry), "--json", str(report))
    assert code == 0, err
    rows = sorted(json.loads(report.read_text())["readings"], key=lambda row: row["cues"]["pitch_hz"])
    assert len(rows) == 3 and all(row["speaker"] for row in rows), out
    assert [row["cues"]["label"] for row in rows] == ["M", "F", "F"], out
    assert rows[0]["cues"]["pitch_hz"] < 150 < rows[1]["cues"]["pitch_hz"], out
