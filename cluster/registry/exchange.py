"""Export and import of a whole registry (file layout and validation in export.py): a part of `Registry`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .export import build_export, parse_export, read_export, write_export
from .sqlite_edge import sqlite_edge
from .values import RegistryError, metadata_json, to_blob


class RegistryExchange:
    """`Registry` to and from one JSON export (the registry supplies voices, transactions and centroids)."""

    @sqlite_edge
    def export_data(self) -> dict[str, Any]:
        """Everything in the registry as one JSON-ready dict, read from one snapshot."""
        with self._snapshot():
            voices = [(voice, self.embeddings(voice.name)) for voice in self.list()]
            return build_export(voices, self.list_directions())

    @sqlite_edge
    def export_file(self, path: str | os.PathLike) -> int:
        """Write the whole registry to a JSON file atomically (temp file, fsync, rename); returns #voices."""
        data = self.export_data()
        write_export(data, path)
        return len(data["voices"])

    @sqlite_edge
    def import_file(self, path: str | os.PathLike, *, on_conflict: str = "error") -> int:
        """Load an export into this registry in one transaction; returns the number of voices imported.

        on_conflict, for a voice name already enrolled: "error" (import nothing), "skip" (keep ours),
        "replace" (theirs replaces ours entirely).
        """
        source = Path(path).expanduser()
        return self.import_data(read_export(source), on_conflict=on_conflict, label=str(source))

    @sqlite_edge
    def import_data(self, data: Any, *, on_conflict: str = "error", label: str = "import") -> int:
        """`import_file` for an already-loaded export dict; everything is validated before anything is written."""
        if on_conflict not in {"error", "skip", "replace"}:
            raise RegistryError(f"{label}: on_conflict must be error, skip or replace, got {on_conflict!r}")
        voices, directions = parse_export(data, label)
        imported = 0
        with self.transaction():
            conn = self._conn
            for voice in voices:
                if voice.name in self:
                    if on_conflict == "error":
                        raise RegistryError(f"{label}: voice {voice.name!r} is already enrolled (use skip or replace)")
                    if on_conflict == "skip":
                        continue
                    conn.execute("DELETE FROM voices WHERE name = ?", (voice.name,))
                    self._scrub_pending = True
                self._refuse_label_clash(voice.name, f"{label}: ")
                conn.execute("INSERT INTO voices(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                             (voice.name, metadata_json(voice.metadata, f"{label}: voice {voice.name!r}"),
                              voice.created, voice.updated))
                voice_id = self._voice_id(voice.name)
                for encoder_id in dict.fromkeys(e.encoder_id for e in voice.embeddings):
                    group = [e for e in voice.embeddings if e.encoder_id == encoder_id]
                    self._check_dimension(encoder_id, group[0].vector.size, f"{label}: voice {voice.name!r}")
                    for e in group:
                        conn.execute(
                            "INSERT INTO embeddings(voice_id, encoder_id, dimension, vector, source_hash, created) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (voice_id, encoder_id, int(e.vector.size), to_blob(e.vector), e.source_hash, e.created))
                    self._refresh_centroid(voice_id, encoder_id)
                imported += 1
            for d in directions:
                self._check_dimension(d.encoder_id, d.vector.size, f"{label}: direction {d.name!r}")
                conn.execute(
                    "INSERT INTO directions(name, encoder_id, dimension, vector, metadata, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name, encoder_id) DO UPDATE SET "
                    "dimension = excluded.dimension, vector = excluded.vector, metadata = excluded.metadata, "
                    "updated = excluded.updated",
                    (d.name, d.encoder_id, int(d.vector.size), to_blob(d.vector), metadata_json(d.metadata, label),
                     d.created, d.updated))
        return imported
