"""`voicemap eval --report DIR` and the side-by-side outputs, checked in a real headless Chromium (Debian's
`chromium`; those checks skip where it is absent): the page loads nothing from the network, its totals table
has a row per system, and every file's timeline has the reference row and one row per system, coloured after
the optimal mapping, with errors marked only where a system is wrong. A screenshot lands in the test's tmp
folder (printed), for a person to look at.

Systems are RTTM folders made from the shared data's references: `exact` (the reference itself: DER 0) and
`merged` (every speaker called the same: confusion). One test diarizes the 30 s call from the pyannote.audio
wheel for the speed figures.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pyannote.audio
import pytest

from pipelines.cli import main

CLIPS = ("sample", "dev00", "trn05", "trn08")
SAMPLE = Path(pyannote.audio.__file__).parent / "sample"


def _run(argv, capsys) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main([str(part) for part in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


@pytest.fixture(scope="module")
def reported(shared_data, tmp_path_factory):
    """A manifest of four shared clips and a fifth row whose merged hypothesis is missing; the report of
    `exact` and `merged` over it."""
    root = tmp_path_factory.mktemp("eval-report")
    data = shared_data / "diarization"
    rows = ["uri\taudio\trttm\tuem"]
    for folder in ("exact", "merged"):
        (root / folder).mkdir()
    for uri in CLIPS + ("trn09",):
        rows.append(f"{uri}\t{data / 'audio' / f'{uri}.flac'}\t{data / 'rttm' / f'{uri}.rttm'}\t{data / 'uem' / f'{uri}.uem'}")
        text = (data / "rttm" / f"{uri}.rttm").read_text(encoding="utf-8")
        (root / "exact" / f"{uri}.rttm").write_text(text, encoding="utf-8")
        if uri != "trn09":
            (root / "merged" / f"{uri}.rttm").write_text(re.sub(r"(<NA> <NA> )\S+( <NA> <NA>)", r"\1A\2", text),
                                                         encoding="utf-8")
    (root / "m.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code = main(["eval", str(root / "m.tsv"), "--hyp", f"exact={root / 'exact'}", "--hyp", f"merged={root / 'merged'}",
                 "--convention", "fair", "-q", "--report", str(root / "report"), "--json", str(root / "scores.json")])
    assert code == 1  # trn09 has no merged hypothesis
    return root


def test_json_and_csv_hold_every_system(reported):
    payload = json.loads((reported / "scores.json").read_text(encoding="utf-8"))
    assert set(payload["systems"]) == {"exact", "merged"} and "total" not in payload
    exact, merged = payload["systems"]["exact"], payload["systems"]["merged"]
    # trn09 failed for merged, so it is left out for both
    assert [row["uri"] for row in exact["files"]] == list(CLIPS) == [row["uri"] for row in merged["files"]]
    assert payload["failed"] == 1 and payload["failures"][0]["uri"] == "trn09"
    assert exact["total"]["der"] == 0.0 and exact["total_interval"]["high"] == 0.0
    assert merged["total"]["der"] > 0.2 and merged["total"]["confusion"] > 0
    assert merged["total_interval"]["low"] < merged["total"]["der"] < merged["total_interval"]["high"]
    assert all(row["speaker_count_error"] == 1 - row["reference_speakers"] for row in merged["files"])
    difference = merged["difference_from_first"]
    assert difference["than"] == "exact" and difference["der"] == pytest.approx(merged["total"]["der"])
    assert 0 < difference["low"] < difference["der"] < difference["high"]
    assert payload["convention"]["pyannote_collar"] == 0.5 and payload["convention"]["collar_each_side_s"] == 0.25
    with open(reported / "report" / "scores.csv", encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(row["system"], row["uri"]) for row in table] == \
        [(name, uri) for name in ("exact", "merged") for uri in CLIPS + ("TOTAL",)]
    total = next(row for row in table if row["system"] == "merged" and row["uri"] == "TOTAL")
    assert float(total["der"]) == pytest.approx(merged["total"]["der"])
    assert float(total["der_low"]) == pytest.approx(merged["total_interval"]["low"])


def test_the_page_is_self_contained_and_shows_every_system_and_file(reported, browser, tmp_path):
    page = reported / "report" / "index.html"
    payload = json.loads((reported / "scores.json").read_text(encoding="utf-8"))
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "@import" not in text and "<script" not in text
    browser.open(page.as_uri())
    assert [url for url in browser.requested_urls() if not url.startswith(("file:", "data:", "about:"))] == []
    assert browser.evaluate("Array.from(document.querySelectorAll('#totals tr[data-system]')).map(r => r.dataset.system)") \
        == ["exact", "merged"]
    timelines = browser.evaluate(
        "Array.from(document.querySelectorAll('svg.eval-timeline')).map(s => [s.dataset.uri, "
        "Array.from(s.querySelectorAll('g.row')).map(g => g.dataset.row)])")
    assert timelines == [[uri, ["reference", "exact", "merged"]] for uri in CLIPS]
    # every timeline is drawn with a real size on the page
    sizes = browser.evaluate("Array.from(document.querySelectorAll('svg.eval-timeline')).map(s => "
                             "[s.getBoundingClientRect().width, s.getBoundingClientRect().height])")
    assert all(width > 600 and height > 60 for width, height in sizes), sizes
    for uri in CLIPS:
        svg = f"document.querySelector('svg.eval-timeline[data-uri=\"{uri}\"]')"
        fills = browser.evaluate(f"(function(){{var s={svg}; var r={{}}; s.querySelectorAll('g.row').forEach(function(g)"
                                 "{ r[g.dataset.row] = Array.from(g.querySelectorAll('rect[fill]')).slice(1)"
                                 ".map(x => x.getAttribute('fill')).sort(); }); return r;})()")
        # the exact copy is mapped onto the reference one to one: the same colours on the same turns
        assert fills["exact"] == fills["reference"]
        # merged: one speaker, in the colour of the reference speaker it is mapped to
        assert len(set(fills["merged"])) == 1 and fills["merged"][0] in fills["reference"]
        errors = browser.evaluate(f"(function(){{var s={svg}; var r={{}}; s.querySelectorAll('g.errors').forEach("
                                  "function(g){ r[g.dataset.row] = Array.from(g.querySelectorAll('rect'))"
                                  ".map(x => x.getAttribute('class')); }); return r;})()")
        assert errors["exact"] == []
        assert "confusion" in errors["merged"]
        # the marks add up to what was scored, per kind (frames of 20 ms: a little rounding at each turn's ends)
        marked = browser.evaluate(f"(function(){{var r={{}}; {svg}.querySelectorAll('g.errors[data-row=merged] rect')"
                                  ".forEach(function(x){ ['missed', 'falseAlarm', 'confusion'].forEach(function(k){ "
                                  "r[k] = (r[k] || 0) + parseFloat(x.dataset[k]); }); }); return r;})()")
        row = next(row for row in payload["systems"]["merged"]["files"] if row["uri"] == uri)
        for kind, key in (("missed", "missed"), ("false_alarm", "falseAlarm"), ("confusion", "confusion")):
            assert marked[key] == pytest.approx(row[kind], abs=0.2), (uri, kind, marked, row)
    assert browser.evaluate("document.body.innerText").count("trn09") >= 1  # listed as not scored
    browser.screenshot(str(tmp_path / "eval-report.png"))
    print(f"screenshot in {tmp_path}")


def test_one_system_keeps_the_json_of_before(reported, capsys):
    code, stderr, stdout = _run(["eval", reported / "m.tsv", "--hyp", reported / "merged", "-q", "--json",
                                 reported / "one.json"], capsys)
    assert code == 1 and len(stderr) == 1 and "trn09.rttm: no such RTTM file" in stderr[0]
    payload = json.loads((reported / "one.json").read_text(encoding="utf-8"))
    assert "systems" not in payload and payload["system"] == "merged"
    assert payload["total"]["uri"] == "TOTAL" and payload["total"]["der"] > 0.2
    assert [row["uri"] for row in payload["files"]] == list(CLIPS)
    assert payload["collar"] == 0.0 and payload["skip_overlap"] is False


@pytest.mark.slow  # loads the models and diarizes 30 s
def test_the_diarized_system_is_timed_and_sits_beside_the_others(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    shutil.copy(SAMPLE / "sample.wav", tmp_path / "audio" / "call.wav")
    reference = (SAMPLE / "sample.rttm").read_text(encoding="utf-8").replace("SPEAKER sample ", "SPEAKER call ")
    (tmp_path / "ref.rttm").write_text(reference, encoding="utf-8")
    (tmp_path / "exact").mkdir()
    (tmp_path / "exact" / "call.rttm").write_text(reference, encoding="utf-8")
    (tmp_path / "m.tsv").write_text("uri\taudio\trttm\tuem\ncall\taudio/call.wav\tref.rttm\t\n", encoding="utf-8")
    code, stderr, stdout = _run(["eval", tmp_path / "m.tsv", "--hyp", f"exact={tmp_path / 'exact'}", "--diarize", "-q",
                                 "--json", tmp_path / "s.json", "--report", tmp_path / "report"], capsys)
    assert code == 0, stderr
    payload = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert list(payload["systems"]) == ["voicemap", "exact"]
    live = payload["systems"]["voicemap"]
    speed, row = live["speed"], live["files"][0]
    assert row["audio_s"] == pytest.approx(30.0, abs=0.01) and 0 < row["wall_s"] < 300
    assert speed["real_time_factor"] == pytest.approx(row["wall_s"] / row["audio_s"])
    assert speed["wall_s_per_audio_hour"] == pytest.approx(3600 * speed["real_time_factor"])
    assert 0 < live["total"]["der"] < 0.5  # a real diarization of a clean two-party call
    assert payload["systems"]["exact"]["speed"] is None and payload["systems"]["exact"]["total"]["der"] == 0.0
    assert re.search(r"^# voicemap speed: 30\.0 s of audio in [\d.]+ s wall, real-time factor [\d.]+", stdout, re.M)
    assert re.search(r"^call\s+2 \|\s+[\d.]+\s+0\.0 \|\s+[+-]\d+\s+\+0 \|\s+[\d.]+\s+[\d.]+$", stdout, re.M), stdout
    assert "real-time factor" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
