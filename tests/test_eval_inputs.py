"""`voicemap eval` with bad or careless inputs, and RTTM names that hold spaces.

A UEM past the audio's end, reversed or garbled used to score as DER 0.0 % (nothing to miss), a negative
collar was accepted, and a name with a space made RTTM lines that pyannote.database misreads. Every case here
runs the real command line in this process on real files (the 30 s call and its reference that ship in the
pyannote.audio wheel), scoring --hyp RTTMs so that no model loads: each bad file is one stderr line naming
the file (and line) and the cause, the other files still score, and refused options exit 2 before anything
is read or written.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyannote.audio
import pytest

from diarize.output import rttm_lines, rttm_name
from pipelines.cli import main

SAMPLE = Path(pyannote.audio.__file__).parent / "sample"
SPEECH, REFERENCE = SAMPLE / "sample.wav", SAMPLE / "sample.rttm"  # 30.0 s, two speakers (MIT)

GOOD_ROW = "good\taudio/speech.wav\tref/good.rttm\tuem/good.uem"
HEADER = "uri\taudio\trttm\tuem"

#: case -> (its manifest row, its files under ev/); "{u}" is the case's name, used as its uri
BAD_CASES: dict[str, tuple[str, dict[str, str]]] = {}


def _bad(name: str, uem: str | None = None, ref: str | None = None, hyp: str | None = None, audio: str = "audio/speech.wav",
         row: str | None = None) -> None:
    files = {f"{folder}/{{u}}.{suffix}": text for folder, suffix, text in
             [("uem", "uem", uem), ("ref", "rttm", ref), ("hyp", "rttm", hyp)] if text is not None}
    BAD_CASES[name] = (row if row is not None else f"{{u}}\t{audio}\tref/{{u}}.rttm\tuem/{{u}}.uem", files)


_bad("uem-outside", uem="{u} 1 40.000 50.000\n")
_bad("uem-beyond", uem="{u} 1 0.000 45.000\n")
_bad("uem-reversed", uem="{u} 1 20.000 10.000\n")
_bad("uem-empty-region", uem="{u} 1 10.000 10.000\n")
_bad("uem-garbage", uem="{u} 1 0.000 30.000\nthis is not a uem line at all\n")
_bad("uem-not-a-number", uem="{u} 1 zero 30.000\n")
_bad("uem-nan", uem="{u} 1 0.000 nan\n")
_bad("uem-negative", uem="{u} 1 -5.000 10.000\n")
_bad("uem-other-uri", uem="someone 1 0.000 30.000\n")
_bad("uem-empty-file", uem="")
_bad("uem-beyond-m4a", uem="{u} 1 0.000 45.000\n", audio="audio/speech.m4a")
_bad("uem-audio-missing", audio="audio/nowhere.wav")
_bad("ref-name-with-spaces", ref="SPEAKER {u} 1 1.000 2.000 <NA> <NA> Ada Lovelace <NA> <NA>\n")
_bad("ref-not-rttm", ref="hello\n")
_bad("hyp-onset-not-a-number", hyp="SPEAKER {u} 1 1.000 2.000 <NA> <NA> A <NA> <NA>\n"
                                   "SPEAKER {u} 1 soon 2.000 <NA> <NA> B <NA> <NA>\n")
_bad("hyp-negative-duration", hyp="SPEAKER {u} 1 1.000 -1.000 <NA> <NA> A <NA> <NA>\n")
_bad("hyp-other-uri", hyp="SPEAKER other 1 1.000 2.000 <NA> <NA> A <NA> <NA>\n")
_bad("row-no-audio", row="{u}\t\tref/{u}.rttm\tuem/{u}.uem")
_bad("row-short", row="{u}")
_bad("row-duplicate-uri", row=GOOD_ROW)
_bad("row-no-reference", row="{u}\taudio/speech.wav\t\t")


def build_eval_workspace(root: Path) -> None:
    """ev/ under `root`: audio/speech.wav (and .m4a, and "my clip.wav"), a reference, UEM and hypothesis per uri;
    ev/ok.tsv with one good row; ev/<case>.tsv with the good row and the row of one BAD_CASES case (its uri is
    the case's name); ev/spaces.tsv whose uri and speaker names hold spaces; a few broken manifests; and
    afile (a file where a folder is expected). About 3 MB."""
    from pyannote.core import Annotation

    from diarize.audio import ffmpeg_executable

    ev = root / "ev"
    for folder in ("audio", "ref", "uem", "hyp"):
        (ev / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(SPEECH, ev / "audio" / "speech.wav")
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-y", "-i", str(SPEECH), str(ev / "audio" / "speech.m4a")],
                   check=True)
    reference = REFERENCE.read_text(encoding="utf-8")

    def recording(uri: str) -> None:
        text = reference.replace("SPEAKER sample ", f"SPEAKER {rttm_name(uri)} ")
        for folder in ("ref", "hyp"):
            (ev / folder / f"{uri}.rttm").write_text(text, encoding="utf-8")
        (ev / "uem" / f"{uri}.uem").write_text(f"{rttm_name(uri)} 1 0.000 30.000\n", encoding="utf-8")

    recording("good")
    (ev / "ok.tsv").write_text(f"{HEADER}\n{GOOD_ROW}\n", encoding="utf-8")
    for name, (row, files) in BAD_CASES.items():
        recording(name)  # the defaults; the case's own files replace some of them
        for relative, text in files.items():
            (ev / relative.format(u=name)).write_text(text.format(u=name), encoding="utf-8")
        (ev / f"{name}.tsv").write_text(f"{HEADER}\n{GOOD_ROW}\n{row.format(u=name)}\n", encoding="utf-8")
    # a uri and enrolled-style names with spaces, as `voicemap identify` names speakers
    named = Annotation(uri="my clip")
    for segment, track, label in _load_reference().itertracks(yield_label=True):
        named[segment, track] = {"speaker90": "Ada Lovelace", "speaker91": "Grace Hopper"}[label]
    shutil.copy(SPEECH, ev / "audio" / "my clip.wav")
    for folder in ("ref", "hyp"):
        (ev / folder / "my clip.rttm").write_text("\n".join(rttm_lines(named, "my clip")) + "\n", encoding="utf-8")
    (ev / "uem" / "my clip.uem").write_text("my_clip 1 0.000 30.000\n", encoding="utf-8")
    (ev / "spaces.tsv").write_text(f"{HEADER}\nmy clip\taudio/my clip.wav\tref/my clip.rttm\tuem/my clip.uem\n",
                                   encoding="utf-8")
    (ev / "escape.tsv").write_text(f"{HEADER}\n../escape\taudio/speech.wav\tref/good.rttm\t\n", encoding="utf-8")
    (ev / "empty.tsv").write_text(f"{HEADER}\n", encoding="utf-8")
    (ev / "no-audio-column.tsv").write_text("uri\trttm\ngood\tref/good.rttm\n", encoding="utf-8")
    (root / "afile").write_text("a file where a folder is expected\n", encoding="utf-8")


def _load_reference():
    from eval.corpora import load_rttm

    return load_rttm(REFERENCE, "sample")


@dataclass(frozen=True)
class Row:
    id: str
    argv: str  # split on spaces; '+' stands for a space inside an argument
    code: int
    stderr: str  # regex the single stderr line must match ("" with lines=0)
    lines: int = 1


ROWS = [Row(f"eval-{name}", f"eval ev/{name}.tsv --hyp ev/hyp -q", 1, pattern) for name, pattern in [
    ("uem-outside", r"^voicemap: ev/uem/uem-outside.uem:1: region 40.000-50.000 s lies outside the audio "
                    r"\(speech.wav lasts 30.000 s\)$"),
    ("uem-beyond", r"uem/uem-beyond.uem:1: region 0.000-45.000 s extends beyond the end of the audio \(speech.wav lasts 30.000 s\)"),
    ("uem-reversed", r"uem/uem-reversed.uem:1: region 20.000-10.000 is reversed or empty"),
    ("uem-empty-region", r"uem/uem-empty-region.uem:1: region 10.000-10.000 is reversed or empty"),
    ("uem-garbage", r"uem/uem-garbage.uem:2: 8 fields, a UEM line has 4"),
    ("uem-not-a-number", r"uem/uem-not-a-number.uem:1: onset 'zero' is not a number"),
    ("uem-nan", r"uem/uem-nan.uem:1: offset 'nan' is not a finite number"),
    ("uem-negative", r"uem/uem-negative.uem:1: negative onset -5.000"),
    ("uem-other-uri", r"uem/uem-other-uri.uem: no region for uri 'uem-other-uri'"),
    ("uem-empty-file", r"uem/uem-empty-file.uem: no region for uri 'uem-empty-file'"),
    ("uem-beyond-m4a", r"uem/uem-beyond-m4a.uem:1: region 0.000-45.000 s extends beyond the end of the audio \(speech.m4a lasts 30.0"),
    ("uem-audio-missing", r"^voicemap: ev/audio/nowhere.wav: no such file$"),
    ("ref-name-with-spaces", r"ref/ref-name-with-spaces.rttm:1: 11 fields, an RTTM SPEAKER line has 10"),
    ("ref-not-rttm", r"ref/ref-not-rttm.rttm:1: not an RTTM line \(record type 'hello'\)"),
    ("hyp-onset-not-a-number", r"hyp/hyp-onset-not-a-number.rttm:2: onset 'soon' is not a number"),
    ("hyp-negative-duration", r"hyp/hyp-negative-duration.rttm:1: negative duration -1.000"),
    ("hyp-other-uri", r"hyp/hyp-other-uri.rttm: no line for uri 'hyp-other-uri' \(it holds other\)"),
    ("row-no-audio", r"^voicemap: ev/row-no-audio.tsv:3: row 'row-no-audio' has no audio value$"),
    ("row-short", r"row-short.tsv:3: row 'row-short' has no audio value"),
    ("row-duplicate-uri", r"row-duplicate-uri.tsv:3: uri 'good' already on line 2"),
    ("row-no-reference", r"row-no-reference.tsv:3: row 'row-no-reference' has no reference RTTM"),
]] + [
    # refused up front, exit 2, before anything is read: the manifest named does not even exist
    Row("eval-collar-negative", "eval nowhere.tsv --collar -1", 2, r"^voicemap eval: --collar -1.0: must be a finite number"),
    Row("eval-collar-nan", "eval nowhere.tsv --collar nan", 2, r"^voicemap eval: --collar nan: "),
    Row("eval-collar-inf", "eval nowhere.tsv --collar inf", 2, r"^voicemap eval: --collar inf: "),
    Row("eval-match-threshold-nan", "eval nowhere.tsv --hyp ev/hyp --match-threshold nan", 2, r"--naming-threshold nan: "),
    Row("eval-hyp-missing", "eval ev/ok.tsv --hyp nowhere", 2, r"^voicemap eval: --hyp nowhere: no such folder$"),
    Row("eval-hyp-and-save-hyp", "eval ev/ok.tsv --hyp ev/hyp --save-hyp out", 2, r"--save-hyp .*with --hyp nothing is diarized"),
    Row("eval-manifest-missing", "eval nowhere.tsv --hyp ev/hyp", 2, r"^voicemap eval: nowhere.tsv: no such manifest$"),
    Row("eval-manifest-empty", "eval ev/empty.tsv --hyp ev/hyp", 2, r"ev/empty.tsv: holds no rows"),
    Row("eval-manifest-no-audio-column", "eval ev/no-audio-column.tsv --hyp ev/hyp", 2, r"missing column\(s\) audio"),
    # --json and --save-hyp checked before any work (pipelines/outputs.py)
    Row("eval-json-is-folder", "eval ev/ok.tsv --hyp ev/hyp --json ev", 2, r"^voicemap eval: ev: is a folder; give a file name$"),
    Row("eval-json-under-file", "eval ev/ok.tsv --hyp ev/hyp --json afile/s.json", 2, r"afile: exists and is not a folder"),
    Row("eval-json-not-permitted", "eval ev/ok.tsv --hyp ev/hyp --json /proc/voicemap.json", 2, r"/proc: cannot write there"),
    Row("eval-json-onto-manifest", "eval ev/ok.tsv --hyp ev/hyp --json ev/ok.tsv", 2, r"would replace ev/ok.tsv"),
    Row("eval-json-onto-reference", "eval ev/ok.tsv --hyp ev/hyp --json ev/ref/good.rttm", 2, r"would replace ev/ref/good.rttm"),
    Row("eval-json-onto-uem", "eval ev/ok.tsv --hyp ev/hyp --json ev/uem/good.uem", 2, r"would replace ev/uem/good.uem"),
    Row("eval-json-onto-hypothesis", "eval ev/ok.tsv --hyp ev/hyp --json ev/hyp/good.rttm", 2, r"would replace ev/hyp/good.rttm"),
    # diarizing runs, refused before a model loads
    Row("eval-save-hyp-onto-references", "eval ev/ok.tsv --save-hyp ev/ref", 2, r"ev/ref/good.rttm: would replace"),
    Row("eval-save-hyp-is-file", "eval ev/ok.tsv --save-hyp afile", 2, r"afile: exists and is not a folder"),
    Row("eval-save-hyp-uri-escapes", "eval ev/escape.tsv --save-hyp out", 2, r"'../escape' is a path outside the output folder"),
    # names with spaces: written as one field, scored
    Row("eval-names-with-spaces", "eval ev/spaces.tsv --hyp ev/hyp -q", 0, "", lines=0),
    Row("eval-good", "eval ev/ok.tsv --hyp ev/hyp -q --json scores.json", 0, "", lines=0),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-template")
    build_eval_workspace(root)
    return root


@pytest.fixture
def workspace(template, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    return root


def _fingerprint(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def _run(argv: str, capsys) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main([part.replace("+", " ") for part in argv.split()])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_eval_input(row: Row, workspace: Path, capsys):
    before = _fingerprint(workspace)
    code, stderr, stdout = _run(row.argv, capsys)
    assert code == row.code, stderr
    assert len(stderr) == row.lines, stderr
    if row.lines:
        assert re.search(row.stderr, stderr[0]), stderr[0]
    after = _fingerprint(workspace)
    assert [name for name, digest in before.items() if after.get(name) != digest] == []
    assert [name for name in after if name not in before and name != "scores.json"] == []
    if row.code == 1:  # the bad row is skipped, the good one still scores
        assert re.search(r"^good\s+0\.0\s", stdout, re.M), stdout
        # no other row scored (lines of # say what was scored and how)
        assert not re.search(r"^(?!good|TOTAL|uri|-|#)\S", stdout, re.M), stdout
    if row.code == 2:
        assert stdout == "" and not (workspace / "out").exists()
    if row.code == 0:  # real speech was scored, not an empty reference against an empty hypothesis
        total = re.search(r"^TOTAL\s.*\s(\d+\.\d)$", stdout, re.M)
        assert total and float(total.group(1)) > 20, stdout


def test_a_bad_uem_is_listed_in_the_json_and_the_good_file_is_scored(workspace, capsys):
    code, stderr, stdout = _run("eval ev/uem-beyond.tsv --hyp ev/hyp -q --json scores.json", capsys)
    assert code == 1
    payload = json.loads((workspace / "scores.json").read_text(encoding="utf-8"))
    assert [row["uri"] for row in payload["files"]] == ["good"]
    assert payload["files"][0]["total"] > 20  # the good file's speech was scored, not an empty region
    assert payload["failed"] == 1
    assert payload["failures"][0]["uri"] == "uem-beyond" and "extends beyond the end of the audio" in payload["failures"][0]["error"]
    assert payload["total"]["uri"] == "TOTAL" and payload["total"]["total"] == payload["files"][0]["total"]


def test_a_uem_within_the_tolerance_of_the_end_is_accepted(workspace, capsys):
    """UEMs keep milliseconds (30.000 for 29.9995 s) and ffmpeg's header centiseconds: 40 ms past is fine."""
    (workspace / "ev" / "uem" / "good.uem").write_text("good 1 0.000 30.040\n", encoding="utf-8")
    code, stderr, _ = _run("eval ev/ok.tsv --hyp ev/hyp -q", capsys)
    assert code == 0 and stderr == []
    (workspace / "ev" / "uem" / "good.uem").write_text("good 1 0.000 30.100\n", encoding="utf-8")
    code, stderr, _ = _run("eval ev/ok.tsv --hyp ev/hyp -q", capsys)
    assert code == 1 and "extends beyond the end of the audio" in stderr[0]


def test_an_mp3_header_estimate_is_checked_by_decoding(tmp_path):
    """MP3 durations from a header can be estimates; a region past one is confirmed on the decoded audio."""
    from diarize.audio import ffmpeg_executable
    from eval.corpora import ManifestError, audio_duration, load_uem

    mp3 = tmp_path / "speech.mp3"
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-i", str(SPEECH), str(mp3)], check=True)
    seconds, exact = audio_duration(mp3)
    assert not exact and seconds == pytest.approx(30.0, abs=0.06)
    assert audio_duration(mp3, exact=True) == (pytest.approx(30.0, abs=0.06), True)
    (tmp_path / "a.uem").write_text("a 1 0.000 30.000\n")
    assert load_uem(tmp_path / "a.uem", "a", audio=mp3).duration() == pytest.approx(30.0)
    (tmp_path / "b.uem").write_text("b 1 31.000 32.000\n")
    with pytest.raises(ManifestError, match=r"b.uem:1: region 31.000-32.000 s lies outside the audio"):
        load_uem(tmp_path / "b.uem", "b", audio=mp3)


def test_rttm_of_names_with_spaces_has_ten_fields_and_reads_back_in_pyannote_and_here(tmp_path):
    from pyannote.core import Annotation, Segment
    from pyannote.database.util import load_rttm as pyannote_load_rttm

    from eval.corpora import load_rttm

    annotation = Annotation(uri="my clip")
    annotation[Segment(1.0, 3.5)] = "Ada Lovelace"
    annotation[Segment(3.0, 6.0)] = "Grace\u00a0Hopper"  # a no-break space, which str.split() splits at too
    annotation[Segment(7.0, 8.0)] = "  tab\tand  spaces "
    lines = rttm_lines(annotation, "my clip")
    assert all(len(line.split()) == 10 for line in lines), lines
    path = tmp_path / "my clip.rttm"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {("Ada_Lovelace", 1.0, 3.5), ("Grace_Hopper", 3.0, 6.0), ("tab_and_spaces", 7.0, 8.0)}

    theirs = pyannote_load_rttm(str(path))
    assert set(theirs) == {"my_clip"}
    assert {(label, s.start, s.end) for s, _, label in theirs["my_clip"].itertracks(yield_label=True)} == expected
    ours = load_rttm(path, "my clip")
    assert ours.uri == "my clip"  # the uri as the manifest gives it
    assert {(label, s.start, s.end) for s, _, label in ours.itertracks(yield_label=True)} == expected
    assert load_rttm(path).uri == "my_clip"


def test_json_keeps_the_names_as_given_and_says_what_the_rttm_calls_them(tmp_path):
    import numpy as np
    from pyannote.core import Annotation, Segment

    from diarize.pipeline import DiarizationResult
    from pipelines.identify import Identification, NamedSpeaker, write_identification

    annotation = Annotation(uri="my clip")
    annotation[Segment(0.0, 2.0)] = "Ada Lovelace"
    annotation[Segment(2.0, 3.0)] = "unknown_1"
    result = DiarizationResult("my clip", 3.0, annotation, annotation.copy(), ["Ada Lovelace", "unknown_1"],
                               np.ones((2, 4), dtype=np.float32), "campplus-common-advanced")
    speakers = [NamedSpeaker("Ada Lovelace", "SPEAKER_00", 0.8, "Ada Lovelace", 2.0),
                NamedSpeaker("unknown_1", "SPEAKER_01", 0.1, "Ada Lovelace", 1.0)]
    rttm_path, json_path = write_identification(Identification(result, speakers, 0.5), tmp_path)
    assert rttm_path.name == "my clip.rttm"
    assert rttm_path.read_text(encoding="utf-8").splitlines() == [
        "SPEAKER my_clip 1 0.000 2.000 <NA> <NA> Ada_Lovelace <NA> <NA>",
        "SPEAKER my_clip 1 2.000 1.000 <NA> <NA> unknown_1 <NA> <NA>",
    ]
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert payload["uri"] == "my clip" and payload["rttm_uri"] == "my_clip"
    assert set(payload["speakers"]) == {"Ada Lovelace", "unknown_1"}
    assert payload["speakers"]["Ada Lovelace"]["rttm_label"] == "Ada_Lovelace"
    assert payload["speakers"]["Ada Lovelace"]["nearest"] == "Ada Lovelace"
    assert "rttm_label" not in payload["speakers"]["unknown_1"]
    assert payload["segments"][0]["speaker"] == "Ada Lovelace"


def test_identification_compares_names_in_their_rttm_form():
    """A reference read from RTTM says Ada_Lovelace; the registry and a fresh identification say Ada Lovelace."""
    from pyannote.core import Annotation, Segment

    from eval.metrics import IdentificationScores

    reference, right, swapped = Annotation(), Annotation(), Annotation()
    for start, end, rttm, name, other in [(0, 10, "Ada_Lovelace", "Ada Lovelace", "Grace Hopper"),
                                          (10, 20, "Grace_Hopper", "Grace Hopper", "Ada Lovelace")]:
        reference[Segment(start, end)] = rttm
        right[Segment(start, end)] = name
        swapped[Segment(start, end)] = other
    scores = IdentificationScores({"Ada Lovelace", "Grace Hopper"})
    assert scores.add("a", reference, right)["ier"] == pytest.approx(0.0)
    assert scores.add("b", reference, swapped)["ier"] == pytest.approx(1.0)


def test_eval_hyp_scores_identify_outputs_whose_names_have_spaces(workspace, capsys):
    import numpy as np

    from cluster.registry import Registry, RegistryError

    registry_path = workspace / "reg.sqlite"
    rng = np.random.default_rng(0)
    with Registry(registry_path) as registry:
        try:
            for name in ("Ada Lovelace", "Grace Hopper"):
                registry.enroll(name, "campplus-common-advanced", rng.standard_normal(192).astype(np.float32))
        except RegistryError as error:
            pytest.skip(f"this registry does not take names with spaces yet: {error}")
    code, stderr, stdout = _run(f"eval ev/spaces.tsv --hyp ev/hyp -q --registry {registry_path} --json scores.json", capsys)
    assert code == 0, stderr
    payload = json.loads((workspace / "scores.json").read_text(encoding="utf-8"))
    assert payload["files"][0]["uri"] == "my clip" and payload["files"][0]["total"] > 20
    assert payload["files"][0]["der"] == pytest.approx(0.0) and payload["files"][0]["ier"] == pytest.approx(0.0)
    # the names do count: swapped in the hypothesis, all speech but the overlaps (both names there) is confused
    hyp = workspace / "ev" / "hyp" / "my clip.rttm"
    text = hyp.read_text(encoding="utf-8")
    hyp.write_text(text.replace("Ada_Lovelace", "X").replace("Grace_Hopper", "Ada_Lovelace").replace("X", "Grace_Hopper"),
                   encoding="utf-8")
    code, stderr, _ = _run(f"eval ev/spaces.tsv --hyp ev/hyp -q --registry {registry_path} --json scores.json", capsys)
    payload = json.loads((workspace / "scores.json").read_text(encoding="utf-8"))
    assert code == 0 and payload["files"][0]["der"] == pytest.approx(0.0) and payload["files"][0]["ier"] > 0.5
