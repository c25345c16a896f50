"""The registry's export file: its JSON layout, atomic writing, and validation of everything read back.

Layout (version 1), one JSON object:
    {"format": "voicemap-registry", "version": 1, "exported": ISO time, "vector_dtype": "<f4",
     "voices": [{"name", "metadata", "created", "updated",
                 "embeddings": [{"encoder_id", "dimension", "vector", "source_hash", "created"}]}],
     "directions": [{"name", "encoder_id", "dimension", "vector", "metadata", "created", "updated"}]}
Vectors are base64 of little-endian float32, so a round trip is bit-exact; on import `vector_dtype` may name
any real floating type (numpy's spelling: "<f4", "<f8", "float64", ...), anything else (complex, integers, a
missing or unknown type) is refused, as are non-finite values and dimensions that disagree with the bytes,
within the file or with the registry. Centroids are not exported:
the importing registry recomputes them. The file holds the same biometric vectors as the registry, so it
is created owner-only.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic_files import atomic_write_text
from .values import (SHA256_HEX, Direction, RegistryError, StoredEmbedding, Voice, as_vectors,
                              check_encoder_id, check_name, check_voice_name, metadata_json, to_blob, utc_now)

EXPORT_FORMAT = "voicemap-registry"
EXPORT_VERSION = 1


@dataclass(frozen=True)
class ImportedVoice:
    name: str
    metadata: dict[str, Any]
    created: str
    updated: str
    embeddings: list[StoredEmbedding]


def _encode(vector: np.ndarray) -> dict[str, Any]:
    return {"dimension": int(vector.size), "vector": base64.b64encode(to_blob(vector)).decode("ascii")}


def build_export(voices: Sequence[tuple[Voice, Sequence[StoredEmbedding]]], directions: Sequence[Direction]) -> dict:
    """The export dict of some voices (each with its stored embeddings) and directions."""
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported": utc_now(), "vector_dtype": "<f4",
        "voices": [{
            "name": voice.name, "metadata": voice.metadata, "created": voice.created, "updated": voice.updated,
            "embeddings": [{"encoder_id": e.encoder_id, **_encode(e.vector), "source_hash": e.source_hash,
                            "created": e.created} for e in embeddings],
        } for voice, embeddings in voices],
        "directions": [{"name": d.name, "encoder_id": d.encoder_id, **_encode(d.vector), "metadata": d.metadata,
                        "created": d.created, "updated": d.updated} for d in directions],
    }


def write_export(data: dict, path: str | os.PathLike) -> None:
    """Write `data` as JSON to `path` atomically: a temp file in the same folder, fsync, then rename."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise RegistryError(f"export {target}: is a folder")
    if not target.parent.is_dir():
        raise RegistryError(f"export {target}: folder {target.parent} does not exist")
    try:
        atomic_write_text(target, json.dumps(data, ensure_ascii=False, indent=1))
    except OSError as error:  # no space, read-only folder, ...: the old target is untouched
        raise RegistryError(f"export {target}: cannot write ({error.strerror or error})") from None


def read_export(path: Path) -> Any:
    """The parsed JSON of an export file (validated later by `parse_export`)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"import {path}: no such file") from None
    except OSError as error:
        raise RegistryError(f"import {path}: cannot read ({error.strerror or error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise RegistryError(f"import {path}: not a voicemap registry export ({str(error)[:200]})") from None


def parse_export(data: Any, label: str) -> tuple[list[ImportedVoice], list[Direction]]:
    """Validate a whole export before anything is written; RegistryError naming the first problem."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise RegistryError(f"{label}: not a voicemap registry export (no format {EXPORT_FORMAT!r})")
    if data.get("version") != EXPORT_VERSION:
        raise RegistryError(f"{label}: export version {data.get('version')!r} not supported ({EXPORT_VERSION})")
    dtype = _vector_dtype(data.get("vector_dtype"), label)
    return (_parse_voices(data.get("voices"), label, dtype),
            _parse_directions(data.get("directions", []), label, dtype))


def _vector_dtype(value: Any, label: str) -> np.dtype:
    """The dtype of the file's vectors: a real floating type, or RegistryError (complex128 would be read as
    pairs of numbers, integers as nonsense; neither is a voice)."""
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind != "f":
        raise RegistryError(f"{label}: vector_dtype {value!r} is not supported (vectors must be real floats, "
                            f"e.g. '<f4')")
    return dtype


def _decoded_vector(item: Any, label: str, dtype: np.dtype = np.dtype("<f4")) -> np.ndarray:
    if not isinstance(item, dict):
        raise RegistryError(f"{label}: expected an object with a vector")
    try:
        raw = base64.b64decode(item["vector"], validate=True)
        dimension = item["dimension"]
    except (KeyError, TypeError, ValueError) as error:
        raise RegistryError(f"{label}: bad vector entry ({type(error).__name__}: {error})") from error
    # int("12") or int(12.7) would pass a wrong field quietly
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
        raise RegistryError(f"{label}: dimension {dimension!r} is not a positive integer")
    if len(raw) != dtype.itemsize * dimension:
        raise RegistryError(f"{label}: vector holds {len(raw) / dtype.itemsize:g} {dtype.name} values but says "
                            f"dimension {dimension}")
    return as_vectors(np.frombuffer(raw, dtype=dtype), label)[0]


def _text(item: dict, key: str, label: str, default: str) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise RegistryError(f"{label}: field {key!r} must be a string")
    return value


def _metadata(item: dict, label: str) -> dict[str, Any]:
    metadata = item.get("metadata") or {}
    metadata_json(metadata, label)  # raises for anything that is not a JSON object
    return metadata


def _parse_voices(raw: Any, label: str, dtype: np.dtype) -> list[ImportedVoice]:
    if not isinstance(raw, list):
        raise RegistryError(f"{label}: 'voices' must be a list")
    now = utc_now()
    voices: list[ImportedVoice] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise RegistryError(f"{label}: each voice must be an object")
        try:
            name = check_voice_name(item.get("name"))
        except RegistryError as error:
            raise RegistryError(f"{label}: {error}") from None
        if name in seen:
            raise RegistryError(f"{label}: voice {name!r} appears twice")
        seen.add(name)
        where = f"{label}: voice {name!r}"
        embeddings: list[StoredEmbedding] = []
        for entry in item.get("embeddings") or []:
            encoder_id = check_encoder_id(entry.get("encoder_id") if isinstance(entry, dict) else None)
            vector = _decoded_vector(entry, f"{where} ({encoder_id})", dtype)
            source = entry.get("source_hash")
            if source is not None and not (isinstance(source, str) and SHA256_HEX.match(source)):
                raise RegistryError(f"{where}: source hash {source!r} is not a sha256 hex digest")
            for other in embeddings:
                if other.encoder_id != encoder_id:
                    continue
                if other.vector.size != vector.size:
                    raise RegistryError(f"{where}: {encoder_id} vectors of different dimensions")
                if source is not None and other.source_hash == source:
                    raise RegistryError(f"{where}: source {source[:12]}... appears twice for {encoder_id}")
            embeddings.append(StoredEmbedding(encoder_id, vector, source, _text(entry, "created", where, now)))
        voices.append(ImportedVoice(name, _metadata(item, where), _text(item, "created", where, now),
                                    _text(item, "updated", where, now), embeddings))
    return voices


def _parse_directions(raw: Any, label: str, dtype: np.dtype) -> list[Direction]:
    if not isinstance(raw, list):
        raise RegistryError(f"{label}: 'directions' must be a list")
    now = utc_now()
    out: list[Direction] = []
    for item in raw:
        if not isinstance(item, dict):
            raise RegistryError(f"{label}: each direction must be an object")
        name = check_name(item.get("name"), "direction name")
        encoder_id = check_encoder_id(item.get("encoder_id"))
        where = f"{label}: direction {name!r} ({encoder_id})"
        out.append(Direction(name, encoder_id, _decoded_vector(item, where, dtype), _metadata(item, where),
                             _text(item, "created", where, now), _text(item, "updated", where, now)))
    return out
