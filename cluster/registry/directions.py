"""Named vectors stored beside the voices (attribute directions, synth/algebra.py): a part of `Registry`."""

from __future__ import annotations

import json
from typing import Any

from .sqlite_edge import sqlite_edge
from .values import (Direction, RegistryError, as_vectors, check_encoder_id, check_name, from_blob, metadata_json,
                     to_blob, utc_now)


class DirectionStore:
    """The `directions` table of a `Registry` (which supplies the connection, transactions and the dimension check)."""

    @sqlite_edge
    def store_direction(self, name: str, encoder_id: str, vector: Any, metadata: dict[str, Any] | None = None,
                        *, replace: bool = True) -> Direction:
        """Store a named vector of `encoder_id` (e.g. an attribute direction), replacing one of that name."""
        name = check_name(name, "direction name")
        encoder_id = check_encoder_id(encoder_id)
        matrix = as_vectors(vector, f"direction {name!r} ({encoder_id})")
        if len(matrix) != 1:
            raise RegistryError(f"direction {name!r}: expected one vector, got {len(matrix)}")
        meta = metadata_json(metadata, f"direction {name!r}")
        with self.transaction():
            self._check_dimension(encoder_id, matrix.shape[1], f"direction {name!r}")
            now = utc_now()
            exists = self._conn.execute("SELECT 1 FROM directions WHERE name = ? AND encoder_id = ?",
                                        (name, encoder_id)).fetchone()
            if exists and not replace:
                raise RegistryError(f"direction {name!r} ({encoder_id}): already stored")
            self._conn.execute(
                "INSERT INTO directions(name, encoder_id, dimension, vector, metadata, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name, encoder_id) DO UPDATE SET "
                "dimension = excluded.dimension, vector = excluded.vector, metadata = excluded.metadata, "
                "updated = excluded.updated",
                (name, encoder_id, int(matrix.shape[1]), to_blob(matrix[0]), meta, now, now),
            )
            return self.get_direction(name, encoder_id)

    @sqlite_edge
    def get_direction(self, name: str, encoder_id: str) -> Direction:
        row = self._connection().execute(
            "SELECT name, encoder_id, dimension, vector, metadata, created, updated FROM directions "
            "WHERE name = ? AND encoder_id = ?", (name, encoder_id)).fetchone()
        if row is None:
            raise RegistryError(f"direction {name!r} ({encoder_id}): not stored in {self.path}")
        return Direction(row[0], row[1], from_blob(row[3], row[2]), json.loads(row[4]), row[5], row[6])

    @sqlite_edge
    def list_directions(self, encoder_id: str | None = None) -> list[Direction]:
        query = "SELECT name, encoder_id, dimension, vector, metadata, created, updated FROM directions"
        params: tuple = ()
        if encoder_id is not None:
            query += " WHERE encoder_id = ?"
            params = (encoder_id,)
        rows = self._connection().execute(query + " ORDER BY encoder_id, name", params).fetchall()
        return [Direction(r[0], r[1], from_blob(r[3], r[2]), json.loads(r[4]), r[5], r[6]) for r in rows]

    @sqlite_edge
    def remove_direction(self, name: str, encoder_id: str) -> None:
        with self.transaction():
            if not self._conn.execute("DELETE FROM directions WHERE name = ? AND encoder_id = ?",
                                      (name, encoder_id)).rowcount:
                raise RegistryError(f"direction {name!r} ({encoder_id}): not stored in {self.path}")
            self._scrub_pending = True

