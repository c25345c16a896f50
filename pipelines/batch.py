"""Ray jobs over archives: a pool of actors that each load the models once, fed one file at a time by the
driver, which alone writes outputs and the job state in OUTDIR (see batch_state.py).

Why actors fed by the driver rather than Ray Data: the driver needs every result as soon as it exists
(to commit it, so that a kill loses only files in flight), must notice a dead worker and retry its file
exactly once, and must never let a worker pool starve the step that collects results; a plain actor pool
with at most one file in flight per actor gives all three with little code. The same code runs on the
local runtime it starts and on a cluster given by --address / RAY_ADDRESS.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from cluster.atomic_files import atomic_write_text
from diarize.config import DiarizationConfig, flat_settings

from .batch_long import concatenate_segmentations
from .batch_state import DONE, FAILED, SUMMARY_NAME, BatchError, JobState
from .batch_worker import DiarizeWorker
from .errors import error_line
from .inputs import expand_inputs, input_problem, output_stem
from .outputs import OutputError, contained_name, unique_names, writable_folder

#: a file whose worker died this many times is recorded as failed instead of being tried again
MAX_DEATHS = 2
#: a worker slot whose actor dies this many times in a row while loading models stops the job
MAX_START_FAILURES = 3


@dataclass
class Input:
    path: Path
    output: str  # OUTDIR-relative name without extension
    uri: str  # the name inside the RTTM (the file stem, as `voicemap diarize` writes it)
    error: str | None = None  # why this row or source cannot run: reported as failed, the rest goes on


# --- inputs ---------------------------------------------------------------------------------------

def read_manifest(manifest: Path) -> list[Input]:
    """A manifest TSV (`uri audio ...` columns, paths relative to its folder): outputs named by uri. A uri is
    a name, not a path: one that would leave OUTDIR (`../x`, `/x`), and a row without audio, fail alone."""
    try:
        with open(manifest, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream, delimiter="\t")
            rows = [(row, reader.line_num) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise BatchError(error_line(manifest, error)) from error
    if rows and "audio" not in rows[0][0]:
        raise BatchError(f"{manifest}: manifest has no 'audio' column (columns: {', '.join(map(str, rows[0][0]))})")
    found = []
    for row, line in rows:
        where = f"{manifest} line {line}"
        audio = (row.get("audio") or "").strip()
        if not audio:
            found.append(Input(manifest, "", "", f"{where}: no audio value"))
            continue
        path = (manifest.parent / audio).resolve()
        uri = (row.get("uri") or "").strip() or path.stem
        try:
            contained_name(uri)
        except OutputError as error:
            found.append(Input(path, "", uri, f"{where}: {error}"))
            continue
        found.append(Input(path, uri, uri))
    return found


def collect_inputs(sources: list[str]) -> list[Input]:
    """Folders (recursive, audio extensions), files, and manifest TSVs, in the order given; the same file
    reached twice under the same name is kept once."""
    found: list[Input] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.suffix.lower() == ".tsv" and not path.is_dir():
            found.extend(read_manifest(path))
            continue
        for audio, root in expand_inputs([str(path)]):
            problem = input_problem(audio)  # a folder without audio: said, not skipped in silence
            if problem:
                found.append(Input(audio, "", "", problem))
            else:
                found.append(Input(audio.resolve(), output_stem(audio, root), audio.stem))
    seen, kept = set(), []
    for item in found:
        key = (str(item.path), item.output, item.error)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def check_output_names(inputs: list[Input]) -> None:
    """OutputError naming both inputs when two would write the same OUTDIR/<name>.* (before any work)."""
    named = [item for item in inputs if item.error is None]
    unique_names([item.output for item in named], [item.path for item in named])


# --- what the driver makes of a result -----------------------------------------------------------

class DiarizeOutput:
    """`batch diarize`: exactly what diarize.output.write_result writes, so batch and `voicemap diarize` agree
    byte for byte."""

    task = "diarize"

    def settings(self) -> dict:
        return {}

    def check(self, encoder_id: str) -> None:
        pass

    def voices(self, encoder_id: str):
        """Enrolled voices that steer the workers' clustering (cluster/anchoring.py); none for diarize."""
        return None

    def texts(self, result) -> tuple[str, str]:
        from diarize.output import to_json_dict, to_rttm

        return to_rttm(result), json.dumps(to_json_dict(result), ensure_ascii=False, indent=1) + "\n"

    def close(self) -> None:
        pass


class IdentifyOutput(DiarizeOutput):
    """`batch identify`: names from the registry, as pipelines.identify.write_identification writes them.
    Naming runs on the driver, so on a cluster only the driver's machine needs the registry file."""

    task = "identify"

    def __init__(self, registry_path: str | None, threshold: float | None):
        from cluster.registry import Registry, RegistryError

        try:
            self.registry = Registry(registry_path, create=False)  # naming against nothing is a mistake
        except RegistryError as error:
            raise BatchError(str(error)) from None
        self.threshold = threshold

    def settings(self) -> dict:
        # "match_threshold": the key batch states written before the option's rename hold
        return {"registry": str(self.registry.path), "match_threshold": self.threshold}

    def check(self, encoder_id: str) -> None:
        from cluster.registry.match import MatchError, default_naming_threshold

        if self.threshold is None:
            try:
                default_naming_threshold(encoder_id)  # fail once, not once per file
            except MatchError as error:
                raise BatchError(str(error)) from None

    def voices(self, encoder_id: str):
        from pipelines.identify import enrolled_voices

        return enrolled_voices(self.registry, encoder_id, self.threshold)

    def texts(self, result) -> tuple[str, str]:
        from diarize.output import to_rttm
        from pipelines.identify import identify_result

        identification = identify_result(result, self.registry, self.threshold)
        payload = identification.to_json_dict({"registry": str(self.registry.path)})
        return to_rttm(identification.result), json.dumps(payload, ensure_ascii=False, indent=1) + "\n"

    def close(self) -> None:
        self.registry.close()


# --- the driver -----------------------------------------------------------------------------------

@dataclass
class Summary:
    task: str
    done: int = 0
    skipped: int = 0
    failed: list = None
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: int = 0
    worker_deaths: int = 0
    not_retried: int = 0  # earlier failures skipped because --retry-failed was not given
    interrupted: bool = False

    def __post_init__(self):
        self.failed = self.failed or []


@dataclass
class _Work:
    """One call for a worker: a whole file, one piece of a long file, or the clustering of its pieces."""

    kind: str  # "file" | "segment" | "embed" | "finish"
    item: Input
    piece: int = 0


@dataclass
class _LongJob:
    """A long recording in flight: its pieces' plan, their results as they arrive, the whole's duration."""

    plan: list
    step: float
    num_samples: int
    segments: list  # phase 1: Segmentation per piece
    locals: list  # phase 2: LocalEmbeddings per piece
    frames: list  # phase 2: per piece, the encoder frame blocks it computed, for the second look
    chunks: list | None = None  # per piece, its range of window indices
    spans: list | None = None  # speech spans of the whole segmentation
    segmentation: object = None  # the whole recording's (a Ray object ref once phase 1 is done)
    seconds: float = 0.0
    peak_mb: float = 0.0  # the largest worker peak memory among the pieces
    failed: bool = False

    @property
    def duration(self) -> float:
        return self.num_samples / 16000


class _Slot:
    """One actor of the pool: starting (ready_ref), idle, or busy with one file (task_ref)."""

    def __init__(self, actor, ready_ref):
        self.actor, self.ready_ref = actor, ready_ref
        self.pid = None
        self.task_ref = None
        self.work: _Work | None = None
        self.start_failures = 0


def _connect(address: str | None, workers: int | None, cpus_per_worker: float):
    """Attach to a cluster (address or RAY_ADDRESS), reuse an initialized runtime, or start a local one that
    contacts nothing off this machine (batch_ray.py). -> (the function that stops what we started, or None;
    number of workers)."""
    from diarize.privacy import quiet_dependencies

    from .batch_ray import connect, start_local

    quiet_dependencies()  # RAY_USAGE_STATS_ENABLED=0 must be set before ray reads it
    import ray

    stop = None
    if ray.is_initialized():
        pass
    elif address or os.environ.get("RAY_ADDRESS"):
        connect(address or os.environ["RAY_ADDRESS"])
        stop = ray.shutdown
    else:
        local_workers = workers or os.cpu_count() or 1
        stop = start_local(max(1, math.ceil(local_workers * cpus_per_worker)))
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
    return stop, workers


def _plan(state: JobState, inputs: list[Input], retry_failed: bool, summary: Summary) -> list[Input]:
    """Rows for every input; -> the inputs that need a worker this run."""
    todo = []
    inside = state.outdir.resolve()
    for item in inputs:
        path = str(item.path)
        if item.error is not None:
            # a manifest row or a source that names no file to run: nothing to record against a file
            summary.failed.append({"path": path, "error": item.error})
            continue
        if not (inside / item.output).resolve().is_relative_to(inside):
            # a folder inside OUTDIR that is a link to elsewhere: outputs are never written outside OUTDIR
            message = f"{path}: output {state.outdir / item.output}.* would be written outside {state.outdir} (a link)"
            summary.failed.append({"path": path, "error": message})
            continue
        previous = state.row(path)
        try:
            size, mtime_ns, digest = state.identify_file(item.path, previous)
        except OSError as error:
            message = error_line(path, error)
            state.mark_failed(path, item.output, message, 0)
            summary.failed.append({"path": path, "error": message})
            continue
        unchanged = previous is not None and previous.hash == digest and previous.output == item.output
        if unchanged and previous.status == DONE and all(
                (state.outdir / f"{item.output}{suffix}").is_file() for suffix in (".rttm", ".json")):
            summary.skipped += 1
            continue
        if unchanged and previous.status == FAILED and not retry_failed:
            summary.skipped += 1
            summary.not_retried += 1
            continue
        if size == 0:
            # known without decoding: no need to wake a worker (and load its models) for it
            message = f"{path}: empty file (0 bytes)"
            state.mark_failed(path, item.output, message, 1, size, mtime_ns, digest)
            summary.failed.append({"path": path, "error": message})
            continue
        state.mark_pending(path, item.output, size, mtime_ns, digest)
        todo.append(item)
    return todo


def run_batch(sources: list[str], outdir: str | Path, config: DiarizationConfig = DiarizationConfig(), *,
              workers: int | None = None, address: str | None = None, retry_failed: bool = False,
              cpus_per_worker: float = 1.0, quiet: bool = True, task: str = "diarize", registry: str | None = None,
              naming_threshold: float | None = None, split_over: float | None = None,
              on_dispatch: Callable[[Path, int], None] | None = None) -> Summary:
    """Diarize (task="diarize") or diarize and name from the registry (task="identify") every input into
    OUTDIR/<name>.rttm|.json, resuming from OUTDIR's job state.

    split_over: recordings longer than this many seconds (soundfile formats) are cut into pieces whose
    segmentation and embeddings run on different workers, then clustered once (batch_long.py); None: never.
    on_dispatch(path, worker pid) is called as each file is handed to a worker (progress displays, and
    the tests that kill a worker mid-file). Returns the run's Summary, also written to OUTDIR/summary.json.
    Ctrl-C stops the job with summary.interrupted set; files in flight stay pending for the next run.
    Refused before Ray starts or any audio is read: OutputError when OUTDIR cannot be a writable folder or
    two inputs would write the same OUTDIR/<name>.*; BatchError when the cluster refuses or does not answer.
    """
    clock = time.perf_counter()
    summary = Summary(task)
    inputs = collect_inputs(sources)  # names only: no audio is read yet
    check_output_names(inputs)
    outdir = writable_folder(outdir)  # OutputError before Ray starts or any audio is read
    cluster = address or os.environ.get("RAY_ADDRESS")
    if cluster and not ("ray" in sys.modules and sys.modules["ray"].is_initialized()):
        from .batch_ray import check_cluster

        check_cluster(cluster)  # a refused token is said now, not after every input has been hashed
    output = IdentifyOutput(registry, naming_threshold) if task == "identify" else DiarizeOutput()
    try:
        state = JobState(outdir, task, {**flat_settings(config), **output.settings()})
    except BaseException:
        output.close()
        raise
    stop = None
    try:
        state.remove_stale_temporaries()
        todo = deque(_plan(state, inputs, retry_failed, summary))
        if todo:
            stop, summary.workers = _connect(address, workers, cpus_per_worker)
            try:
                _BatchDriver(state, todo, config, output, summary, cpus_per_worker, quiet, on_dispatch, split_over).run()
            except KeyboardInterrupt:
                summary.interrupted = True
    finally:
        summary.wall_seconds = round(time.perf_counter() - clock, 3)
        try:
            atomic_write_text(outdir / SUMMARY_NAME, json.dumps(asdict(summary), ensure_ascii=False, indent=1) + "\n")
        finally:
            state.close()
            output.close()
            if stop is not None:
                stop()
    return summary


class _BatchDriver:
    """One batch job on Ray, on the driver: hands queued work to worker slots and acts on what comes back,
    one method per event (a worker ready, a result, a worker lost). Work is whole files, or for a long
    recording its pieces in three phases: segment, embed, finish (pipelines/batch_long.py)."""

    def __init__(self, state: JobState, todo: deque, config: DiarizationConfig, output: DiarizeOutput,
                 summary: Summary, cpus_per_worker: float, quiet: bool, on_dispatch, split_over: float | None):
        import ray
        from tqdm import tqdm

        self.ray, self.state, self.config, self.output, self.summary = ray, state, config, output, summary
        self.quiet, self.on_dispatch, self.split_over = quiet, on_dispatch, split_over
        self.threads = max(1, int(cpus_per_worker))
        self.actor_class = ray.remote(num_cpus=cpus_per_worker, max_restarts=0, max_task_retries=0)(DiarizeWorker)
        # with splitting, one file can keep every worker busy
        self.slots = [self.new_slot() for _ in range(summary.workers if split_over else min(summary.workers, len(todo)))]
        self.todo = deque(_Work("file", item) for item in todo)
        self.deaths: dict[str, int] = {}
        self.long_jobs: dict[str, _LongJob] = {}
        self.models: dict = {}  # segmentation window and encoder rates, as the first ready worker reports them
        self.bar = tqdm(total=len(self.todo), unit="file", desc=f"batch {summary.task}", disable=quiet or None,
                        file=sys.stderr)

    def new_slot(self, previous: _Slot | None = None) -> _Slot:
        actor = self.actor_class.remote(self.config, self.threads)
        slot = _Slot(actor, actor.ready.remote())
        if previous is not None:
            slot.start_failures = previous.start_failures
        return slot

    def run(self) -> None:
        try:
            while self.todo or any(slot.task_ref is not None for slot in self.slots):
                self.dispatch()
                waiting = {ref: slot for slot in self.slots for ref in (slot.ready_ref, slot.task_ref)
                           if ref is not None}
                if not waiting:
                    break  # no file left for any worker (all slots idle and nothing queued)
                ready, _ = self.ray.wait(list(waiting), num_returns=1, timeout=1.0)
                for ref in ready:
                    slot = waiting[ref]
                    if ref == slot.ready_ref:  # ray.wait may hand back equal refs, not the same objects
                        self.on_ready(slot, ref)
                    else:
                        self.on_result(slot, ref)
        finally:
            self.bar.close()
            for slot in self.slots:
                self.ray.kill(slot.actor, no_restart=True)

    def dispatch(self) -> None:
        """Queued work to every idle slot whose worker is ready."""
        for slot in self.slots:
            if slot.pid is not None and slot.task_ref is None and self.todo:
                work = self.todo.popleft()
                if work.kind == "file" and self.split_over and self.split(work.item):
                    work = self.todo.popleft()
                slot.work, slot.task_ref = work, self.submit(slot, work)
                if self.on_dispatch:
                    self.on_dispatch(work.item.path, slot.pid)

    def on_ready(self, slot: _Slot, ref) -> None:
        """A worker finished loading its models, or died doing it."""
        from ray.exceptions import RayError, RayTaskError

        slot.ready_ref = None
        try:
            info = self.ray.get(ref)
            self.output.check(info["encoder"])
            slot.pid, slot.start_failures = info["pid"], 0
            if "voices" not in self.models:  # the registry is read on the driver, once; workers get a copy
                self.models["voices"] = self.ray.put(self.output.voices(info["encoder"]))
            self.models.update(info)
        except RayTaskError as error:
            # the models cannot load: every file would fail the same way
            raise BatchError(f"worker could not load the models: {error_line('', error.cause or error).lstrip(': ')}") from None
        except RayError:
            if slot.start_failures + 1 >= MAX_START_FAILURES:
                raise BatchError(f"workers died {MAX_START_FAILURES} times while loading the models "
                                 "(out of memory?)") from None
            index = self.slots.index(slot)
            self.slots[index] = self.new_slot(slot)
            self.slots[index].start_failures += 1
            self.summary.worker_deaths += 1

    def on_result(self, slot: _Slot, ref) -> None:
        """A file, or a piece of one, came back: done, failed, or lost with its worker."""
        from ray.exceptions import RayActorError, RayError, RayTaskError

        work, slot.task_ref, slot.work = slot.work, None, None
        item, path = work.item, str(work.item.path)
        if path in self.long_jobs and self.long_jobs[path].failed:
            return  # a piece of a recording already recorded as failed
        try:
            outcome = self.ray.get(ref)
        except RayTaskError as error:
            # the call itself broke (e.g. a result that cannot be serialized); the actor lives on
            outcome = {"ok": False, "error": error_line(item.path, error.cause or error)}
        except (RayActorError, RayError):
            self.on_worker_lost(slot, work)
            return
        if work.kind in ("segment", "embed") and outcome["ok"]:
            self.on_piece(work, outcome)
            return
        if outcome["ok"]:
            self.long_jobs.pop(path, None)
        else:
            self.drop(path)
        self.record(item, outcome, attempts=self.deaths.get(path, 0) + 1)

    def on_worker_lost(self, slot: _Slot, work: _Work) -> None:
        """The worker died (OOM kill, segfault, node lost): replace it, retry its file once."""
        item, path = work.item, str(work.item.path)
        self.summary.worker_deaths += 1
        self.slots[self.slots.index(slot)] = self.new_slot()
        self.deaths[path] = self.deaths.get(path, 0) + 1
        if self.deaths[path] < MAX_DEATHS:
            self.todo.appendleft(work)
            return
        self.drop(path)
        self.record(item, {"ok": False, "error": f"{path}: the worker died {self.deaths[path]} times while "
                                                 "processing it (out of memory or a crash in a decoder)"},
                    attempts=self.deaths[path])

    def on_piece(self, work: _Work, outcome: dict) -> None:
        """Results of phases 1 and 2 wait here; the next phase is first in line once all are in."""
        job = self.long_jobs[str(work.item.path)]
        job.seconds += outcome["seconds"]
        job.peak_mb = max(job.peak_mb, outcome["peak_mb"])
        if work.kind == "segment":
            job.segments[work.piece] = outcome["segmentation"]
            if all(piece is not None for piece in job.segments):
                self.plan_embeddings(work.item, job)
        else:
            job.locals[work.piece] = outcome["local"]
            job.frames[work.piece] = outcome["frames"]
            if all(piece is not None for piece in job.locals):
                self.todo.appendleft(_Work("finish", work.item))

    def split(self, item: Input) -> bool:
        """Queue the pieces of a long recording in place of the whole file; False when it stays whole."""
        from diarize.segmentation import default_step

        from .batch_long import SAMPLE_RATE, num_pieces, probe, split_plan

        header = probe(item.path)
        if header is None or self.models.get("encoder_rate") != SAMPLE_RATE:
            return False  # not seekable, or an encoder at another rate (its resampling would differ at cuts)
        num_samples = int(round(header[0] * SAMPLE_RATE / header[1]))
        duration = num_samples / SAMPLE_RATE
        if duration <= self.split_over:
            return False
        step = self.config.segmentation.step or default_step(duration)  # the whole recording's, as Diarizer picks it
        plan = split_plan(num_samples, int(round(self.models["window"] * SAMPLE_RATE)), int(round(step * SAMPLE_RATE)),
                          num_pieces(duration, self.split_over, len(self.slots)))
        if len(plan) < 2:
            return False
        self.long_jobs[str(item.path)] = _LongJob(plan, step, num_samples, [None] * len(plan), [None] * len(plan),
                                                  [None] * len(plan))
        self.todo.extendleft(_Work("segment", item, index) for index in reversed(range(len(plan))))
        return True

    def plan_embeddings(self, item: Input, job: _LongJob) -> None:
        """After phase 1: the recording's segmentation and speech spans (as Diarizer.evidence derives them),
        and phase 2's work."""
        from diarize.speaker_embeddings import speech_spans

        from .batch_long import SAMPLE_RATE, chunk_ranges

        segmentation = concatenate_segmentations(job.segments)
        job.spans = speech_spans(segmentation, job.duration)
        job.chunks = chunk_ranges(job.plan, int(round(job.step * SAMPLE_RATE)), segmentation.num_chunks)
        job.segmentation = self.ray.put(segmentation)  # stored once, read by every piece and the finish
        job.segments = []
        self.todo.extendleft(_Work("embed", item, index) for index in reversed(range(len(job.plan))))

    def drop(self, path: str) -> None:
        """Forget the queued pieces of a file that failed."""
        kept = [work for work in self.todo if str(work.item.path) != path]
        self.todo.clear()
        self.todo.extend(kept)
        if path in self.long_jobs:
            job = self.long_jobs[path]
            job.failed = True  # kept, so that pieces still in flight are recognised and ignored
            job.segments = job.locals = job.frames = []

    def submit(self, slot: _Slot, work: _Work):
        path, uri = str(work.item.path), work.item.uri
        if work.kind == "file":
            return slot.actor.process.remote(path, uri, self.models.get("voices"))
        job = self.long_jobs[path]
        if work.kind == "segment":
            start, end = job.plan[work.piece]
            return slot.actor.segment_piece.remote(path, start, end, job.step)
        if work.kind == "embed":
            first, stop = job.chunks[work.piece]
            return slot.actor.embed_piece.remote(path, job.num_samples, job.segmentation, job.spans, first, stop)
        return slot.actor.finish.remote(path, uri, job.duration, job.segmentation, job.locals, job.seconds,
                                        job.peak_mb, self.models.get("voices"), job.frames)

    def record(self, item: Input, outcome: dict, attempts: int) -> None:
        """A file's outcome into its outputs, the job state and the summary."""
        path, summary = str(item.path), self.summary
        if outcome["ok"]:
            try:
                rttm, json_text = self.output.texts(outcome["result"])
            except (ValueError, RuntimeError) as error:  # e.g. MatchError: centroids the registry cannot take
                outcome = {"ok": False, "error": error_line(path, error)}
        if outcome["ok"]:
            # outputs first, then the row: a kill in between leaves the row pending and the file redone,
            # and each output is replaced whole, so no reader ever sees half a file
            atomic_write_text(self.state.outdir / f"{item.output}.rttm", rttm)
            atomic_write_text(self.state.outdir / f"{item.output}.json", json_text)
            self.state.mark_done(path, outcome["duration"], outcome["speakers"], attempts, outcome["timings"],
                                 outcome["worker"])
            summary.done += 1
            summary.audio_seconds = round(summary.audio_seconds + outcome["duration"], 3)
        else:
            self.state.mark_failed(path, item.output, outcome["error"], attempts)
            summary.failed.append({"path": path, "error": outcome["error"]})
            if not self.quiet:
                self.bar.write(f"voicemap: {outcome['error']}", file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix_str(f"{summary.audio_seconds / 3600:.2f} h audio, {len(summary.failed)} failed")


def summary_table(summary: Summary) -> str:
    hours = summary.audio_seconds / 3600
    speed = summary.audio_seconds / summary.wall_seconds if summary.wall_seconds else 0.0
    rows = [("done", str(summary.done)), ("skipped", f"{summary.skipped}"
                                          + (f" ({summary.not_retried} earlier failures; --retry-failed)" if summary.not_retried else "")),
            ("failed", str(len(summary.failed))), ("audio", f"{hours:.3f} h"),
            ("wall", f"{summary.wall_seconds:.1f} s"), ("speed", f"{speed:.1f}x real time"),
            ("workers", str(summary.workers))]
    if summary.worker_deaths:
        rows.append(("worker deaths", str(summary.worker_deaths)))
    lines = [f"  {name:<14}{value}" for name, value in rows]
    lines += [f"  failed: {entry['error']}" for entry in summary.failed]
    if summary.interrupted:
        lines.append("  interrupted: rerun the same command to finish (done files are kept)")
    return "\n".join(lines)
