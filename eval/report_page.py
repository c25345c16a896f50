"""`voicemap eval --report DIR`: DIR/index.html, one self-contained page (inline CSS and SVG, no script, nothing
fetched), and DIR/scores.csv.

The page holds the totals of every system (DER with its bootstrap interval, its parts, JER, speaker counts,
speed), a chart of missed speech, false alarm and confusion per file and system, and per file a timeline:
the reference on top, one row per system below, each system's speakers coloured as the reference speaker
pyannote.metrics' optimal mapping gives them (a speaker mapped to nobody gets a colour no reference speaker
has), and under each system a strip marking where it is wrong, within the region the convention scores.
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path

REPORT_FILES = ("index.html", "scores.csv")

#: frame step for the error strips, seconds: finer than any collar, coarse enough for hour-long files
STEP = 0.02
#: error colours: not among the speaker colours, and told apart by lightness as well as hue
ERROR_COLOURS = {"missed": "#111111", "false_alarm": "#9a9a9a", "confusion": "#e0001b"}
ERROR_NAMES = {"missed": "missed speech", "false_alarm": "false alarm", "confusion": "confusion"}
UNMAPPED = "#c8c8c8"

EXTRA_CSS = """
.legend span { margin-right: 1.2em; white-space: nowrap; }
.file { margin: 1.4em 0 .4em; } .file h3 { font-size: 1em; margin: 0 0 .2em; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #333; }
svg { display: block; max-width: 100%; height: auto; }
.eval-timeline { border: 1px solid #ddd; border-radius: 4px; background: #fcfcfc; }
td.best { font-weight: 600; }
"""

LABEL_WIDTH = 150  # px of the timelines' and chart's left column
PLOT_WIDTH = 820


def e(text) -> str:
    return html.escape(str(text), quote=True)


def _pct(value, total) -> str:
    return f"{100 * value / total:.1f}" if total else "-"


def scores_csv(results: list[dict]) -> str:
    """One row per system and file, and one TOTAL row per system with its bootstrap interval."""
    columns = ["system", "uri", "der", "missed", "false_alarm", "confusion", "total", "jer", "reference_speakers",
               "hypothesis_speakers", "speaker_count_error", "wall_s", "cpu_s", "audio_s", "der_low", "der_high"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in results:
        for row in result["files"]:
            writer.writerow({"system": result["name"], **row})
        if result["total"]:
            interval = result["total_interval"] or {}
            speed = result["speed"] or {}
            writer.writerow({"system": result["name"], **result["total"], "der_low": interval.get("low"),
                             "der_high": interval.get("high"), "wall_s": speed.get("wall_s"),
                             "cpu_s": speed.get("cpu_s"), "audio_s": speed.get("audio_s")})
    return out.getvalue()


def _totals_table(results: list[dict]) -> str:
    best = min((r["total"]["der"] for r in results if r["total"]), default=None)
    head = ("<tr><th>system</th><th class=num>DER %</th><th class=num>95 % interval</th><th class=num>missed %</th>"
            "<th class=num>false alarm %</th><th class=num>confusion %</th><th class=num>JER %</th>"
            "<th class=num>speaker count right</th><th class=num>hyp - ref speakers</th><th class=num>RTF</th>"
            "<th>hypotheses</th></tr>")
    rows = []
    for result in results:
        total, interval, speed = result["total"], result["total_interval"], result["speed"]
        if not total:
            continue
        scored = total["total"]
        rtf = f"{speed['real_time_factor']:.3f}" if speed else "-"
        rows.append(
            f"<tr data-system=\"{e(result['name'])}\"><td>{e(result['name'])}</td>"
            f"<td class=\"num{' best' if total['der'] == best and len(results) > 1 else ''}\">{100 * total['der']:.1f}</td>"
            f"<td class=num>{100 * interval['low']:.1f}-{100 * interval['high']:.1f}</td>"
            f"<td class=num>{_pct(total['missed'], scored)}</td><td class=num>{_pct(total['false_alarm'], scored)}</td>"
            f"<td class=num>{_pct(total['confusion'], scored)}</td><td class=num>{100 * total['jer']:.1f}</td>"
            f"<td class=num>{total['speaker_count_right']}/{len(result['files'])}</td>"
            f"<td class=num>{total['speaker_count_error']:+d}</td>"
            f"<td class=num>{rtf}</td>"
            f"<td class=muted>{e(result['hyp'] or 'diarized by this run')}</td></tr>")
    return f"<table id=\"totals\">{head}{''.join(rows)}</table>"


def _files_table(results: list[dict]) -> str:
    names = [r["name"] for r in results]
    head = ("<tr><th>file</th><th class=num>ref speakers</th><th class=num>reference speech s</th>"
            + "".join(f"<th class=num>DER % {e(n)}</th>" for n in names)
            + "".join(f"<th class=num>hyp - ref {e(n)}</th>" for n in names)
            + "".join(f"<th class=num>wall s {e(r['name'])}</th>" for r in results if r["speed"]) + "</tr>")
    rows = []
    for index, row in enumerate(results[0]["files"]):
        cells = [f"<td><a href=\"#file-{index}\">{e(row['uri'])}</a></td>", f"<td class=num>{row['reference_speakers']}</td>",
                 f"<td class=num>{row['total']:.1f}</td>"]
        ders = [r["files"][index]["der"] for r in results]
        cells += [f"<td class=\"num{' best' if d == min(ders) and len(results) > 1 else ''}\">{100 * d:.1f}</td>" for d in ders]
        cells += [f"<td class=num>{r['files'][index]['speaker_count_error']:+d}</td>" for r in results]
        cells += [f"<td class=num>{r['files'][index].get('wall_s', 0):.1f}</td>" for r in results if r["speed"]]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table id=\"files\">{head}{''.join(rows)}</table>"


def _legend_errors() -> str:
    return "<p class=\"legend\">" + "".join(
        f"<span><span class=swatch style=\"background:{ERROR_COLOURS[k]}\"></span>{ERROR_NAMES[k]}</span>"
        for k in ERROR_COLOURS) + "</p>"


def _chart(results: list[dict]) -> str:
    """Horizontal stacked bars: per file a group of one bar per system, missed + false alarm + confusion as
    percentages of the file's scored time (so each bar's length is the file's DER)."""
    bar, gap = 13, 9
    files = results[0]["files"]
    largest = max([r["files"][i]["der"] for r in results for i in range(len(files))] + [0.01])
    scale = PLOT_WIDTH / (math.ceil(largest * 10) / 10)
    height = len(files) * (len(results) * (bar + 2) + gap) + 24
    parts = []
    y = 4
    for index, row in enumerate(files):
        parts.append(f"<text x=\"4\" y=\"{y + bar - 2}\">{e(row['uri'])}</text>")
        for result in results:
            file_row = result["files"][index]
            x = LABEL_WIDTH
            parts.append(f"<text x=\"{LABEL_WIDTH - 6}\" y=\"{y + bar - 2}\" text-anchor=\"end\" "
                         f"fill=\"#666\">{e(result['name'])}</text>")
            for key in ("missed", "false_alarm", "confusion"):
                share = file_row[key] / file_row["total"] if file_row["total"] else 0.0
                width = share * scale
                if width > 0:
                    parts.append(f"<rect class=\"{key}\" x=\"{x:.1f}\" y=\"{y}\" width=\"{width:.1f}\" height=\"{bar}\" "
                                 f"fill=\"{ERROR_COLOURS[key]}\"><title>{e(row['uri'])} {e(result['name'])}: "
                                 f"{ERROR_NAMES[key]} {100 * share:.1f} %</title></rect>")
                x += width
            parts.append(f"<text x=\"{x + 4:.1f}\" y=\"{y + bar - 2}\">{100 * file_row['der']:.1f} %</text>")
            y += bar + 2
        y += gap
    ticks = []
    step = 0.1 if largest <= 0.6 else 0.2 if largest <= 1.2 else 0.5
    value = 0.0
    while value <= largest + 1e-9:
        x = LABEL_WIDTH + value * scale
        ticks.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"0\" y2=\"{y}\" stroke=\"#e3e3e3\"/>"
                     f"<text x=\"{x:.1f}\" y=\"{y + 14}\" text-anchor=\"middle\" fill=\"#777\">{100 * value:.0f} %</text>")
        value += step
    width = LABEL_WIDTH + PLOT_WIDTH + 60
    return (f"<svg id=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" "
            f"role=\"img\" aria-label=\"errors per file and system\">{''.join(ticks)}{''.join(parts)}</svg>")


def _frames(annotation, labels: list, count: int):
    """A (count, len(labels)) matrix: how many turns of each label run in each STEP-long frame (a label can
    hold overlapping turns; pyannote.metrics counts each, so this does too)."""
    import numpy as np

    index = {label: k for k, label in enumerate(labels)}
    matrix = np.zeros((count, max(len(labels), 1)), dtype=int)
    for segment, _, label in annotation.itertracks(yield_label=True):
        start, end = int(round(segment.start / STEP)), int(round(segment.end / STEP))
        matrix[max(start, 0):min(end, count), index[label]] += 1
    return matrix


def _runs(values, keep) -> list[tuple[int, int, object]]:
    """(first, last + 1, value) of each run of equal values for which keep(value)."""
    runs, start = [], 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[start]:
            if keep(values[start]):
                runs.append((start, k, values[start]))
            start = k
    return runs


def _error_kinds(reference, hypothesis, mapping, scored, count: int):
    """Per frame: None where right or not scored, else (kind, missed, false alarm, confused speakers): the
    speaker counts of each error as pyannote.metrics counts them, and the kind to draw (confusion before missed
    before false alarm where a frame has several)."""
    import numpy as np

    ref_labels = list(reference.labels())
    hyp_on_ref = hypothesis.rename_labels({h: ("ref", r) for h, r in mapping.items()})
    ref = _frames(reference, ref_labels, count)
    hyp_labels = list(hyp_on_ref.labels())
    hyp = _frames(hyp_on_ref, hyp_labels, count)
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    correct = np.zeros(count, dtype=int)
    for k, label in enumerate(hyp_labels):
        if isinstance(label, tuple) and label[1] in ref_labels:
            correct += np.minimum(hyp[:, k], ref[:, ref_labels.index(label[1])])
    inside = np.zeros(count, dtype=bool)
    for segment in scored:
        inside[max(int(round(segment.start / STEP)), 0):int(round(segment.end / STEP))] = True
    missed = np.maximum(n_ref - n_hyp, 0)
    false_alarm = np.maximum(n_hyp - n_ref, 0)
    confusion = np.minimum(n_ref, n_hyp) - correct
    frames = []
    for k in range(count):
        if not inside[k] or not (missed[k] or false_alarm[k] or confusion[k]):
            frames.append(None)
            continue
        kind = "confusion" if confusion[k] else "missed" if missed[k] else "false_alarm"
        frames.append((kind, int(missed[k]), int(false_alarm[k]), int(confusion[k])))
    return frames


def _slots(annotation) -> list[tuple[object, object, int]]:
    """(segment, label, slot) with overlapping turns in different slots, in time order; a speaker keeps the slot
    it had last when that is free, so that one voice does not hop between lanes."""
    ends: list[float] = []
    last: dict = {}
    placed = []
    for segment, _, label in sorted(annotation.itertracks(yield_label=True), key=lambda t: (t[0].start, t[0].end)):
        free = [k for k, end in enumerate(ends) if end <= segment.start + 1e-9]
        slot = last[label] if last.get(label) in free else (free[0] if free else None)
        if slot is None:
            ends.append(segment.end)
            slot = len(ends) - 1
        else:
            ends[slot] = max(ends[slot], segment.end)
        last[label] = slot
        placed.append((segment, label, slot))
    return placed


def _timeline(index: int, uri: str, reference, uem, hypotheses: dict, convention, palette) -> str:
    """The SVG of one file: the reference row, then per system its row and its error strip."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    from eval.metrics import scored_region

    metric = DiarizationErrorRate(collar=convention.pyannote_collar, skip_overlap=convention.skip_overlap)
    whole = DiarizationErrorRate()
    extent_end = max([reference.get_timeline().extent().end if reference else 0.0]
                     + [h.get_timeline().extent().end for h in hypotheses.values() if h]
                     + ([uem.extent().end] if uem else []) + [1.0])
    count = int(math.ceil(extent_end / STEP)) + 1
    scale = PLOT_WIDTH / extent_end
    by_time = sorted(reference.labels(), key=lambda label: -reference.label_duration(label))
    colours = {label: palette[k % len(palette)] for k, label in enumerate(by_time)}
    slot_height, strip, gap = 9, 6, 7
    parts, y = [], 4

    def row(name: str, annotation, colour_of, kind: str) -> None:
        nonlocal y
        placed = _slots(annotation)
        lanes = max([slot + 1 for _, _, slot in placed] + [1])
        height = lanes * slot_height + 2
        parts.append(f"<g class=\"row\" data-row=\"{e(name)}\" data-kind=\"{kind}\">"
                     f"<text x=\"4\" y=\"{y + min(height, 14) - 3}\">{e(name)}</text>"
                     f"<rect x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{PLOT_WIDTH}\" height=\"{height}\" fill=\"#f7f7f7\"/>")
        for segment, label, slot in placed:
            parts.append(f"<rect x=\"{LABEL_WIDTH + segment.start * scale:.2f}\" y=\"{y + 1 + slot * slot_height}\" "
                         f"width=\"{max(segment.duration * scale, 0.6):.2f}\" height=\"{slot_height - 1}\" "
                         f"fill=\"{colour_of(label)}\"><title>{e(name)}: {e(label)} {segment.start:.2f}-"
                         f"{segment.end:.2f} s</title></rect>")
        parts.append("</g>")
        y += height + 1

    row("reference", reference, lambda label: colours[label], "reference")
    y += 3
    for name, hypothesis in hypotheses.items():
        region = scored_region(reference, hypothesis, uem)
        cropped_ref, cropped_hyp, scored = metric.uemify(reference, hypothesis, uem=region, collar=convention.pyannote_collar,
                                                         skip_overlap=convention.skip_overlap, returns_uem=True)
        mapping = metric.optimal_mapping(cropped_ref, cropped_hyp)
        # a speaker heard only inside collars (or overlap the convention skips) has nothing to be mapped on
        # there: for its colour alone, pair it over all the speech, with a reference speaker still free
        colour_mapping = dict(mapping)
        if any(label not in mapping for label in hypothesis.labels()):
            taken = set(mapping.values())
            for label, target in whole.optimal_mapping(reference, hypothesis).items():
                if label not in colour_mapping and target not in taken:
                    colour_mapping[label] = target
                    taken.add(target)
        unmapped = [label for label in hypothesis.labels() if label not in colour_mapping]
        spare = {label: palette[(len(colours) + k) % len(palette)] if len(colours) + k < len(palette) else UNMAPPED
                 for k, label in enumerate(unmapped)}

        def colour_of(label, mapping=colour_mapping, spare=spare):
            return colours[mapping[label]] if label in mapping else spare[label]

        row(name, hypothesis, colour_of, "system")
        kinds = _error_kinds(reference, hypothesis, mapping, scored, count)
        parts.append(f"<g class=\"errors\" data-row=\"{e(name)}\">")
        for first, last, (kind, *amounts) in _runs(kinds, bool):
            seconds = (last - first) * STEP
            said = ", ".join(f"{n} {ERROR_NAMES[key]}" for n, key in zip(amounts, ERROR_NAMES) if n)
            parts.append(f"<rect class=\"{kind}\" data-start=\"{first * STEP:.2f}\" data-end=\"{last * STEP:.2f}\" "
                         + "".join(f"data-{key.replace('_', '-')}=\"{n * seconds:.2f}\" " for n, key in zip(amounts, ERROR_NAMES))
                         + f"x=\"{LABEL_WIDTH + first * STEP * scale:.2f}\" y=\"{y}\" "
                         f"width=\"{max(seconds * scale, 0.6):.2f}\" height=\"{strip}\" fill=\"{ERROR_COLOURS[kind]}\">"
                         f"<title>{e(name)} {first * STEP:.2f}-{last * STEP:.2f} s: {said} (speakers)</title></rect>")
        parts.append("</g>")
        y += strip + gap
    # the time axis
    tick = next(t for t in (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600) if extent_end / t <= 12)
    axis = []
    for k in range(int(extent_end // tick) + 1):
        x = LABEL_WIDTH + k * tick * scale
        seconds = k * tick
        text = f"{seconds // 60}:{seconds % 60:02d}" if extent_end >= 120 else f"{seconds} s"
        axis.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{y}\" y2=\"{y + 4}\" stroke=\"#999\"/>"
                    f"<text x=\"{x:.1f}\" y=\"{y + 15}\" text-anchor=\"middle\" fill=\"#777\">{text}</text>")
    height = y + 20
    width = LABEL_WIDTH + PLOT_WIDTH + 20
    return (f"<svg class=\"eval-timeline\" data-uri=\"{e(uri)}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" "
            f"height=\"{height}\" role=\"img\" aria-label=\"timeline of {e(uri)}\">{''.join(parts)}{''.join(axis)}</svg>")


def report_html(payload: dict, results: list[dict], scored: list, convention) -> str:
    from eval.bootstrap import RESAMPLES, SEED
    from pipelines.report.style import CSS, PALETTE

    names = ", ".join(r["name"] for r in results)
    files = len(results[0]["files"])
    failed = payload.get("failures", [])
    speed_lines = []
    for result in results:
        speed = result["speed"]
        if speed:
            speed_lines.append(
                f"<p class=summary>Speed of {e(result['name'])}: {speed['audio_s']:.1f} s of audio in "
                f"{speed['wall_s']:.1f} s wall time (real-time factor {speed['real_time_factor']:.3f}): "
                f"{speed['wall_s_per_audio_hour']:.0f} s wall and {speed['cpu_s_per_audio_hour']:.0f} s CPU, all "
                f"threads, per hour of audio.</p>")
    body = [
        f"<h1>Diarization scores: {e(names)}</h1>",
        f"<p class=summary>{e(payload['source'])}. {files} file(s) scored"
        + (f"; {len(failed)} could not be scored (listed at the end)" if failed else "") + ".</p>",
        f"<p class=summary>Convention {e(convention.describe())}.</p>",
        "<h2>Totals</h2>", _totals_table(results),
        f"<p class=muted>DER is the sum of missed speech, false alarm and confusion over the sum of scored speech, "
        f"over all files. The interval is a percentile bootstrap over files ({RESAMPLES} resamples with "
        f"replacement, seed {SEED}): how much the total depends on which files were in the set.</p>",
        *[f"<p class=summary>{e(r['name'])} - {e(r['difference_from_first']['than'])}: DER "
          f"{100 * r['difference_from_first']['der']:+.1f} points, 95 % interval {100 * r['difference_from_first']['low']:+.1f} "
          f"to {100 * r['difference_from_first']['high']:+.1f} (paired bootstrap: the same files drawn for both "
          "systems).</p>" for r in results[1:] if r.get("difference_from_first")],
        *speed_lines,
    ]
    if files:
        body += ["<h2>Per file</h2>", _files_table(results),
                 "<h2>Errors per file and system</h2>", _legend_errors(),
                 "<p class=muted>Each bar is the file's DER, split into its parts, in % of the file's scored speech.</p>",
                 _chart(results),
                 "<h2>Timelines</h2>",
                 "<p class=muted>Top row: the reference, one colour per speaker. Below, each system: its speakers "
                 "take the colour of the reference speaker the optimal mapping (pyannote.metrics, over the scored "
                 "region; a speaker heard only where nothing is scored is paired over all the speech) pairs them "
                 "with; light grey or a colour no reference speaker has: a speaker mapped to nobody. Under each system, where it is wrong "
                 "(inside the scored region only):</p>", _legend_errors()]
        for index, (uri, reference, uem, hypotheses) in enumerate(scored):
            ordered = {r["name"]: hypotheses[r["name"]] for r in results}
            body.append(f"<div class=file id=\"file-{index}\"><h3>{e(uri)}</h3>"
                        f"{_timeline(index, uri, reference, uem, ordered, convention, PALETTE)}</div>")
    if failed:
        body.append("<h2>Not scored</h2><ul>" + "".join(f"<li><b>{e(f['uri'])}</b>: {e(f['error'])}</li>"
                                                        for f in failed) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>voicemap eval: {e(names)}</title><style>{CSS}{EXTRA_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(folder: Path, payload: dict, results: list[dict], scored: list, convention, write_text) -> None:
    """DIR/scores.csv and DIR/index.html, each written whole or not at all (`write_text`: atomic_write_text)."""
    write_text(folder / "scores.csv", scores_csv(results))
    write_text(folder / "index.html", report_html(payload, results, scored, convention))
