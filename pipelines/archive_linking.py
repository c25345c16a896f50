"""Linking the recordings of an output folder into archive voices: Recordings (+ the previous index) ->
a new ArchiveIndex, and the linked copies of each recording's RTTM and JSON.

The clustering itself is cluster/linking.py; this module decides what is fixed before it runs (enrolled names,
and the voices of recordings an earlier run linked and that did not change since), turns voice indices into
archive labels, and writes the files.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cluster.linking import MIN_LINK_SECONDS, FixedVoice, Linking, Threshold, link_speakers, linking_threshold, unit_rows

from .archive import LINKED_FOLDER, Recording
from .archive_index import NAME, UNLINKED, VOICE, ArchiveIndex, IndexRow, voice_label


class EncoderMismatch(ValueError):
    """A recording whose centroids come from another encoder than the archive's: one line."""


def rttm_field(name: str) -> str:
    # RTTM splits on whitespace: a label with a space would shift every field after it
    return "_".join(str(name).split()) or "_"


def unlinked_label(recording: Recording, speaker: str) -> str:
    """The archive label of a speaker left unlinked: its own label in its own recording, never shared."""
    return f"{speaker}@{recording.uri}"


def archive_encoder(recordings: list[Recording], previous: ArchiveIndex | None) -> str | None:
    """The encoder the archive holds: the previous index's, else the one most recordings use (ties: by name)."""
    if previous is not None:
        return previous.encoder
    counts = Counter(r.encoder for r in recordings if r.speakers)
    if not counts:
        return None
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]


def split_by_encoder(recordings: list[Recording], encoder: str | None, dimension: int | None):
    """-> (recordings of the archive's encoder, [(recording, EncoderMismatch)] for the others)."""
    kept, refused = [], []
    for recording in recordings:
        if not recording.speakers:
            kept.append(recording)
            continue
        size = len(recording.speakers[0].centroid)
        if recording.encoder != encoder:
            refused.append((recording, EncoderMismatch(
                f"{recording.path}: centroids of encoder {recording.encoder}, but the archive holds {encoder}; "
                "link outputs of one encoder per folder")))
        elif dimension is not None and size != dimension:
            refused.append((recording, EncoderMismatch(
                f"{recording.path}: centroids of dimension {size}, but the archive's {encoder} ones have {dimension}")))
        else:
            dimension = size
            kept.append(recording)
    return kept, refused


@dataclass
class LinkedArchive:
    index: ArchiveIndex
    linking: Linking
    labels: dict[tuple[str, str], str]  # (stem, speaker) -> archive label
    new_voices: int
    kept_voices: int


def link_archive(recordings: list[Recording], previous: ArchiveIndex | None, encoder: str, *,
                 encoder_threshold: float | None,
                 threshold: float | None = None, min_seconds: float = MIN_LINK_SECONDS,
                 quantile: float | None = None, ignore_top: int | None = None, progress=None) -> LinkedArchive:
    """Link every speaker of `recordings` (all of `encoder`, see `split_by_encoder`) into archive voices.

    previous: the index of an earlier run; recordings it holds with the same digest keep their voices, and
    those voices may gain speakers of new recordings but never merge with each other. encoder_threshold:
    the encoder's open-set threshold (a floor for the archive's own, and the fallback); threshold: a given
    cosine instead of the measured one; progress: optional callable(fraction) during the pair search.
    """
    speakers = [(recording, position, speaker) for position, recording in enumerate(recordings)
                for speaker in recording.speakers]
    dimension = len(speakers[0][2].centroid) if speakers else (previous.dimension if previous else 0)
    vectors = np.array([s.centroid for _, _, s in speakers]).reshape(len(speakers), dimension)
    where = np.array([position for _, position, _ in speakers], dtype=int)
    seconds = np.array([s.seconds for _, _, s in speakers], dtype=np.float64)
    unit, valid = unit_rows(vectors) if len(speakers) else (np.zeros((0, dimension), np.float32), np.zeros(0, bool))

    # what is fixed before linking: enrolled names (each its own voice, closed), then earlier voices
    fixed: list[FixedVoice] = []
    fixed_labels: list[tuple[str, str]] = []
    by_name: dict[str, list[int]] = {}
    for i, (_, _, speaker) in enumerate(speakers):
        if speaker.named:
            by_name.setdefault(speaker.label, []).append(i)
    for name, members in sorted(by_name.items()):
        fixed.append(FixedVoice(tuple(members), can_absorb=False))
        fixed_labels.append((name, NAME))
    earlier: dict[str, list[int]] = {}
    if previous is not None:
        known = {(row.stem, row.speaker, row.digest): row for row in previous.rows if row.kind == VOICE}
        for i, (recording, _, speaker) in enumerate(speakers):
            row = known.get((recording.stem, speaker.label, recording.digest))
            if row is not None and not speaker.named:
                earlier.setdefault(row.label, []).append(i)
    for label, members in sorted(earlier.items()):
        fixed.append(FixedVoice(tuple(members), can_absorb=True))
        fixed_labels.append((label, VOICE))

    if threshold is not None:
        chosen = Threshold(float(threshold), "given")
    else:
        eligible = valid & (seconds >= min_seconds)
        options = {} if quantile is None else {"quantile": quantile}
        if ignore_top is not None:
            options["ignore_top"] = ignore_top
        chosen = linking_threshold(unit, where, eligible, encoder_threshold, **options)
    linking = link_speakers(vectors, where, seconds, chosen, fixed_voices=fixed, min_seconds=min_seconds,
                            progress=progress)

    next_voice = previous.next_voice if previous is not None else 1
    names = {g: label for g, (label, _) in enumerate(fixed_labels)}
    kinds = {g: kind for g, (_, kind) in enumerate(fixed_labels)}
    new_voices = 0
    for g in range(len(fixed), linking.num_voices):
        names[g], kinds[g] = voice_label(next_voice), VOICE
        next_voice += 1
        new_voices += 1
    rows, labels = [], {}
    for i, (recording, _, speaker) in enumerate(speakers):
        g = int(linking.voice[i])
        if g < 0:
            label, kind, similarity = unlinked_label(recording, speaker.label), UNLINKED, None
        else:
            label, kind = names[g], kinds[g]
            similarity = round(float(linking.similarity[i]), 4) if np.isfinite(linking.similarity[i]) else None
        labels[(recording.stem, speaker.label)] = label
        rows.append(IndexRow(recording.stem, recording.uri, speaker.label, label, kind,
                             round(speaker.seconds, 3), similarity, recording.digest))
    index = ArchiveIndex(encoder, dimension, {"value": round(chosen.value, 4), "source": chosen.source,
                                              "pairs": chosen.pairs, "describe": chosen.describe()},
                         float(min_seconds), next_voice, rows, unit.astype(np.float32))
    kept = sum(1 for label, kind in fixed_labels if kind == VOICE)
    return LinkedArchive(index, linking, labels, new_voices, kept)


def linked_payload(recording: Recording, labels: dict[tuple[str, str], str], index: ArchiveIndex) -> dict:
    """The recording's JSON with archive labels: turns relabelled, speakers keyed by archive label, each
    keeping its own label as `speaker`, with its kind and similarity."""
    rows = {row.speaker: row for row in index.rows if row.stem == recording.stem}

    def relabel(turns):
        return [{"start": t.start, "end": t.end, "speaker": labels.get((recording.stem, t.speaker), t.speaker)}
                for t in turns]

    payload = dict(recording.payload)
    payload["segments"] = relabel(recording.turns)
    payload["exclusive_segments"] = relabel(recording.exclusive_turns)
    speakers = {}
    for label, entry in recording.payload["speakers"].items():
        row = rows.get(label)
        archive = labels.get((recording.stem, label), label)
        speakers[archive] = {**entry, "speaker": label, "kind": row.kind if row else UNLINKED,
                             "similarity": row.similarity if row else None}
    payload["speakers"] = speakers
    payload["archive"] = {"index": "../" * (recording.stem.count("/") + 1) + "voices.index.json",
                          "source": recording.stem + ".json", "threshold": index.threshold["value"]}
    return payload


def linked_rttm(recording: Recording, labels: dict[tuple[str, str], str]) -> str:
    uri = rttm_field(recording.uri)
    lines = [f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> "
             f"{rttm_field(labels.get((recording.stem, t.speaker), t.speaker))} <NA> <NA>"
             for t in sorted(recording.turns, key=lambda t: (t.start, t.end))]
    return "".join(line + "\n" for line in lines)


def write_linked(outdir: Path, recording: Recording, labels: dict[tuple[str, str], str], index: ArchiveIndex) -> None:
    """OUTDIR/linked/<stem>.rttm and .json, each atomically."""
    from cluster.atomic_files import atomic_write_text

    base = outdir / LINKED_FOLDER / recording.stem
    atomic_write_text(base.with_name(base.name + ".rttm"), linked_rttm(recording, labels))
    text = json.dumps(linked_payload(recording, labels, index), ensure_ascii=False, indent=1)
    atomic_write_text(base.with_name(base.name + ".json"), text + "\n")


def remove_stale_linked(outdir: Path, previous: ArchiveIndex | None, current_stems: set[str]) -> list[str]:
    """Linked files of recordings an earlier run linked and that are gone now (only those it wrote)."""
    removed = []
    for stem in sorted({row.stem for row in previous.rows} if previous else set()):
        if stem in current_stems:
            continue
        for suffix in (".rttm", ".json"):
            path = outdir / LINKED_FOLDER / f"{stem}{suffix}"
            if path.is_file():
                path.unlink()
                removed.append(str(path))
    return removed
