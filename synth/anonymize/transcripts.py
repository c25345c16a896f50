"""Timed transcripts for re-voicing: NIST STM, or voicemap's own JSON form.

STM (one segment a line; `;;` starts a comment line):

    file channel speaker start end [<label>] text...

Segments whose text is empty or `ignore_time_segment_in_scoring` (how STM marks unscored gaps) carry
nothing to say and are dropped. An STM may cover several recordings: then only the lines whose `file`
field equals the recording's name (the input's file stem) are kept.

JSON (UTF-8):

    {"segments": [{"start": 8.4, "end": 9.8, "speaker": "A", "text": "Hello there."}, ...]}

`start` and `end` are seconds from the start of the recording, `text` is what is said; `speaker` is
optional and informative only (who re-voices a segment is decided by diarization, not by this label).
A bare list of such segments is accepted too, and so is `voicemap diarize`'s JSON once each segment has
been given a `text`.

Every problem is a TranscriptError of one line naming the file (and the line or segment) and the cause.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

#: STM's text for a region that carries no words to score
IGNORED_TEXT = "ignore_time_segment_in_scoring"


class TranscriptError(ValueError):
    """One line: the transcript file, where in it, and what is wrong."""


@dataclass(frozen=True)
class TranscriptSegment:
    start: float  # seconds
    end: float  # seconds, > start
    text: str
    speaker: str = ""  # the transcript's own label; not used to pick a voice

    @property
    def duration(self) -> float:
        return self.end - self.start


def _times(start, end, where: str) -> tuple[float, float]:
    """(start, end) as finite floats with 0 <= start < end; TranscriptError otherwise."""
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise TranscriptError(f"{where}: start/end {start!r}/{end!r} are not numbers") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise TranscriptError(f"{where}: start/end must be finite")
    if start < 0:
        raise TranscriptError(f"{where}: start {start} is negative")
    if end <= start:
        raise TranscriptError(f"{where}: end {end} is not after start {start}")
    return start, end


def _has_words(text: str) -> bool:
    return bool(text) and text.lower() != IGNORED_TEXT


def parse_stm(text: str, label: str, recording: str | None = None) -> list[TranscriptSegment]:
    """Segments of an STM document, in file order; `label` names the file in errors."""
    rows = []  # (file id, segment)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(";;"):
            continue
        fields = stripped.split()
        where = f"{label}:{number}"
        if len(fields) < 5:
            raise TranscriptError(f"{where}: {len(fields)} fields, an STM line needs 'file channel speaker start end "
                                  "[<label>] text'")
        start, end = _times(fields[3], fields[4], where)
        words = fields[5:]
        if words and words[0].startswith("<"):
            if not words[0].endswith(">"):
                raise TranscriptError(f"{where}: label field {words[0]!r} is not closed by '>'")
            words = words[1:]
        rows.append((fields[0], TranscriptSegment(start, end, " ".join(words), fields[2])))
    files = {file_id for file_id, _ in rows}
    if len(files) > 1:
        if recording not in files:
            raise TranscriptError(f"{label}: covers recordings {', '.join(sorted(files))} but none named "
                                  f"{recording!r}")
        rows = [row for row in rows if row[0] == recording]
    return [segment for _, segment in rows if _has_words(segment.text)]


def _json_segment(item, where: str) -> TranscriptSegment:
    if not isinstance(item, dict):
        raise TranscriptError(f"{where}: not an object with start, end and text")
    missing = [key for key in ("start", "end", "text") if key not in item]
    if missing:
        raise TranscriptError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(item["text"], str):
        raise TranscriptError(f"{where}: text is not a string")
    start, end = _times(item["start"], item["end"], where)
    speaker = item.get("speaker", "")
    return TranscriptSegment(start, end, item["text"].strip(), "" if speaker is None else str(speaker))


def parse_json(text: str, label: str) -> list[TranscriptSegment]:
    """Segments of a JSON transcript (object with "segments", or a bare list), in file order."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise TranscriptError(f"{label}: not valid JSON ({error.msg} at line {error.lineno})") from None
    items = document.get("segments") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise TranscriptError(f"{label}: expected a list of segments or an object with \"segments\"")
    segments = [_json_segment(item, f"{label}: segment {index}") for index, item in enumerate(items)]
    return [segment for segment in segments if _has_words(segment.text)]


def _looks_like_json(path: Path, text: str) -> bool:
    if path.suffix.lower() == ".json":
        return True
    if path.suffix.lower() == ".stm":
        return False
    return text.lstrip()[:1] in ("{", "[")


def read_transcript(path: str | os.PathLike, recording: str | None = None) -> list[TranscriptSegment]:
    """Segments with something to say, sorted by start; format from the suffix (.json/.stm) or the content.

    `recording` (the input's file stem) picks the lines of a multi-recording STM. An unreadable file or a
    transcript with nothing to say is a TranscriptError too.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TranscriptError(f"{path}: transcript not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TranscriptError(f"{path}: transcript unreadable ({str(error).splitlines()[0]})") from None
    if _looks_like_json(path, text):
        segments = parse_json(text, str(path))
    else:
        segments = parse_stm(text, str(path), recording)
    if not segments:
        raise TranscriptError(f"{path}: transcript is empty (no segment with text to speak)")
    return sorted(segments, key=lambda segment: (segment.start, segment.end))


def check_within(segments: list[TranscriptSegment], duration: float, label: str,
                 tolerance: float = 0.02) -> None:
    """TranscriptError if a segment ends after the audio (`duration` seconds, plus `tolerance` for rounding)."""
    for segment in segments:
        if segment.end > duration + tolerance:
            raise TranscriptError(f"{label}: segment {segment.start:.2f}-{segment.end:.2f} s ends after the audio "
                                  f"({duration:.2f} s)")
