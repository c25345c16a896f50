"""The archive index `voicemap link` keeps in OUTDIR, and `search` and `report` read.

`voices.index.json`: the encoder, the threshold used, the next free voice number, and one row per speaker of
every linked recording (stem, uri, speaker, archive label, kind, seconds, similarity, digest of its JSON);
`voices.index.npy`: (num_rows, dim) float32 unit centroids, row i for row i of the JSON, so a search is one
matrix product; `voices.tsv`: the rows a person reads (voice uri speaker seconds similarity).
The vectors are written first and the JSON names their row count, so a reader never pairs a new JSON with
an old matrix without noticing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .archive import INDEX_NAME, TABLE_NAME, VECTORS_NAME

FORMAT = "voicemap-archive-1"
#: kinds of archive label
VOICE, NAME, UNLINKED = "voice", "name", "unlinked"


class ArchiveIndexError(ValueError):
    """An index that cannot be read: one line naming the file and the cause."""


@dataclass(frozen=True)
class IndexRow:
    stem: str
    uri: str
    speaker: str  # the label in the recording's own output
    label: str  # archive label: VOICE_0001, an enrolled name, or <speaker>@<uri> when unlinked
    kind: str  # VOICE, NAME or UNLINKED
    seconds: float
    similarity: float | None  # cosine with the voice's direction (None when unlinked)
    digest: str


@dataclass
class ArchiveIndex:
    encoder: str
    dimension: int
    threshold: dict
    min_seconds: float
    next_voice: int  # voice numbers are never reused, even when a voice loses all its recordings
    rows: list[IndexRow] = field(default_factory=list)
    vectors: np.ndarray | None = None  # (len(rows), dimension) float32 unit

    def voices(self) -> dict[str, list[IndexRow]]:
        """Archive label -> its rows, labels in order of total seconds (longest first)."""
        grouped: dict[str, list[IndexRow]] = {}
        for row in self.rows:
            grouped.setdefault(row.label, []).append(row)
        return dict(sorted(grouped.items(), key=lambda item: (-sum(r.seconds for r in item[1]), item[0])))


def voice_label(number: int) -> str:
    return f"VOICE_{number:04d}"


def write_index(outdir: Path, index: ArchiveIndex) -> None:
    """voices.index.npy, voices.index.json and voices.tsv, each atomically, in that order."""
    from cluster.atomic_files import atomic_write, atomic_write_text

    vectors = np.zeros((0, index.dimension), np.float32) if index.vectors is None else index.vectors
    atomic_write(outdir / VECTORS_NAME, lambda stream: np.save(stream, np.asarray(vectors, dtype=np.float32)))
    payload = {
        "format": FORMAT, "encoder": index.encoder, "dimension": index.dimension, "threshold": index.threshold,
        "min_seconds": index.min_seconds, "next_voice": index.next_voice, "vectors": VECTORS_NAME,
        "num_rows": len(index.rows), "rows": [asdict(row) for row in index.rows],
    }
    atomic_write_text(outdir / INDEX_NAME, json.dumps(payload, ensure_ascii=False, indent=0) + "\n")
    lines = ["voice\turi\tspeaker\tseconds\tsimilarity"]
    for label, rows in index.voices().items():
        for row in sorted(rows, key=lambda r: (r.uri, r.speaker)):
            similarity = "" if row.similarity is None else f"{row.similarity:.3f}"
            lines.append(f"{label}\t{row.uri}\t{row.speaker}\t{row.seconds:.2f}\t{similarity}")
    atomic_write_text(outdir / TABLE_NAME, "\n".join(lines) + "\n")


def read_index(outdir: Path, *, vectors: bool = True) -> ArchiveIndex | None:
    """The index in `outdir`, or None when there is none; ArchiveIndexError (one line) when it is unreadable."""
    path = outdir / INDEX_NAME
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("format") != FORMAT:
            raise ArchiveIndexError(f"{path}: not a voicemap archive index (format {payload.get('format')!r})")
        rows = [IndexRow(**row) for row in payload["rows"]]
        index = ArchiveIndex(payload["encoder"], int(payload["dimension"]), dict(payload["threshold"]),
                             float(payload["min_seconds"]), int(payload["next_voice"]), rows)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, ArchiveIndexError):
            raise
        raise ArchiveIndexError(f"{path}: unreadable archive index ({str(error).splitlines()[0] or type(error).__name__}); "
                          "remove it and link again") from None
    if vectors:
        try:
            matrix = np.load(outdir / VECTORS_NAME, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise ArchiveIndexError(f"{outdir / VECTORS_NAME}: unreadable ({error}); link again") from None
        if matrix.shape != (len(rows), index.dimension):
            raise ArchiveIndexError(f"{outdir / VECTORS_NAME}: shape {matrix.shape} does not match the {len(rows)} rows of "
                              f"{path}; link again")
        index.vectors = matrix
    return index
