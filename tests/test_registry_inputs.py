"""Careless input around the voice registry: damaged, foreign and read-only registry files, an export aimed at
the registry itself, imports that must leave nothing behind, and names with spaces. Every refusal is one line
naming the file and the cause, and the files are left as they were. Real SQLite files, real commands."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cluster.registry import Registry, RegistryError
from cli_run import cli

ENC = "campplus-common-advanced"  # the default encoder's id, so that `voices search` / `mix` get that far


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def good(tmp_path) -> Path:
    """A registry with one voice (two 192-d vectors) and one direction, closed (WAL checkpointed)."""
    path = tmp_path / "good.sqlite"
    rng = np.random.default_rng(0)
    with Registry(path) as registry:
        registry.enroll("Ada", ENC, rng.standard_normal((2, 192)), [f"{1:064x}", f"{2:064x}"])
        registry.store_direction("pitch", ENC, rng.standard_normal(192))
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    """A wav that exists (its content never matters: every case is refused before audio is read)."""
    path = tmp_path / "clip.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    return path


def damaged(kind: str, good: Path, folder: Path) -> Path:
    path = folder / f"{kind}.sqlite"
    data = good.read_bytes()
    if kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 16384, dtype=np.uint8).tobytes())
    elif kind == "truncated":  # a copy cut short: header intact, pages missing
        path.write_bytes(data[: len(data) // 2])
    elif kind == "header-only":
        path.write_bytes(data[:100])
    elif kind == "text":
        path.write_text("these are not the vectors you are looking for\n" * 100)
    elif kind == "foreign":  # another program's SQLite database: must never get our tables or WAL mode
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            other.execute("INSERT INTO notes(body) VALUES ('keep me')")
        other.close()
    return path


ACTIONS = [
    ["voices", "list"],
    ["voices", "show", "Ada"],
    ["voices", "remove", "Ada"],
    ["voices", "scrub"],
    ["voices", "export", "OUT"],
    ["voices", "import", "EXPORT"],
    ["voices", "directions"],
    ["voices", "search", "CLIP"],
    ["voices", "search", "--direction", "pitch"],
    ["voices", "mix", "Ada", "Ada", "--t", "0.5", "--as", "Bea"],
    ["enroll", "Bea", "CLIP"],
]
CAUSES = {
    "random": "not a voicemap registry (file is not a database)",
    "text": "not a voicemap registry (file is not a database)",
    "truncated": "damaged or not a voicemap registry",
    "header-only": "damaged or not a voicemap registry",
    "foreign": "not a voicemap registry (an SQLite database of something else)",
}


def fill(argv: list[str], clip: Path, export: Path, out: Path) -> list[str]:
    return [{"CLIP": str(clip), "EXPORT": str(export), "OUT": str(out)}.get(a, a) for a in argv]


@pytest.mark.parametrize("kind", sorted(CAUSES))
def test_every_action_on_a_damaged_or_foreign_registry_is_one_line_and_touches_nothing(kind, good, clip, tmp_path,
                                                                                     capsys):
    folder = tmp_path / "registries"
    folder.mkdir()
    path = damaged(kind, good, folder)
    export = tmp_path / "export.json"
    with Registry(good) as registry:
        registry.export_file(export)
    before = folder_state(folder)
    for argv in ACTIONS:
        out = tmp_path / "out.json"
        code, _, err = cli(capsys, *fill(argv, clip, export, out), "--registry", str(path))
        line = one_line(err)
        assert code == 1, (argv, line)
        command = " ".join(argv[:2]) if argv[0] == "voices" else argv[0]
        assert line.startswith(f"voicemap {command}: registry {path}: "), line
        assert CAUSES[kind] in line, line
        assert folder_state(folder) == before, argv  # no byte changed, no -wal/-shm created
        assert not out.exists()
    if kind == "foreign":
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
            assert other.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        other.close()


def test_the_library_raises_registry_error_naming_the_file_for_sqlite_errors(good, tmp_path):
    path = damaged("truncated", good, tmp_path)
    with pytest.raises(RegistryError, match=f"registry {path}: damaged") as caught:
        Registry(path)
    assert "\n" not in str(caught.value)
    # an error that only shows on a later query is wrapped as well: break a page the open does not read
    broken = tmp_path / "late.sqlite"
    shutil.copy(good, broken)
    with Registry(broken) as registry:
        page = registry._conn.execute("PRAGMA page_size").fetchone()[0]
        root = registry._conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'embeddings'").fetchone()[0]
    data = bytearray(broken.read_bytes())
    data[(root - 1) * page: root * page] = b"\xff" * page
    broken.write_bytes(bytes(data))
    with Registry(broken) as registry:
        with pytest.raises(RegistryError, match=f"registry {broken}: damaged") as caught:
            registry.embeddings("Ada")
    assert "\n" not in str(caught.value)


@pytest.fixture
def immutable(tmp_path):
    """chattr +i on a path, undone afterwards: a file nobody can change, root included (chmod 0444 does not stop
    root). Skips where the file system or the container does not allow it."""
    marked: list[Path] = []

    def mark(path: Path) -> Path:
        if shutil.which("chattr") is None:
            pytest.skip("chattr is not installed")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i refused here: {done.stderr.strip()}")
        marked.append(path)
        return path

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_registry_reads_and_refuses_every_write_in_one_line(good, clip, tmp_path, immutable, capsys):
    export = tmp_path / "export.json"
    with Registry(good) as registry:
        registry.export_file(export)
    before = good.read_bytes()
    immutable(good)
    with pytest.raises(PermissionError):  # proof that the file really is read-only, for root too
        open(good, "r+b").close()
    # reading works
    code, out, err = cli(capsys, "voices", "list", "--registry", str(good))
    assert code == 0 and out.startswith("Ada "), err
    code, out, err = cli(capsys, "voices", "export", str(tmp_path / "copy.json"), "--registry", str(good))
    assert code == 0 and json.loads((tmp_path / "copy.json").read_text())["voices"][0]["name"] == "Ada"
    # every write: one line naming the file, read-only as the cause; enroll says so before its model loads
    # (--embedding names a file that exists, so it passes the up-front check, but does not load as weights)
    for argv in [["voices", "remove", "Ada"], ["voices", "import", str(export), "--on-conflict", "replace"],
                 ["voices", "scrub"], ["voices", "mix", "Ada", "Ada", "--t", "0.5", "--as", "Bea"],
                 ["enroll", "Bea", str(clip), "--embedding", str(export)]]:
        code, _, err = cli(capsys, *argv, "--registry", str(good))
        line = one_line(err)
        assert code == 1 and f"registry {good}: is read-only; nothing was written" in line, (argv, line)
        assert good.read_bytes() == before
    with Registry(good) as registry:  # the library's own check, as used before slow work
        with pytest.raises(RegistryError, match="is read-only"):
            registry.check_writable()


def test_a_folder_that_takes_no_new_file_gets_no_registry(clip, tmp_path, immutable, good, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    export = tmp_path / "export.json"
    with Registry(good) as registry:
        registry.export_file(export)
    immutable(folder)
    for argv in [["enroll", "Bea", str(clip), "--embedding", str(export)], ["voices", "import", str(export)]]:
        code, _, err = cli(capsys, *argv, "--registry", str(folder / "new.sqlite"))
        line = one_line(err)
        assert code == 1 and f"registry {folder / 'new.sqlite'}: cannot create" in line, (argv, line)
        assert list(folder.iterdir()) == []


def test_export_never_replaces_the_registry_and_refuses_unwritable_targets(good, tmp_path, capsys):
    before = good.read_bytes()
    (tmp_path / "link.sqlite").symlink_to(good)
    os.link(good, tmp_path / "hard.sqlite")
    (tmp_path / "afile").write_text("x")
    cases = [
        (str(good), "would replace"),
        (f"{good.parent}/./{good.name}", "would replace"),
        (str(tmp_path / "link.sqlite"), "would replace"),
        (str(tmp_path / "hard.sqlite"), "would replace"),  # another name, the same inode
        (f"{good}-wal", "would replace"),
        (str(tmp_path), "is a folder"),
        (str(tmp_path / "afile" / "x.json"), "afile"),
    ]
    for target, message in cases:
        code, out, err = cli(capsys, "voices", "export", target, "--registry", str(good))
        line = one_line(err)
        assert code == 2 and out == "" and message in line and line.startswith("voicemap voices export: "), line
        assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "good.sqlite", "hard.sqlite", "link.sqlite"]


def _export_with(good: Path, tmp_path: Path, change) -> Path:
    with Registry(good) as registry:
        data = registry.export_data()
    change(data)
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(data))
    return path


def _as_f8(data: dict) -> None:
    data["vector_dtype"] = "<f8"
    for voice in data["voices"]:
        for e in voice["embeddings"]:
            values = np.frombuffer(base64.b64decode(e["vector"]), "<f4").astype("<f8")
            e["vector"] = base64.b64encode(values.tobytes()).decode()
    for d in data["directions"]:
        d["vector"] = base64.b64encode(np.frombuffer(base64.b64decode(d["vector"]), "<f4").astype("<f8").tobytes()).decode()


def _set_vector(values) -> callable:
    def change(data: dict) -> None:
        data["voices"][0]["embeddings"][0].update(
            dimension=len(values), vector=base64.b64encode(np.asarray(values, "<f4").tobytes()).decode())
    return change


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(vector_dtype="complex128"), "vector_dtype 'complex128' is not supported"),
    (lambda d: d.update(vector_dtype="<f2"), "holds 384 float16 values but says dimension 192"),
    (_set_vector([np.inf] * 192), "NaN or infinite"),
    (_set_vector([1.0] * 64), "voice 'Ada': campplus-common-advanced vectors of different dimensions"),
    # refused only inside the write transaction, after a new registry was created: it must go again
    (lambda d: d["voices"].extend([{**d["voices"][0], "name": "Bo Li"}, {**d["voices"][0], "name": "Bo_Li"}]),
     "voice name 'Bo_Li': reads as Bo_Li in RTTM files, like the enrolled voice 'Bo Li'"),
    (lambda d: d["voices"].append({**d["voices"][0], "name": "Bo",
                                    "embeddings": [{**d["voices"][0]["embeddings"][0], "encoder_id": "other"}]}), None),
])
def test_a_failed_import_leaves_no_registry_behind(good, tmp_path, change, message, capsys):
    source = _export_with(good, tmp_path, change)
    target = tmp_path / "new" / "deeper" / "voices.sqlite"
    code, out, err = cli(capsys, "voices", "import", str(source), "--registry", str(target))
    if message is None:  # the control: the same import, valid, creates the registry
        assert code == 0 and target.exists(), err
        return
    line = one_line(err)
    assert code == 1 and out == "" and message in line and str(source) in line, line
    assert not (tmp_path / "new").exists()
    # into an existing registry: nothing of the file lands
    existing = tmp_path / "existing.sqlite"
    with Registry(existing) as registry:
        registry.enroll("Zed", ENC, np.ones(192))
        before = registry.export_data()["voices"]
    code, _, err = cli(capsys, "voices", "import", str(source), "--registry", str(existing))
    assert code == 1 and message in one_line(err)
    with Registry(existing) as registry:
        assert registry.export_data()["voices"] == before


def test_an_import_of_float64_vectors_is_exact_to_float32(good, tmp_path, capsys):
    source = _export_with(good, tmp_path, _as_f8)
    target = tmp_path / "copy.sqlite"
    code, out, err = cli(capsys, "voices", "import", str(source), "--registry", str(target))
    assert code == 0, err
    with Registry(good) as original, Registry(target) as copy:
        for a, b in zip(original.embeddings("Ada"), copy.embeddings("Ada")):
            np.testing.assert_array_equal(a.vector, b.vector)
        np.testing.assert_array_equal(original.get_direction("pitch", ENC).vector, copy.get_direction("pitch", ENC).vector)


def test_import_of_a_folder_or_missing_file_is_one_line(tmp_path, capsys):
    for source, message in [(tmp_path, "cannot read (Is a directory)"), (tmp_path / "nope.json", "no such file")]:
        code, _, err = cli(capsys, "voices", "import", str(source), "--registry", str(tmp_path / "r.sqlite"))
        assert code == 1 and f"import {source}: {message}" in one_line(err)
        assert not (tmp_path / "r.sqlite").exists()


def test_names_keep_their_inner_spaces_trimmed_and_single(tmp_path, capsys):
    path = tmp_path / "voices.sqlite"
    with Registry(path) as registry:
        voice = registry.enroll("  Ada \u00a0 Lovelace ", ENC, np.ones(192))
        assert voice.name == "Ada Lovelace"
        assert "Ada  Lovelace" in registry and registry.get(" Ada Lovelace").name == "Ada Lovelace"
        # the same name typed again extends the voice instead of making a look-alike second one
        registry.enroll("Ada Lovelace ", ENC, np.arange(192.0) + 1)
        assert [(v.name, v.counts) for v in registry.list()] == [("Ada Lovelace", {ENC: 2})]
        for bad, message in [("Ada_Lovelace", "reads as Ada_Lovelace in RTTM files"), ("Ada\tL", "control characters"),
                             ("Ada\u2029L", "line breaks"), ("\u3000", "non-empty"), ("unknown  7", "reserved")]:
            with pytest.raises(RegistryError, match=message):
                registry.enroll(bad, ENC, np.ones(192))
        registry.export_file(tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["voices"][0]["name"] == "Ada Lovelace"
    code, out, err = cli(capsys, "voices", "list", "--json", "--registry", str(path))
    assert code == 0 and [v["name"] for v in json.loads(out)] == ["Ada Lovelace"]
    code, out, err = cli(capsys, "voices", "remove", "Ada   Lovelace", "--registry", str(path))
    assert code == 0 and "removed Ada   Lovelace" in out


@pytest.mark.parametrize("argv, message", [
    (["enroll", "Bea", "CLIP", "--min-speech", "0"], "--min-speech 0: must be a number of seconds above 0"),
    (["enroll", "Bea", "CLIP", "--device", "toaster"], "--device toaster: not a torch device"),
    (["voices", "search", "CLIP", "--device", "cuda:99"], "--device cuda:99: "),
    (["enroll", "Bea", "CLIP", "--min-speech", "inf"], "--min-speech inf: must be"),
    (["enroll", "", "CLIP"], "voice name '': must be a non-empty string"),
    (["enroll", "unknown_1", "CLIP"], "reserved"),
    (["voices", "search", "CLIP", "--min-speech", "-0.5"], "--min-speech -0.5: must be"),
    (["voices", "search", "CLIP", "-k", "0"], "-k 0: must be at least 1"),
    (["voices", "mix", "Ada", "Ada", "--t", "nan", "--as", "Bea"], "--t nan: must be between 0"),
    (["voices", "edit", "Ada", "--direction", "pitch", "--alpha", "inf", "--as", "Bea"], "--alpha inf: must be"),
])
def test_bad_option_values_exit_2_before_any_model_or_audio(argv, message, good, tmp_path, capsys):
    # the clip does not exist and the encoder is bogus: only an up-front check can name the option instead
    argv = [str(tmp_path / "missing.wav") if a == "CLIP" else a for a in argv]
    before = good.read_bytes()
    code, out, err = cli(capsys, *argv, "--embedding", "no-such-encoder", "--registry", str(good))
    assert code == 2 and out == "" and message in one_line(err), err
    assert good.read_bytes() == before
