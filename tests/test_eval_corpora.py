"""`voicemap eval` on the corpus shapes besides a manifest, on the scoring conventions and on the bootstrap.

The AMI, VoxConverse and DIHARD III trees and the pyannote.database protocol are built in tmp_path from the
shared data's real clips (AMI excerpts: audio, reference RTTM, UEM), laid out as each corpus ships. Hypotheses
are RTTMs: the references themselves (DER 0, so a wrong file mapping shows) and the references with every
speaker merged into one (confusion > 0). No model loads here. Conventions are checked on hand-written RTTMs
over the 30 s call that ships in the pyannote.audio wheel, with DERs worked out by hand.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyannote.audio
import pytest
import soundfile

from pipelines.cli import main

CLIPS = ("dev00", "trn04", "trn09")  # 2, 3 and 3 speakers, 30 s each
SAMPLE_AUDIO = Path(pyannote.audio.__file__).parent / "sample" / "sample.wav"  # 30.0 s (MIT)


def _run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main([str(part) for part in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _rows(stdout: str) -> dict[str, list[str]]:
    """uri -> the fields of its table row (the single-system or side-by-side table)."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith(("#", "-", " ", "uri")) or not line.strip():
            continue
        fields = line.replace("|", " ").split()
        rows[fields[0]] = fields[1:]
    return rows


def _merged(rttm_text: str) -> str:
    """The RTTM with every speaker called A: all but the longest speaker's speech becomes confusion."""
    return re.sub(r"(<NA> <NA> )\S+( <NA> <NA>)", r"\1A\2", rttm_text)


@pytest.fixture(scope="module")
def clips(shared_data):
    """uri -> (flac path, reference text, uem text) of a few shared clips."""
    root = shared_data / "diarization"
    return {uri: (root / "audio" / f"{uri}.flac", (root / "rttm" / f"{uri}.rttm").read_text(encoding="utf-8"),
                  (root / "uem" / f"{uri}.uem").read_text(encoding="utf-8")) for uri in CLIPS}


def _wav(flac: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    data, rate = soundfile.read(flac)
    soundfile.write(target, data, rate)


def _hypotheses(root: Path, clips, uris) -> tuple[Path, Path]:
    exact, merged = root / "hyp-exact", root / "hyp-merged"
    for folder in (exact, merged):
        folder.mkdir(parents=True)
    for uri in uris:
        (exact / f"{uri}.rttm").write_text(clips[uri][1], encoding="utf-8")
        (merged / f"{uri}.rttm").write_text(_merged(clips[uri][1]), encoding="utf-8")
    return exact, merged


def test_ami_layout_scores_the_listed_meetings_and_reports_each_bad_one(tmp_path, clips, capsys):
    ami = tmp_path / "AMI-diarization-setup"
    (ami / "lists").mkdir(parents=True)
    # dev00 and trn04 complete; trn09 has no audio; ghost is listed without a reference; in the dev list only trn09
    (ami / "lists" / "test.meetings.txt").write_text("dev00\ntrn04\ntrn09\nghost\n", encoding="utf-8")
    (ami / "lists" / "dev.meetings.txt").write_text("dev00\n", encoding="utf-8")
    for split in ("test", "dev"):
        for uri in CLIPS:
            (ami / "only_words" / "rttms" / split).mkdir(parents=True, exist_ok=True)
            (ami / "only_words" / "rttms" / split / f"{uri}.rttm").write_text(clips[uri][1], encoding="utf-8")
            (ami / "uems" / split).mkdir(parents=True, exist_ok=True)
            (ami / "uems" / split / f"{uri}.uem").write_text(clips[uri][2], encoding="utf-8")
    for uri in ("dev00", "trn04"):
        _wav(clips[uri][0], ami / "amicorpus" / uri / "audio" / f"{uri}.Mix-Headset.wav")
    # a UEM beyond the audio's end, in the dev split only
    (ami / "uems" / "dev" / "dev00.uem").write_text("dev00 1 0.000 45.000\n", encoding="utf-8")
    exact, merged = _hypotheses(tmp_path, clips, CLIPS)

    code, stderr, stdout = _run(["eval", ami, "--layout", "ami", "--hyp", f"exact={exact}", "--hyp", f"merged={merged}",
                                 "-q", "--json", tmp_path / "ami.json"], capsys)
    assert code == 1
    assert len(stderr) == 2, stderr
    assert re.search(r"amicorpus/trn09/audio/trn09\.Mix-Headset\.wav: no such audio file for 'trn09'", stderr[0])
    assert re.search(r"only_words/rttms/test/ghost\.rttm: no such RTTM file, so 'ghost' .* has no reference", stderr[1])
    rows = _rows(stdout)
    assert set(rows) == {"dev00", "trn04", "TOTAL"}
    assert rows["dev00"][1] == "0.0" and float(rows["dev00"][2]) > 5  # exact: 0; merged: confusion
    payload = json.loads((tmp_path / "ami.json").read_text(encoding="utf-8"))
    assert set(payload["systems"]) == {"exact", "merged"}
    assert payload["systems"]["exact"]["total"]["total"] > 30  # two clips' speech scored, within their UEMs
    assert "AMI" in payload["source"] and "test" in payload["source"]

    # --subset development reads lists/dev.meetings.txt, uems/dev/: its dev00 UEM runs past the audio
    code, stderr, stdout = _run(["eval", ami, "--layout", "ami", "--subset", "development", "--hyp", exact, "-q"], capsys)
    assert code == 1 and len(stderr) == 1
    assert re.search(r"uems/dev/dev00\.uem:1: region 0\.000-45\.000 s extends beyond the end of the audio", stderr[0])
    assert set(_rows(stdout)) == set()


def test_voxconverse_layout_finds_audio_in_the_usual_places(tmp_path, clips, capsys):
    vox = tmp_path / "voxconverse"
    (vox / "dev").mkdir(parents=True)
    for uri in CLIPS:
        (vox / "dev" / f"{uri}.rttm").write_text(clips[uri][1], encoding="utf-8")
    _wav(clips["dev00"][0], vox / "audio" / "dev" / "dev00.wav")
    _wav(clips["trn04"][0], vox / "dev" / "trn04.wav")  # beside its RTTM
    exact, merged = _hypotheses(tmp_path, clips, CLIPS)
    code, stderr, stdout = _run(["eval", vox, "--layout", "voxconverse", "--subset", "development", "--hyp", exact, "-q"],
                                capsys)
    assert code == 1 and len(stderr) == 1
    assert re.search(r"audio/dev/trn09\.wav: no such audio file for 'trn09' \(also looked for dev/trn09\.wav", stderr[0])
    rows = _rows(stdout)
    assert set(rows) == {"dev00", "trn04", "TOTAL"} and rows["TOTAL"][0] == "0.0"
    # no UEM: scored over the extent of reference and hypothesis, so all reference speech counts
    assert float(rows["TOTAL"][7]) > 30
    # the test split is not there; train does not exist in VoxConverse: refused before anything is read
    for subset, pattern in (("test", r"voxconverse/test: no such folder"), ("train", r"--subset train: VoxConverse has no train set")):
        code, stderr, stdout = _run(["eval", vox, "--layout", "voxconverse", "--subset", subset, "--hyp", exact], capsys)
        assert code == 2 and stdout == "" and re.search(pattern, stderr[0]), stderr


def test_dihard_layout_uses_the_scoring_uem_of_the_partition(tmp_path, clips, capsys):
    data = tmp_path / "LDC2022E12" / "data"
    for folder in ("flac", "rttm", "uem", "uem_scoring/full", "uem_scoring/core"):
        (data / folder).mkdir(parents=True)
    for uri in CLIPS:
        (data / "flac" / f"{uri}.flac").symlink_to(clips[uri][0])
        (data / "uem" / f"{uri}.uem").write_text(clips[uri][2], encoding="utf-8")
    for uri in ("dev00", "trn04"):  # trn09 has audio but no reference
        (data / "rttm" / f"{uri}.rttm").write_text(clips[uri][1], encoding="utf-8")
    # full: the whole clips; core: only trn04, and only its first 20 s
    (data / "uem_scoring" / "full" / "all.uem").write_text("".join(clips[uri][2] for uri in CLIPS), encoding="utf-8")
    (data / "uem_scoring" / "core" / "all.uem").write_text("trn04 1 0.000 20.000\n", encoding="utf-8")
    exact, merged = _hypotheses(tmp_path, clips, CLIPS)

    code, stderr, stdout = _run(["eval", data.parent, "--layout", "dihard", "--hyp", f"merged={merged}", "-q",
                                 "--json", tmp_path / "full.json"], capsys)
    assert code == 1 and len(stderr) == 1
    assert re.search(r"data/rttm/trn09\.rttm: no such RTTM file, so 'trn09' \(DIHARD III\) has no reference", stderr[0])
    full = json.loads((tmp_path / "full.json").read_text(encoding="utf-8"))
    assert [row["uri"] for row in full["files"]] == ["dev00", "trn04"]
    code, stderr, stdout = _run(["eval", data.parent, "--layout", "dihard", "--partition", "core", "--hyp",
                                 f"merged={merged}", "-q", "--json", tmp_path / "core.json"], capsys)
    assert code == 0, stderr
    core = json.loads((tmp_path / "core.json").read_text(encoding="utf-8"))
    assert [row["uri"] for row in core["files"]] == ["trn04"]
    whole = next(row for row in full["files"] if row["uri"] == "trn04")
    assert 0 < core["files"][0]["total"] < whole["total"]  # only the first 20 s were scored


def test_a_pyannote_database_protocol_is_read_by_pyannote_database(tmp_path, clips, capsys, monkeypatch):
    corpus = tmp_path / "corpus"
    (corpus / "audio").mkdir(parents=True)
    for uri in ("dev00", "trn04"):
        (corpus / "audio" / f"{uri}.flac").symlink_to(clips[uri][0])
    (corpus / "test.lst").write_text("dev00\ntrn04\ntrn09\n", encoding="utf-8")  # trn09: no audio
    (corpus / "dev.lst").write_text("dev00\n", encoding="utf-8")
    (corpus / "all.rttm").write_text("".join(clips[uri][1] for uri in CLIPS), encoding="utf-8")
    (corpus / "all.uem").write_text("dev00 1 0.000 30.000\ntrn04 1 0.000 30.000\ntrn09 1 0.000 30.000\n", encoding="utf-8")
    (corpus / "long.uem").write_text("dev00 1 0.000 45.000\n", encoding="utf-8")
    (corpus / "database.yml").write_text(
        "Databases:\n  Clips: audio/{uri}.flac\n"
        "Protocols:\n  Clips:\n    SpeakerDiarization:\n      Excerpts:\n"
        "        test: {uri: test.lst, annotation: all.rttm, annotated: all.uem}\n"
        "        development: {uri: dev.lst, annotation: all.rttm, annotated: long.uem}\n"
        "      Unmarked:\n        test: {uri: dev.lst, annotation: all.rttm}\n", encoding="utf-8")
    exact, merged = _hypotheses(tmp_path, clips, CLIPS)
    argv = ["eval", "Clips.SpeakerDiarization.Excerpts", "--hyp", f"exact={exact}", "--hyp", f"merged={merged}", "-q"]

    code, stderr, stdout = _run([*argv, "--database", corpus / "database.yml"], capsys)
    assert code == 1 and len(stderr) == 1
    assert re.search(r"Clips\.SpeakerDiarization\.Excerpts test 'trn09': no audio found", stderr[0])
    rows = _rows(stdout)
    assert set(rows) == {"dev00", "trn04", "TOTAL"} and rows["dev00"][1] == "0.0"
    # the same protocol found through PYANNOTE_DATABASE_CONFIG, read when the command runs
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(corpus / "database.yml"))
    monkeypatch.chdir(tmp_path)
    code, stderr, stdout = _run(argv, capsys)
    assert code == 1 and _rows(stdout) == rows
    # its development subset: an annotated region past the audio's end is one line, the run goes on
    code, stderr, stdout = _run([*argv, "--subset", "development"], capsys)
    assert code == 1 and len(stderr) == 1
    assert re.search(r"Excerpts development 'dev00': its annotated region ends at 45\.000 s, beyond the end of the "
                     r"audio \(dev00\.flac lasts 30\.000 s\)", stderr[0])
    # without `annotated`, scored over the extent of reference and hypothesis, as a manifest row without UEM
    code, stderr, stdout = _run(["eval", "Clips.SpeakerDiarization.Unmarked", "--database", corpus / "database.yml",
                                 "--hyp", merged, "-q", "--json", tmp_path / "u.json"], capsys)
    assert code == 0, stderr
    unmarked = json.loads((tmp_path / "u.json").read_text(encoding="utf-8"))
    assert unmarked["files"][0]["uri"] == "dev00" and unmarked["files"][0]["total"] > 20
    # a protocol nobody defines, refused before any audio is read
    code, stderr, stdout = _run(["eval", "Nobody.SpeakerDiarization.Here", "--hyp", exact], capsys)
    assert code == 2 and re.search(r"^voicemap eval: Nobody\.SpeakerDiarization\.Here: not a protocol of "
                                   r".*no database 'Nobody' defined", stderr[0]), stderr


# --- conventions: hand-computed DERs on real audio -------------------------------------------------------

def _convention_workspace(root: Path) -> Path:
    """One recording (the 30 s call), one reference: A speaks 0-10 s, B 8-12 s (2 s of overlap, 8-10 s);
    the hypothesis has A from 0.2 to 10 s only. So 0.2 s of A is missed at a boundary, and B (4 s) is missed
    entirely, 2 s of it inside the overlap."""
    (root / "audio").mkdir(parents=True)
    shutil.copy(SAMPLE_AUDIO, root / "audio" / "call.wav")
    (root / "ref.rttm").write_text("SPEAKER call 1 0.000 10.000 <NA> <NA> A <NA> <NA>\n"
                                   "SPEAKER call 1 8.000 4.000 <NA> <NA> B <NA> <NA>\n", encoding="utf-8")
    (root / "hyp").mkdir()
    (root / "hyp" / "call.rttm").write_text("SPEAKER call 1 0.200 9.800 <NA> <NA> x <NA> <NA>\n", encoding="utf-8")
    (root / "call.uem").write_text("call 1 0.000 30.000\n", encoding="utf-8")
    (root / "m.tsv").write_text("uri\taudio\trttm\tuem\ncall\taudio/call.wav\tref.rttm\tcall.uem\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("options, der, name", [
    # full: reference speech 14 s; missed 0.2 + 4 = 4.2 s
    ([], 4.2 / 14.0, "full"),
    (["--convention", "full"], 4.2 / 14.0, "full"),
    # fair, +-0.25 s around every reference boundary (0, 8, 10, 12), for every speaker: A keeps 0.25-7.75 and
    # 8.25-9.75 (9 s), B 8.25-9.75 and 10.25-11.75 (3 s); the 0.2 s miss at 0 lies in the collar; missed: B's 3 s
    (["--convention", "fair"], 3.0 / 12.0, "fair"),
    # --collar is pyannote.metrics' whole width: 0.5 is +-0.25 s, the fair convention
    (["--collar", "0.5"], 3.0 / 12.0, "fair"),
    # --collar 0.2 is +-0.1 s: A keeps 0.1-7.9 and 8.1-9.9 (9.6 s), B 8.1-9.9, 10.1-11.9 (3.6 s);
    # missed: A 0.1-0.2 (0.1 s) and all of B (3.6 s)
    (["--collar", "0.2"], 3.7 / 13.2, "custom"),
    # forgiving: as fair, and the overlap 8-10 s (widened by the collars to 7.75-10.25) is not scored:
    # A keeps 0.25-7.75 (7.5 s), B 10.25-11.75 (1.5 s); missed: B's 1.5 s
    (["--convention", "forgiving"], 1.5 / 9.0, "forgiving"),
])
def test_conventions_score_as_md_eval_states_them(tmp_path, capsys, options, der, name):
    root = _convention_workspace(tmp_path)
    code, stderr, stdout = _run(["eval", root / "m.tsv", "--hyp", root / "hyp", "-q", *options,
                                 "--json", tmp_path / "s.json"], capsys)
    assert code == 0, stderr
    payload = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert payload["total"]["der"] == pytest.approx(der, abs=1e-6)
    assert payload["convention"]["name"] == name
    assert payload["collar"] == payload["convention"]["pyannote_collar"]  # the key kept from before, same meaning
    assert re.search(rf"^# convention {name}: ", stdout, re.M)
    if name in ("fair", "forgiving"):
        assert "md-eval -c 0.25, pyannote.metrics collar=0.5" in stdout


@pytest.mark.parametrize("argv, pattern", [
    (["--convention", "fair", "--collar", "0.5"], r"--convention fair sets the collar .* not both"),
    (["--convention", "forgiving", "--skip-overlap"], r"not both"),
    (["--hyp", "a=nowhere"], r"--hyp a=nowhere: nowhere: no such folder"),
    (["--hyp", "a=HYP", "--hyp", "a=HYP"], r"a second system named 'a'"),
    (["--hyp", "HYP", "--hyp", "HYP"], r"a second system named 'hyp'"),
    (["--diarize"], r"--diarize adds the diarized system to --hyp systems"),
    (["--layout", "ami", "--hyp", "HYP"], r"nowhere\.tsv: no such folder \(--layout ami reads a corpus folder\)"),
    (["--report", "AFILE", "--hyp", "HYP"], r"afile: exists and is not a folder"),
])
def test_bad_options_are_refused_before_any_file_is_read(tmp_path, capsys, argv, pattern, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hyp").mkdir()
    (tmp_path / "afile").write_text("x\n")
    argv = [part.replace("HYP", str(tmp_path / "hyp")).replace("AFILE", str(tmp_path / "afile")) for part in argv]
    code, stderr, stdout = _run(["eval", "nowhere.tsv", *argv], capsys)
    assert code == 2 and stdout == "" and len(stderr) == 1, stderr
    assert re.search(pattern, stderr[0]), stderr[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile", "hyp"]


def test_the_report_refuses_to_replace_an_input(tmp_path, capsys):
    """DIR/scores.csv must not be the manifest being read (a TSV may well be called scores.csv)."""
    root = _convention_workspace(tmp_path)
    (root / "m.tsv").rename(root / "scores.csv")
    before = (root / "scores.csv").read_bytes()
    code, stderr, stdout = _run(["eval", root / "scores.csv", "--hyp", root / "hyp", "--report", root], capsys)
    assert code == 2 and stdout == "" and re.search(r"scores\.csv: would replace .*scores\.csv", stderr[0]), stderr
    assert (root / "scores.csv").read_bytes() == before and not (root / "index.html").exists()


# --- the bootstrap ---------------------------------------------------------------------------------------

def test_the_bootstrap_interval_is_fixed_and_reflects_the_spread_over_files():
    from eval.bootstrap import RESAMPLES, ratio_interval

    same = ratio_interval([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    assert same.low == pytest.approx(0.1) and same.high == pytest.approx(0.1)  # every file at 10 %
    errors, totals = [0.5, 9.0, 2.0, 6.0, 1.0, 4.0], [10.0, 12.0, 8.0, 20.0, 9.0, 11.0]
    spread = ratio_interval(errors, totals)
    total = sum(errors) / sum(totals)
    assert spread.low < total < spread.high
    assert spread.resamples == RESAMPLES and ratio_interval(errors, totals) == spread  # the same seed, the same draw
    assert 0.05 < spread.low and spread.high < 0.6
    assert ratio_interval([], []) is None
    assert ratio_interval(errors, totals, level=0.5).high < spread.high


def test_the_paired_difference_cancels_what_the_files_share():
    from eval.bootstrap import difference_interval, ratio_interval

    errors, totals = [0.5, 9.0, 2.0, 6.0, 1.0, 4.0], [10.0, 12.0, 8.0, 20.0, 9.0, 11.0]
    same = difference_interval(errors, totals, errors, totals)
    assert same.low == same.high == 0.0
    # b makes 10 % more error on every file: always worse, by about 10 % of a's DER, while the two unpaired
    # intervals overlap almost entirely
    worse = [1.1 * value for value in errors]
    paired = difference_interval(worse, totals, errors, totals)
    total = sum(errors) / sum(totals)
    assert 0 < paired.low < 0.1 * total < paired.high
    assert ratio_interval(worse, totals).low < ratio_interval(errors, totals).high
