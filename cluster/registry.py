"""Enrolled voices: a durable local store of speaker embeddings (never audio) with search by example.

One SQLite file in WAL mode. Every write is one transaction (`BEGIN IMMEDIATE` ... `COMMIT`), so a crash,
SIGKILL or Ctrl-C part-way leaves the file as it was before the write; readers run inside their own read
transaction and, thanks to WAL, see either the state before a concurrent write or the state after it.

Tables:
- `voices`      name (unique; used verbatim as an RTTM label, so no whitespace), metadata JSON, times;
- `embeddings`  raw float32 vectors, one row per enrolled source, tagged with the encoder id and dimension,
                plus the sha256 of the source file (never the audio itself);
- `centroids`   per voice and encoder, the unit-norm mean of the L2-normalized embeddings, maintained in the
                same transaction as the embeddings so that search reads one row per voice;
- `directions`  named vectors per encoder (attribute directions for synth/algebra.py), raw.

Vectors of different encoders are never compared: every query names its encoder id, and an encoder's
dimension is fixed by the vectors already stored for it. Voice embeddings are biometric data: the file is
created owner-only (0600), and `remove` deletes with `secure_delete`, VACUUMs and truncates the WAL so the
removed vectors' bytes do not linger on disk.

Search is brute force: one (num_voices, dim) float32 matrix product per query. At 192 dimensions that is
~40 MB and a few milliseconds for 50 000 voices; past a few hundred thousand voices reading the centroids
from SQLite on every query dominates, and an ANN index (FAISS / hnswlib) kept beside the file would be the
next step.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

ENV_VAR = "VOICEMAP_REGISTRY"
SCHEMA_VERSION = 1
EXPORT_FORMAT = "voicemap-registry"
EXPORT_VERSION = 1
#: how long a writer waits for another writer's transaction before giving up
BUSY_TIMEOUT_S = 30.0
#: how long a scrub after `remove` waits for other processes' read snapshots to end before reporting that
#: the WAL could not be truncated yet (a reader may be a long-running job: do not hang the command)
SCRUB_WAIT_S = 5.0

# Names become RTTM labels (whitespace-separated format), and `unknown_N` is what match.py calls a cluster
# that matches nobody, so those names would be ambiguous.
_RESERVED_NAME = re.compile(r"^unknown(_\d+)?$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

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


class RegistryError(ValueError):
    """A registry operation that cannot be done; one line naming the input and the cause. Nothing changed."""


@dataclass(frozen=True)
class Voice:
    """An enrolled voice. `counts` maps encoder id -> number of stored embeddings."""

    name: str
    metadata: dict[str, Any]
    created: str
    updated: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEmbedding:
    encoder_id: str
    vector: np.ndarray  # (dimension,) float32, raw as enrolled
    source_hash: str | None
    created: str


@dataclass(frozen=True)
class SearchHit:
    name: str
    score: float  # cosine similarity between the query and the voice's centroid, in [-1, 1]


@dataclass(frozen=True)
class Direction:
    name: str
    encoder_id: str
    vector: np.ndarray  # (dimension,) float32, raw (its norm may carry meaning)
    metadata: dict[str, Any]
    created: str
    updated: str


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _check_name(name: Any, what: str = "voice name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"{what} {name!r}: must be a non-empty string")
    if name != name.strip() or any(ch.isspace() for ch in name):
        raise RegistryError(f"{what} {name!r}: must not contain whitespace (names are used as RTTM labels; "
                            f"try {'_'.join(name.split())!r})")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise RegistryError(f"{what} {name!r}: must not contain control characters")
    if len(name) > 200:
        raise RegistryError(f"{what} {name[:20]!r}...: longer than 200 characters")
    return name


def check_voice_name(name: Any) -> str:
    """`name` if it can be a voice name, else RegistryError saying why."""
    name = _check_name(name)
    if _RESERVED_NAME.match(name):
        raise RegistryError(f"voice name {name!r}: reserved for speakers that match no enrolled voice")
    return name


def _check_encoder_id(encoder_id: Any) -> str:
    if not isinstance(encoder_id, str) or not encoder_id.strip():
        raise RegistryError(f"encoder id {encoder_id!r}: must be a non-empty string")
    return encoder_id


def _as_vectors(vectors: Any, what: str) -> np.ndarray:
    """(dim,) or (n, dim) finite, non-zero numbers -> (n, dim) float32; RegistryError otherwise."""
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise RegistryError(f"{what}: not a numeric vector ({error})") from error
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise RegistryError(f"{what}: expected one vector (dim,) or a non-empty matrix (n, dim), got shape "
                            f"{np.shape(vectors)}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise RegistryError(f"{what}: {bad} of {len(array)} vector(s) contain NaN or infinite values")
    if np.abs(array).max() > np.finfo(np.float32).max:
        raise RegistryError(f"{what}: values overflow float32")
    array = array.astype(np.float32)
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    if (norms == 0).any():
        raise RegistryError(f"{what}: {int((norms == 0).sum())} vector(s) are all zeros (no direction to compare)")
    return array


def _unit(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    return array / np.maximum(np.linalg.norm(array, axis=-1, keepdims=True), 1e-12)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def _vector(blob: bytes, dimension: int) -> np.ndarray:
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if vector.shape != (dimension,):
        raise RegistryError(f"registry is corrupt: a stored vector has {vector.size} values, expected {dimension}")
    return vector


def _metadata_json(metadata: Any, what: str) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise RegistryError(f"{what}: metadata must be a JSON object (dict), got {type(metadata).__name__}")
    try:
        return json.dumps(metadata, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise RegistryError(f"{what}: metadata is not JSON-serializable ({error})") from error


def merge_metadata(old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
    """`new` overrides keys of `old`, except `tags`, whose lists are united (order kept, no duplicates)."""
    merged = dict(old)
    for key, value in (new or {}).items():
        if key == "tags" and isinstance(value, list) and isinstance(merged.get("tags"), list):
            merged["tags"] = list(dict.fromkeys([*merged["tags"], *value]))
        else:
            merged[key] = value
    return merged


class Registry:
    """The voice registry in one SQLite file. Use as a context manager, or call `close()`.

    `Registry(path)` opens (and by default creates) the file; `create=False` refuses a missing one.
    All methods raise RegistryError with a one-line message, leaving the file unchanged, on bad input.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = True):
        self.path = resolve_registry_path(path)
        if self.path.is_dir():
            raise RegistryError(f"registry {self.path}: is a folder, not a file")
        if not self.path.exists():
            if not create:
                raise RegistryError(f"registry {self.path}: does not exist (enroll a voice first)")
            self._create_file()
        self._depth = 0
        self._scrub_pending = False
        self._last_scrub = False
        self.scrub_wait_s = SCRUB_WAIT_S
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as error:
            raise RegistryError(f"registry {self.path}: cannot open ({error})") from error
        try:
            self._configure()
        except sqlite3.DatabaseError as error:
            self._conn.close()
            raise RegistryError(f"registry {self.path}: not a voicemap registry ({error})") from error

    def _create_file(self) -> None:
        # Owner-only from the first byte: voice embeddings are biometric data.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise RegistryError(f"registry {self.path}: cannot create ({error.strerror})") from error

    def _configure(self) -> None:
        conn = self._conn
        # WAL: readers never block the writer and always see a committed snapshot.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch to WAL journal mode (got {mode})")
        # FULL: a committed enrollment survives a power cut, not only a process crash; writes are rare.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros instead of being left in free space.
        conn.execute("PRAGMA secure_delete=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RegistryError(f"registry {self.path}: schema version {version} is newer than this voicemap "
                                f"understands ({SCHEMA_VERSION}); upgrade voicemap")
        if version < SCHEMA_VERSION:
            with self.transaction():
                # one statement at a time: executescript() would COMMIT our transaction
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

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
        except sqlite3.OperationalError as error:
            raise RegistryError(f"registry {self.path}: cannot start a write ({error})") from error
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._scrub_pending = False
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
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
            now = _now()
            if row is None:
                conn.execute("INSERT INTO voices(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                             (name, _metadata_json(metadata, f"voice {name!r}"), now, now))
            elif metadata:
                merged = merge_metadata(json.loads(row[1]), metadata)
                conn.execute("UPDATE voices SET metadata = ? WHERE id = ?",
                             (_metadata_json(merged, f"voice {name!r}"), row[0]))
            self._add(name, encoder_id, vectors, source_hashes)
            return self.get(name)

    def add_embeddings(self, name: str, encoder_id: str, vectors: Any,
                       source_hashes: Sequence[str | None] | None = None) -> Voice:
        """Add vectors to an existing voice (RegistryError if `name` is not enrolled)."""
        with self.transaction():
            self._voice_id(name)
            self._add(name, encoder_id, vectors, source_hashes)
            return self.get(name)

    def _add(self, name: str, encoder_id: str, vectors: Any, source_hashes: Sequence[str | None] | None) -> None:
        conn = self._conn
        encoder_id = _check_encoder_id(encoder_id)
        matrix = _as_vectors(vectors, f"voice {name!r} ({encoder_id})")
        self._check_dimension(encoder_id, matrix.shape[1], f"voice {name!r}")
        hashes = list(source_hashes) if source_hashes is not None else [None] * len(matrix)
        if len(hashes) != len(matrix):
            raise RegistryError(f"voice {name!r}: {len(matrix)} vectors but {len(hashes)} source hashes")
        for value in hashes:
            if value is not None and not (isinstance(value, str) and _SHA256.match(value)):
                raise RegistryError(f"voice {name!r}: source hash {value!r} is not a lowercase sha256 hex digest")
        given = [value for value in hashes if value is not None]
        if len(set(given)) != len(given):
            raise RegistryError(f"voice {name!r}: the same source file is given twice")
        voice_id = self._voice_id(name)
        now = _now()
        for vector, source in zip(matrix, hashes):
            if source is not None and conn.execute(
                "SELECT 1 FROM embeddings WHERE voice_id = ? AND encoder_id = ? AND source_hash = ?",
                (voice_id, encoder_id, source),
            ).fetchone():
                raise RegistryError(f"voice {name!r}: source {source[:12]}... is already enrolled with {encoder_id}")
            conn.execute(
                "INSERT INTO embeddings(voice_id, encoder_id, dimension, vector, source_hash, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (voice_id, encoder_id, int(matrix.shape[1]), _blob(vector), source, now),
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
        mean = _unit(np.stack([_vector(blob, dimension) for _, blob in rows])).mean(axis=0)
        centroid = _unit(mean).astype(np.float32)
        conn.execute(
            "INSERT INTO centroids(voice_id, encoder_id, dimension, vector, count) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(voice_id, encoder_id) DO UPDATE SET dimension = excluded.dimension, "
            "vector = excluded.vector, count = excluded.count",
            (voice_id, encoder_id, dimension, _blob(centroid), len(rows)),
        )

    def _voice_id(self, name: str) -> int:
        row = self._connection().execute("SELECT id FROM voices WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise RegistryError(f"voice {name!r}: not enrolled in {self.path}")
        return int(row[0])

    def _check_dimension(self, encoder_id: str, dimension: int, what: str) -> None:
        known = self.dimension(encoder_id)
        if known is not None and known != dimension:
            raise RegistryError(f"{what}: vector has dimension {dimension} but {encoder_id} vectors in this registry "
                                f"have {known} (wrong encoder?)")

    def dimension(self, encoder_id: str) -> int | None:
        """The dimension of `encoder_id`'s stored vectors, or None when it has none yet."""
        conn = self._connection()
        row = conn.execute("SELECT dimension FROM embeddings WHERE encoder_id = ? LIMIT 1", (encoder_id,)).fetchone()
        if row is None:
            row = conn.execute("SELECT dimension FROM directions WHERE encoder_id = ? LIMIT 1",
                               (encoder_id,)).fetchone()
        return None if row is None else int(row[0])

    def encoders(self) -> dict[str, int]:
        """encoder id -> number of voices with at least one embedding of it."""
        with self._snapshot() as conn:
            rows = conn.execute("SELECT encoder_id, COUNT(*) FROM centroids GROUP BY encoder_id ORDER BY encoder_id")
            return {encoder: int(count) for encoder, count in rows}

    def update_metadata(self, name: str, metadata: dict[str, Any], *, replace: bool = False) -> Voice:
        """Merge (or with `replace`, set) a voice's metadata."""
        with self.transaction():
            voice = self.get(name)
            new = dict(metadata) if replace else merge_metadata(voice.metadata, metadata)
            self._conn.execute("UPDATE voices SET metadata = ?, updated = ? WHERE name = ?",
                               (_metadata_json(new, f"voice {name!r}"), _now(), name))
            return self.get(name)

    def __contains__(self, name: object) -> bool:
        return self._connection().execute("SELECT 1 FROM voices WHERE name = ?", (name,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM voices").fetchone()[0])

    def get(self, name: str) -> Voice:
        with self._snapshot() as conn:
            row = conn.execute("SELECT id, name, metadata, created, updated FROM voices WHERE name = ?",
                               (name,)).fetchone()
            if row is None:
                raise RegistryError(f"voice {name!r}: not enrolled in {self.path}")
            counts = dict(conn.execute("SELECT encoder_id, count FROM centroids WHERE voice_id = ? ORDER BY encoder_id",
                                       (row[0],)).fetchall())
            return Voice(row[1], json.loads(row[2]), row[3], row[4], counts)

    def list(self) -> list[Voice]:
        """All voices by name, each with its embedding counts per encoder (one consistent snapshot)."""
        with self._snapshot() as conn:
            counts: dict[int, dict[str, int]] = {}
            for voice_id, encoder_id, count in conn.execute("SELECT voice_id, encoder_id, count FROM centroids"):
                counts.setdefault(voice_id, {})[encoder_id] = int(count)
            rows = conn.execute("SELECT id, name, metadata, created, updated FROM voices ORDER BY name").fetchall()
            return [Voice(name, json.loads(meta), created, updated, dict(sorted(counts.get(vid, {}).items())))
                    for vid, name, meta, created, updated in rows]

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
            return [StoredEmbedding(enc, _vector(blob, dim), source, created) for enc, dim, blob, source, created in rows]

    def sources(self, source_hash: str) -> list[str]:
        """Names of the voices that enrolled a file with this sha256."""
        rows = self._connection().execute(
            "SELECT DISTINCT v.name FROM embeddings e JOIN voices v ON v.id = e.voice_id WHERE e.source_hash = ? "
            "ORDER BY v.name", (source_hash,)).fetchall()
        return [row[0] for row in rows]

    def centroid(self, name: str, encoder_id: str) -> np.ndarray:
        """(dim,) unit-norm float32: the mean of the voice's L2-normalized `encoder_id` embeddings."""
        with self._snapshot() as conn:
            voice_id = self._voice_id(name)
            row = conn.execute("SELECT dimension, vector FROM centroids WHERE voice_id = ? AND encoder_id = ?",
                               (voice_id, encoder_id)).fetchone()
            if row is None:
                raise RegistryError(f"voice {name!r}: has no {encoder_id} embeddings")
            return _vector(row[1], row[0])

    def centroids(self, encoder_id: str) -> tuple[list[str], np.ndarray]:
        """Names (sorted) and their (num_voices, dim) unit-norm centroids for one encoder; (n, 0) when none."""
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

    def search(self, vector: Any, encoder_id: str, k: int = 5) -> list[SearchHit]:
        """The `k` voices whose `encoder_id` centroid is nearest to `vector` by cosine, best first.

        `vector` (dim,) may be any vector of that encoder (an utterance, a cluster centroid, an edited
        voice). An encoder with no enrolled voices gives an empty list.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise RegistryError(f"search: k must be a positive integer, got {k!r}")
        query = _as_vectors(vector, f"search vector ({encoder_id})")
        if len(query) != 1:
            raise RegistryError(f"search vector ({encoder_id}): expected one vector, got {len(query)}")
        names, matrix = self.centroids(encoder_id)
        if not names:
            return []
        if matrix.shape[1] != query.shape[1]:
            raise RegistryError(f"search vector: dimension {query.shape[1]} but {encoder_id} vectors in this "
                                f"registry have {matrix.shape[1]} (wrong encoder?)")
        scores = matrix.astype(np.float64) @ _unit(query[0])
        k = min(int(k), len(names))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((np.array(names, dtype=object)[top], -scores[top]))]
        return [SearchHit(names[i], float(scores[i])) for i in top]

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
                self._conn.execute("UPDATE voices SET updated = ? WHERE id = ?", (_now(), voice_id))
            self._scrub_pending = True
        return self._last_scrub

    def scrub(self) -> bool:
        """VACUUM and truncate the WAL so that no deleted row survives anywhere in the files."""
        if self._depth:
            raise RegistryError(f"registry {self.path}: scrub cannot run inside a transaction")
        return self._scrub()

    def _scrub(self) -> bool:
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout={int(self.scrub_wait_s * 1000)}")
        try:
            # secure_delete already zeroed the deleted cells; VACUUM also rebuilds every page so no stale
            # copy survives in free space or page slack.
            conn.execute("VACUUM")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:
            busy = 1
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        self._last_scrub = not busy
        return self._last_scrub

    # -- directions --------------------------------------------------------------------------------------

    def store_direction(self, name: str, encoder_id: str, vector: Any, metadata: dict[str, Any] | None = None,
                        *, replace: bool = True) -> Direction:
        """Store a named vector of `encoder_id` (e.g. an attribute direction), replacing one of that name."""
        name = _check_name(name, "direction name")
        encoder_id = _check_encoder_id(encoder_id)
        matrix = _as_vectors(vector, f"direction {name!r} ({encoder_id})")
        if len(matrix) != 1:
            raise RegistryError(f"direction {name!r}: expected one vector, got {len(matrix)}")
        meta = _metadata_json(metadata, f"direction {name!r}")
        with self.transaction():
            self._check_dimension(encoder_id, matrix.shape[1], f"direction {name!r}")
            now = _now()
            exists = self._conn.execute("SELECT 1 FROM directions WHERE name = ? AND encoder_id = ?",
                                        (name, encoder_id)).fetchone()
            if exists and not replace:
                raise RegistryError(f"direction {name!r} ({encoder_id}): already stored")
            self._conn.execute(
                "INSERT INTO directions(name, encoder_id, dimension, vector, metadata, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name, encoder_id) DO UPDATE SET "
                "dimension = excluded.dimension, vector = excluded.vector, metadata = excluded.metadata, "
                "updated = excluded.updated",
                (name, encoder_id, int(matrix.shape[1]), _blob(matrix[0]), meta, now, now),
            )
            return self.get_direction(name, encoder_id)

    def get_direction(self, name: str, encoder_id: str) -> Direction:
        row = self._connection().execute(
            "SELECT name, encoder_id, dimension, vector, metadata, created, updated FROM directions "
            "WHERE name = ? AND encoder_id = ?", (name, encoder_id)).fetchone()
        if row is None:
            raise RegistryError(f"direction {name!r} ({encoder_id}): not stored in {self.path}")
        return Direction(row[0], row[1], _vector(row[3], row[2]), json.loads(row[4]), row[5], row[6])

    def list_directions(self, encoder_id: str | None = None) -> list[Direction]:
        query = "SELECT name, encoder_id, dimension, vector, metadata, created, updated FROM directions"
        params: tuple = ()
        if encoder_id is not None:
            query += " WHERE encoder_id = ?"
            params = (encoder_id,)
        rows = self._connection().execute(query + " ORDER BY encoder_id, name", params).fetchall()
        return [Direction(r[0], r[1], _vector(r[3], r[2]), json.loads(r[4]), r[5], r[6]) for r in rows]

    def remove_direction(self, name: str, encoder_id: str) -> None:
        with self.transaction():
            if not self._conn.execute("DELETE FROM directions WHERE name = ? AND encoder_id = ?",
                                      (name, encoder_id)).rowcount:
                raise RegistryError(f"direction {name!r} ({encoder_id}): not stored in {self.path}")
            self._scrub_pending = True

    # -- export / import ---------------------------------------------------------------------------------

    def export_data(self) -> dict[str, Any]:
        """Everything in the registry as one JSON-ready dict (one snapshot); vectors as base64 float32 LE."""
        with self._snapshot() as conn:
            voices = []
            for voice_id, name, meta, created, updated in conn.execute(
                    "SELECT id, name, metadata, created, updated FROM voices ORDER BY name").fetchall():
                rows = conn.execute("SELECT encoder_id, dimension, vector, source_hash, created FROM embeddings "
                                    "WHERE voice_id = ? ORDER BY id", (voice_id,)).fetchall()
                voices.append({
                    "name": name, "metadata": json.loads(meta), "created": created, "updated": updated,
                    "embeddings": [{"encoder_id": enc, "dimension": dim, "vector": base64.b64encode(blob).decode(),
                                    "source_hash": source, "created": made} for enc, dim, blob, source, made in rows],
                })
            directions = [{
                "name": d.name, "encoder_id": d.encoder_id, "dimension": int(d.vector.size),
                "vector": base64.b64encode(_blob(d.vector)).decode(), "metadata": d.metadata,
                "created": d.created, "updated": d.updated,
            } for d in self.list_directions()]
        return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported": _now(), "vector_dtype": "<f4",
                "voices": voices, "directions": directions}

    def export_file(self, path: str | os.PathLike) -> int:
        """Write the whole registry to a JSON file atomically (temp file, fsync, rename); returns #voices."""
        data = self.export_data()
        target = Path(path).expanduser()
        if target.is_dir():
            raise RegistryError(f"export {target}: is a folder")
        if not target.parent.exists():
            raise RegistryError(f"export {target}: folder {target.parent} does not exist")
        text = json.dumps(data, ensure_ascii=False, indent=1)
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            # mkstemp creates the file 0600: the export holds the same biometric vectors as the registry.
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return len(data["voices"])

    def import_file(self, path: str | os.PathLike, *, on_conflict: str = "error") -> int:
        """Load an export into this registry in one transaction; returns the number of voices imported.

        on_conflict, for a voice name already enrolled: "error" (import nothing), "skip" (keep ours),
        "replace" (theirs replaces ours entirely).
        """
        source = Path(path).expanduser()
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RegistryError(f"import {source}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RegistryError(f"import {source}: not a voicemap registry export ({error})") from error
        return self.import_data(data, on_conflict=on_conflict, label=str(source))

    def import_data(self, data: Any, *, on_conflict: str = "error", label: str = "import") -> int:
        if on_conflict not in {"error", "skip", "replace"}:
            raise RegistryError(f"{label}: on_conflict must be error, skip or replace, got {on_conflict!r}")
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
            raise RegistryError(f"{label}: not a voicemap registry export (no format {EXPORT_FORMAT!r})")
        if data.get("version") != EXPORT_VERSION:
            raise RegistryError(f"{label}: export version {data.get('version')!r} not supported ({EXPORT_VERSION})")
        voices = _parse_voices(data.get("voices"), label)
        directions = _parse_directions(data.get("directions", []), label)
        imported = 0
        with self.transaction():
            conn = self._conn
            for voice in voices:
                name = voice["name"]
                if name in self:
                    if on_conflict == "error":
                        raise RegistryError(f"{label}: voice {name!r} is already enrolled (use skip or replace)")
                    if on_conflict == "skip":
                        continue
                    conn.execute("DELETE FROM voices WHERE name = ?", (name,))
                    self._scrub_pending = True
                conn.execute("INSERT INTO voices(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                             (name, _metadata_json(voice["metadata"], f"{label}: voice {name!r}"),
                              voice["created"], voice["updated"]))
                voice_id = self._voice_id(name)
                for encoder_id, group in voice["groups"].items():
                    matrix, hashes, created = group
                    self._check_dimension(encoder_id, matrix.shape[1], f"{label}: voice {name!r}")
                    for vector, source, made in zip(matrix, hashes, created):
                        conn.execute(
                            "INSERT INTO embeddings(voice_id, encoder_id, dimension, vector, source_hash, created) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (voice_id, encoder_id, int(matrix.shape[1]), _blob(vector), source, made))
                    self._refresh_centroid(voice_id, encoder_id)
                imported += 1
            for direction in directions:
                self._check_dimension(direction["encoder_id"], direction["vector"].size,
                                      f"{label}: direction {direction['name']!r}")
                conn.execute(
                    "INSERT INTO directions(name, encoder_id, dimension, vector, metadata, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name, encoder_id) DO UPDATE SET "
                    "dimension = excluded.dimension, vector = excluded.vector, metadata = excluded.metadata, "
                    "updated = excluded.updated",
                    (direction["name"], direction["encoder_id"], int(direction["vector"].size),
                     _blob(direction["vector"]), _metadata_json(direction["metadata"], label),
                     direction["created"], direction["updated"]))
        return imported


def _decode_vector(item: Any, label: str) -> np.ndarray:
    if not isinstance(item, dict):
        raise RegistryError(f"{label}: expected an object with a vector")
    try:
        raw = base64.b64decode(item["vector"], validate=True)
        dimension = int(item["dimension"])
    except (KeyError, TypeError, ValueError) as error:
        raise RegistryError(f"{label}: bad vector entry ({type(error).__name__}: {error})") from error
    if len(raw) != 4 * dimension or dimension <= 0:
        raise RegistryError(f"{label}: vector holds {len(raw) // 4} values but says dimension {dimension}")
    return _as_vectors(np.frombuffer(raw, dtype="<f4"), label)[0]


def _text(item: dict, key: str, label: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise RegistryError(f"{label}: field {key!r} must be a string")
    return value


def _parse_voices(raw: Any, label: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise RegistryError(f"{label}: 'voices' must be a list")
    now = _now()
    voices, seen = [], set()
    for item in raw:
        if not isinstance(item, dict):
            raise RegistryError(f"{label}: each voice must be an object")
        name = check_voice_name(item.get("name"))
        if name in seen:
            raise RegistryError(f"{label}: voice {name!r} appears twice")
        seen.add(name)
        where = f"{label}: voice {name!r}"
        metadata = item.get("metadata") or {}
        _metadata_json(metadata, where)
        groups: dict[str, tuple[list, list, list]] = {}
        for entry in item.get("embeddings") or []:
            encoder_id = _check_encoder_id(entry.get("encoder_id") if isinstance(entry, dict) else None)
            vector = _decode_vector(entry, f"{where} ({encoder_id})")
            source = entry.get("source_hash")
            if source is not None and not (isinstance(source, str) and _SHA256.match(source)):
                raise RegistryError(f"{where}: source hash {source!r} is not a sha256 hex digest")
            vectors, hashes, created = groups.setdefault(encoder_id, ([], [], []))
            if source is not None and source in hashes:
                raise RegistryError(f"{where}: source {source[:12]}... appears twice for {encoder_id}")
            vectors.append(vector)
            hashes.append(source)
            created.append(_text(entry, "created", where, now))
        parsed: dict[str, tuple[np.ndarray, list, list]] = {}
        for encoder_id, (vectors, hashes, created) in groups.items():
            if len({v.size for v in vectors}) != 1:
                raise RegistryError(f"{where}: {encoder_id} vectors of different dimensions")
            parsed[encoder_id] = (np.stack(vectors), hashes, created)
        voices.append({"name": name, "metadata": metadata, "created": _text(item, "created", where, now),
                       "updated": _text(item, "updated", where, now), "groups": parsed})
    return voices


def _parse_directions(raw: Any, label: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise RegistryError(f"{label}: 'directions' must be a list")
    now = _now()
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise RegistryError(f"{label}: each direction must be an object")
        name = _check_name(item.get("name"), "direction name")
        encoder_id = _check_encoder_id(item.get("encoder_id"))
        where = f"{label}: direction {name!r} ({encoder_id})"
        metadata = item.get("metadata") or {}
        _metadata_json(metadata, where)
        out.append({"name": name, "encoder_id": encoder_id, "vector": _decode_vector(item, where),
                    "metadata": metadata, "created": _text(item, "created", where, now),
                    "updated": _text(item, "updated", where, now)})
    return out


__all__ = ["ENV_VAR", "Direction", "Registry", "RegistryError", "SearchHit", "StoredEmbedding", "Voice",
           "check_voice_name", "default_registry_path", "file_sha256", "merge_metadata", "resolve_registry_path"]
