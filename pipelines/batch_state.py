"""The durable state of a batch job: one SQLite row per input in OUTDIR, plus a lock and temp-file cleanup.

Only the driver touches this database (workers return results to it), so there is a single writer and
every finished file is committed before the next result is looked at: a killed job loses at most the
files that were in flight, which are still `pending` and run again on the next start.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

STATE_NAME = "voicemap-batch.sqlite"
LOCK_NAME = ".voicemap-batch.lock"
SUMMARY_NAME = "summary.json"
PENDING, DONE, FAILED = "pending", "done", "failed"

# atomic_write_text writes `.<name>.<random>.tmp` beside its target; a SIGKILL between write and rename
# leaves one behind, and only our own job could have made it (the OUTDIR lock says no other job runs)
_TEMP_OUTPUT = re.compile(r"^\..+\.(rttm|json)\.[^.]+\.tmp$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    task TEXT NOT NULL,          -- 'diarize' or 'identify': one OUTDIR may hold both
    path TEXT NOT NULL,          -- absolute input path
    output TEXT NOT NULL,        -- OUTDIR-relative output name, without extension
    size INTEGER,
    mtime_ns INTEGER,
    hash TEXT,                   -- blake2b-128 of the content
    status TEXT NOT NULL,        -- pending / done / failed
    error TEXT,                  -- one line, for failed
    duration REAL,               -- seconds of audio
    speakers INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,   -- worker deaths count as attempts
    timings TEXT,                -- JSON: seconds per stage on the worker(s), pieces, worker_peak_mb
    worker TEXT,                 -- host:pid that produced the result
    updated REAL,
    PRIMARY KEY (task, path)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class BatchError(RuntimeError):
    """A job-level problem (OUTDIR in use, settings changed, no worker can start): one line."""


def _private_file(path: Path, create: bool = True) -> Path:
    """`path`, created empty if missing (when `create`) and readable by its owner only."""
    try:
        if create:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)
    except FileNotFoundError:
        if create:
            raise
    return path


def content_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Row:
    path: str
    output: str
    size: int | None
    mtime_ns: int | None
    hash: str | None
    status: str
    error: str | None
    attempts: int


class JobState:
    """OUTDIR/voicemap-batch.sqlite, opened under an exclusive lock on OUTDIR for the job's lifetime."""

    def __init__(self, outdir: Path, task: str, settings: dict):
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.task = task
        # flock, not a pid file: the kernel drops it when the process dies, even on SIGKILL
        self._lock = open(_private_file(self.outdir / LOCK_NAME), "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise BatchError(f"{self.outdir}: another batch job is running on this folder") from None
        # the rows name every recording and its speaker count: owner-only, like the outputs. SQLite gives its
        # -wal and -shm files the database file's mode, so making that file first covers all three
        database = _private_file(self.outdir / STATE_NAME)
        for suffix in ("-wal", "-shm"):
            _private_file(Path(f"{database}{suffix}"), create=False)  # left 0644 by an older voicemap
        self.db = sqlite3.connect(database, timeout=30)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")  # readers (a user, a test) never block the job
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self._check_settings(settings)
        except BaseException:
            self.close()  # release the lock: the caller never gets an object to close
            raise

    def _check_settings(self, settings: dict) -> None:
        # Skipping "done" files is only right if they were made the same way; a changed option would
        # silently mix two kinds of output in one folder.
        key = f"settings:{self.task}"
        wanted = json.dumps(settings, sort_keys=True)
        found = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if found is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, wanted))
        else:
            # Only options both runs know are compared: an option added by a newer voicemap (absent from the
            # stored settings) must not lock users out of the job folders they already have.
            old, new = json.loads(found[0]), json.loads(wanted)  # both through JSON: a tuple reads back a list
            changed = sorted(name for name in set(old) & set(new) if old[name] != new[name])
            if not changed:
                return
            raise BatchError(f"{self.outdir}: holds a {self.task} job made with other settings "
                             f"({', '.join(changed)}); use another output folder")

    def remove_stale_temporaries(self) -> int:
        removed = 0
        for candidate in self.outdir.rglob(".*.tmp"):
            if _TEMP_OUTPUT.match(candidate.name):
                candidate.unlink(missing_ok=True)
                removed += 1
        return removed

    def row(self, path: str) -> Row | None:
        found = self.db.execute(
            "SELECT path, output, size, mtime_ns, hash, status, error, attempts FROM files WHERE task = ? AND path = ?",
            (self.task, path)).fetchone()
        return Row(*found) if found else None

    def identify_file(self, path: Path, previous: Row | None) -> tuple[int, int, str]:
        """-> (size, mtime_ns, hash). The hash is reused when size and mtime are unchanged, so a rerun over
        a large archive costs a stat per file, not a full read; a changed file always gets a new hash."""
        stat = path.stat()
        if previous and previous.hash and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns:
            return stat.st_size, stat.st_mtime_ns, previous.hash
        return stat.st_size, stat.st_mtime_ns, content_hash(path)

    def mark_pending(self, path: str, output: str, size, mtime_ns, digest) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO files (task, path, output, size, mtime_ns, hash, status, attempts, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (task, path) DO UPDATE SET output = excluded.output, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash, status = excluded.status, "
                "error = NULL, attempts = 0, updated = excluded.updated",
                (self.task, path, output, size, mtime_ns, digest, PENDING, time.time()))

    def mark_done(self, path: str, duration: float, speakers: int, attempts: int, timings: dict, worker: str) -> None:
        with self.db:
            self.db.execute(
                "UPDATE files SET status = ?, error = NULL, duration = ?, speakers = ?, attempts = ?, timings = ?, "
                "worker = ?, updated = ? WHERE task = ? AND path = ?",
                (DONE, duration, speakers, attempts, json.dumps(timings), worker, time.time(), self.task, path))

    def mark_failed(self, path: str, output: str, error: str, attempts: int, size=None, mtime_ns=None,
                    digest=None) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO files (task, path, output, size, mtime_ns, hash, status, error, attempts, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task, path) DO UPDATE SET status = excluded.status, "
                "error = excluded.error, attempts = excluded.attempts, updated = excluded.updated, "
                "size = COALESCE(excluded.size, size), mtime_ns = COALESCE(excluded.mtime_ns, mtime_ns), "
                "hash = COALESCE(excluded.hash, hash)",
                (self.task, path, output, size, mtime_ns, digest, FAILED, error, attempts, time.time()))

    def close(self) -> None:
        self.db.close()
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def read_rows(outdir: Path, task: str = "diarize") -> list[dict]:
    """All rows of a job as dicts (for reports and tests); opens read-only, without the job lock."""
    db = sqlite3.connect(f"file:{Path(outdir) / STATE_NAME}?mode=ro", uri=True, timeout=30)
    try:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM files WHERE task = ? ORDER BY path", (task,))]
    finally:
        db.close()
