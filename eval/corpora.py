"""Reading evaluation corpora: manifest TSV (uri audio rttm uem), RTTM and UEM files, each line checked.

A reference or UEM that is wrong in a way the scorer cannot see (a region past the audio's end, a reversed
region, a line that does not parse, a uri that matches nothing) would otherwise score as DER 0.0 %: nothing
to miss. So every reader here raises ManifestError naming the file, the line and the cause instead.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManifestItem:
    """One manifest row. audio: None when the row has none; problem: why the row cannot be scored (one line
    naming the manifest and its line), reported when the row is reached so that the other rows still score."""

    uri: str
    audio: Path | None
    rttm: Path | None
    uem: Path | None
    line: int = 0
    problem: str | None = None


class ManifestError(ValueError):
    pass


#: slack for a UEM region's end past the audio's end: UEMs keep milliseconds (sample.uem says 30.000 for
#: 29.9995 s rounded up) and ffmpeg's header duration has centiseconds (30.01 s for 30.0 s of Opus)
DURATION_TOLERANCE = 0.05

#: record types of the RTTM specification (NIST RT-09) other than SPEAKER: skipped, not errors
RTTM_TYPES = frozenset({
    "SPEAKER", "SEGMENT", "NOSCORE", "NO_RT_METADATA", "LEXEME", "NON-LEX", "NON-SPEECH", "FILLER", "IP", "EDIT",
    "SU", "CB", "A/P", "SPKR-INFO",
})

# Fields are split as pyannote.database's reader splits them (pandas sep=r"\s+" splits at spaces and tabs
# only), so that a line reads the same here and there.
_FIELD_SEPARATOR = re.compile(r"[ \t]+")


def _fields(line: str) -> list[str]:
    line = line.strip(" \t\r\n")
    return _FIELD_SEPARATOR.split(line) if line else []


def _read_lines(path: Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark is dropped); ManifestError naming the path otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ManifestError(f"{path}: is a folder, not {what}")
    try:
        with open(path, encoding="utf-8-sig", newline=None) as handle:
            return handle.read().split("\n")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such {what}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except OSError as error:
        raise ManifestError(f"{path}: cannot read ({error.strerror or error})") from None


def read_manifest(path: str | Path) -> list[ManifestItem]:
    """Rows of a TSV with columns `uri audio rttm uem`; paths are relative to the manifest's folder.

    ManifestError for a manifest that cannot be used at all (missing, unreadable, no uri/audio column, no
    rows); a row that cannot be used (no uri, no audio value, a uri already given) comes back with `problem`.
    """
    path = Path(path)
    root = path.parent
    reader = csv.DictReader(_read_lines(path, "manifest"), delimiter="\t")
    missing = {"uri", "audio"} - set(reader.fieldnames or [])
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(sorted(missing))} (a TSV with columns uri audio rttm uem)")
    items = []
    seen: dict[str, int] = {}
    for row in reader:
        number = reader.line_num

        def value(key):
            # a short row gives None for its missing columns
            return (row.get(key) or "").strip()

        def optional(key):
            return root / value(key) if value(key) else None

        uri, audio = value("uri"), value("audio")
        problem = None
        if not uri:
            problem = f"{path}:{number}: the row has no uri"
        elif not audio:
            problem = f"{path}:{number}: row {uri!r} has no audio value"
        elif uri in seen:
            # scored twice it would count double in the total
            problem = f"{path}:{number}: uri {uri!r} already on line {seen[uri]}"
        else:
            seen[uri] = number
        items.append(ManifestItem(uri, root / audio if audio else None, optional("rttm"), optional("uem"), number,
                                  problem))
    if not items:
        raise ManifestError(f"{path}: holds no rows")
    return items


def _number(path, number: int, what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ManifestError(f"{path}:{number}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ManifestError(f"{path}:{number}: {what} {text!r} is not a finite number")
    return value


def load_rttm(path: str | Path, uri: str | None = None):
    """An RTTM file -> pyannote.core.Annotation (of `uri`, or of the file's only recording).

    The file's uri field is matched in the form RTTM writers give it (diarize/output.py rttm_name: whitespace
    as "_"); the annotation carries `uri` as given. ManifestError, naming the file and line, for a SPEAKER
    line without 9 or 10 fields, an onset or duration that is not a finite number, a negative one, an unknown
    record type; and for a file that holds lines of other recordings but none of `uri`.
    """
    from pyannote.core import Annotation, Segment

    from diarize.output import rttm_name

    annotations: dict[str, Annotation] = {}
    for number, line in enumerate(_read_lines(Path(path), "RTTM file"), 1):
        fields = _fields(line)
        if not fields or fields[0].startswith(";;"):
            continue
        if fields[0] != "SPEAKER":
            if fields[0] in RTTM_TYPES:
                continue
            raise ManifestError(f"{path}:{number}: not an RTTM line (record type {fields[0][:40]!r})")
        if len(fields) not in (9, 10):
            raise ManifestError(f"{path}:{number}: {len(fields)} fields, an RTTM SPEAKER line has 10 "
                                "(a uri or label with spaces?)")
        onset = _number(path, number, "onset", fields[3])
        duration = _number(path, number, "duration", fields[4])
        if onset < 0:
            raise ManifestError(f"{path}:{number}: negative onset {fields[3]}")
        if duration < 0:
            raise ManifestError(f"{path}:{number}: negative duration {fields[4]}")
        file_uri, label = fields[1], fields[7]
        annotation = annotations.setdefault(file_uri, Annotation(uri=file_uri))
        annotation[Segment(onset, onset + duration), len(annotation)] = label
    if uri is not None:
        key = rttm_name(uri)
        if key not in annotations and annotations:
            # an RTTM of another recording would score as if this one held no speech
            others = ", ".join(sorted(annotations)[:3]) + (", ..." if len(annotations) > 3 else "")
            raise ManifestError(f"{path}: no line for uri {key!r} (it holds {others})")
        annotation = annotations.get(key, Annotation(uri=uri))
        annotation.uri = uri
        return annotation
    if len(annotations) > 1:
        raise ManifestError(f"{path}: holds several recordings; name one")
    return next(iter(annotations.values()), Annotation(uri=Path(path).stem))


def audio_duration(path: str | Path, exact: bool = False) -> tuple[float, bool]:
    """(seconds, exact) of an audio file, read from its header where the format has one.

    soundfile's frame count is exact for wav/flac/ogg; for MP3 and the formats only ffmpeg reads, the
    header's duration is an estimate (ffmpeg prints centiseconds) and `exact` is False. exact=True decodes
    the file (diarize.audio.load_audio) for the duration the pipeline sees. AudioError naming the file when
    it cannot be read.
    """
    import subprocess

    import soundfile

    from diarize.audio import AudioError, ffmpeg_executable, load_audio

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if not exact:
        try:
            info = soundfile.info(str(path))
        except Exception:  # soundfile raises several types for formats it does not read
            info = None
        if info is not None and info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate, info.format != "MP3"
        if info is None and path.stat().st_size > 0:
            completed = subprocess.run([ffmpeg_executable(), "-nostdin", "-hide_banner", "-i", str(path)],
                                       capture_output=True, text=True, errors="replace")
            found = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", completed.stderr)
            if found:  # "Duration: N/A" (a streamed webm) falls through to decoding
                hours, minutes, seconds = found.groups()
                return 3600 * int(hours) + 60 * int(minutes) + float(seconds), False
    return load_audio(path).duration, True


def load_uem(path: str | Path, uri: str, audio: str | Path | None = None):
    """A UEM file -> pyannote.core.Timeline of the scored regions of `uri`.

    Lines are `<uri> <channel> <onset> <offset>`; a line of `uri` may give it as RTTM writers do (whitespace
    as "_"). ManifestError naming the file and line for a line without 4 fields, a time that is not a finite
    number, a negative onset, a reversed or empty region (offset <= onset), and, given `audio`, a region that
    starts at or after the audio's end or ends more than DURATION_TOLERANCE past it; also when no line is of
    `uri`. Each of these would score nothing, or less than the user asked for, without a word.
    """
    from pyannote.core import Segment, Timeline

    from diarize.output import rttm_name

    keys = {uri, rttm_name(uri)}
    regions: list[tuple[int, float, float]] = []
    for number, line in enumerate(_read_lines(Path(path), "UEM file"), 1):
        fields = _fields(line)
        if not fields or fields[0].startswith(";;"):
            continue
        if len(fields) != 4:
            raise ManifestError(f"{path}:{number}: {len(fields)} fields, a UEM line has 4 "
                                "(<uri> <channel> <onset> <offset>)")
        onset = _number(path, number, "onset", fields[2])
        offset = _number(path, number, "offset", fields[3])
        if onset < 0:
            raise ManifestError(f"{path}:{number}: negative onset {fields[2]}")
        if offset <= onset:
            raise ManifestError(f"{path}:{number}: region {fields[2]}-{fields[3]} is reversed or empty (offset <= onset)")
        if fields[0] in keys:
            regions.append((number, onset, offset))
    if not regions:
        raise ManifestError(f"{path}: no region for uri {rttm_name(uri)!r}, so nothing would be scored")
    if audio is not None:
        _check_regions_within(path, regions, audio)
    timeline = Timeline(uri=uri)
    for _, onset, offset in regions:
        timeline.add(Segment(onset, offset))
    return timeline


def _check_regions_within(path, regions, audio) -> None:
    duration, exact = audio_duration(audio)
    for number, onset, offset in regions:
        if onset < duration and offset <= duration + DURATION_TOLERANCE:
            continue
        if not exact:  # a header's estimate is not enough to refuse a region: decode for the real length
            duration, exact = audio_duration(audio, exact=True)
            if onset < duration and offset <= duration + DURATION_TOLERANCE:
                continue
        where = "lies outside the audio" if onset >= duration else "extends beyond the end of the audio"
        raise ManifestError(f"{path}:{number}: region {onset:.3f}-{offset:.3f} s {where} "
                            f"({Path(audio).name} lasts {duration:.3f} s)")
