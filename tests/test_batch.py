"""`voicemap batch diarize` on a real Ray runtime over real clips mixed with broken files: results equal to the
single-process diarization, failures recorded per file, resume without redoing work, and recovery from a
killed driver and from killed workers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from diarize.audio import AUDIO_EXTENSIONS
from pipelines.batch import collect_inputs, run_batch
from pipelines.outputs import OutputError
from pipelines.batch_state import STATE_NAME, SUMMARY_NAME, BatchError, JobState, read_rows

# tests that start a Ray runtime take seconds each and are marked slow (outside pytest -m "not slow"); the
# checks that refuse a job before any worker starts stay in the fast tier

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP_SECONDS = 12  # short excerpts of the shared clips keep the whole module within a few minutes on 2 CPUs
GOOD = {"a.flac": "dev01", "sub/b.flac": "sample"}
LONG = "long/talk.flac"  # 90 s of three LibriSpeech speakers taking turns, split across workers
LONG_SECONDS, SPLIT_OVER = 90, 40.0
BROKEN = ["empty.wav", "text.wav", "sub/truncated.flac"]


@pytest.fixture(scope="module")
def ray_runtime():
    """One local runtime for the module (run_batch reuses an initialized one and leaves it running)."""
    import ray

    from pipelines.batch_ray import start_local

    stop = start_local(2)  # as the CLI starts it: loopback only, a token of its own (CLI children inherit it)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        stop()


@pytest.fixture(scope="module")
def archive(tmp_path_factory, shared_data) -> Path:
    import soundfile as sf

    root = tmp_path_factory.mktemp("archive")
    (root / "sub").mkdir()
    for name, uri in GOOD.items():
        samples, rate = sf.read(shared_data / "diarization" / "audio" / f"{uri}.flac")
        sf.write(root / name, samples[: rate * CLIP_SECONDS], rate)
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("these are not the samples you are looking for\n")
    whole = (shared_data / "diarization" / "audio" / "trn02.flac").read_bytes()
    (root / "sub" / "truncated.flac").write_bytes(whole[: len(whole) // 3])
    _build_conversation(shared_data / "speakers" / "librispeech-test-other", root / LONG)
    return root


def _build_conversation(speakers: Path, target: Path) -> None:
    """Utterances of three speakers in turn, half a second apart, cut to LONG_SECONDS."""
    import numpy as np
    import soundfile as sf

    voices = [sorted(folder.glob("*.flac")) for folder in sorted(speakers.iterdir())[:3]]
    parts, total, turn = [], 0, 0
    while total < LONG_SECONDS * 16000:
        samples, rate = sf.read(voices[turn % 3][turn // 3], dtype="float32")
        assert rate == 16000
        parts += [samples, np.zeros(rate // 2, dtype=np.float32)]
        total += len(samples) + rate // 2
        turn += 1
    target.parent.mkdir()
    sf.write(target, np.concatenate(parts)[: LONG_SECONDS * 16000], 16000)


@pytest.fixture(scope="module")
def reference_results(archive) -> dict:
    """The single-process DiarizationResult of each good clip, keyed by output name."""
    import torch

    from diarize.pipeline import Diarizer

    torch.set_num_threads(1)  # as inside a 1-CPU worker, so float summation order is the same
    diarizer = Diarizer()
    return {name.rsplit(".", 1)[0]: diarizer(archive / name) for name in [*GOOD, LONG]}


@pytest.fixture(scope="module")
def reference(reference_results, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """RTTM and JSON text that `voicemap diarize` (Diarizer + write_result) gives each good clip."""
    from diarize.output import write_result

    outdir, expected = tmp_path_factory.mktemp("reference"), {}
    for stem, result in reference_results.items():
        rttm, json_path = write_result(result, outdir, stem)
        expected[stem] = (rttm.read_text(), json_path.read_text())
    return expected


@pytest.fixture(scope="module")
def first_run(ray_runtime, archive, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("out")
    summary = run_batch([str(archive)], outdir, workers=2, split_over=SPLIT_OVER)
    return outdir, summary


def _outputs(outdir: Path) -> dict[str, int]:
    """Every file under OUTDIR except the job's own, with its mtime (ns)."""
    own = {STATE_NAME, SUMMARY_NAME, ".voicemap-batch.lock"}
    return {str(path.relative_to(outdir)): path.stat().st_mtime_ns for path in sorted(outdir.rglob("*"))
            if path.is_file() and not path.name.startswith(STATE_NAME) and path.name not in own}


def _expected_outputs() -> set[str]:
    return {f"{name.rsplit('.', 1)[0]}{suffix}" for name in [*GOOD, LONG] for suffix in (".rttm", ".json")}


@pytest.mark.slow
def test_good_files_match_single_process_diarization(first_run, reference):
    outdir, summary = first_run
    assert summary.done == len(GOOD) + 1 and summary.skipped == 0
    assert set(_outputs(outdir)) == _expected_outputs()  # nothing for broken files, no temporaries
    for stem, (rttm, json_text) in reference.items():
        assert rttm.strip(), f"{stem}: the reference found no speech; the comparison would be empty"
        assert (outdir / f"{stem}.rttm").read_text() == rttm
        assert (outdir / f"{stem}.json").read_text() == json_text
    assert summary.audio_seconds == pytest.approx(len(GOOD) * CLIP_SECONDS + LONG_SECONDS, abs=0.01)


@pytest.mark.slow
def test_long_recording_split_across_workers_equals_single_process(first_run, reference_results, reference):
    """The long file was cut into pieces (segmentation and embeddings on different workers, clustered
    once), and still gives the single-process RTTM and JSON byte for byte."""
    outdir, _ = first_run
    rows = {Path(row["path"]).name: row for row in read_rows(outdir)}
    timings = json.loads(rows["talk.flac"]["timings"])
    assert timings["pieces"] == 3  # ceil(90 s / 40 s): more than one worker took part
    assert json.loads(rows["a.flac"]["timings"]).get("pieces") is None  # short files stay whole
    result = reference_results["long/talk"]
    assert len(result.labels) >= 2, "the reference should find several speakers, or the check is weak"
    assert (outdir / "long" / "talk.rttm").read_text() == reference["long/talk"][0]
    assert (outdir / "long" / "talk.json").read_text() == reference["long/talk"][1]


@pytest.mark.slow
def test_the_pieces_frame_blocks_join_into_the_single_pass_frames(archive):
    """The finishing worker's second look pools from the frame blocks the pieces computed, joined: they must
    be the frames a single pass keeps, or the split recording would be diarized differently."""
    from diarize.audio import load_audio
    from diarize.pipeline import Diarizer
    from diarize.speaker_embeddings import speech_spans
    from pipelines.batch_long import JoinedFrames, PieceFrames, piece_local_embeddings

    path = archive / LONG
    diarizer = Diarizer()
    waveform = load_audio(path)
    evidence = diarizer.evidence(waveform)
    segmentation = evidence.segmentation
    spans = speech_spans(segmentation, waveform.duration)
    cuts = np.linspace(0, segmentation.num_chunks, 4).astype(int)
    pieces = []
    for first, stop in zip(cuts[:-1], cuts[1:]):
        keep = PieceFrames()
        piece_local_embeddings(diarizer.encoder, str(path), len(waveform.samples), segmentation, spans, first, stop,
                               keep=keep)
        pieces.append(keep.blocks)
    assert all(pieces) and sum(len(blocks) for blocks in pieces) > len(pieces)  # blocks shared at the cuts
    joined = JoinedFrames(pieces, len(evidence.frames))
    assert len(joined) == len(evidence.frames)
    np.testing.assert_array_equal(joined[:], evidence.frames)
    np.testing.assert_array_equal(joined[1234:1300], evidence.frames[1234:1300])


@pytest.mark.slow
def test_broken_files_fail_alone_with_one_line(first_run, archive):
    outdir, summary = first_run
    failed = {entry["path"]: entry["error"] for entry in summary.failed}
    assert set(failed) == {str(archive / name) for name in BROKEN}
    for path, error in failed.items():
        assert "\n" not in error and error.startswith(path)
    assert "empty" in failed[str(archive / "empty.wav")]
    on_disk = json.loads((outdir / SUMMARY_NAME).read_text())
    assert on_disk["done"] == 3 and on_disk["skipped"] == 0 and on_disk["failed"] == summary.failed
    assert on_disk["wall_seconds"] > 0 and on_disk["audio_seconds"] == summary.audio_seconds > 0


@pytest.mark.slow
def test_manifest_rows(first_run, archive):
    outdir, _ = first_run
    rows = {Path(row["path"]).name: row for row in read_rows(outdir)}
    assert {name: row["status"] for name, row in rows.items()} == {
        "a.flac": "done", "b.flac": "done", "talk.flac": "done", "empty.wav": "failed", "text.wav": "failed", "truncated.flac": "failed"}
    good = rows["a.flac"]
    assert good["size"] == (archive / "a.flac").stat().st_size and len(good["hash"]) == 32
    assert good["duration"] == pytest.approx(CLIP_SECONDS, abs=0.01) and good["speakers"] >= 1
    assert good["attempts"] == 1 and json.loads(good["timings"])["total"] > 0
    assert rows["text.wav"]["error"].startswith(str(archive / "text.wav"))


@pytest.mark.slow
def test_rerun_does_no_work(first_run, archive):
    outdir, _ = first_run
    before = _outputs(outdir)
    summary = run_batch([str(archive)], outdir, workers=2, split_over=SPLIT_OVER)
    assert (summary.done, summary.skipped, summary.failed, summary.workers) == (0, 6, [], 0)
    assert summary.not_retried == len(BROKEN)
    assert _outputs(outdir) == before  # not one output rewritten


@pytest.mark.slow
def test_deleted_output_is_redone_alone_and_failures_retried_on_request(first_run, archive, reference):
    outdir, _ = first_run
    (outdir / "sub" / "b.json").unlink()
    before = _outputs(outdir)
    summary = run_batch([str(archive)], outdir, workers=2, retry_failed=True, split_over=SPLIT_OVER)
    assert summary.done == 1 and summary.skipped == 2
    assert {entry["path"] for entry in summary.failed} == {str(archive / name) for name in BROKEN}
    after = _outputs(outdir)
    assert after["a.rttm"] == before["a.rttm"] and after["a.json"] == before["a.json"]
    assert after["sub/b.rttm"] != before["sub/b.rttm"]  # rewritten together with the missing JSON
    assert (outdir / "sub" / "b.json").read_text() == reference["sub/b"][1]


@pytest.mark.slow
def test_killed_driver_then_rerun_completes(ray_runtime, archive, reference, tmp_path):
    """SIGKILL the CLI (attached to the test's runtime via --address) after its first result; the rerun
    finishes the rest without redoing the committed file, and leaves no duplicate or partial output."""
    outdir = tmp_path / "out"
    command = [sys.executable, "-m", "pipelines.cli", "batch", "diarize", *(str(archive / name) for name in GOOD),
               "-o", str(outdir), "--workers", "1", "--address", ray_runtime, "-q"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if any(row["status"] == "done" for row in read_rows(outdir)):
                    break
            except sqlite3.OperationalError:
                pass  # the job has not created its state yet
            time.sleep(0.2)
        assert process.poll() is None, f"the job ended before it could be killed: {process.stdout.read()!r}"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    rows = read_rows(outdir)
    done_before = [row["path"] for row in rows if row["status"] == "done"]
    assert len(done_before) == 1 and [row["status"] for row in rows].count("pending") == 1

    summary = run_batch([str(archive / name) for name in GOOD], outdir, workers=1)
    assert summary.done == 1 and summary.skipped == 1 and not summary.failed
    assert {row["status"] for row in read_rows(outdir)} == {"done"}
    # flat inputs: OUTDIR/<stem>; exactly one RTTM and one JSON per input, nothing half-written left over
    assert set(_outputs(outdir)) == {"a.rttm", "a.json", "b.rttm", "b.json"}
    for stem in ("a", "sub/b"):
        rttm, json_text = reference[stem]
        name = Path(stem).name
        assert (outdir / f"{name}.rttm").read_text() == rttm
        assert (outdir / f"{name}.json").read_text() == json_text


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_keeping_finished_files(ray_runtime, archive, tmp_path):
    """SIGINT (Ctrl-C) after the first result: exit status 130, the summary says interrupted, finished files
    are done with their outputs, what was in flight or queued is pending, and nothing half-written is left.
    A 9-minute recording goes last, so something is still running when the signal lands (the short files
    can all finish between the first result and the signal)."""
    import numpy as np
    import soundfile as sf

    outdir = tmp_path / "out"
    talk, rate = sf.read(archive / LONG, dtype="float32")
    last = tmp_path / "nine_minutes.flac"
    sf.write(last, np.tile(talk, 6), rate)
    inputs = [*(str(archive / name) for name in GOOD), str(last)]
    command = [sys.executable, "-m", "pipelines.cli", "batch", "diarize", *inputs,
               "-o", str(outdir), "--workers", "1", "--address", ray_runtime, "-q"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if any(row["status"] == "done" for row in read_rows(outdir)):
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.2)
        assert process.poll() is None, f"the job ended before it could be interrupted: {process.stdout.read()!r}"
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, output
    assert "interrupted" in output
    assert json.loads((outdir / SUMMARY_NAME).read_text())["interrupted"] is True
    rows = read_rows(outdir)
    statuses = [row["status"] for row in rows]
    assert set(statuses) == {"done", "pending"} and len(statuses) == 3
    assert next(row["status"] for row in rows if Path(row["path"]).name == last.name) == "pending"
    done = {Path(row["path"]).stem for row in rows if row["status"] == "done"}
    assert set(_outputs(outdir)) == {f"{stem}.{ext}" for stem in done for ext in ("rttm", "json")}


@pytest.mark.slow
def test_killed_worker_is_replaced_and_its_work_retried_once(ray_runtime, archive, reference, tmp_path):
    """SIGKILL the worker process as work is handed to it: for the long recording, as its first piece of
    phase 2 (embeddings) starts (retried, then done, still equal to the single pass); for a whole file, on
    every attempt (failed after two deaths, and the job goes on)."""
    dispatches: dict[str, int] = {}
    kills: dict[str, int] = {}

    def kill_worker(path: Path, pid: int) -> None:
        dispatches[path.name] = dispatches.get(path.name, 0) + 1
        # talk.flac: 3 segmentation pieces are dispatched first, so the 4th is the first embedding piece
        if (path.name == "talk.flac" and dispatches[path.name] == 4) or path.name == "text.wav":
            kills[path.name] = kills.get(path.name, 0) + 1
            os.kill(pid, signal.SIGKILL)

    outdir = tmp_path / "out"
    summary = run_batch([str(archive / LONG), str(archive / "text.wav")], outdir, workers=2,
                        split_over=SPLIT_OVER, on_dispatch=kill_worker)
    assert kills == {"talk.flac": 1, "text.wav": 2}
    assert dispatches["talk.flac"] == 3 + 3 + 1 + 1  # segment x3, embed x3 (+1 retried), finish
    assert summary.worker_deaths == 3 and summary.done == 1
    assert [entry["path"] for entry in summary.failed] == [str(archive / "text.wav")]
    assert "worker died 2 times" in summary.failed[0]["error"]
    rows = {Path(row["path"]).name: row for row in read_rows(outdir)}
    assert (rows["talk.flac"]["status"], rows["talk.flac"]["attempts"]) == ("done", 2)
    assert (rows["text.wav"]["status"], rows["text.wav"]["attempts"]) == ("failed", 2)
    assert (outdir / "talk.rttm").read_text() == reference["long/talk"][0]


@pytest.mark.slow
def test_identify_names_speakers_like_the_library(ray_runtime, archive, reference_results, tmp_path):
    """batch identify writes what `voicemap identify` gives for the same registry (the enrolled voices steer
    the diarization, then name it): a voice enrolled from one clip's speaker is named, the others stay unknown."""
    pytest.importorskip("pipelines.identify")
    import torch

    from cluster.registry import Registry
    from diarize.pipeline import Diarizer
    from pipelines.identify import enrolled_voices, identify_result, write_identification

    plain = reference_results["a"]
    registry_path = tmp_path / "voices.sqlite"
    with Registry(registry_path) as registry:
        registry.enroll("alice", plain.encoder_id, plain.speaker_centroids[0])
        torch.set_num_threads(1)  # as inside a 1-CPU worker
        result = Diarizer()(archive / "a.flac", voices=enrolled_voices(registry, plain.encoder_id))
        identification = identify_result(result, registry)
        expected_rttm, expected_json = write_identification(identification, tmp_path / "expected", "a",
                                                            extra={"registry": str(registry.path)})
    assert "alice" in identification.result.labels
    outdir = tmp_path / "out"
    summary = run_batch([str(archive / "a.flac")], outdir, workers=1, task="identify", registry=str(registry_path))
    assert summary.done == 1 and not summary.failed
    assert (outdir / "a.rttm").read_text() == expected_rttm.read_text()
    assert (outdir / "a.json").read_text() == expected_json.read_text()
    assert [row["status"] for row in read_rows(outdir, "identify")] == ["done"]


# --- pieces that need no Ray ---------------------------------------------------------------------

@pytest.mark.parametrize("seconds", [9.5, 10, 10.5, 30, 90, 90.3])
@pytest.mark.parametrize("pieces", [2, 3, 7])
def test_split_plan_gives_every_window_once(seconds, pieces):
    """Windows of the pieces, placed at their offsets, are exactly the recording's windows, and only the
    last piece can end with a padded window."""
    from pipelines.batch_long import split_plan, window_count

    window, step, num_samples = 160000, 16000, int(seconds * 16000)

    def starts(offset, length):
        count, padded = window_count(length, window, step)
        return [offset + index * step for index in range(count)], padded

    expected, _ = starts(0, num_samples)
    plan = split_plan(num_samples, window, step, pieces)
    found = []
    for index, (start, end) in enumerate(plan):
        piece_starts, padded = starts(start, (num_samples if end is None else end) - start)
        assert not padded or index == len(plan) - 1
        assert (end is None) == (index == len(plan) - 1)
        found += piece_starts
    assert found == expected
    assert 1 <= len(plan) <= pieces and (len(plan) > 1 or seconds < 12)

def test_missing_input_fails_without_starting_workers(tmp_path):
    missing = tmp_path / "nowhere.wav"
    summary = run_batch([str(missing)], tmp_path / "out")
    assert summary.workers == 0 and summary.done == 0
    assert len(summary.failed) == 1 and summary.failed[0]["error"].startswith(str(missing))


def test_manifest_inputs_and_output_name_collisions(tmp_path):
    (tmp_path / "audio").mkdir()
    for name in ("one.wav", "two.flac", "two.wav"):
        (tmp_path / "audio" / name).write_bytes(b"")
    manifest = tmp_path / "list.tsv"
    manifest.write_text("uri\taudio\trttm\nmeeting-1\taudio/one.wav\tx.rttm\n")
    inputs = collect_inputs([str(manifest)])
    assert [(item.path, item.output, item.uri, item.error) for item in inputs] == [
        ((tmp_path / "audio" / "one.wav").resolve(), "meeting-1", "meeting-1", None)]
    # two.flac and two.wav would both write OUTDIR/two.*: the job is refused before any work, naming both
    with pytest.raises(OutputError, match="two.wav and .*two.flac would both be written as two"):
        run_batch([str(tmp_path / "audio")], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_folder_refused_before_any_work(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.wav").write_bytes(b"RIFF")
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me\n")
    with pytest.raises(OutputError, match="results.txt: exists and is not a folder"):
        run_batch([str(tmp_path / "in")], a_file)
    with pytest.raises(OutputError, match="results.txt is a file, not a folder"):
        run_batch([str(tmp_path / "in")], a_file / "sub")
    assert a_file.read_text() == "keep me\n"
    # the same file reached twice (its folder and itself) is one input, not a collision
    assert len(collect_inputs([str(tmp_path / "in"), str(tmp_path / "in" / "x.wav")])) == 1
    # same names in two source folders: refused, naming both
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(OutputError, match=r"d2/a.wav and .*d1/a.wav would both be written as a\."):
        run_batch([str(tmp_path / "d1"), str(tmp_path / "d2")], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the refusal cannot show")
def test_read_only_output_folder_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(OutputError, match="ro: cannot write there"):
        run_batch([str(tmp_path / "nowhere.wav")], tmp_path / "ro")


@pytest.mark.slow
def test_manifest_rows_that_name_no_file_or_leave_outdir_fail_alone(ray_runtime, archive, tmp_path):
    """A uri is a name, not a path: `../../x` and an absolute uri fail for their row, as does a row without
    audio, and a source folder without audio is said; the good row is diarized, and nothing is written
    outside OUTDIR. Every file the job writes is readable by its owner only."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (tmp_path / "silent").mkdir()
    good = archive / "a.flac"
    manifest = jobs / "list.tsv"
    manifest.write_text("uri\taudio\n"
                        f"ok\t{good}\n"
                        f"../../escaped\t{good}\n"
                        f"{tmp_path / 'absolute'}\t{good}\n"
                        "noaudio\t\n")
    outdir = jobs / "out"
    summary = run_batch([str(manifest), str(tmp_path / "silent")], outdir, workers=1)
    assert summary.done == 1
    errors = [entry["error"] for entry in summary.failed]
    assert errors == [
        f"{manifest} line 3: output name '../../escaped' is a path outside the output folder; a uri must be a plain name",
        f"{manifest} line 4: output name '{tmp_path / 'absolute'}' is a path outside the output folder; a uri must be "
        "a plain name",
        f"{manifest} line 5: no audio value",
        f"{tmp_path / 'silent'}: no audio files in this folder ({', '.join(sorted(AUDIO_EXTENSIONS))})",
    ]
    lines = (outdir / "ok.rttm").read_text().splitlines()
    assert lines and all(line.startswith("SPEAKER ok 1 ") for line in lines)
    outside = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")
               if path.is_file() and outdir not in path.parents}
    assert outside == {"jobs/list.tsv"}, "the job wrote outside OUTDIR"
    written = {path.name: path.stat().st_mode & 0o777 for path in outdir.iterdir()}
    assert {STATE_NAME, SUMMARY_NAME, ".voicemap-batch.lock", "ok.rttm", "ok.json"} <= set(written)
    assert set(written.values()) == {0o600}, written


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_cluster_with_token_auth_refuses_a_driver_without_its_token_in_one_line(archive, tmp_path):
    """A head started by `ray start --head` with token authentication: without its token, or with another
    one, the driver ends with one line saying what to do, exit 2, no traceback and no InvalidAuthToken
    stream. The head runs in a session of its own and is killed by its process group, never `ray stop`
    (which stops every Ray runtime of the machine)."""
    import shutil
    import tempfile

    from pipelines.batch_ray import check_cluster

    ray_cli = shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the `ray` command is not on PATH")
    clean = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    port = _free_port()
    # a short folder: Ray's unix socket paths under it must stay within 107 bytes
    scratch = Path(tempfile.mkdtemp(prefix="vmray", dir="/tmp"))
    (scratch / "head-home").mkdir()
    (scratch / "driver-home").mkdir()
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
         "--num-cpus", "1", "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(scratch / "r")],
        env={**clean, "HOME": str(scratch / "head-home"), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "c" * 32},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                check_cluster(address, timeout=2)
            except BatchError as error:
                if "requires its authentication token" in str(error) or "refused the token" in str(error):
                    break
            assert head.poll() is None, "ray start --head exited"
            assert time.monotonic() < deadline, "the head node did not come up within 45 s"
            time.sleep(0.5)
        command = [sys.executable, "-m", "pipelines.cli", "batch", "diarize", str(archive / "a.flac"),
                   "-o", str(tmp_path / "out"), "--address", address]
        driver_env = {**clean, "HOME": str(scratch / "driver-home")}
        for extra, expected in (({}, "requires its authentication token: run with RAY_AUTH_MODE=token and the "
                                     "cluster's token in RAY_AUTH_TOKEN (or in ~/.ray/auth_token)"),
                                ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "d" * 32},
                                 "refused the token from RAY_AUTH_TOKEN")):
            done = subprocess.run(command, cwd=REPO_ROOT, env={**driver_env, **extra}, capture_output=True,
                                  text=True, timeout=120)
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
            assert lines[0].startswith(f"voicemap batch: the Ray cluster at {address} ") and expected in lines[0]
        assert not (tmp_path / "out" / STATE_NAME).exists()  # refused before any input was looked at
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.slow
def test_identify_without_a_registry_is_a_job_error(tmp_path, archive):
    with pytest.raises(BatchError, match="does not exist"):
        run_batch([str(archive / "a.flac")], tmp_path / "out", task="identify", registry=str(tmp_path / "none.sqlite"))


def test_changed_settings_and_concurrent_jobs_are_refused(tmp_path):
    state = JobState(tmp_path, "diarize", {"threshold": None})
    with pytest.raises(BatchError, match="another batch job"):
        JobState(tmp_path, "diarize", {"threshold": None})
    state.close()
    with pytest.raises(BatchError, match="threshold"):
        JobState(tmp_path, "diarize", {"threshold": 0.6})
    # an option that a newer version added (absent from the stored settings) does not refuse the folder
    JobState(tmp_path, "diarize", {"threshold": None, "new_option": 1}).close()
    # and one OUTDIR holds a diarize job and an identify job side by side
    JobState(tmp_path, "identify", {"threshold": 0.6}).close()
