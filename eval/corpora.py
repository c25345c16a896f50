"""Reading evaluation corpora: manifest TSV (uri audio rttm uem), RTTM and UEM files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManifestItem:
    uri: str
    audio: Path
    rttm: Path | None
    uem: Path | None


class ManifestError(ValueError):
    pass


def read_manifest(path: str | Path) -> list[ManifestItem]:
    """Rows of a TSV with columns `uri audio rttm uem`; paths are relative to the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    root = path.parent
    items = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {"uri", "audio"} - set(reader.fieldnames or [])
        if missing:
            raise ManifestError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            def optional(key):
                value = (row.get(key) or "").strip()
                return root / value if value else None

            items.append(ManifestItem(row["uri"].strip(), root / row["audio"].strip(), optional("rttm"), optional("uem")))
    return items


def load_rttm(path: str | Path, uri: str | None = None):
    """An RTTM file -> pyannote.core.Annotation (of `uri`, or of the file's only recording)."""
    from pyannote.core import Annotation, Segment

    annotations: dict[str, Annotation] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields or fields[0] != "SPEAKER":
                continue
            if len(fields) < 8:
                raise ManifestError(f"{path}:{number}: malformed RTTM line")
            file_uri, onset, duration, label = fields[1], float(fields[3]), float(fields[4]), fields[7]
            annotation = annotations.setdefault(file_uri, Annotation(uri=file_uri))
            annotation[Segment(onset, onset + duration), len(annotation)] = label
    if uri is not None:
        return annotations.get(uri, Annotation(uri=uri))
    if len(annotations) > 1:
        raise ManifestError(f"{path}: holds several recordings; name one")
    return next(iter(annotations.values()), Annotation(uri=Path(path).stem))


def load_uem(path: str | Path, uri: str):
    """A UEM file -> pyannote.core.Timeline of the scored regions of `uri`."""
    from pyannote.core import Segment, Timeline

    timeline = Timeline(uri=uri)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 4 and fields[0] == uri:
                timeline.add(Segment(float(fields[2]), float(fields[3])))
    return timeline
