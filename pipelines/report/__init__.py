"""A static, self-contained site over a linked archive: OUTDIR/report/index.html (the archive), voices/<voice>.html,
recordings/<recording>.html. Pages name no network resource; the audio is referenced where it lies, by a
relative path, never copied.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

from .pages import RecordingSummary, VoiceSummary, archive_page, quoted, recording_page, voice_page
from .style import voice_colour


def page_name(text: str) -> str:
    """A file name for a voice or a recording: safe characters kept, and a short hash when anything was
    changed, so that two different labels never share a page."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"
    if safe != text:
        safe = f"{safe[:60]}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"
    return safe + ".html"


def find_audio(recording, folders: list[Path]) -> Path | None:
    """The recording's audio: `<folder>/<stem>.<ext>`, then `<folder>/<uri>.<ext>`, for each folder given."""
    from diarize.audio import AUDIO_EXTENSIONS

    for folder in folders:
        for name in dict.fromkeys((recording.stem, recording.uri)):
            base = folder / name
            for extension in sorted(AUDIO_EXTENSIONS):
                candidate = base.with_name(base.name + extension)
                if candidate.is_file():
                    return candidate
    return None


def summaries(index, recordings, audio_folders: list[Path], report_dir: Path):
    """(voices, recordings) of the report, from the ArchiveIndex and the Recordings it was linked from."""
    voices_rows = index.voices()
    order = {label: rank for rank, label in enumerate(l for l, rows in voices_rows.items() if rows[0].kind != "unlinked")}
    labels = {(row.stem, row.speaker): row for row in index.rows}
    stems_of = {label: tuple(dict.fromkeys(r.stem for r in rows)) for label, rows in voices_rows.items()}
    together: dict[str, Counter] = defaultdict(Counter)
    by_stem = defaultdict(list)
    for row in index.rows:
        by_stem[row.stem].append(row)
    for rows in by_stem.values():
        present = {r.label for r in rows if r.kind != "unlinked"}
        for label in present:
            together[label].update(present - {label})
    voices = [VoiceSummary(label, rows[0].kind, voice_colour(label, rows[0].kind, order),
                           "voices/" + page_name(label), sum(r.seconds for r in rows), stems_of[label],
                           tuple(sorted(together[label].items(), key=lambda item: (-item[1], item[0]))))
              for label, rows in voices_rows.items()]
    pages = report_dir / "recordings"
    out = []
    for recording in recordings:
        audio = find_audio(recording, audio_folders)
        relative = quoted(Path(os.path.relpath(audio.resolve(), pages.resolve())).as_posix()) if audio else None
        speakers = []
        for speaker in sorted(recording.speakers, key=lambda s: -s.seconds):
            row = labels.get((recording.stem, speaker.label))
            speakers.append((speaker.label, row.label if row else speaker.label, speaker.seconds,
                             row.similarity if row else None))
        mapping = {s: label for s, label, _, _ in speakers}
        turns = tuple(sorted((t.start, t.end, mapping.get(t.speaker, t.speaker)) for t in recording.turns if t.end > t.start))
        out.append(RecordingSummary(recording.stem, recording.uri, "recordings/" + page_name(recording.stem),
                                    recording.duration, relative, tuple(speakers), turns))
    return voices, out


def write_report(report_dir: Path, index, recordings, audio_folders: list[Path], write_text, progress=None) -> int:
    """Every page under `report_dir`, through `write_text(path, text)` (an atomic writer); returns how many.
    Pages of an earlier report that no longer have a voice or recording are removed."""
    voices, recording_pages = summaries(index, recordings, audio_folders, report_dir)
    by_label = {v.label: v for v in voices}
    written = set()

    def put(relative: str, text: str) -> None:
        write_text(report_dir / relative, text)
        written.add(relative)

    put("index.html", archive_page(voices, recording_pages, index.threshold.get("describe", ""), index.encoder))
    stems = {r.stem: r for r in recording_pages}
    rows_by_label = index.voices()
    items = [("voice", v) for v in voices] + [("recording", r) for r in recording_pages]
    for kind, item in (progress(items) if progress else items):
        if kind == "voice":
            appearances = [(stems[row.stem], row.speaker, row.seconds, row.similarity)
                           for row in rows_by_label[item.label] if row.stem in stems]
            put(item.page, voice_page(item, appearances, by_label))
        else:
            put(item.page, recording_page(item, by_label))
    for folder in ("voices", "recordings"):
        for stale in (report_dir / folder).glob("*.html"):
            if f"{folder}/{stale.name}" not in written:
                stale.unlink()
    return len(written)
