"""The HTML of the report's pages, from plain records: the archive page, one page per voice, one per recording.

Pages are strings; writing them is the package's `write_report`. Every link between pages is relative, and
so is the recording's audio, so the folder can be moved with its archive or opened from a file manager.
"""

from __future__ import annotations

import html
import urllib.parse
from dataclasses import dataclass

from .style import CSS, SCRIPT


@dataclass(frozen=True)
class VoiceSummary:
    """One archive label: label, kind (voice, name, unlinked), colour, page (path under report/), seconds of
    speech, recordings (stems), and the voices it appears with: (label, number of shared recordings)."""

    label: str
    kind: str
    colour: str
    page: str
    seconds: float
    recordings: tuple[str, ...]
    together: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RecordingSummary:
    stem: str
    uri: str
    page: str
    duration: float
    audio: str | None  # path of the audio relative to the recording's page, URL-quoted; None when not found
    speakers: tuple[tuple[str, str, float, float | None], ...]  # (speaker, archive label, seconds, similarity)
    turns: tuple[tuple[float, float, str], ...]  # (start, end, archive label), in time order


def e(text) -> str:
    return html.escape(str(text), quote=True)


def clock(seconds: float) -> str:
    seconds = round(max(0.0, float(seconds)), 1)  # rounded first, so 59.96 reads 1:00.0, never 0:60.0
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def quoted(path: str) -> str:
    return urllib.parse.quote(path, safe="/")


def _page(title: str, body: str, depth: int, extra_attributes: str = "", script: bool = False) -> str:
    home = "../" * depth + "index.html"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{CSS}</style></head>\n<body{extra_attributes}>\n"
            f"<nav><a href=\"{home}\">Archive</a></nav>\n{body}\n"
            + (f"<script>{SCRIPT}</script>\n" if script else "") + "</body></html>\n")


def _swatch(colour: str) -> str:
    return f"<span class=\"swatch\" style=\"background:{e(colour)}\"></span>"


def _voice_link(voice: VoiceSummary, depth: int) -> str:
    return f"{_swatch(voice.colour)}<a href=\"{'../' * depth}{quoted(voice.page)}\">{e(voice.label)}</a>"


def archive_page(voices: list[VoiceSummary], recordings: list[RecordingSummary], threshold: str,
                 encoder: str) -> str:
    """index.html: every voice with its time, recordings and the voices it appears with; every recording."""
    by_label = {v.label: v for v in voices}
    linked = [v for v in voices if v.kind != "unlinked"]
    unlinked = [v for v in voices if v.kind == "unlinked"]
    total = sum(r.duration for r in recordings)
    longest = max((v.seconds for v in voices), default=1.0) or 1.0
    rows = []
    for voice in linked:
        together = ", ".join(f"{_voice_link(by_label[other], 0)} <span class=\"muted\">×{count}</span>"
                             for other, count in voice.together[:6] if other in by_label)
        rows.append(f"<tr><td>{_voice_link(voice, 0)}</td><td class=\"num\">{clock(voice.seconds)}</td>"
                    f"<td><span class=\"bar\" style=\"width:{100 * voice.seconds / longest:.1f}px;"
                    f"background:{e(voice.colour)}\"></span></td>"
                    f"<td class=\"num\">{len(voice.recordings)}</td><td>{together or '<span class=muted>alone</span>'}</td></tr>")
    recording_rows = []
    for recording in recordings:
        names = " ".join(_swatch(by_label[label].colour) + e(label) for _, label, _, _ in recording.speakers
                         if label in by_label and by_label[label].kind != "unlinked")
        recording_rows.append(f"<tr><td><a href=\"{quoted(recording.page)}\">{e(recording.uri)}</a></td>"
                              f"<td class=\"num\">{clock(recording.duration)}</td>"
                              f"<td class=\"num\">{len(recording.speakers)}</td><td>{names}</td></tr>")
    body = [f"<h1>Voice archive</h1><p class=\"summary\">{len(recordings)} recordings, {clock(total)} in all; "
            f"{len(linked)} voices found, {len(unlinked)} speakers left unlinked (too little speech to link). "
            f"Encoder {e(encoder)}, linking threshold {e(threshold)}.</p>",
            "<h2>Voices</h2><table id=\"voices\"><thead><tr><th>voice</th><th class=\"num\">speech</th><th></th>"
            "<th class=\"num\">recordings</th><th>appears with (shared recordings)</th></tr></thead><tbody>",
            *rows, "</tbody></table>",
            "<h2>Recordings</h2><table id=\"recordings\"><thead><tr><th>recording</th><th class=\"num\">length</th>"
            "<th class=\"num\">speakers</th><th>voices</th></tr></thead><tbody>", *recording_rows, "</tbody></table>"]
    if unlinked:
        body.append("<h2>Unlinked speakers</h2><p class=\"muted\">"
                    + ", ".join(f"<a href=\"{quoted(v.page)}\">{e(v.label)}</a> ({v.seconds:.1f} s)" for v in unlinked)
                    + "</p>")
    return _page("Voice archive", "\n".join(body), 0)


def voice_page(voice: VoiceSummary, appearances: list[tuple[RecordingSummary, str, float, float | None]],
               by_label: dict[str, VoiceSummary]) -> str:
    """voices/<label>.html: the voice's recordings, and every turn, each a link that plays it."""
    kind = {"voice": "linked voice", "name": "enrolled name", "unlinked": "unlinked speaker"}.get(voice.kind, voice.kind)
    sections = [f"<h1>{_swatch(voice.colour)}{e(voice.label)}</h1><p class=\"summary\">{e(kind)}: "
                f"{clock(voice.seconds)} of speech in {len(voice.recordings)} recording(s)."
                + (" Appears with " + ", ".join(f"{_voice_link(by_label[o], 1)} ×{c}" for o, c in voice.together
                                               if o in by_label) + "." if voice.together else "") + "</p>",
                "<table><thead><tr><th>recording</th><th>speaker there</th><th class=\"num\">speech</th>"
                "<th class=\"num\">similarity</th><th>turns (click to play)</th></tr></thead><tbody>"]
    for recording, speaker, seconds, similarity in appearances:
        turns = [t for t in recording.turns if t[2] == voice.label]
        links = " ".join(f"<a href=\"../{quoted(recording.page)}#t={start:.2f}\">{clock(start)}</a>"
                         for start, _end, _ in turns[:60])
        more = f" <span class=\"muted\">and {len(turns) - 60} more</span>" if len(turns) > 60 else ""
        sections.append(f"<tr><td><a href=\"../{quoted(recording.page)}\">{e(recording.uri)}</a></td><td>{e(speaker)}</td>"
                        f"<td class=\"num\">{clock(seconds)}</td>"
                        f"<td class=\"num\">{'' if similarity is None else f'{similarity:.2f}'}</td><td>{links}{more}</td></tr>")
    sections.append("</tbody></table>")
    return _page(f"{voice.label} - voice archive", "\n".join(sections), 1)


def _axis(duration: float) -> str:
    if duration <= 0:
        return ""
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if duration / s <= 12), 7200)
    marks = "".join(f"<span style=\"left:{100 * t / duration:.3f}%\">{clock(t)[:-2]}</span>"
                    for t in range(0, int(duration) + 1, step))
    return f"<div class=\"axis\">{marks}</div>"


def recording_page(recording: RecordingSummary, by_label: dict[str, VoiceSummary]) -> str:
    """recordings/<stem>.html: the player, a timeline with one lane per speaker coloured by archive voice (a
    click on a turn plays it), and the speakers' totals."""
    duration = recording.duration or max((end for _, end, _ in recording.turns), default=0.0)
    lanes = []
    for speaker, label, _seconds, _similarity in recording.speakers:
        voice = by_label.get(label)
        colour = voice.colour if voice else "#888"
        blocks = "".join(
            f"<button class=\"turn\" type=\"button\" data-start=\"{start:.3f}\" data-end=\"{end:.3f}\" "
            f"title=\"{e(label)} {clock(start)}-{clock(end)}\" aria-label=\"play {e(label)} at {clock(start)}\" "
            f"style=\"left:{100 * start / duration:.3f}%;width:{100 * (end - start) / duration:.3f}%;"
            f"background:{colour}\"></button>"
            for start, end, turn_label in recording.turns if turn_label == label and duration > 0)
        lanes.append(f"<div class=\"lane\" data-voice=\"{e(label)}\"><span class=\"lane-name\" title=\"{e(label)}\">"
                     f"{_swatch(colour)}{e(label)}</span><div class=\"track\">{blocks}</div></div>")
    if recording.audio:
        player = f"<audio id=\"player\" controls preload=\"metadata\" src=\"{e(recording.audio)}\"></audio>"
    else:
        player = ("<p class=\"muted\">No audio found for this recording: run <code>voicemap report OUTDIR --audio "
                  "FOLDER</code> with the folder that holds it.</p>")
    totals = []
    for speaker, label, seconds, similarity in recording.speakers:
        voice = by_label.get(label)
        name = _voice_link(voice, 1) if voice else e(label)
        first = next((start for start, _end, turn_label in recording.turns if turn_label == label), None)
        jump = (f"<a href=\"#t={first:.2f}\" data-start=\"{first:.3f}\">{clock(first)}</a>" if first is not None else "")
        totals.append(f"<tr><td>{name}</td><td>{e(speaker)}</td><td class=\"num\">{clock(seconds)}</td>"
                      f"<td class=\"num\">{'' if similarity is None else f'{similarity:.2f}'}</td><td>{jump}</td></tr>")
    body = (f"<h1>{e(recording.uri)}</h1><p class=\"summary\">{clock(duration)}, {len(recording.speakers)} speaker(s). "
            "Click a turn to play it.</p>\n" + player
            + f"<div class=\"timeline\" id=\"timeline\"><div class=\"playhead\" id=\"playhead\"></div>{''.join(lanes)}</div>"
            + _axis(duration)
            + "<h2>Speakers</h2><table><thead><tr><th>archive voice</th><th>speaker in this recording</th>"
            "<th class=\"num\">speech</th><th class=\"num\">similarity</th><th>first turn</th></tr></thead><tbody>"
            + "".join(totals) + "</tbody></table>")
    return _page(f"{recording.uri} - voice archive", body, 1, f" data-duration=\"{duration:.3f}\"", script=True)
