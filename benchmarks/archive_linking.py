"""Archive linking measured on simulated archives: within-file DER, archive-level DER, voices found, search.

A set is a folder made by `python -m eval.simulate` (manifest.tsv, rttm/, uem/, speakers.tsv) whose speakers
recur across conversations, and an output folder where `voicemap diarize` wrote <uri>.json/.rttm for its
audio. This script links the output folder in memory (as `voicemap link` does, writing nothing), then reports:

- within-file DER: each recording scored alone (labels free per file), summed over the set;
- archive-level DER: every recording laid end to end as one file, reference labels the true speakers and
  hypothesis labels the archive labels, so a voice must carry one label everywhere to score well;
- voices found vs true: archive labels (voices plus unlinked speakers) against distinct true speakers;
- search precision at 1 and 5: each true speaker queried with utterances the set's conversations did not
  use (every utterance when all were used), embedded like `voicemap search --voice`; an archive row counts
  as that speaker when most of the row's speech overlaps the speaker's reference turns. P@1 is counted over
  queries whose speaker has at least 10 s in the archive; P@5 divides by min(5, rows of that speaker).

    python benchmarks/archive_linking.py SET OUTS [SET OUTS ...] 
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read_rttm(path: Path):
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=path.stem)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            annotation[Segment(start, start + duration), number] = fields[7]
    return annotation


def read_set(folder: Path):
    """-> list of (uri, reference Annotation, (start, end) uem), and {speaker: used files}."""
    entries = []
    lines = (folder / "manifest.tsv").read_text().splitlines()
    for line in lines[1:]:
        uri, _audio, rttm, uem = line.split("\t")[:4]
        fields = (folder / uem).read_text().split()
        entries.append((uri, read_rttm(folder / rttm), (float(fields[2]), float(fields[3]))))
    used = defaultdict(set)
    for line in (folder / "speakers.tsv").read_text().splitlines()[1:]:
        _uri, speaker, file = line.split("\t")
        used[speaker].add(file)
    return entries, used


def shifted(annotation, offset: float, uri: str, rename=None):
    from pyannote.core import Annotation, Segment

    out = Annotation(uri=uri)
    for segment, track, label in annotation.itertracks(yield_label=True):
        out[Segment(segment.start + offset, segment.end + offset), f"{offset}-{track}"] = rename(label) if rename else label
    return out


def der_components(references, hypotheses, uems) -> tuple[float, dict]:
    from pyannote.core import Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    for reference, hypothesis, uem in zip(references, hypotheses, uems):
        metric(reference, hypothesis, uem=Timeline([uem]) if not isinstance(uem, Timeline) else uem)
    return abs(metric), {k: metric.accumulated_[k] for k in ("confusion", "missed detection", "false alarm", "total")}


def row_truth(reference, turns, speaker: str) -> str | None:
    """The reference speaker under most of `speaker`'s turns."""
    from pyannote.core import Segment, Timeline

    mine = Timeline([Segment(t.start, t.end) for t in turns if t.speaker == speaker and t.end > t.start]).support()
    best, best_seconds = None, 0.0
    for label in reference.labels():
        seconds = mine.crop(reference.label_timeline(label).support(), mode="intersection").duration()
        if seconds > best_seconds:
            best, best_seconds = label, seconds
    return best


def measure(set_folder: Path, outputs: Path, args, encoder) -> dict:
    from pyannote.core import Segment, Timeline

    from cluster.registry.match import NAMING_THRESHOLDS
    from pipelines.archive import output_files, read_recording
    from pipelines.archive_linking import link_archive
    from pipelines.archive_search import nearest_rows
    from pipelines.voice_embedding import EnrollError, embed_file

    entries, used = read_set(set_folder)
    recordings = [read_recording(path, outputs) for path in output_files(outputs)]
    by_uri = {r.uri: r for r in recordings}
    options = dict(encoder_threshold=NAMING_THRESHOLDS.get(recordings[0].encoder), min_seconds=args.min_seconds,
                   quantile=args.quantile, threshold=args.threshold, ignore_top=args.ignore_top)
    if args.incremental:
        # the first half linked alone, then everything linked again on top of that index
        half = link_archive(recordings[: len(recordings) // 2], None, recordings[0].encoder, **options)
        linked = link_archive(recordings, half.index, recordings[0].encoder, **options)
    else:
        linked = link_archive(recordings, None, recordings[0].encoder, **options)
    labels = linked.labels
    refs, hyps, uems = [], [], []
    archive_ref, archive_hyp = [], []
    offset = 0.0
    from pyannote.core import Annotation

    def annotation_of(recording, rename):
        out = Annotation(uri=recording.uri)
        for k, t in enumerate(recording.turns):
            if t.end > t.start:
                out[Segment(t.start, t.end), k] = rename(t.speaker)
        return out

    archive_uem = []
    islands = []  # every recording's labels its own, as without linking
    for uri, reference, (start, end) in entries:
        recording = by_uri[uri]
        hypothesis = annotation_of(recording, lambda s: s)
        refs.append(reference)
        hyps.append(hypothesis)
        uems.append(Segment(start, end))
        linked_hyp = annotation_of(recording, lambda s, r=recording: labels[(r.stem, s)])
        archive_ref.append(shifted(reference, offset, "archive"))
        archive_hyp.append(shifted(linked_hyp, offset, "archive"))
        islands.append(shifted(hypothesis, offset, "archive", rename=lambda s, u=uri: f"{u}:{s}"))
        archive_uem.append(Segment(offset + start, offset + end))
        offset += end + 1.0
    within, within_parts = der_components(refs, hyps, uems)
    ref_all, hyp_all = Annotation(uri="archive"), Annotation(uri="archive")
    for part in archive_ref:
        ref_all.update(part)
    for part in archive_hyp:
        hyp_all.update(part)
    archive, archive_parts = der_components([ref_all], [hyp_all], [Timeline(archive_uem)])
    island_all = Annotation(uri="archive")
    for part in islands:
        island_all.update(part)
    unlinked_der, _ = der_components([ref_all], [island_all], [Timeline(archive_uem)])

    true_speakers = sorted(set().union(*(set(r.labels()) for r in refs)))
    voices = linked.index.voices()
    linked_voices = [label for label, rows in voices.items() if rows[0].kind != "unlinked"]
    truth = {}
    reference_of = {uri: reference for uri, reference, _ in entries}
    for i, row in enumerate(linked.index.rows):
        truth[i] = row_truth(reference_of[row.uri], by_uri[row.uri].turns, row.speaker)
    seconds_in_archive = {s: sum(r.label_duration(s) for r in refs if s in r.labels()) for s in true_speakers}

    # search
    speakers_dir = Path(args.speakers_for[set_folder.name])
    hits1, hits5, queries, skipped_short = 0, [], 0, 0
    vectors = linked.index.vectors
    for speaker in true_speakers:
        files = sorted((speakers_dir / speaker).glob("*.flac"))
        unused = [f for f in files if f"{speaker}/{f.name}" not in used[speaker]]
        relevant = sum(1 for i in truth if truth[i] == speaker)
        embedded = 0
        for file in unused or files:
            if embedded == args.queries:
                break
            try:
                vector = embed_file(str(file), encoder, min_speech=0.5).vector
            except EnrollError:  # a clip without speech (one RAVDESS file is silent to silero-vad)
                continue
            embedded += 1
            rows, _scores = nearest_rows(vectors, vector, 5)
            top = [truth[int(r)] for r in rows]
            if seconds_in_archive[speaker] < 10.0:
                skipped_short += 1
                continue
            queries += 1
            hits1 += top[0] == speaker
            hits5.append(sum(t == speaker for t in top) / max(1, min(5, relevant)))
    return {
        "set": set_folder.name, "recordings": len(entries), "true_speakers": len(true_speakers),
        "within_der": 100 * within, "archive_der": 100 * archive, "islands_der": 100 * unlinked_der,
        "archive_confusion": 100 * archive_parts["confusion"] / archive_parts["total"],
        "voices": len(linked_voices), "labels": len(voices), "unlinked": len(voices) - len(linked_voices),
        "threshold": linked.index.threshold["describe"], "queries": queries,
        "p_at_1": 100 * hits1 / max(queries, 1), "p_at_5": 100 * float(np.mean(hits5)) if hits5 else float("nan"),
        "short_queries": skipped_short,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", nargs="+", help="SET_FOLDER OUTPUT_FOLDER pairs")
    parser.add_argument("--speakers", nargs="+", required=True,
                        help="NAME=FOLDER: for set folder NAME, the single-speaker folder it was simulated from")
    parser.add_argument("--quantile", type=float, default=None)
    parser.add_argument("--ignore-top", type=int, default=None,
                        help="threshold: the (N+1)-th highest within-recording cosine instead of the highest")
    parser.add_argument("--min-seconds", type=float, default=None)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--queries", type=int, default=3, help="query utterances per speaker")
    parser.add_argument("--incremental", action="store_true",
                        help="link the first half of the recordings, then all of them on top of that index")
    args = parser.parse_args(argv)
    from cluster.linking import MIN_LINK_SECONDS
    from diarize.embedding import load_encoder

    if args.min_seconds is None:
        args.min_seconds = MIN_LINK_SECONDS
    args.speakers_for = dict(item.split("=", 1) for item in args.speakers)
    encoder = load_encoder("campplus")
    pairs = list(zip(args.pairs[0::2], args.pairs[1::2]))
    print("set\trecordings\ttrue\tvoices\tunlinked\twithin_DER\tarchive_DER\tarchive_confusion\tP@1\tP@5\tqueries\t"
          "archive_DER_without_linking\tthreshold")
    for set_folder, outputs in pairs:
        r = measure(Path(set_folder), Path(outputs), args, encoder)
        print(f"{r['set']}\t{r['recordings']}\t{r['true_speakers']}\t{r['voices']}\t{r['unlinked']}\t"
              f"{r['within_der']:.1f}\t{r['archive_der']:.1f}\t{r['archive_confusion']:.1f}\t{r['p_at_1']:.0f}\t"
              f"{r['p_at_5']:.0f}\t{r['queries']}\t{r['islands_der']:.1f}\t{r['threshold']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
