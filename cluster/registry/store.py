"""Enrolled voices: a durable local store of speaker embeddings (never audio) with search by example.

One SQLite file in WAL mode. Every write is one transaction (`BEGIN IMMEDIATE` ... `COMMIT`), so a crash,
SIGKILL or Ctrl-C part-way leaves the file as it was before the write; readers run inside their own read
transaction and, thanks to WAL, see either the state before a concurrent write or the state after it.

Tables:
- `voices`      name (unique; trimmed, inner whitespace one space: "Ada Lovelace"; RTTM writes it with '_'),
                metadata JSON, times;
- `embeddings`  raw float32 vectors, one row per enrolled source, tagged with the encoder id and dimension,
                plus the sha256 of the source file (never the audio itself);
- `centroids`   per voice and encoder, the unit-norm mean of the L2-normalized embeddings, maintained in the
                same transaction as the embeddings so that search reads one row per voice;
- `directions`  named vectors per encoder (attribute directions for synth/algebra.py), raw.

Vectors of different encoders are never compared: every query names its encoder id, and an encoder's
dimension is fixed by the vectors already stored for it. Voice embeddings are biometric data: the file is
created owner-only (0600), and `remove` deletes with `secure_delete`, VACUUMs and truncates the WAL so the
removed vectors' bytes do not linger on disk.

Every sqlite3 error leaves this module as a RegistryError naming the file and the cause (read-only,
damaged, not a registry, busy, disk full), so a command can print it as one line; a file that is not a
voicemap registry (random bytes, a truncated copy, another program's SQLite database) is never written to.

Search is brute force: one (num_voices, dim) matrix-vector product per query over the centroids, which are
read from SQLite once and cached in the process until any connection commits a change. Measured here with
192-d vectors and 20 000 voices: reading the centroids ~0.4 s (once), each query's product ~1 ms. That stays
comfortable up to a few hundred thousand voices (~0.8 KB each in memory); beyond that, or for many queries
per second, an ANN index (FAISS IVF/HNSW, hnswlib) kept beside the file and rebuilt on change is the step.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..atomic_files import probe_new_file
from ..vectors import unit_vectors
from .directions import DirectionStore
from .exchange import RegistryExchange
from .sqlite_edge import BUSY_TIMEOUT_S, describe_sqlite_error, sqlite_edge
from .values import (SHA256_HEX, Direction, RegistryError, SearchHit, StoredEmbedding, Voice, as_vectors,
                              check_encoder_id, check_voice_name, from_blob, label_form, merge_metadata,
                              metadata_json, normal_name, to_blob, utc_now)

ENV_VAR = "VOICEMAP_REGISTRY"
SCHEMA_VERSION = 1
#: how long a writer waits for another writer's transaction before giving up
#: how long a scrub after `remove` waits for other processes' read snapshots to end before reporting that
#: the WAL could not be truncated yet (a reader may be a long-running job: do not hang the command)
SCRUB_WAIT_S = 5.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    created  TEXT NOT NULL,
    updated  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    id          INTEGER PRIMARY KEY,
    voice_id    INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    encoder_id  TEXT NOT NULL,
    dimension   INTEGER NOT NULL,
    vector      BLOB NOT NULL,
    source_hash TEXT,
    created     TEXT NOT NULL,
    UNIQUE (voice_id, encoder_id, source_hash)
);
CREATE INDEX IF NOT EXISTS embeddings_by_encoder ON embeddings(encoder_id);
CREATE INDEX IF NOT EXISTS embeddings_by_source ON embeddings(source_hash);
CREATE TABLE IF NOT EXISTS centroids (
    voice_id   INTEGER NOT NULL REFERENCES voices(id) ON DELETE CASCADE,
    encoder_id TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    vector     BLOB NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (voice_id, encoder_id)
);
CREATE INDEX IF NOT EXISTS centroids_by_encoder ON centroids(encoder_id);
CREATE TABLE IF NOT EXISTS directions (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    encoder_id TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    vector     BLOB NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    created    TEXT NOT NULL,
    updated    TEXT NOT NULL,
    UNIQUE (name, encoder_id)
);
"""


def default_registry_path() -> Path:
    """$VOICEMAP_REGISTRY if set, else <user data dir>/voicemap/registry.sqlite."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("voicemap")) / "registry.sqlite"


def resolve_registry_path(path: str | os.PathLike | None = None) -> Path:
    """An explicit path wins, then $VOICEMAP_REGISTRY, then the per-user default."""
    return Path(path).expanduser() if path else default_registry_path()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in blocks (the registry keeps this, never the audio)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_can_create(path: str | os.PathLike | None = None) -> Path:
    """Before slow work that ends in creating a registry: RegistryError unless the file could be created there.

    The nearest existing folder above it must take a new file (probed with a real one, which also holds for
    root, whom permission bits do not stop), and nothing on the way may be a file.
    """
    target = resolve_registry_path(path)
    if target.is_dir():
        raise RegistryError(f"registry {target}: is a folder, not a file")
    for folder in target.parents:
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise RegistryError(f"registry {target}: {folder} is a file, not a folder")
        try:
            probe_new_file(folder)
        except OSError as error:
            raise RegistryError(f"registry {target}: cannot create it in {folder} ({error.strerror or error})") from None
        return target
    return target


@contextmanager
def open_registry(path: str | os.PathLike | None = None, *, create: bool = False) -> Iterator["Registry"]:
    """`Registry(path, create=create)` for one block of work; a registry file this call created is deleted again
    (with the folders it made) when the block raises, so a refused import or enrollment leaves nothing behind."""
    target = resolve_registry_path(path)
    existed = target.exists()
    missing = [folder for folder in target.parents if not folder.exists()]
    registry = Registry(target, create=create)
    try:
        yield registry
    except BaseException:
        if not existed:
            registry._discard_new(missing)
        raise
    finally:
        registry.close()


class Registry(DirectionStore, RegistryExchange):
    """The voice registry in one SQLite file. Use as a context manager, or call `close()`.

    `Registry(path)` opens (and by default creates) the file; `create=False` refuses a missing one.
    All methods raise RegistryError with a one-line message, leaving the file unchanged, on bad input and
    on any sqlite3 error (read-only, damaged, not a registry, locked, disk full).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = True):
        self.path = resolve_registry_path(path)
        self._conn = None
        if self.path.is_dir():
            raise RegistryError(f"registry {self.path}: is a folder, not a file")
        created: list[Path] = []
        if not self.path.exists():
            if not create:
                raise RegistryError(f"registry {self.path}: does not exist (enroll a voice first)")
            created = self._create_file()
        self._depth = 0
        self._scrub_pending = False
        self._last_scrub = False
        self.scrub_wait_s = SCRUB_WAIT_S
        self._commits = 0
        self._centroid_cache: dict[str, tuple[tuple[int, int], list[str], np.ndarray]] = {}
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._configure()
        except (sqlite3.Error, RegistryError) as error:
            self.close()
            if created:  # nothing of ours may stay behind when the new file could not be set up
                self._remove_files(created)
            if isinstance(error, RegistryError):
                raise
            raise RegistryError(describe_sqlite_error(self.path, error)) from error

    def _create_file(self) -> list[Path]:
        """Create the empty file (and missing folders); -> what was created, deepest last."""
        missing = [folder for folder in reversed(self.path.parents) if not folder.exists()]
        try:
            # Owner-only from the first byte: voice embeddings are biometric data.
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return []  # another process created it just now: it is not ours to delete
        except OSError as error:
            self._remove_files(missing)
            raise RegistryError(f"registry {self.path}: cannot create ({error.strerror or error})") from None
        return [*missing, self.path]

    def _remove_files(self, created: list[Path]) -> None:
        """Delete what `_create_file` made: the file with its -wal/-shm, then the new folders, deepest first."""
        if self.path in created:
            for suffix in ("-wal", "-shm", ""):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        for folder in reversed([p for p in created if p != self.path]):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (someone else wrote there meanwhile): keep it

    def _discard_new(self, missing_folders: list[Path]) -> None:
        """Delete this registry, created by the failed block of `open_registry`, unless something landed in it."""
        try:
            empty = self._conn is None or (len(self) == 0 and not self.list_directions())
        except RegistryError:
            empty = True  # never got past setting up: nothing in it
        self.close()
        if empty:
            self._remove_files([*reversed(missing_folders), self.path])

    def _configure(self) -> None:
        conn = self._conn
        # Look before touching anything: switching to WAL or creating tables would write into a file that
        # is not ours (another program's database, a damaged copy the user may still want to rescue).
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RegistryError(f"registry {self.path}: schema version {version} is newer than this voicemap "
                                f"understands ({SCHEMA_VERSION}); upgrade voicemap")
        if version < SCHEMA_VERSION and conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
            raise RegistryError(f"registry {self.path}: not a voicemap registry (an SQLite database of something "
                                "else); give another --registry path")
        # WAL: readers never block the writer and always see a committed snapshot.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RegistryError(f"registry {self.path}: cannot switch to WAL journal mode (got {mode})")
        # FULL: a committed enrollment survives a power cut, not only a process crash; writes are rare.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros instead of being left in free space.
        conn.execute("PRAGMA secure_delete=ON")
        if version < SCHEMA_VERSION:
            with self.transaction():
                # one statement at a time: executescript() would COMMIT our transaction
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @sqlite_edge
    def check_writable(self) -> None:
        """RegistryError now, before any slow work, when a write would fail (read-only file or mount)."""
        conn = self._connection()
        if self._depth:
            return
        conn.execute("BEGIN IMMEDIATE")  # succeeds on a read-only file; the first write statement does not
        try:
            conn.execute("UPDATE voices SET id = id WHERE 0")
        finally:
            conn.execute("ROLLBACK")

    # -- life cycle --------------------------------------------------------------------------------------

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    @contextmanager
    def transaction(self) -> Iterator["Registry"]:
        """All writes inside happen together or not at all (any exception, Ctrl-C included, rolls back).

        The outermost level takes the write lock up front (BEGIN IMMEDIATE), so two writers queue instead
        of failing half-way; nested levels are savepoints, so a failed inner call undoes only itself.
        """
        conn = self._connection()
        if self._depth:
            name = f"sp{self._depth}"
            conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise RegistryError(describe_sqlite_error(self.path, error)) from error
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._scrub_pending = False
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                # e.g. disk full or I/O error at commit: sqlite has rolled back or will on the next open
                self._scrub_pending = False
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise RegistryError(describe_sqlite_error(self.path, error)) from error
            self._commits += 1
        finally:
            self._depth = 0
        if self._scrub_pending:
            self._scrub_pending = False
            self._scrub()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one committed state (a write of another process lands before or after)."""
        conn = self._connection()
        if self._depth or conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if getattr(self, "_conn", None) is None:
            raise RegistryError(f"registry {self.path}: already closed")
        return self._conn

    # -- voices ------------------------------------------------------------------------------------------

    @sqlite_edge
    def enroll(self, name: str, encoder_id: str, vectors: Any, source_hashes: Sequence[str | None] | None = None,
               metadata: dict[str, Any] | None = None) -> Voice:
        """Create voice `name` if new (else extend it) and store `vectors` (dim,) or (n, dim) of `encoder_id`.

        `source_hashes`: one sha256 hex (or None) per vector: the file each came from. A file already
        enrolled for this voice and encoder is refused. `metadata` is merged into the voice's (tags united).
        """
        name = check_voice_name(name)
        with self.transaction():
            conn = self._conn
            row = conn.execute("SELECT id, metadata FROM voices WHERE name = ?", (name,)).fetchone()
            now = utc_now()
            if row is None:
                self._refuse_label_clash(name)
                conn.execute("INSERT INTO voices(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                             (name, metadata_json(metadata, f"voice {name!r}"), now, now))
            elif metadata:
                merged = merge_metadata(json.loads(row[1]), metadata)
                conn.execute("UPDATE voices SET metadata = ? WHERE id = ?",
                             (metadata_json(merged, f"voice {name!r}"), row[0]))
            self._add(name, encoder_id, vectors, source_hashes)
            return self.get(name)

    @sqlite_edge
    def add_embeddings(self, name: str, encoder_id: str, vectors: Any,
                       source_hashes: Sequence[str | None] | None = None) -> Voice:
        """Add vectors to an existing voice (RegistryError if `name` is not enrolled)."""
        with self.transaction():
            self._voice_id(name)
            self._add(name, encoder_id, vectors, source_hashes)
            return self.get(name)

    def _add(self, name: str, encoder_id: str, vectors: Any, source_hashes: Sequence[str | None] | None) -> None:
        conn = self._conn
        encoder_id = check_encoder_id(encoder_id)
        matrix = as_vectors(vectors, f"voice {name!r} ({encoder_id})")
        self._check_dimension(encoder_id, matrix.shape[1], f"voice {name!r}")
        hashes = list(source_hashes) if source_hashes is not None else [None] * len(matrix)
        if len(hashes) != len(matrix):
            raise RegistryError(f"voice {name!r}: {len(matrix)} vectors but {len(hashes)} source hashes")
        for value in hashes:
            if value is not None and not (isinstance(value, str) and SHA256_HEX.match(value)):
                raise RegistryError(f"voice {name!r}: source hash {value!r} is not a lowercase sha256 hex digest")
        given = [value for value in hashes if value is not None]
        if len(set(given)) != len(given):
            raise RegistryError(f"voice {name!r}: the same source file is given twice")
        voice_id = self._voice_id(name)
        now = utc_now()
        for vector, source in zip(matrix, hashes):
            if source is not None and conn.execute(
                "SELECT 1 FROM embeddings WHERE voice_id = ? AND encoder_id = ? AND source_hash = ?",
                (voice_id, encoder_id, source),
            ).fetchone():
                raise RegistryError(f"voice {name!r}: source {source[:12]}... is already enrolled with {encoder_id}")
            conn.execute(
                "INSERT INTO embeddings(voice_id, encoder_id, dimension, vector, source_hash, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (voice_id, encoder_id, int(matrix.shape[1]), to_blob(vector), source, now),
            )
        self._refresh_centroid(voice_id, encoder_id)
        conn.execute("UPDATE voices SET updated = ? WHERE id = ?", (now, voice_id))

    def _refresh_centroid(self, voice_id: int, encoder_id: str) -> None:
        conn = self._conn
        rows = conn.execute("SELECT dimension, vector FROM embeddings WHERE voice_id = ? AND encoder_id = ?",
                            (voice_id, encoder_id)).fetchall()
        if not rows:
            conn.execute("DELETE FROM centroids WHERE voice_id = ? AND encoder_id = ?", (voice_id, encoder_id))
            return
        dimension = rows[0][0]
        # Mean of unit vectors: each enrolled source counts the same whatever its raw norm.
        mean = unit_vectors(np.stack([from_blob(blob, dimension) for _, blob in rows]), np.float64).mean(axis=0)
        centroid = unit_vectors(mean, np.float64).astype(np.float32)
        conn.execute(
            "INSERT INTO centroids(voice_id, encoder_id, dimension, vector, count) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(voice_id, encoder_id) DO UPDATE SET dimension = excluded.dimension, "
            "vector = excluded.vector, count = excluded.count",
            (voice_id, encoder_id, dimension, to_blob(centroid), len(rows)),
        )

    def _refuse_label_clash(self, name: str, where: str = "") -> None:
        """RegistryError when a new voice would share its RTTM label with an enrolled one ("Ada Lovelace" and
        "Ada_Lovelace" both read Ada_Lovelace there, and a reader could not tell which was meant)."""
        row = self._connection().execute("SELECT name FROM voices WHERE replace(name, ' ', '_') = ? AND name != ?",
                                         (label_form(name), name)).fetchone()
        if row is not None:
            raise RegistryError(f"{where}voice name {name!r}: reads as {label_form(name)} in RTTM files, like the enrolled "
                                f"voice {row[0]!r}; pick another name")

    def _voice_id(self, name: str) -> int:
        name = normal_name(name)
        row = self._connection().execute("SELECT id FROM voices WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise RegistryError(f"voice {name!r}: not enrolled in {self.path}")
        return int(row[0])

    def _check_dimension(self, encoder_id: str, dimension: int, what: str) -> None:
        known = self.dimension(encoder_id)
        if known is not None and known != dimension:
            raise RegistryError(f"{what}: vector has dimension {dimension} but {encoder_id} vectors in this registry "
                                f"have {known} (wrong encoder?)")

    @sqlite_edge
    def dimension(self, encoder_id: str) -> int | None:
        """The dimension of `encoder_id`'s stored vectors, or None when it has none yet."""
        conn = self._connection()
        row = conn.execute("SELECT dimension FROM embeddings WHERE encoder_id = ? LIMIT 1", (encoder_id,)).fetchone()
        if row is None:
            row = conn.execute("SELECT dimension FROM directions WHERE encoder_id = ? LIMIT 1",
                               (encoder_id,)).fetchone()
        return None if row is None else int(row[0])

    @sqlite_edge
    def encoders(self) -> dict[str, int]:
        """encoder id -> number of voices with at least one embedding of it."""
        with self._snapshot() as conn:
            rows = conn.execute("SELECT encoder_id, COUNT(*) FROM centroids GROUP BY encoder_id ORDER BY encoder_id")
            return {encoder: int(count) for encoder, count in rows}

    @sqlite_edge
    def update_metadata(self, name: str, metadata: dict[str, Any], *, replace: bool = False) -> Voice:
        """Merge (or with `replace`, set) a voice's metadata."""
        with self.transaction():
            voice = self.get(name)
            new = dict(metadata) if replace else merge_metadata(voice.metadata, metadata)
            self._conn.execute("UPDATE voices SET metadata = ?, updated = ? WHERE name = ?",
                               (metadata_json(new, f"voice {name!r}"), utc_now(), voice.name))
            return self.get(name)

    @sqlite_edge
    def __contains__(self, name: object) -> bool:
        return self._connection().execute("SELECT 1 FROM voices WHERE name = ?",
                                          (normal_name(name),)).fetchone() is not None

    @sqlite_edge
    def __len__(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM voices").fetchone()[0])

    @sqlite_edge
    def get(self, name: str) -> Voice:
        with self._snapshot() as conn:
            row = conn.execute("SELECT id, name, metadata, created, updated FROM voices WHERE name = ?",
                               (normal_name(name),)).fetchone()
            if row is None:
                raise RegistryError(f"voice {name!r}: not enrolled in {self.path}")
            counts = dict(conn.execute("SELECT encoder_id, count FROM centroids WHERE voice_id = ? ORDER BY encoder_id",
                                       (row[0],)).fetchall())
            return Voice(row[1], json.loads(row[2]), row[3], row[4], counts)

    @sqlite_edge
    def list(self) -> list[Voice]:
        """All voices by name, each with its embedding counts per encoder (one consistent snapshot)."""
        with self._snapshot() as conn:
            counts: dict[int, dict[str, int]] = {}
            for voice_id, encoder_id, count in conn.execute("SELECT voice_id, encoder_id, count FROM centroids"):
                counts.setdefault(voice_id, {})[encoder_id] = int(count)
            rows = conn.execute("SELECT id, name, metadata, created, updated FROM voices ORDER BY name").fetchall()
            return [Voice(name, json.loads(meta), created, updated, dict(sorted(counts.get(vid, {}).items())))
                    for vid, name, meta, created, updated in rows]

    @sqlite_edge
    def embeddings(self, name: str, encoder_id: str | None = None) -> list[StoredEmbedding]:
        """The stored vectors of a voice (all encoders, or one), oldest first."""
        with self._snapshot() as conn:
            voice_id = self._voice_id(name)
            query = "SELECT encoder_id, dimension, vector, source_hash, created FROM embeddings WHERE voice_id = ?"
            params: tuple = (voice_id,)
            if encoder_id is not None:
                query += " AND encoder_id = ?"
                params += (encoder_id,)
            rows = conn.execute(query + " ORDER BY id", params).fetchall()
            return [StoredEmbedding(enc, from_blob(blob, dim), source, created) for enc, dim, blob, source, created in rows]

    @sqlite_edge
    def sources(self, source_hash: str) -> list[str]:
        """Names of the voices that enrolled a file with this sha256."""
        rows = self._connection().execute(
            "SELECT DISTINCT v.name FROM embeddings e JOIN voices v ON v.id = e.voice_id WHERE e.source_hash = ? "
            "ORDER BY v.name", (source_hash,)).fetchall()
        return [row[0] for row in rows]

    @sqlite_edge
    def centroid(self, name: str, encoder_id: str) -> np.ndarray:
        """(dim,) unit-norm float32: the mean of the voice's L2-normalized `encoder_id` embeddings."""
        with self._snapshot() as conn:
            voice_id = self._voice_id(name)
            row = conn.execute("SELECT dimension, vector FROM centroids WHERE voice_id = ? AND encoder_id = ?",
                               (voice_id, encoder_id)).fetchone()
            if row is None:
                raise RegistryError(f"voice {name!r}: has no {encoder_id} embeddings")
            return from_blob(row[1], row[0])

    @sqlite_edge
    def centroids(self, encoder_id: str) -> tuple[list[str], np.ndarray]:
        """Names (sorted) and their (num_voices, dim) unit-norm read-only centroids of one encoder; (0, 0) if none.

        Cached per encoder until the registry changes: `PRAGMA data_version` moves when another connection
        commits, `_commits` when this one does.
        """
        conn = self._connection()
        version = (conn.execute("PRAGMA data_version").fetchone()[0], self._commits)
        cached = self._centroid_cache.get(encoder_id)
        if cached is not None and cached[0] == version and not self._depth:
            return list(cached[1]), cached[2]
        names, matrix = self._read_centroids(encoder_id)
        matrix.setflags(write=False)  # shared with the cache: read-only rather than copied per query
        if not self._depth:  # inside a transaction the state may still roll back: do not cache it
            self._centroid_cache[encoder_id] = (version, names, matrix)
        return list(names), matrix

    def _read_centroids(self, encoder_id: str) -> tuple[list[str], np.ndarray]:
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT v.name, c.dimension, c.vector FROM centroids c JOIN voices v ON v.id = c.voice_id "
                "WHERE c.encoder_id = ? ORDER BY v.name", (encoder_id,)).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        dimension = rows[0][1]
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype="<f4").astype(np.float32)
        if matrix.size != dimension * len(rows):
            raise RegistryError(f"registry {self.path} is corrupt: {encoder_id} centroids of mixed dimensions")
        return [row[0] for row in rows], matrix.reshape(len(rows), dimension)

    @sqlite_edge
    def search(self, vector: Any, encoder_id: str, k: int = 5) -> list[SearchHit]:
        """The `k` voices whose `encoder_id` centroid is nearest to `vector` by cosine, best first.

        `vector` (dim,) may be any vector of that encoder (an utterance, a cluster centroid, an edited
        voice). An encoder with no enrolled voices gives an empty list.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise RegistryError(f"search: k must be a positive integer, got {k!r}")
        query = as_vectors(vector, f"search vector ({encoder_id})")
        if len(query) != 1:
            raise RegistryError(f"search vector ({encoder_id}): expected one vector, got {len(query)}")
        names, matrix = self.centroids(encoder_id)
        if not names:
            return []
        if matrix.shape[1] != query.shape[1]:
            raise RegistryError(f"search vector: dimension {query.shape[1]} but {encoder_id} vectors in this "
                                f"registry have {matrix.shape[1]} (wrong encoder?)")
        scores = matrix.astype(np.float64) @ unit_vectors(query[0], np.float64)
        k = min(int(k), len(names))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((np.array(names, dtype=object)[top], -scores[top]))]
        return [SearchHit(names[i], float(scores[i])) for i in top]

    @sqlite_edge
    def remove(self, name: str, encoder_id: str | None = None) -> bool:
        """Delete a voice (or only its `encoder_id` embeddings) and scrub the bytes from disk.

        Returns True when the scrub completed (VACUUM done, WAL truncated); False when another process held
        a read snapshot, in which case the deleted bytes may stay in the -wal file until that reader closes
        and `scrub()` runs again. Inside an outer `transaction()` the scrub waits for the outer commit and
        this returns False.
        """
        self._last_scrub = False
        with self.transaction():
            voice_id = self._voice_id(name)
            if encoder_id is None:
                self._conn.execute("DELETE FROM voices WHERE id = ?", (voice_id,))
            else:
                deleted = self._conn.execute("DELETE FROM embeddings WHERE voice_id = ? AND encoder_id = ?",
                                             (voice_id, encoder_id)).rowcount
                if not deleted:
                    raise RegistryError(f"voice {name!r}: has no {encoder_id} embeddings")
                self._refresh_centroid(voice_id, encoder_id)
                self._conn.execute("UPDATE voices SET updated = ? WHERE id = ?", (utc_now(), voice_id))
            self._scrub_pending = True
        return self._last_scrub

    @sqlite_edge
    def scrub(self) -> bool:
        """VACUUM and truncate the WAL so that no deleted row survives anywhere in the files."""
        if self._depth:
            raise RegistryError(f"registry {self.path}: scrub cannot run inside a transaction")
        return self._scrub(strict=True)

    def _scrub(self, strict: bool = False) -> bool:
        """-> whether the scrub completed. Only a busy reader is a "not yet" (False); `strict` (an explicit
        scrub) raises any other error, while the scrub after a committed remove reports it as not done, since
        the removal itself has landed and the command must not say it failed."""
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout={int(self.scrub_wait_s * 1000)}")
        try:
            # secure_delete already zeroed the deleted cells; VACUUM also rebuilds every page so no stale
            # copy survives in free space or page slack.
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as error:
            if strict and not (getattr(error, "sqlite_errorname", "") or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                raise
            busy = 1
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        self._last_scrub = not busy
        return self._last_scrub


__all__ = ["ENV_VAR", "Direction", "Registry", "RegistryError", "SearchHit", "StoredEmbedding", "Voice",
           "check_can_create", "check_voice_name", "default_registry_path", "describe_sqlite_error", "file_sha256",
           "label_form", "merge_metadata", "open_registry", "resolve_registry_path"]
