"""Bad and careless input, as a new user would give it: one row per command line, with what must happen.

Every row runs the real command line (in this process, so the models' imports are paid once) in a fresh copy of
a small workspace, and checks: the exit status; that stderr holds exactly one line (or, for rows that succeed,
what it must say); that every file that was there before is byte for byte the same; and that new files appear
only where the row allows (its output folder), never beside an input or outside the workspace.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipelines.cli import main
from pipelines.commands.diarize import demo_path
from test_eval_inputs import build_eval_workspace

SPEECH = demo_path()  # the 30 s two-speaker call inside the pyannote.audio wheel (MIT)


@dataclass(frozen=True)
class Row:
    id: str
    argv: str  # split on spaces after {name} placeholders are filled; '+' stands for a space inside an argument
    code: int
    stderr: str  # regex the single stderr line (or, with `lines` None, the whole stderr) must match
    writes: tuple[str, ...] = ()  # globs, relative to the workspace, where new files may appear
    lines: int | None = 1  # exact number of non-empty stderr lines; None: not counted
    prepare: str | None = None  # name of a setup step (SETUPS) run in the workspace before the command
    check: str | None = None  # name of an extra check (CHECKS) run after it


def _sine(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The workspace every row starts from (copied per row, so no row sees another's outputs)."""
    root = tmp_path_factory.mktemp("workspace-template")
    shutil.copy(SPEECH, root / "speech.wav")
    shutil.copy(SPEECH, root / "my clip.wav")
    for folder in ("d1", "d2"):
        (root / folder).mkdir()
        shutil.copy(SPEECH, root / folder / "a.wav")
    (root / "twins").mkdir()
    samples, rate = sf.read(SPEECH, dtype="float32")
    sf.write(root / "twins" / "a.wav", samples, rate)
    sf.write(root / "twins" / "a.flac", samples, rate)
    (root / "empty").mkdir()
    (root / "afile").write_text("a file where a folder is expected\n")
    (root / "notes.txt").write_text("not audio\n")
    (root / "fake.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sf.write(root / "silence.wav", np.zeros(16000 * 5, dtype=np.float32), 16000)
    sf.write(root / "tone.wav", _sine(5.0), 16000)
    np.save(root / "voice.npy", np.ones(192, dtype=np.float32))
    (root / "out.npy").mkdir()  # a folder with an output file's name
    build_eval_workspace(root)  # ev/: manifests, references, UEMs and hypotheses, good and broken
    (root / "escape.tsv").write_text(f"uri\taudio\n../../escaped\t{root / 'speech.wav'}\n", encoding="utf-8")
    (root / "absolute.tsv").write_text(f"uri\taudio\n/tmp/voicemap-absolute\t{root / 'speech.wav'}\n", encoding="utf-8")
    (root / "no-audio-column.tsv").write_text("uri\tfile\nx\tspeech.wav\n", encoding="utf-8")
    return root


def _fingerprint(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _immutable(folder: Path) -> bool:
    """chattr +i: a folder that refuses new files even to root (tests run as root in CI); False if unsupported."""
    if shutil.which("chattr") is None:
        return False
    folder.mkdir(exist_ok=True)
    return subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0


def _enroll_registry(workspace: Path) -> None:
    assert main(["enroll", "Known", str(workspace / "speech.wav"), "--registry", str(workspace / "reg.sqlite")]) == 0


def _clips(ws: Path) -> None:
    """ten 2 s clips of the call from 8 s on, where it is all speech (under the 3 s minimum alone, about 20 s together)"""
    samples, rate = sf.read(ws / "speech.wav", dtype="float32")
    for i in range(10):
        sf.write(ws / f"clip{i}.wav", samples[(8 + 2 * i) * rate:(10 + 2 * i) * rate], rate)


def _bad_registries(ws: Path) -> None:
    _enroll_registry(ws)
    assert main(["voices", "export", str(ws / "export.json"), "--registry", str(ws / "reg.sqlite")]) == 0
    data = (ws / "reg.sqlite").read_bytes()
    (ws / "random.sqlite").write_bytes(np.random.default_rng(0).integers(0, 256, 16384, dtype=np.uint8).tobytes())
    (ws / "truncated.sqlite").write_bytes(data[: len(data) // 2])
    with sqlite3.connect(ws / "foreign.sqlite") as other:  # another program's database
        other.execute("CREATE TABLE notes (body TEXT)")
    other.close()


def _exports(ws: Path) -> None:
    _enroll_registry(ws)
    assert main(["voices", "export", str(ws / "export.json"), "--registry", str(ws / "reg.sqlite")]) == 0
    data = json.loads((ws / "export.json").read_text())
    def write(name, change):
        copy = json.loads(json.dumps(data)); change(copy); (ws / name).write_text(json.dumps(copy))
    write("complex.json", lambda d: d.update(vector_dtype="complex128"))
    def inf(d):
        d["voices"][0]["embeddings"][0]["vector"] = base64.b64encode(np.full(192, np.inf, "<f4").tobytes()).decode()
    write("inf.json", inf)
    def dim(d):
        d["voices"][0]["embeddings"].append({**d["voices"][0]["embeddings"][0], "dimension": 64,
                                             "vector": base64.b64encode(np.ones(64, "<f4").tobytes()).decode()})
    write("dim.json", dim)
    write("clash.json", lambda d: d["voices"].extend([{**d["voices"][0], "name": "Bo Li"}, {**d["voices"][0], "name": "Bo_Li"}]))


def _readonly_registry(ws: Path) -> None:
    """a registry nobody may change, root included: chattr +i on the file itself (locked.sqlite)"""
    assert main(["enroll", "Known", str(ws / "speech.wav"), "--registry", str(ws / "locked.sqlite")]) == 0
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(ws / "locked.sqlite")]).returncode:
        pytest.skip("chattr +i is not available here")


SETUPS = {
    "readonly": lambda ws: _immutable(ws / "locked") or pytest.skip("chattr +i is not available here"),
    "registry": _enroll_registry,
    "clips": _clips,
    "bad_registries": _bad_registries,
    "exports": _exports,
    "readonly_registry": _readonly_registry,
}
CLIPS = " ".join(f"clip{i}.wav" for i in range(10))
REG = ("reg.sqlite*",)


def _rttm_has_ten_fields(workspace: Path) -> None:
    lines = (workspace / "out" / "my clip.rttm").read_text().splitlines()
    assert lines and all(len(line.split()) == 10 for line in lines), lines[:2]


CHECKS = {
    "ten_fields": _rttm_has_ten_fields,
    "good_file_written": lambda ws: (ws / "out" / "speech.rttm").read_text().startswith("SPEAKER speech 1 "),
}


ROWS = [
    # --- diarize: options refused before any audio is read -------------------------------------------------
    Row("diarize-no-input", "diarize", 2, r"^voicemap diarize: no input given"),
    Row("diarize-step-tiny", "diarize speech.wav --step 0.001", 2, r"^voicemap diarize: --step 0.001: must be between"),
    Row("diarize-step-nan", "diarize speech.wav --step nan", 2, r"^voicemap diarize: --step nan"),
    Row("diarize-threshold-nan", "diarize speech.wav --cluster-threshold nan", 2, r"--cluster-threshold nan: .*between -1 and 1"),
    Row("diarize-threshold-negative", "diarize speech.wav --threshold -1", 2, r"--cluster-threshold -1: "),
    Row("diarize-num-speakers-zero", "diarize speech.wav --num-speakers 0", 2, r"num_speakers must be at least 1"),
    Row("diarize-bounds-reversed", "diarize speech.wav --min-speakers 3 --max-speakers 2", 2, r"max_speakers \(2\) is below"),
    Row("diarize-unknown-embedding", "diarize speech.wav --embedding nope", 2, r"--embedding nope: not an encoder"),
    Row("diarize-missing-segmentation", "diarize speech.wav --segmentation nowhere.bin", 2,
        r"--segmentation nowhere.bin: no such file"),
    Row("diarize-device-unavailable", "diarize speech.wav --device cuda:7", 2, r"--device cuda:7: "),
    Row("diarize-device-garbage", "diarize speech.wav --device toaster", 2, r"--device toaster: not a torch device"),
    Row("diarize-bad-embedding-file", "diarize speech.wav --embedding notes.txt", 2, r"notes.txt"),
    # --- diarize: where outputs go ------------------------------------------------------------------------
    Row("diarize-same-name-two-folders", "diarize d1/a.wav d2/a.wav -o out", 2, r"d1/a.wav .*would both be written as a\.\*"),
    Row("diarize-same-stem-two-formats", "diarize twins -o out", 2, r"twins/a\.\w+ and twins/a\.\w+ would both"),
    Row("diarize-outdir-is-file", "diarize speech.wav -o afile", 2, r"^voicemap diarize: afile: exists and is not a folder$"),
    Row("diarize-outdir-under-file", "diarize speech.wav -o afile/sub", 2, r"afile/sub: afile is a file, not a folder"),
    Row("diarize-outdir-read-only", "diarize speech.wav -o locked/out", 2, r"locked/out: cannot write there",
        prepare="readonly"),
    Row("diarize-outdir-not-permitted", "diarize speech.wav -o /proc/voicemap-out", 2, r"/proc/voicemap-out: cannot write"),
    # --- diarize: bad inputs are one line each, the rest goes on -----------------------------------------
    Row("diarize-empty-folder", "diarize empty -q", 1, r"^voicemap: empty: no audio files in this folder"),
    Row("diarize-missing-and-good", "diarize missing.wav speech.wav -o out -q", 1, r"^voicemap: missing.wav: no such file$",
        writes=("out/*",), check="good_file_written"),
    Row("diarize-not-audio", "diarize notes.txt fake.wav -q", 1, r"notes.txt(.|\n)*fake.wav", lines=2),
    Row("diarize-silence", "diarize silence.wav -q", 0, r"^$", lines=0),
    Row("diarize-spaces-and-too-many-speakers", "diarize my+clip.wav --num-speakers 50 -o out -q", 0,
        r"note: my clip: \d+ speaker\(s\) found, fewer than --num-speakers 50", writes=("out/*",), check="ten_fields"),
    # --- identify -----------------------------------------------------------------------------------------
    Row("identify-no-registry", "identify speech.wav -o out --registry none.sqlite", 2, r"none.sqlite"),
    Row("identify-threshold-nan", "identify speech.wav -o out --naming-threshold nan", 2, r"--naming-threshold nan: .*cosine"),
    Row("identify-threshold-above-one", "identify speech.wav -o out --threshold 1.5", 2, r"--naming-threshold 1.5: "),
    Row("identify-outdir-is-file", "identify speech.wav -o afile --registry reg.sqlite", 2, r"afile: exists and is not a folder",
        prepare="registry", writes=("reg.sqlite*",)),
    Row("identify-step-tiny", "identify speech.wav -o out --step 0.01 --registry reg.sqlite", 2, r"--step 0.01",
        prepare="registry", writes=("reg.sqlite*",)),
    # --- embed --------------------------------------------------------------------------------------------
    Row("embed-output-under-file", "embed speech.wav -o afile/x.npy", 2, r"afile: exists and is not a folder"),
    Row("embed-output-is-folder", "embed speech.wav -o out.npy", 2, r"out.npy: is a folder"),
    Row("embed-output-folder-made", "embed speech.wav -o nowhere/x.npy", 0, r"^nowhere/x.npy: 1 x 192",
        writes=("nowhere/*",)),
    Row("embed-unknown-encoder", "embed speech.wav -o x.npy --embedding nope", 2, r"--embedding nope"),
    Row("embed-replaces-input", "embed voice.npy -o voice.npy", 2, r"would replace voice.npy"),
    Row("embed-missing-input", "embed speech.wav missing.wav -o x.npy", 1, r"missing.wav(.|\n)*nothing written",
        lines=2),
    Row("embed-read-only", "embed speech.wav -o locked/x.npy", 2, r"locked: cannot write there", prepare="readonly"),
    # --- anonymize ----------------------------------------------------------------------------------------
    Row("anonymize-onto-input", "anonymize speech.wav -o speech.wav", 2, r"speech.wav: would replace speech.wav"),
    Row("anonymize-sidecar-onto-transcript", "anonymize speech.wav -o notes.wav --transcript notes.json", 2,
        r"notes.json: would replace notes.json"),
    Row("anonymize-wrong-format", "anonymize speech.wav -o out.mp3", 2, r"out.mp3: the anonymized audio is written as"),
    Row("anonymize-under-file", "anonymize speech.wav -o afile/x.wav", 2, r"afile: exists and is not a folder"),
    Row("anonymize-missing-input", "anonymize missing.wav -o x.wav", 1, r"^voicemap: missing.wav: no such file$"),
    Row("anonymize-bad-step", "anonymize speech.wav -o x.wav --step 0", 2, r"--step 0: "),
    # --- eval: one bad file is one line naming file and line; the rest still scores ----------------------
    Row("eval-uem-outside-audio", "eval ev/uem-outside.tsv --hyp ev/hyp -q", 1,
        r"^voicemap: ev/uem/uem-outside.uem:1: region 40.000-50.000 s lies outside the audio"),
    Row("eval-uem-beyond-audio", "eval ev/uem-beyond.tsv --hyp ev/hyp -q", 1, r"uem-beyond.uem:1: .* extends beyond the end"),
    Row("eval-uem-reversed", "eval ev/uem-reversed.tsv --hyp ev/hyp -q", 1, r"uem-reversed.uem:1: region 20.000-10.000 is reversed"),
    Row("eval-uem-garbage", "eval ev/uem-garbage.tsv --hyp ev/hyp -q", 1, r"uem-garbage.uem:2: 8 fields, a UEM line has 4"),
    Row("eval-uem-beyond-m4a", "eval ev/uem-beyond-m4a.tsv --hyp ev/hyp -q", 1, r"extends beyond the end of the audio \(speech.m4a"),
    Row("eval-rttm-spaces-malformed", "eval ev/ref-name-with-spaces.tsv --hyp ev/hyp -q", 1,
        r"ref/ref-name-with-spaces.rttm:1: 11 fields, an RTTM SPEAKER line has 10"),
    Row("eval-rttm-not-a-number", "eval ev/hyp-onset-not-a-number.tsv --hyp ev/hyp -q", 1,
        r"hyp/hyp-onset-not-a-number.rttm:2: onset 'soon' is not a number"),
    Row("eval-row-without-audio", "eval ev/row-no-audio.tsv --hyp ev/hyp -q", 1, r"row 'row-no-audio' has no audio value"),
    Row("eval-collar-negative", "eval ev/ok.tsv --collar -1", 2, r"^voicemap eval: --collar -1.0: must be a finite number"),
    Row("eval-collar-nan", "eval ev/ok.tsv --collar nan", 2, r"--collar nan"),
    Row("eval-json-is-folder", "eval ev/ok.tsv --hyp ev/hyp --json ev", 2, r"ev: is a folder; give a file name"),
    Row("eval-json-under-file", "eval ev/ok.tsv --hyp ev/hyp --json afile/s.json", 2, r"afile: exists and is not a folder"),
    Row("eval-json-replaces-manifest", "eval ev/ok.tsv --hyp ev/hyp --json ev/ok.tsv", 2, r"would replace ev/ok.tsv"),
    Row("eval-json-replaces-reference", "eval ev/ok.tsv --hyp ev/hyp --json ev/ref/good.rttm", 2, r"would replace ev/ref/good.rttm"),
    Row("eval-json-read-only", "eval ev/ok.tsv --hyp ev/hyp --json locked/s.json", 2, r"locked: cannot write there",
        prepare="readonly"),
    Row("eval-save-hyp-over-references", "eval ev/ok.tsv --save-hyp ev/ref", 2, r"ev/ref/good.rttm: would replace"),
    Row("eval-step-tiny", "eval ev/ok.tsv --step 0.001", 2, r"--step 0.001: must be between"),
    Row("eval-spaces-score", "eval ev/spaces.tsv --hyp ev/hyp -q --json scores.json", 0, r"^$", lines=0, writes=("scores.json",)),
    # --- batch: refused before Ray starts or any audio is read ---------------------------------------------
    Row("batch-outdir-is-file", "batch diarize d1 -o afile", 2, r"^voicemap batch: afile: exists and is not a folder"),
    Row("batch-outdir-under-file", "batch diarize d1 -o afile/sub", 2, r"afile is a file, not a folder"),
    Row("batch-same-name-two-folders", "batch diarize d1/a.wav d2/a.wav -o out", 2, r"would both be written as a\.\*"),
    Row("batch-same-stem-two-formats", "batch diarize twins -o out", 2, r"twins/a\.\w+ and \S*twins/a\.\w+ would both"),
    Row("batch-missing-manifest", "batch diarize missing.tsv -o out", 2, r"missing.tsv: No such file or directory"),
    Row("batch-manifest-without-audio-column", "batch diarize no-audio-column.tsv -o out", 2,
        r"manifest has no 'audio' column \(columns: uri, file\)"),
    Row("batch-workers-zero", "batch diarize d1 -o out --workers 0", 2, r"--workers must be at least 1"),
    Row("batch-cpus-nan", "batch diarize d1 -o out --cpus-per-worker nan", 2, r"--cpus-per-worker nan: must be a positive"),
    Row("batch-split-negative", "batch diarize d1 -o out --split-over -1", 2, r"--split-over -1: must be 0"),
    Row("batch-threshold-nan", "batch diarize d1 -o out --threshold nan", 2, r"--cluster-threshold nan: "),
    Row("batch-naming-threshold-nan", "batch identify d1 -o out --threshold nan", 2, r"--naming-threshold nan: the naming threshold"),
    Row("batch-nobody-at-address", "batch diarize d1 -o out --address 127.0.0.1:1", 2,
        r"no Ray cluster answers at 127.0.0.1:1", writes=("out/*",)),
    # --- enroll: the minimum speech is over all files; options refused before any audio or model ---------------
    Row("enroll-ten-short-clips-with-a-spaced-name", f"enroll Ada+Lovelace {CLIPS} --registry new.sqlite", 0, r"^$",
        lines=0, writes=("new.sqlite*",), prepare="clips"),
    Row("enroll-silent-clip-left-out", f"enroll Ada {CLIPS} silence.wav --registry new.sqlite", 0,
        r"^voicemap enroll: note: silence.wav: left out, only 0.00 s of speech found in 5.0 s of audio",
        writes=("new.sqlite*",), prepare="clips"),
    Row("enroll-too-little-in-all", "enroll Ada clip0.wav silence.wav --registry new.sqlite", 1,
        r"only \d\.\d\d s of usable speech in all 2 files \(clip0.wav \d\.\d\d s, silence.wav 0.00 s \[too short to use\]\); "
        r"at least 3 s needed in all", prepare="clips"),
    Row("enroll-silence-alone", "enroll Ada silence.wav --registry new.sqlite", 1,
        r"^voicemap enroll: silence.wav: only 0.00 s of speech found in 5.0 s of audio \(at least 3 s needed\)$"),
    Row("enroll-min-speech-zero", "enroll Ada silence.wav --min-speech 0", 2,
        r"^voicemap enroll: --min-speech 0: must be a number of seconds above 0$"),
    Row("enroll-min-speech-nan", "enroll Ada silence.wav --min-speech nan", 2, r"--min-speech nan: must be"),
    Row("enroll-min-speech-negative", "enroll Ada silence.wav --min-speech -1", 2, r"--min-speech -1: must be"),
    Row("enroll-min-speech-checked-first", "enroll Ada missing.wav --min-speech 0 --embedding nope", 2,
        r"--min-speech 0: must be"),
    Row("enroll-name-control-character", "enroll Ada\x07X speech.wav", 2, r"must not contain control characters"),
    Row("enroll-name-blank", "enroll + speech.wav", 2, r"voice name ' ': must be a non-empty string"),
    Row("enroll-name-reserved-with-space", "enroll unknown+2 speech.wav", 2, r"reserved for speakers that match no"),
    Row("enroll-unknown-embedding", "enroll Ada speech.wav --embedding nope", 2, r"^voicemap enroll: --embedding nope: not an encoder"),
    Row("enroll-device-unavailable", "enroll Ada speech.wav --device cuda:99", 2, r"^voicemap enroll: --device cuda:99: "),
    Row("enroll-device-garbage", "enroll Ada speech.wav --device toaster", 2, r"--device toaster: not a torch device"),
    # --- enroll / voices on a registry that is damaged, foreign, read-only or cannot be created ---------------
    Row("enroll-random-registry", "enroll Ada speech.wav --registry random.sqlite", 1,
        r"registry random.sqlite: not a voicemap registry \(file is not a database\)$", prepare="bad_registries", writes=REG),
    Row("enroll-truncated-registry", "enroll Ada speech.wav --registry truncated.sqlite", 1,
        r"registry truncated.sqlite: damaged or not a voicemap registry", prepare="bad_registries", writes=REG),
    Row("enroll-foreign-sqlite", "enroll Ada speech.wav --registry foreign.sqlite", 1,
        r"registry foreign.sqlite: not a voicemap registry \(an SQLite database of something else\)",
        prepare="bad_registries", writes=REG),
    Row("enroll-registry-under-file", "enroll Ada speech.wav --registry afile/reg.sqlite", 1,
        r"registry afile/reg.sqlite: afile is a file, not a folder"),
    Row("enroll-registry-read-only-folder", "enroll Ada speech.wav --registry locked/reg.sqlite", 1,
        r"registry locked/reg.sqlite: cannot create it in locked", prepare="readonly"),
    Row("enroll-read-only-registry", "enroll Ada speech.wav --registry locked.sqlite --embedding notes.txt", 1,
        r"registry locked.sqlite: is read-only; nothing was written", prepare="readonly_registry",
        writes=("locked.sqlite-*",)),
    Row("voices-remove-read-only-registry", "voices remove Known --registry locked.sqlite", 1,
        r"^voicemap voices remove: registry locked.sqlite: is read-only; nothing was written",
        prepare="readonly_registry", writes=("locked.sqlite-*",)),
    Row("voices-list-read-only-registry", "voices list --registry locked.sqlite", 0, r"^$", lines=0,
        prepare="readonly_registry", writes=("locked.sqlite-*",)),
    Row("voices-list-random", "voices list --registry random.sqlite", 1,
        r"^voicemap voices list: registry random.sqlite: not a voicemap registry", prepare="bad_registries", writes=REG),
    Row("voices-show-truncated", "voices show Known --registry truncated.sqlite", 1,
        r"^voicemap voices show: registry truncated.sqlite: damaged", prepare="bad_registries", writes=REG),
    Row("voices-remove-foreign", "voices remove Known --registry foreign.sqlite", 1,
        r"registry foreign.sqlite: not a voicemap registry", prepare="bad_registries", writes=REG),
    Row("voices-scrub-truncated", "voices scrub --registry truncated.sqlite", 1, r"registry truncated.sqlite: damaged",
        prepare="bad_registries", writes=REG),
    Row("voices-search-truncated", "voices search speech.wav --registry truncated.sqlite", 1,
        r"registry truncated.sqlite: damaged", prepare="bad_registries", writes=REG),
    Row("voices-import-into-random", "voices import export.json --registry random.sqlite", 1,
        r"registry random.sqlite: not a voicemap registry", prepare="bad_registries", writes=REG),
    # --- voices export never replaces the registry --------------------------------------------------------------
    Row("voices-export-onto-registry", "voices export reg.sqlite --registry reg.sqlite", 2,
        r"^voicemap voices export: reg.sqlite: would replace reg.sqlite", prepare="registry", writes=REG),
    Row("voices-export-onto-registry-wal", "voices export ./reg.sqlite-wal --registry reg.sqlite", 2,
        r"would replace reg.sqlite-wal", prepare="registry", writes=REG),
    Row("voices-export-to-folder", "voices export empty --registry reg.sqlite", 2, r"empty: is a folder",
        prepare="registry", writes=REG),
    Row("voices-export-under-file", "voices export afile/x.json --registry reg.sqlite", 2,
        r"afile: exists and is not a folder", prepare="registry", writes=REG),
    Row("voices-export-folder-made", "voices export nowhere/x.json --registry reg.sqlite", 0, r"^$", lines=0,
        prepare="registry", writes=("nowhere/*",)),
    # --- voices import: checked whole, nothing written, no new registry file left ---------------------------------
    Row("voices-import-complex128", "voices import complex.json --registry new.sqlite", 1,
        r"complex.json: vector_dtype 'complex128' is not supported", prepare="exports", writes=REG),
    Row("voices-import-non-finite", "voices import inf.json --registry new.sqlite", 1, r"inf.json: .*NaN or infinite",
        prepare="exports", writes=REG),
    Row("voices-import-wrong-dimension", "voices import dim.json --registry new.sqlite", 1,
        r"dim.json: voice 'Known': .* vectors of different dimensions", prepare="exports", writes=REG),
    Row("voices-import-rttm-name-clash", "voices import clash.json --registry new.sqlite", 1,
        r"clash.json: voice name 'Bo_Li': reads as Bo_Li in RTTM files", prepare="exports", writes=REG),
    Row("voices-import-the-registry-itself", "voices import reg.sqlite --registry new.sqlite", 1,
        r"import reg.sqlite: not a voicemap registry export", prepare="registry", writes=REG),
    Row("voices-import-folder", "voices import empty --registry new.sqlite", 1, r"import empty: cannot read \(Is a directory\)"),
    # --- voices: option values -------------------------------------------------------------------------------------
    Row("voices-search-min-speech-zero", "voices search speech.wav --min-speech 0 --registry reg.sqlite", 2,
        r"^voicemap voices search: --min-speech 0: must be", prepare="registry", writes=REG),
    Row("voices-search-k-zero", "voices search speech.wav -k 0 --registry reg.sqlite", 2, r"-k 0: must be at least 1",
        prepare="registry", writes=REG),
    Row("voices-mix-t-nan", "voices mix Known Known --t nan --as Bea --registry reg.sqlite", 2, r"--t nan: must be between 0",
        prepare="registry", writes=REG),
    Row("voices-edit-alpha-inf", "voices edit Known --direction pitch --alpha inf --as Bea --registry reg.sqlite", 2,
        r"--alpha inf: must be a finite number", prepare="registry", writes=REG),
    # --- link, search, report: an archive folder that is not one ------------------------------------------
    Row("link-missing-folder", "link nowhere", 2, r"^voicemap link: nowhere: no such folder$"),
    Row("link-folder-without-outputs", "link empty", 2, r"^voicemap link: empty: no voicemap outputs with speakers",
        writes=("empty/.voicemap-link.lock",)),  # the folder's lock file stays, as batch's does (flock)
    Row("search-before-linking", "search empty --voice speech.wav", 2, r"^voicemap search: empty: not linked yet"),
    Row("search-top-zero", "search empty --voice speech.wav --top 0", 2, r"--top 0: must be 1 or more"),
    Row("report-missing-folder", "report nowhere", 2, r"^voicemap report: nowhere: no such folder$"),
    # --- synth --------------------------------------------------------------------------------------------
    Row("synth-onto-voice", "synth --voice voice.npy --text hi --model nowhere -o voice.npy", 2, r"would replace voice.npy"),
    Row("synth-under-file", "synth --voice voice.npy --text hi --model nowhere -o afile/x.wav", 2, r"afile"),
    Row("synth-device", "synth --voice voice.npy --text hi --model nowhere -o x.wav --device cuda:7", 2, r"--device cuda:7"),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
@pytest.mark.slow
def test_careless_input(row: Row, template: Path, tmp_path: Path, capsys, monkeypatch):
    workspace = tmp_path / "ws"
    shutil.copytree(template, workspace)
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("VOICEMAP_REGISTRY", str(workspace / "default-registry.sqlite"))
    try:
        if row.prepare:
            SETUPS[row.prepare](workspace)
        capsys.readouterr()
        before = _fingerprint(workspace)
        argv = [part.replace("+", " ") for part in row.argv.split()]
        code = main(argv)
        captured = capsys.readouterr()
    finally:
        for locked in workspace.glob("locked*"):
            subprocess.run(["chattr", "-i", str(locked)], capture_output=True)
    stderr = [line for line in captured.err.splitlines() if line.strip()]
    assert code == row.code, captured.err
    if row.lines is not None:
        assert len(stderr) == row.lines, captured.err
    if row.lines == 1:
        assert re.search(row.stderr, stderr[0]), stderr[0]
        assert "Traceback" not in captured.err
    elif row.stderr:
        assert re.search(row.stderr, captured.err), captured.err
    after = _fingerprint(workspace)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"files changed or removed: {changed}"
    new = [name for name in after if name not in before]
    stray = [name for name in new if not any(Path(name).match(pattern) or name.startswith(pattern.rstrip("*"))
                                               for pattern in row.writes)]
    assert not stray, f"written outside the row's outputs: {stray}"
    if row.check:
        result = CHECKS[row.check](workspace)
        assert result is None or result


def test_help_shows_each_default_once(capsys):
    """`--help` used to read "(default: chosen from the duration) (default: None)"."""
    for command in (["diarize"], ["identify"], ["embed"], ["anonymize"], ["eval"], ["batch", "diarize"],
                    ["batch", "identify"], ["synth"], ["link"], ["search"], ["report"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text
        assert not re.search(r"\(default: [^)]*\) \(default:", text), command
        assert "(default: campplus)" in text or command[0] not in ("diarize", "identify", "embed")


def test_embed_default_works_out_of_the_box(tmp_path):
    """`voicemap embed` without --embedding used to need Qwen3-TTS weights that nobody has offline."""
    assert main(["embed", str(SPEECH), "-o", str(tmp_path / "v.npy")]) == 0
    vectors = np.load(tmp_path / "v.npy")
    record = json.loads((tmp_path / "v.json").read_text())
    assert vectors.shape == (1, 192) and np.isfinite(vectors).all()
    assert record["encoder_id"].startswith("campplus")
    assert oct(os.stat(tmp_path / "v.npy").st_mode & 0o777) == "0o600"
