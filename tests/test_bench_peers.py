"""benchmarks/bench_peers.py: senko's segments become the RTTM the evaluator scores, and bad options are refused
before anything is loaded. No model, no shared data."""

from __future__ import annotations

import pytest

from benchmarks.bench_peers import main, senko_annotation, write_rttm
from eval.corpora import load_rttm


def test_senko_segments_round_trip_through_rttm(tmp_path):
    # senko's merged segments as its diarize() returns them; the zero-length one carries no speech
    segments = [{"speaker": "SPEAKER_01", "start": 0.5, "end": 2.0},
                {"speaker": "SPEAKER_02", "start": 2.0, "end": 3.25},
                {"speaker": "SPEAKER_01", "start": 4.0, "end": 4.0},
                {"speaker": "SPEAKER_01", "start": 5.0, "end": 6.5}]
    annotation = senko_annotation(segments, "call one")
    assert annotation.uri == "call one"
    assert sorted(annotation.labels()) == ["SPEAKER_01", "SPEAKER_02"]
    assert annotation.label_duration("SPEAKER_01") == pytest.approx(3.0)

    path = tmp_path / "call one.rttm"
    write_rttm(annotation, "call one", path)
    # the uri with a space is written as one RTTM field and read back under the name the manifest gives
    assert path.read_text().splitlines()[0].split()[1] == "call_one"
    read = load_rttm(path, "call one")
    assert sorted((round(s.start, 3), round(s.end, 3), label) for s, _, label in read.itertracks(yield_label=True)) == [
        (0.5, 2.0, "SPEAKER_01"), (2.0, 3.25, "SPEAKER_02"), (5.0, 6.5, "SPEAKER_01")]


def test_no_speech_is_an_empty_rttm(tmp_path):
    # senko returns None when its VAD finds nothing: an empty file, scored as a hypothesis without speech
    path = tmp_path / "quiet.rttm"
    write_rttm(senko_annotation(None, "quiet"), "quiet", path)
    assert path.read_text() == ""
    assert len(load_rttm(path, "quiet")) == 0


@pytest.mark.parametrize("argv, message", [
    (["--systems", "pyannote,whisper"], "--systems"),
    (["--ahc-threshold", "0"], "--ahc-threshold"),
    (["{tmp}/missing.tsv"], "no such manifest"),
])
def test_bad_options_are_refused_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    # main() sets HF_HUB_OFFLINE for its process; monkeypatch puts this one's back as it was afterwards
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(SystemExit) as stop:
        main([part.format(tmp=tmp_path) for part in argv] + ["--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written either
