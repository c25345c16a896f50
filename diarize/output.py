"""Writers for a diarization: RTTM and JSON, each written to a temporary file and renamed into place."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cluster.atomic_files import atomic_write_text


def rttm_name(name) -> str:
    """`name` (a uri or a speaker label) as one RTTM field: whitespace at its ends dropped, each run of it
    inside becoming "_" ("Ada Lovelace" -> "Ada_Lovelace").

    RTTM fields are separated by whitespace, so "Ada Lovelace" would make a line of 11 fields that
    pyannote.database's reader (and ours) split at the wrong place. Every Unicode space counts, not just
    " " and tab: readers split on either (pandas' sep=r"\\s+" in pyannote.database on spaces and tabs, a
    str.split() on all of them), and the line must read the same to both. The JSON keeps the name as given;
    readers that compare RTTM labels with names (eval) pass the names through this function too, and
    cluster/registry/values.py label_form (cluster does not import diarize) gives the same form. Two names
    differing only in their whitespace become one label.
    """
    return "_".join(str(name).split()) or "_"  # an empty field would shift the ones after it


def rttm_lines(annotation, uri: str) -> list[str]:
    """One `SPEAKER <uri> 1 <onset> <duration> <NA> <NA> <label> <NA> <NA>` line per segment, in time order;
    uri and labels go through `rttm_name`."""
    lines = []
    uri = rttm_name(uri)
    for segment, _, label in annotation.itertracks(yield_label=True):
        lines.append(f"SPEAKER {uri} 1 {segment.start:.3f} {segment.duration:.3f} <NA> <NA> {rttm_name(label)} <NA> <NA>")
    return lines


def to_rttm(result) -> str:
    lines = rttm_lines(result.annotation, result.uri)
    return "\n".join(lines) + ("\n" if lines else "")


def to_json_dict(result, extra: dict | None = None) -> dict:
    """Segments (overlapping and exclusive) and, per speaker, the raw embedding centroid and encoder id.

    The uri and the labels are kept as given; where the RTTM had to change one (whitespace, see `rttm_name`),
    `rttm_uri` and a speaker's `rttm_label` say what the RTTM calls it, so the two files can be joined."""
    def segments(annotation):
        return [
            {"start": round(segment.start, 3), "end": round(segment.end, 3), "speaker": label}
            for segment, _, label in annotation.itertracks(yield_label=True)
        ]

    speakers = {}
    for index, label in enumerate(result.labels):
        centroid = np.asarray(result.speaker_centroids[index], dtype=np.float64)
        speakers[label] = {
            "speech_seconds": round(float(result.annotation.label_duration(label)), 3),
            "encoder": result.encoder_id,
            "centroid": [round(float(value), 6) for value in centroid],
        }
        if rttm_name(label) != label:
            speakers[label]["rttm_label"] = rttm_name(label)
    payload = {
        "uri": result.uri,
        "duration": round(result.duration, 3),
        "encoder": result.encoder_id,
        "segments": segments(result.annotation),
        "exclusive_segments": segments(result.exclusive),
        "speakers": speakers,
    }
    if rttm_name(result.uri) != result.uri:
        payload["rttm_uri"] = rttm_name(result.uri)
    if extra:
        payload.update(extra)
    return payload


def write_result(result, outdir: str | Path, stem: str | None = None, extra: dict | None = None) -> tuple[Path, Path]:
    """OUTDIR/<stem>.rttm and OUTDIR/<stem>.json, each written atomically."""
    outdir = Path(outdir)
    stem = stem or result.uri
    rttm_path, json_path = outdir / f"{stem}.rttm", outdir / f"{stem}.json"
    atomic_write_text(rttm_path, to_rttm(result))
    atomic_write_text(json_path, json.dumps(to_json_dict(result, extra), ensure_ascii=False, indent=1) + "\n")
    return rttm_path, json_path
