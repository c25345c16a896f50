"""`voicemap report` in a real headless Chromium (Debian's `chromium`; skipped where absent): the pages load
nothing from the network, every archive voice has its page, and a click on a turn of a recording's timeline
seeks the real audio there. Screenshots land in the test's tmp folder (printed), for a person to look at."""

from __future__ import annotations

import json
import time

import pytest

from archive_fixture import PLAN, build_archive
from pipelines.cli import main


@pytest.fixture(scope="module")
def reported(shared_data, tmp_path_factory):
    from diarize.embedding import load_encoder

    root = tmp_path_factory.mktemp("report")
    # the first four recordings are enough for pages; with fewer than 20 within-recording pairs the linking
    # uses the encoder's threshold
    archive = build_archive(shared_data, root / "outputs", root / "audio", load_encoder("campplus"),
                            plan=PLAN[:4], write_audio=True)
    assert main(["link", str(archive.outdir), "-q"]) == 0
    assert main(["report", str(archive.outdir), "--audio", str(archive.audio), "-q"]) == 0
    return archive


def test_pages_are_self_contained_and_complete(reported):
    report = reported.outdir / "report"
    index = json.loads((reported.outdir / "voices.index.json").read_text())
    labels = {row["label"] for row in index["rows"]}
    pages = list(report.rglob("*.html"))
    assert len(pages) == 1 + len(labels) + len(PLAN[:4])
    for page in pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, page
    home = (report / "index.html").read_text()
    assert all(label in home for label in labels if "@" not in label)


def test_a_click_on_a_turn_plays_the_recording_there(reported, browser, tmp_path):
    report = reported.outdir / "report"
    browser.open((report / "index.html").as_uri())
    browser.screenshot(str(tmp_path / "archive.png"))
    # from the archive page to a recording page, by its link
    href = browser.evaluate("document.querySelector('#recordings a').getAttribute('href')")
    browser.open((report / href).as_uri())
    browser.wait_for("document.getElementById('player').readyState >= 1", timeout=30)
    duration = browser.evaluate("document.getElementById('player').duration")
    payload = json.loads((reported.outdir / "rec00.json").read_text())
    assert duration == pytest.approx(payload["duration"], abs=0.05)
    turns = browser.evaluate("Array.from(document.querySelectorAll('.turn')).map(t => parseFloat(t.dataset.start))")
    assert sorted(turns) == pytest.approx(sorted(t["start"] for t in payload["segments"]), abs=1e-3)
    target = max(range(len(turns)), key=lambda k: turns[k])  # the last turn: far from where playback starts
    browser.click(f".turn[data-start='{turns[target]:.3f}']")
    time.sleep(0.5)
    position = browser.evaluate("document.getElementById('player').currentTime")
    assert turns[target] - 0.05 <= position <= turns[target] + 3.0
    assert browser.evaluate("document.querySelector('.turn.playing').dataset.start") == f"{turns[target]:.3f}"
    browser.screenshot(str(tmp_path / "recording.png"))
    voice = browser.evaluate("document.querySelector('.lane-name a, td a[href*=voices]').getAttribute('href')")
    browser.open((report / "recordings" / voice).resolve().as_uri())
    browser.screenshot(str(tmp_path / "voice.png"))
    outside = [url for url in browser.requested_urls() if not url.startswith(("file:", "data:", "about:"))]
    assert outside == []
    print(f"screenshots in {tmp_path}")


def test_times_never_read_sixty_seconds():
    from pipelines.report.pages import clock

    assert [clock(s) for s in (0, 12.34, 59.96, 3599.97)] == ["0:00.0", "0:12.3", "1:00.0", "1:00:00.0"]
