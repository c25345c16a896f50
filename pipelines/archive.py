"""Reading an output folder as an archive: every `<stem>.json` that diarize, identify or batch wrote there,
as plain records (per recording: its speakers' centroids, speech seconds, names, and its turns).

Files under `linked/` and `report/`, the archive's own index and batch's summary are not recordings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: what `voicemap link` writes into OUTDIR; never read back as recordings
LINKED_FOLDER = "linked"
REPORT_FOLDER = "report"
INDEX_NAME = "voices.index.json"
VECTORS_NAME = "voices.index.npy"
TABLE_NAME = "voices.tsv"
#: JSON files other commands keep in an output folder that are not recordings
NOT_RECORDINGS = {INDEX_NAME, "summary.json"}


class ArchiveInputError(ValueError):
    """A file of the output folder that cannot be read as a recording: one line naming it and the cause."""


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class RecordingSpeaker:
    """label: the speaker's label in the recording (SPEAKER_00, an enrolled name, unknown_1);
    centroid: (dim,) raw; named: True when identify gave it an enrolled name."""

    label: str
    seconds: float
    centroid: np.ndarray
    named: bool


@dataclass(frozen=True)
class Recording:
    """One voicemap output. stem: its path under OUTDIR without `.json` (posix), the name its linked files
    and report page take; digest: sha256 of the JSON, to tell an unchanged recording on the next run."""

    stem: str
    path: Path
    uri: str
    duration: float
    encoder: str
    speakers: tuple[RecordingSpeaker, ...]
    turns: tuple[Turn, ...]
    exclusive_turns: tuple[Turn, ...]
    digest: str
    payload: dict


def output_files(outdir: Path) -> list[Path]:
    """The JSON files of `outdir` (recursively, sorted) that may be recordings."""
    found = []
    for path in sorted(outdir.rglob("*.json")):
        relative = path.relative_to(outdir)
        if relative.parts[0] in (LINKED_FOLDER, REPORT_FOLDER) or path.name in NOT_RECORDINGS \
                or any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        found.append(path)
    return found


def _turns(items, path: Path, key: str) -> tuple[Turn, ...]:
    if not isinstance(items, list):
        raise ArchiveInputError(f"{path}: '{key}' is not a list of turns")
    turns = []
    for item in items:
        try:
            start, end, speaker = float(item["start"]), float(item["end"]), str(item["speaker"])
        except (KeyError, TypeError, ValueError):
            raise ArchiveInputError(f"{path}: a turn of '{key}' lacks start, end or speaker") from None
        if not (np.isfinite(start) and np.isfinite(end) and end >= start):
            raise ArchiveInputError(f"{path}: a turn of '{key}' has bounds {start}..{end}")
        turns.append(Turn(start, end, speaker))
    return tuple(turns)


def read_recording(path: Path, outdir: Path) -> Recording:
    """One voicemap output JSON as a Recording; ArchiveInputError with one line for anything else."""
    data = path.read_bytes()
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveInputError(f"{path}: not valid JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("speakers"), dict) or "segments" not in payload:
        raise ArchiveInputError(f"{path}: not a voicemap output (no 'speakers' and 'segments')")
    speakers = []
    encoders = set()
    dimensions = set()
    for label, entry in payload["speakers"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("centroid"), list):
            raise ArchiveInputError(f"{path}: speaker {label!r} has no centroid")
        try:
            centroid = np.asarray(entry["centroid"], dtype=np.float64)
            seconds = float(entry.get("speech_seconds", 0.0))
        except (TypeError, ValueError):
            raise ArchiveInputError(f"{path}: speaker {label!r} has a centroid or speech_seconds that is not numbers") from None
        if centroid.ndim != 1 or not len(centroid) or not np.isfinite(seconds) or seconds < 0:
            raise ArchiveInputError(f"{path}: speaker {label!r} has a malformed centroid or speech_seconds")
        encoders.add(str(entry.get("encoder", payload.get("encoder"))))
        dimensions.add(len(centroid))
        speakers.append(RecordingSpeaker(str(label), seconds, centroid, bool(entry.get("known", False))))
    encoder = str(payload.get("encoder")) if payload.get("encoder") else (next(iter(encoders)) if encoders else "")
    if speakers:
        encoders.add(encoder)
    if len(encoders) > 1 or len(dimensions) > 1:
        raise ArchiveInputError(f"{path}: its speakers come from different encoders ({', '.join(sorted(encoders))})")
    stem = path.relative_to(outdir).with_suffix("").as_posix()
    return Recording(
        stem=stem, path=path, uri=str(payload.get("uri", stem)), duration=float(payload.get("duration") or 0.0),
        encoder=encoder, speakers=tuple(speakers), turns=_turns(payload["segments"], path, "segments"),
        exclusive_turns=_turns(payload.get("exclusive_segments", []), path, "exclusive_segments"),
        digest=hashlib.sha256(data).hexdigest(), payload=payload)
