"""What may go into the voice registry, and how it is encoded: names, encoder ids, vectors, metadata.

Every check raises RegistryError with one line naming the input and the cause; the registry runs them
all before it writes anything.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..vectors import vector_matrix

# `unknown_N` is what match.py calls a cluster that matches nobody, so those names would be ambiguous; it is
# checked on the RTTM form of a name too ("unknown 2" is written as unknown_2 there).
RESERVED_NAME = re.compile(r"^unknown(_\d+)?$", re.IGNORECASE)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


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


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def normal_name(name: str) -> str:
    """A name as the registry keeps it: ends trimmed and every inner run of whitespace one plain space.

    "Ada  Lovelace" and "Ada\u00a0Lovelace" look like "Ada Lovelace" on a screen and in a shell; keeping
    them apart would make two voices nobody can tell apart by name. Lookups use the same form, so a name
    typed with an extra space still finds its voice.
    """
    return " ".join(name.split()) if isinstance(name, str) else name


def label_form(name: str) -> str:
    """The name as a whitespace-free RTTM label (diarize/output.py writes whitespace as '_')."""
    return "_".join(name.split())


def check_name(name: Any, what: str = "voice name") -> str:
    """`name` in its normal form (see `normal_name`) if it can be a name, else RegistryError saying why.

    Inner spaces are fine ("Ada Lovelace"): the registry and JSON outputs keep the name with its spaces, RTTM
    writes its `label_form`. Control characters (tab, newline, ...) and line or paragraph separators are
    refused rather than folded into a space: they usually come from a pasted or scripted name gone wrong,
    and they would break every line-based output.
    """
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"{what} {name!r}: must be a non-empty string")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        raise RegistryError(f"{what} {name!r}: must not contain control characters or line breaks")
    name = normal_name(name)
    if len(name) > 200:
        raise RegistryError(f"{what} {name[:20]!r}...: longer than 200 characters")
    return name


def check_voice_name(name: Any) -> str:
    """`name` if it can be a voice name, else RegistryError saying why."""
    name = check_name(name)
    if RESERVED_NAME.match(label_form(name)):
        raise RegistryError(f"voice name {name!r}: reserved for speakers that match no enrolled voice")
    return name


def check_encoder_id(encoder_id: Any) -> str:
    if not isinstance(encoder_id, str) or not encoder_id.strip():
        raise RegistryError(f"encoder id {encoder_id!r}: must be a non-empty string")
    return encoder_id


def as_vectors(vectors: Any, what: str) -> np.ndarray:
    """(dim,) or (n, dim) finite, non-zero numbers -> (n, dim) float32; RegistryError otherwise."""
    array = vector_matrix(vectors, what, RegistryError)
    if np.abs(array).max() > np.finfo(np.float32).max:
        raise RegistryError(f"{what}: values overflow float32")
    array = array.astype(np.float32)
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    if (norms == 0).any():
        raise RegistryError(f"{what}: {int((norms == 0).sum())} vector(s) are all zeros (no direction to compare)")
    return array


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dimension: int) -> np.ndarray:
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if vector.shape != (dimension,):
        raise RegistryError(f"registry is corrupt: a stored vector has {vector.size} values, expected {dimension}")
    return vector


def metadata_json(metadata: Any, what: str) -> str:
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
