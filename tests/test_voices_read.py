"""`voicemap voices read` and the fit that leaves short files out, on real RAVDESS and AMI audio with the real
CAM++ encoder: one line per file or diarized speaker, the numbers the library gives, bad files one line each,
a direction of another encoder refused, a direction stored before spreads were kept still read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_run import cli, dump

ENC = "campplus-common-advanced"
#: holds 0.97 s of speech (silero-vad), under the fit's 1 s per file: the file of issue 24
SHORT = "Actor_01/03-01-05-02-01-01-01.flac"


def calm_files(actors, number: int) -> list:
    """An actor's neutral and calm files (emotion 01 and 02), as many as the excerpt holds (up to 6)."""
    return sorted(p for p in (actors / f"Actor_{number:02d}").glob("*.flac") if p.stem.split("-")[2] in ("01", "02"))


@pytest.fixture(scope="module")
def fitted(shared_data, tmp_path_factory):
    """A sex direction fitted by the command on actors 1-8 (their neutral and calm files) plus SHORT ->
    (registry, actors folder, the fit's stdout, number of files that hold enough speech)."""
    import torch

    from pipelines.cli import main

    actors = shared_data / "speakers" / "ravdess-dev"
    folder = tmp_path_factory.mktemp("read")
    rows = [f"{path}\t{'M' if n % 2 else 'F'}" for n in range(1, 9) for path in calm_files(actors, n)]
    rows.append(f"{actors / SHORT}\tM")
    labels = folder / "sex.tsv"
    labels.write_text("path\tlabel\n" + "\n".join(rows) + "\n")
    registry = folder / "voices.sqlite"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared
    try:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["voices", "direction", "sex", "--labels", str(labels), "--registry", str(registry)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return registry, actors, out.getvalue(), len(rows) - 1


@pytest.mark.slow
def test_fit_leaves_out_a_file_under_the_speech_minimum_and_counts_it(fitted):
    from cluster.registry import Registry

    registry, actors, out, usable = fitted
    assert f"left out 1 of {usable + 1} files with under 1 s of speech: {actors / SHORT} (0.97 s)" in out
    assert f"{usable} paths; + = M, - = F" in out
    with Registry(registry) as opened:
        stored = opened.get_direction("sex", ENC).metadata
    assert stored["n"] == usable and stored["left_out"] == [str(actors / SHORT)]
    # the spread kept at fit time is the training readings' pooled deviation around their class means
    assert 0 < stored["spread"] < 1


@pytest.mark.slow
def test_fit_refuses_when_too_few_files_remain(shared_data, tmp_path, capsys):
    actors = shared_data / "speakers" / "ravdess-dev"
    labels = tmp_path / "sex.tsv"
    labels.write_text("path\tlabel\n" + "".join(f"{p}\tM\n" for p in calm_files(actors, 3)[:2]) + f"{actors / SHORT}\tF\n")
    registry = tmp_path / "voices.sqlite"
    code, out, err = cli(capsys, "voices", "direction", "sex", "--labels", str(labels), "--registry", str(registry))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "too few files left to fit (F 0; at least 2 per label)" in err and "0.97 s" in err
    assert not registry.exists() or "sex" not in dump(registry)


@pytest.mark.slow
def test_read_prints_one_line_per_file_matching_the_library_and_goes_on_past_bad_files(fitted, tmp_path, capsys):
    from cluster.registry import Registry
    from diarize.embedding import load_encoder
    from pipelines.voice_embedding import embed_speech_audio, file_speech
    from synth.algebra import AttributeDirection, read_direction

    registry, actors, _, _ = fitted
    # held-out actors: 11 (M) and 12 (F); this small a fit reads actors 9 and 10 less cleanly (the benchmark
    # bench_directions_domains.py has the held-out accuracies over all actors)
    files = calm_files(actors, 11)[:3] + calm_files(actors, 12)[:3]
    missing = tmp_path / "missing.flac"
    argv = [str(files[0]), str(actors / SHORT), str(missing), *map(str, files[1:])]
    report = tmp_path / "readings.json"
    code, out, err = cli(capsys, "voices", "read", "sex", *argv, "--registry", str(registry), "--json", str(report))
    assert code == 1
    errors = err.strip().splitlines()
    assert errors[0] == (f"voicemap voices read: {actors / SHORT}: only 0.97 s of speech found in 2.4 s of audio "
                         "(at least 1 s needed)")
    assert errors[1] == f"voicemap voices read: {missing}: no such file"
    assert errors[2] == "voicemap voices read: 2 of 8 inputs could not be read"
    lines = [line for line in out.splitlines() if not line.startswith("(")]
    assert [line.split("  ")[0] for line in lines] == [str(p) for p in files]  # one line each, in order
    sides = [line.split("  ")[2] for line in lines]
    # each held-out actor is read on the right side for most of their files (one file of Actor_12 reads M)
    assert sides[:3].count("M") >= 2 and sides[3:].count("F") >= 2, sides
    record = json.loads(report.read_text())
    assert record["encoder_id"] == ENC and record["labels"] == ["F", "M"] and len(record["errors"]) == 2
    with Registry(registry) as opened:
        stored = opened.get_direction("sex", ENC)
    direction = AttributeDirection.from_stored(stored.vector, stored.metadata)
    assert record["spread"] == pytest.approx(direction.spread)
    encoder = load_encoder("campplus")
    for row, path in zip(record["readings"], files):
        audio, seconds, _ = file_speech(str(path), encoder, min_speech=1.0)
        expected = read_direction(direction, embed_speech_audio(audio, encoder, label=str(path)))[0]
        assert row["path"] == str(path) and row["speaker"] is None
        assert row["reading"] == pytest.approx(expected.value, abs=2e-4)
        assert row["spreads"] == pytest.approx((row["reading"] - direction.threshold) / direction.spread, abs=2e-3)
        assert f"{row['spreads']:+.2f} spreads" in out and row["label"] == ("M" if row["spreads"] > 0 else "F")
    spreads = [row["spreads"] for row in record["readings"]]
    assert np.mean(spreads[:3]) > 0 > np.mean(spreads[3:])  # and from their mean reading


@pytest.mark.slow
def test_read_speakers_diarizes_and_reads_each_speaker(fitted, shared_data, capsys):
    registry, _, _, _ = fitted
    recording = shared_data / "diarization" / "audio" / "dev00.flac"  # AMI MEE009 and MEE012, two men
    code, out, err = cli(capsys, "voices", "read", "sex", str(recording), "--speakers", "--registry", str(registry))
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith(str(recording))]
    assert [line.split("  ")[0] for line in lines] == [f"{recording} SPEAKER_00", f"{recording} SPEAKER_01"]
    assert all(line.split("  ")[2] == "M" for line in lines), out


@pytest.mark.slow
def test_a_direction_stored_before_spreads_still_reads_with_a_note(fitted, tmp_path, capsys):
    from cluster.registry import Registry

    registry, actors, _, _ = fitted
    with Registry(registry) as opened:
        stored = opened.get_direction("sex", ENC)
        old = {key: value for key, value in stored.metadata.items() if key != "spread"}
        opened.store_direction("sex_old", ENC, stored.vector, old)
    path = calm_files(actors, 11)[0]
    code, out, err = cli(capsys, "voices", "read", "sex_old", str(path), "--registry", str(registry))
    assert code == 0, err
    assert out.startswith(f"{path}  reading +") and "spreads" not in out.splitlines()[0]
    assert "note: direction 'sex_old' was stored before directions kept their training spread" in out
    code, out, _ = cli(capsys, "voices", "directions", "--registry", str(registry))
    assert "sex_old  campplus-common-advanced  mean k=192  + = M, - = F  no spread" in out


def test_read_refuses_a_direction_of_another_encoder_before_reading_audio(tmp_path, capsys):
    from cluster.registry import Registry

    registry = tmp_path / "voices.sqlite"
    with Registry(registry) as opened:
        opened.store_direction("sex", "ecapa-voxceleb", np.ones(192), {"threshold": 0.5, "labels": ["F", "M"]})
    before = dump(registry)
    code, out, err = cli(capsys, "voices", "read", "sex", str(tmp_path / "never-read.flac"), "--registry", str(registry))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err == ("voicemap voices read: direction 'sex': fitted with ecapa-voxceleb, not campplus-common-advanced "
                   "(the encoder --embedding loads); a direction only reads vectors of its own encoder; read with "
                   "--embedding ecapa\n")
    code, _, err = cli(capsys, "voices", "read", "age", str(tmp_path / "never-read.flac"), "--registry", str(registry))
    assert code == 1 and "direction 'age': not stored" in err
    assert dump(registry) == before


@pytest.mark.parametrize("extra, message", [
    (["--min-speech", "0"], "--min-speech 0: must be a number of seconds above 0"),
    (["--min-speech", "nan"], "--min-speech nan: must be a number of seconds above 0"),
    (["--json", "FOLDER"], "is a folder; give a file name"),
    (["--json", "AUDIO"], "would replace"),
    (["--embedding", "nosuch"], "--embedding nosuch: not an encoder"),
])
def test_read_options_are_refused_before_any_work(tmp_path, capsys, extra, message):
    audio = tmp_path / "clip.flac"
    audio.write_bytes(b"not audio")
    extra = [str(tmp_path) if a == "FOLDER" else str(audio) if a == "AUDIO" else a for a in extra]
    code, out, err = cli(capsys, "voices", "read", "sex", str(audio), *extra, "--registry", str(tmp_path / "none.sqlite"))
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "none.sqlite").exists()
