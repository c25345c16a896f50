"""The voice registry: storage, durability under SIGKILL and concurrent reads, real deletion, export/import,
bad input, and the enroll / voices commands on real speech with the real CAM++ encoder."""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cluster.registry import Registry, RegistryError, file_sha256
from cli_run import cli

ROOT = Path(__file__).resolve().parents[1]
ENC = "test-encoder"


def vectors(seed: int, n: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def state(registry: Registry) -> dict:
    """Everything the registry holds, for before/after comparisons."""
    data = registry.export_data()
    data.pop("exported")
    return data


def file_bytes(path: Path) -> bytes:
    """The registry file and its WAL / shared-memory companions, concatenated."""
    return b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")
                    if Path(f"{path}{suffix}").exists())


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def registry(tmp_path):
    with Registry(tmp_path / "voices.sqlite") as opened:
        yield opened


# -- storage ---------------------------------------------------------------------------------------------


def test_enroll_stores_vectors_hashes_metadata_and_unit_mean_centroid(registry, tmp_path):
    ada = vectors(1, 3)
    hashes = [f"{i:064x}" for i in range(3)]
    voice = registry.enroll("Ada", ENC, ada, hashes, {"tags": ["team"], "consent": "signed 2024-05-01"})
    assert voice.counts == {ENC: 3}
    assert voice.metadata == {"tags": ["team"], "consent": "signed 2024-05-01"}
    stored = registry.embeddings("Ada")
    assert [e.source_hash for e in stored] == hashes
    np.testing.assert_array_equal(np.stack([e.vector for e in stored]), ada)
    np.testing.assert_allclose(registry.centroid("Ada", ENC), unit(unit(ada).mean(0)), atol=1e-6)

    # enrolling again extends the voice, unites tags, and moves the centroid to the mean of all sources
    more = vectors(2, 1)
    voice = registry.enroll("Ada", ENC, more, [f"{9:064x}"], {"tags": ["team", "board"]})
    assert voice.counts == {ENC: 4} and voice.metadata["tags"] == ["team", "board"]
    np.testing.assert_allclose(registry.centroid("Ada", ENC), unit(unit(np.vstack([ada, more])).mean(0)), atol=1e-6)

    registry.enroll("Bob", ENC, vectors(3, 2))
    assert [v.name for v in registry.list()] == ["Ada", "Bob"]
    registry.close()
    with Registry(tmp_path / "voices.sqlite", create=False) as again:  # survives closing and reopening
        assert [(v.name, v.counts) for v in again.list()] == [("Ada", {ENC: 4}), ("Bob", {ENC: 2})]
        assert again.get("Ada").metadata["consent"] == "signed 2024-05-01"


def test_registry_file_is_owner_only_and_path_comes_from_env(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "env.sqlite"
    monkeypatch.setenv("VOICEMAP_REGISTRY", str(target))
    with Registry() as opened:
        assert opened.path == target
        opened.enroll("Ada", ENC, vectors(0, 1))
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(RegistryError, match="does not exist"):
        Registry(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_search_ranks_voices_by_cosine_within_one_encoder(registry):
    rng = np.random.default_rng(5)
    voices = {name: rng.standard_normal((2, 16)) for name in ["Ada", "Bob", "Cy", "Dee"]}
    for name, vecs in voices.items():
        registry.enroll(name, ENC, vecs)
    # same dimension, another encoder: must never show up in ENC searches
    registry.enroll("Other", "another-encoder", voices["Ada"])
    query = voices["Cy"][0] + 0.3 * rng.standard_normal(16)
    hits = registry.search(query, ENC, k=3)
    expected = sorted(((float(unit(query) @ unit(unit(v).mean(0))), n) for n, v in voices.items()), reverse=True)
    assert [h.name for h in hits] == [n for _, n in expected[:3]]
    assert hits[0].name == "Cy"
    np.testing.assert_allclose([h.score for h in hits], [s for s, _ in expected[:3]], atol=1e-5)
    assert [h.name for h in registry.search(query, ENC, k=50)] == [n for _, n in expected]
    assert [h.name for h in registry.search(query, "another-encoder")] == ["Other"]
    assert registry.search(query, "never-enrolled") == []
    # the centroids are cached between queries; a commit by this or by another connection refreshes them
    registry.enroll("Eve", ENC, query * 2)
    assert registry.search(query, ENC, k=1)[0].name == "Eve"
    with Registry(registry.path) as other:
        other.remove("Eve")
        other.enroll("Fay", ENC, -query)
    hits = registry.search(query, ENC, k=10)
    assert "Eve" not in [h.name for h in hits] and hits[-1].name == "Fay"


def test_directions_store_get_list_remove(registry):
    registry.enroll("Ada", ENC, vectors(0, 1))
    direction = vectors(7, 1)[0] * 3.0  # a direction's norm may mean something: kept raw
    registry.store_direction("female-male", ENC, direction, {"from": "SPEAKERS.TXT"})
    got = registry.get_direction("female-male", ENC)
    np.testing.assert_array_equal(got.vector, direction)
    assert got.metadata == {"from": "SPEAKERS.TXT"}
    assert [d.name for d in registry.list_directions(ENC)] == ["female-male"]
    with pytest.raises(RegistryError, match="dimension 8 but"):
        registry.store_direction("bad", ENC, np.ones(8))
    registry.remove_direction("female-male", ENC)
    assert registry.list_directions() == []
    with pytest.raises(RegistryError, match="not stored"):
        registry.get_direction("female-male", ENC)


# -- bad input: one line, nothing changed ----------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda r: r.enroll("Cy", ENC, vectors(0, 1, dim=8)), "dimension 8 but"),
    (lambda r: r.enroll("Ada", ENC, np.vstack([vectors(0, 1), np.full((1, 16), np.nan)])), "NaN"),
    (lambda r: r.enroll("Cy", ENC, np.zeros(16)), "all zeros"),
    (lambda r: r.add_embeddings("Nobody", ENC, vectors(0, 1)), "not enrolled"),
    (lambda r: r.enroll("Ada", ENC, vectors(0, 2), [f"{1:064x}"]), "2 vectors but 1 source"),
    (lambda r: r.enroll("Ada", ENC, vectors(0, 1), [f"{1:064x}"]), "already enrolled"),
    (lambda r: r.enroll("Ada\tLovelace", ENC, vectors(0, 1)), "control characters"),
    (lambda r: r.enroll("Ada\u2028Lovelace", ENC, vectors(0, 1)), "line breaks"),
    (lambda r: r.enroll(" \u00a0 ", ENC, vectors(0, 1)), "non-empty"),
    (lambda r: r.enroll("unknown_2", ENC, vectors(0, 1)), "reserved"),
    (lambda r: r.enroll("Unknown 2", ENC, vectors(0, 1)), "reserved"),  # written unknown_2 in RTTM
    (lambda r: r.enroll("Cy", ENC, [["a", "b"]]), "not a numeric vector"),
    (lambda r: r.search(np.ones(8), ENC), "dimension 8 but"),
    (lambda r: r.remove("Nobody"), "not enrolled"),
    (lambda r: r.remove("Ada", "another-encoder"), "has no another-encoder"),
])
def test_bad_input_is_one_line_error_and_changes_nothing(registry, call, message):
    registry.enroll("Ada", ENC, vectors(1, 2), [f"{1:064x}", f"{2:064x}"], {"tags": ["x"]})
    before = state(registry)
    with pytest.raises(RegistryError, match=message) as caught:
        call(registry)
    assert "\n" not in str(caught.value)
    assert state(registry) == before


def test_interrupt_inside_a_transaction_rolls_everything_back(registry):
    registry.enroll("Ada", ENC, vectors(1, 2))
    before = state(registry)
    with pytest.raises(KeyboardInterrupt):
        with registry.transaction():
            registry.enroll("Bob", ENC, vectors(2, 2))
            registry.add_embeddings("Ada", ENC, vectors(3, 1))
            raise KeyboardInterrupt
    assert state(registry) == before
    # a failed call nested in a transaction undoes only itself
    with registry.transaction():
        registry.enroll("Bob", ENC, vectors(2, 2))
        with pytest.raises(RegistryError):
            registry.enroll("Cy", ENC, vectors(4, 1, dim=3))
    assert [v.name for v in registry.list()] == ["Ada", "Bob"]


def test_a_file_that_is_not_a_registry_is_refused(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("these are not the vectors you are looking for\n" * 100)
    with pytest.raises(RegistryError, match="not a voicemap registry"):
        Registry(bogus)
    assert bogus.read_text().startswith("these are not")


# -- durability ------------------------------------------------------------------------------------------

_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from cluster.registry import Registry
    registry = Registry(sys.argv[1])
    rng = np.random.default_rng(0)
    with registry.transaction():
        for i in range(300):
            registry.enroll(f"pending{i}", "test-encoder", rng.standard_normal((40, 16)))
        print("inside", flush=True)
        time.sleep(120)
""")


def test_sigkill_inside_an_enrollment_transaction_leaves_the_committed_voices(tmp_path):
    path = tmp_path / "voices.sqlite"
    with Registry(path) as registry:
        registry.enroll("Ada", ENC, vectors(1, 3))
        registry.enroll("Bob", ENC, vectors(2, 2))
        before = state(registry)
    wal = Path(f"{path}-wal")
    assert not wal.exists()  # the last connection to close checkpoints and deletes the WAL
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE,
                             env=child_env(), cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == b"inside"
        # the uncommitted transaction is big enough to have spilled pages into the WAL file already
        assert wal.stat().st_size > 100_000
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with Registry(path) as reopened:
        assert [v.name for v in reopened.list()] == ["Ada", "Bob"]
        assert state(reopened) == before
        reopened.enroll("Cy", ENC, vectors(3, 1))  # and it is writable again
        assert len(reopened) == 3


_WRITER_LOOP = textwrap.dedent("""
    import sys
    import numpy as np
    from cluster.registry import Registry
    registry = Registry(sys.argv[1])
    rng = np.random.default_rng(0)
    for i in range(int(sys.argv[2])):
        registry.enroll(f"w{i:04d}", "test-encoder", rng.standard_normal((5, 16)),
                        metadata={"tags": ["batch"], "index": i})
        print(i, flush=True)
""")


def test_sigkill_at_a_random_moment_of_repeated_enrollments_keeps_whole_voices(tmp_path):
    path = tmp_path / "voices.sqlite"
    Registry(path).close()
    rng = np.random.default_rng(1)
    for attempt in range(3):
        child = subprocess.Popen([sys.executable, "-c", _WRITER_LOOP, str(path), "100000"],
                                 stdout=subprocess.PIPE, env=child_env(), cwd=ROOT)
        child.stdout.readline()  # started writing
        time.sleep(float(rng.uniform(0.05, 0.4)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        with Registry(path) as reopened:
            voices = reopened.list()
            # every voice present is complete: 5 vectors and its metadata, never a half-written one
            assert voices and all(v.counts == {ENC: 5} and v.metadata["tags"] == ["batch"] for v in voices)
            names, centroids = reopened.centroids(ENC)
            assert names == [v.name for v in voices] and centroids.shape == (len(voices), 16)
        path.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        Registry(path).close()


def test_a_reader_during_writes_sees_old_or_new_state_never_a_torn_one(tmp_path):
    path = tmp_path / "voices.sqlite"
    Registry(path).close()
    total = 150
    writer = subprocess.Popen([sys.executable, "-c", _WRITER_LOOP, str(path), str(total)],
                              stdout=subprocess.DEVNULL, env=child_env(), cwd=ROOT)
    seen_counts = []
    with Registry(path) as reader:
        while writer.poll() is None:
            data = reader.export_data()  # one snapshot of everything
            assert all(len(v["embeddings"]) == 5 for v in data["voices"])
            voices = reader.list()
            assert all(v.counts == {ENC: 5} for v in voices)
            # voices are enrolled in order w0000, w0001, ...: a consistent state is always a prefix
            assert [v.name for v in voices] == [f"w{i:04d}" for i in range(len(voices))]
            seen_counts.append(len(voices))
    assert writer.returncode == 0
    assert seen_counts == sorted(seen_counts)  # never goes back to an older state
    assert len(set(seen_counts)) > 3  # the reader really ran during the writes
    with Registry(path) as done:
        assert len(done) == total


# -- real deletion ---------------------------------------------------------------------------------------


def test_remove_leaves_no_vector_bytes_in_the_files(registry):
    keep = vectors(1, 2)
    secret = vectors(2, 3)
    registry.enroll("Keep", ENC, keep)
    registry.enroll("Secret", ENC, secret, [f"{7:064x}", f"{8:064x}", f"{9:064x}"])
    secret_centroid = registry.centroid("Secret", ENC)
    needles = [row.astype("<f4").tobytes() for row in secret] + [secret_centroid.astype("<f4").tobytes()]
    on_disk = file_bytes(registry.path)
    assert all(needle in on_disk for needle in needles)  # the check below could fail
    assert registry.remove("Secret") is True
    on_disk = file_bytes(registry.path)
    assert not any(needle in on_disk for needle in needles)
    assert b"Secret" not in on_disk and f"{7:064x}".encode() not in on_disk
    assert all(row.astype("<f4").tobytes() in on_disk for row in keep)
    assert [v.name for v in registry.list()] == ["Keep"]


def test_remove_reports_when_a_reader_blocks_the_scrub_and_scrub_finishes_later(registry):
    secret = vectors(2, 2)
    registry.enroll("Secret", ENC, secret)
    registry.enroll("Keep", ENC, vectors(1, 1))
    registry.scrub_wait_s = 0.2  # do not wait the default seconds for the reader to finish
    reader = sqlite3.connect(registry.path, isolation_level=None)  # another process, reading
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM voices").fetchone() == (2,)
        # the reader's open snapshot still needs the old pages, so the WAL cannot be truncated yet
        assert registry.remove("Secret") is False
        assert reader.execute("SELECT COUNT(*) FROM voices").fetchone() == (2,)  # its snapshot is intact
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert [v.name for v in registry.list()] == ["Keep"]
    assert registry.scrub() is True
    assert not any(row.astype("<f4").tobytes() in file_bytes(registry.path) for row in secret)


# -- export / import -------------------------------------------------------------------------------------


def test_export_import_round_trip_is_exact(registry, tmp_path):
    registry.enroll("Ada", ENC, vectors(1, 3), [f"{i:064x}" for i in range(3)], {"tags": ["a"], "consent": "yes"})
    registry.enroll("Ada", "another-encoder", vectors(2, 1, dim=4))
    registry.enroll("Zoë", ENC, vectors(3, 1))  # UTF-8 names survive
    registry.store_direction("pitch", ENC, vectors(4, 1)[0], {"unit": "cosine"})
    export = tmp_path / "out" / "registry.json"
    export.parent.mkdir()
    assert registry.export_file(export) == 2
    assert export.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in export.parent.iterdir()] == ["registry.json"]  # no temp file left behind
    with Registry(tmp_path / "copy.sqlite") as copy:
        assert copy.import_file(export) == 2
        assert state(copy) == state(registry)
        for name, encoder in [("Ada", ENC), ("Ada", "another-encoder"), ("Zoë", ENC)]:
            np.testing.assert_array_equal(copy.centroid(name, encoder), registry.centroid(name, encoder))
        before = state(copy)
        with pytest.raises(RegistryError, match="'Ada' is already enrolled"):
            copy.import_file(export)
        assert state(copy) == before
        assert copy.import_file(export, on_conflict="skip") == 0
        copy.enroll("Ada", ENC, vectors(9, 1))
        assert copy.import_file(export, on_conflict="replace") == 2
        assert state(copy) == before


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d.update(format="something-else"), "not a voicemap registry export"),
    (lambda d: d["voices"][1]["embeddings"][0].update(vector="AAAAAAAAAAA="), "holds 2 float32 values"),
    (lambda d: d.update(vector_dtype="complex128"), "vector_dtype 'complex128' is not supported"),
    (lambda d: d.update(vector_dtype="<i4"), "vector_dtype '<i4' is not supported"),
    (lambda d: d.pop("vector_dtype"), "vector_dtype None is not supported"),
    # the same bytes read as float64: half as many values as the dimension says
    (lambda d: d.update(vector_dtype="<f8"), "holds 8 float64 values but says dimension 16"),
    (lambda d: d["voices"][1]["embeddings"][0].update(dimension="16"), "dimension '16' is not a positive integer"),
    (lambda d: d["voices"][1].update(name="Bea\nX"), "bad.json: voice name .*: must not contain control"),
    (lambda d: d["voices"][1]["embeddings"][0].update(
        vector=base64.b64encode(np.full(16, np.nan, "<f4").tobytes()).decode()), "NaN"),
    (lambda d: d["voices"][1].update(embeddings=[{
        "encoder_id": ENC, "dimension": 8, "vector": base64.b64encode(np.ones(8, "<f4").tobytes()).decode()}]),
     "dimension 8 but test-encoder vectors in this registry have 16"),
])
def test_import_of_a_bad_file_changes_nothing(registry, tmp_path, corrupt, message):
    registry.enroll("Ada", ENC, vectors(1, 2))
    exported = registry.export_data()
    exported["voices"][0]["name"] = "Bea"
    exported["voices"].append({**copy.deepcopy(exported["voices"][0]), "name": "Cy"})
    corrupt(exported)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(exported))
    before = state(registry)
    with pytest.raises(RegistryError, match=message) as caught:
        registry.import_file(path)
    assert "\n" not in str(caught.value)
    assert state(registry) == before


# -- the commands, on real speech with the real encoder ----------------------------------------------------


@pytest.fixture(scope="module")
def librispeech(shared_data):
    import torch

    folder = shared_data / "speakers" / "librispeech-test-other"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared; one thread is also faster there
    yield folder
    torch.set_num_threads(threads)


def utterances(folder: Path, speaker: str) -> list[Path]:
    return sorted((folder / speaker).glob("*.flac"))


@pytest.mark.slow
def test_enroll_and_search_by_example_with_real_speech(librispeech, tmp_path, capsys):
    registry = tmp_path / "voices.sqlite"
    enrolled = {"1688": [0, 1, 7], "2609": [0, 1, 2], "3005": [0, 1, 3]}
    for speaker, picks in enrolled.items():
        files = [str(utterances(librispeech, speaker)[i]) for i in picks]
        code, out, err = cli(capsys, "enroll", f"reader_{speaker}", *files, "--registry", str(registry),
                             "--tag", "librispeech", "--consent", "public corpus, CC BY 4.0")
        assert code == 0, err
        assert out.startswith(f"enrolled reader_{speaker}: 3 file(s)")
    with Registry(registry) as opened:
        voice = opened.get("reader_1688")
        assert voice.counts == {"campplus-common-advanced": 3}
        assert voice.metadata == {"tags": ["librispeech"], "consent": "public corpus, CC BY 4.0"}
        assert {e.source_hash for e in opened.embeddings("reader_1688")} == {
            file_sha256(utterances(librispeech, "1688")[i]) for i in enrolled["1688"]}
    for speaker in enrolled:
        held_out = str(utterances(librispeech, speaker)[-1])
        code, out, err = cli(capsys, "voices", "search", held_out, "-k", "2", "--registry", str(registry), "--json")
        assert code == 0, err
        hits = json.loads(out)
        assert [h["name"] for h in hits][0] == f"reader_{speaker}"
        assert hits[0]["match"] is True and hits[1]["match"] is False
    # a speaker nobody enrolled: the nearest voice is listed but is not a match
    code, out, err = cli(capsys, "voices", "search", str(utterances(librispeech, "533")[3]), "--json",
                         "--registry", str(registry))
    assert code == 0 and not any(h["match"] for h in json.loads(out))

    # list / show / export / remove / import through the command line
    code, out, _ = cli(capsys, "voices", "list", "--json", "--registry", str(registry))
    assert [v["name"] for v in json.loads(out)] == ["reader_1688", "reader_2609", "reader_3005"]
    code, out, _ = cli(capsys, "voices", "show", "reader_2609", "--registry", str(registry))
    assert code == 0 and out.count("embedding campplus-common-advanced (192-d)") == 3
    export = tmp_path / "all.json"
    assert cli(capsys, "voices", "export", str(export), "--registry", str(registry))[0] == 0
    code, out, err = cli(capsys, "voices", "remove", "reader_2609", "--registry", str(registry))
    assert code == 0 and "removed reader_2609" in out
    code, _, err = cli(capsys, "voices", "show", "reader_2609", "--registry", str(registry))
    assert code == 1 and err.strip().count("\n") == 0 and "not enrolled" in err
    code, out, err = cli(capsys, "voices", "import", str(export), "--on-conflict", "skip", "--registry", str(registry))
    assert code == 0 and "imported 1 voice(s)" in out


def test_enroll_counts_the_speech_of_all_files_together(librispeech, tmp_path, capsys):
    """Ten 2 s clips (under 2 s of speech each, 3 s needed) enroll, under a name with a space; a silent clip
    among them is left out with a note; the voice then names a held-out utterance of the reader."""
    clips = []
    for number, path in enumerate(utterances(librispeech, "1688")[:-1]):  # the last one is held out
        speech, rate = sf.read(path, dtype="float32")
        for start in range(rate, len(speech) - 2 * rate, 2 * rate):
            if len(clips) < 10:
                clips.append(str(tmp_path / f"clip{number}_{start // rate}.wav"))
                sf.write(clips[-1], speech[start: start + 2 * rate], rate)
    silence = tmp_path / "pause.wav"
    sf.write(silence, np.zeros(16000 * 2, dtype=np.float32), 16000)
    registry = tmp_path / "voices.sqlite"
    code, out, err = cli(capsys, "enroll", "  Ada   Lovelace ", *clips, str(silence), "--registry", str(registry))
    assert code == 0, err
    assert out.startswith("enrolled Ada Lovelace: 10 file(s), ")
    assert err.strip() == (f"voicemap enroll: note: {silence}: left out, only 0.00 s of speech found in 2.0 s of "
                           "audio (a file needs 0.5 s to be used)")
    with Registry(registry) as opened:
        assert [v.name for v in opened.list()] == ["Ada Lovelace"]
        assert {e.source_hash for e in opened.embeddings("Ada Lovelace")} == {file_sha256(c) for c in clips}
    code, out, err = cli(capsys, "voices", "search", str(utterances(librispeech, "1688")[-1]), "--json",
                         "--registry", str(registry))
    assert code == 0 and json.loads(out)[0] == {**json.loads(out)[0], "name": "Ada Lovelace", "match": True}
    code, out, err = cli(capsys, "voices", "show", "Ada Lovelace", "--json", "--registry", str(registry))
    assert code == 0 and json.loads(out)["name"] == "Ada Lovelace"
    # a lone silent file is still refused: no speech at all is nothing to enroll
    code, out, err = cli(capsys, "enroll", "Bob", str(silence), "--registry", str(registry))
    assert code == 1 and "only 0.00 s of speech found in 2.0 s of audio (at least 3 s needed)" in err


@pytest.mark.slow
def test_enroll_refuses_silence_empty_files_and_too_little_speech(librispeech, tmp_path, capsys):
    registry = tmp_path / "voices.sqlite"
    good = [str(p) for p in utterances(librispeech, "1688")[:2]]
    assert cli(capsys, "enroll", "Ada", *good, "--registry", str(registry))[0] == 0
    with Registry(registry) as opened:
        before = state(opened)

    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16000 * 10, dtype=np.float32), 16000)
    noise = tmp_path / "hum.wav"
    hum = 0.01 * np.sin(2 * np.pi * 50 * np.arange(16000 * 10) / 16000)
    sf.write(noise, hum.astype(np.float32), 16000)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    short = tmp_path / "short.wav"  # 2 s of real speech
    speech, rate = sf.read(utterances(librispeech, "2609")[0], dtype="float32")
    sf.write(short, speech[: 2 * rate], rate)

    cases = [
        (["Ada", str(silence)], "only 0.00 s of speech found in 10.0 s"),
        (["Ada", str(noise)], "only 0.00 s of speech"),
        (["Bob", good[0].replace("1688-", "9999-")], "no such file"),
        (["Bob", str(empty)], "empty"),
        (["Bob", str(short)], "s of speech found in 2.0 s of audio (at least 3 s needed)"),
        # the minimum is on the total: two short files and a silent one are still short, named with their speech
        (["Bob", str(short), str(silence)], f"s of usable speech in all 2 files ({short} 1."),
        (["Bob", str(short), str(silence)], f"{silence} 0.00 s [too short to use]); at least 3 s needed in all"),
        # a broken file among good ones: nothing of the good ones is stored either
        (["Bob", str(utterances(librispeech, "2609")[1]), str(empty)], "empty.wav"),
        (["Ada", good[0]], "already enrolled for Ada"),
    ]
    for argv, message in cases:
        code, out, err = cli(capsys, "enroll", *argv, "--registry", str(registry))
        assert code == 1, argv
        assert err.startswith("voicemap enroll: ") and err.strip().count("\n") == 0, err
        assert message in err, err
        with Registry(registry) as opened:
            assert state(opened) == before, argv
    # bad option values are refused up front, exit 2, before the encoder loads (a wrong one is named second)
    for argv, message in [
        (["Bob", str(short), "--min-speech", "0", "--embedding", "no-such-encoder"], "--min-speech 0: must be"),
        (["Bob", str(silence), "--min-speech", "nan"], "--min-speech nan: must be"),
        (["Bob", str(silence), "--min-speech", "-1"], "--min-speech -1: must be"),
        (["Bob", str(utterances(librispeech, "2609")[1]), "--embedding", "no-such-encoder"],
         "--embedding no-such-encoder: not an encoder"),
        (["Bob", str(short), "--device", "toaster"], "--device toaster: not a torch device"),
        (["Bob\nSmith", str(short)], "control characters"),
    ]:
        code, out, err = cli(capsys, "enroll", *argv, "--registry", str(registry))
        assert code == 2 and err.startswith("voicemap enroll: ") and err.strip().count("\n") == 0, (argv, err)
        assert message in err, err
        with Registry(registry) as opened:
            assert state(opened) == before, argv


def test_importing_vectors_of_another_encoder_dimension_is_refused(librispeech, tmp_path, capsys):
    registry = tmp_path / "voices.sqlite"
    assert cli(capsys, "enroll", "Ada", *map(str, utterances(librispeech, "1688")[:2]), "--registry",
               str(registry))[0] == 0
    foreign = tmp_path / "foreign.json"
    with Registry(tmp_path / "other.sqlite") as other:
        other.enroll("Bob", "campplus-common-advanced", vectors(0, 1, dim=512))  # a 512-d vector, mislabelled
        other.export_file(foreign)
    with Registry(registry) as opened:
        before = state(opened)
    code, _, err = cli(capsys, "voices", "import", str(foreign), "--registry", str(registry))
    assert code == 1 and err.strip().count("\n") == 0
    assert "dimension 512 but campplus-common-advanced vectors in this registry have 192" in err
    with Registry(registry) as opened:
        assert state(opened) == before
