"""`voicemap link OUTDIR`: one label per voice across every recording of an output folder."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from .common import HelpFormatter, progress


def register(subparsers) -> None:
    from cluster.linking import MIN_LINK_SECONDS, WITHIN_QUANTILE

    parser = subparsers.add_parser(
        "link",
        help="link the speakers of every recording in an output folder into archive voices",
        description="Read every <name>.json that diarize, identify or batch wrote into OUTDIR and group the "
        "speakers of all recordings into archive voices, from their voice centroids alone (no audio is read). "
        "Two speakers of one recording are never one voice; long speakers weigh more; a speaker with too "
        "little speech stays unlinked (labelled SPEAKER_03@<uri>). Enrolled names from identify stay names; "
        "other voices get ids VOICE_0001, VOICE_0002, ... "
        "The linking threshold is measured on the archive: pairs of speakers within one recording are known "
        "to be different people, and their similarities say how close two different voices come in these "
        "recordings. Writes OUTDIR/linked/<name>.rttm and .json with archive labels, OUTDIR/voices.tsv "
        "(voice uri speaker seconds similarity) and the index OUTDIR/voices.index.json + .npy that "
        "`voicemap search` and `voicemap report` read. Linking again after adding recordings keeps every "
        "voice id and attaches the new speakers to existing voices where they match. Outputs of another "
        "encoder than the archive's are refused, one stderr line each; the exit status is 1 if any file "
        "failed, 2 when nothing could be linked.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="output folder of diarize / identify / batch")
    parser.add_argument("--min-seconds", type=float, default=MIN_LINK_SECONDS, metavar="S",
                        help="speakers with less speech than this stay unlinked")
    parser.add_argument("--threshold", type=float, default=None, metavar="COS",
                        help="link voices whose mean cosine reaches this (default: measured on the archive, the "
                        f"{WITHIN_QUANTILE:g} quantile of the cosines of speaker pairs within recordings, never "
                        "below the encoder's open-set threshold)")
    parser.add_argument("--quantile", type=float, default=None, metavar="Q",
                        help=f"quantile of the within-recording pairs the measured threshold is (default {WITHIN_QUANTILE:g})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run)


def link_defaults(outdir, quiet: bool = False):
    """The arguments of `voicemap link OUTDIR` with every option at its default (for `batch ... --link`)."""
    import argparse

    from cluster.linking import MIN_LINK_SECONDS

    return argparse.Namespace(outdir=str(outdir), min_seconds=MIN_LINK_SECONDS, threshold=None, quantile=None,
                              quiet=quiet)


def _check_options(args) -> str | None:
    if not (math.isfinite(args.min_seconds) and args.min_seconds >= 0):
        return f"--min-seconds {args.min_seconds:g}: must be a number of seconds, 0 or more"
    if args.threshold is not None and not (math.isfinite(args.threshold) and -1 <= args.threshold <= 1):
        return f"--threshold {args.threshold:g}: a cosine similarity, between -1 and 1"
    if args.quantile is not None and not (math.isfinite(args.quantile) and 0 < args.quantile <= 1):
        return f"--quantile {args.quantile:g}: must be above 0 and at most 1"
    return None


def run(args) -> int:
    from pipelines.archive import INDEX_NAME, TABLE_NAME
    from pipelines.archive_index import ArchiveIndexError, read_index
    from pipelines.outputs import OutputError, writable_folder

    problem = _check_options(args)
    if problem:
        print(f"voicemap link: {problem}", file=sys.stderr)
        return 2
    outdir = Path(args.outdir).expanduser()
    if not outdir.is_dir():
        print(f"voicemap link: {outdir}: no such folder", file=sys.stderr)
        return 2
    try:
        writable_folder(outdir, create=False)
    except OutputError as error:
        print(f"voicemap link: {error}", file=sys.stderr)
        return 2
    lock = _hold_lock(outdir)
    if lock is None:
        print(f"voicemap link: {outdir}: another `voicemap link` is linking this folder; wait for it", file=sys.stderr)
        return 2
    with lock:
        try:
            previous = read_index(outdir, vectors=False)
            if previous is None and (outdir / TABLE_NAME).exists():
                raise OutputError(f"{outdir / TABLE_NAME}: exists but {outdir / INDEX_NAME} does not; it is not "
                                  "this archive's table, and linking would replace it: move it away first")
        except (OutputError, ArchiveIndexError) as error:
            print(f"voicemap link: {error}", file=sys.stderr)
            return 2
        return _link(args, outdir, previous)


def _hold_lock(outdir: Path):
    """An open, exclusively locked OUTDIR/.voicemap-link.lock, or None when another run holds it: two runs
    writing one index could pair one run's vectors with the other's rows."""
    import fcntl

    handle = open(outdir / ".voicemap-link.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _link(args, outdir: Path, previous) -> int:
    from cluster.linking import LinkingError
    from cluster.registry.match import NAMING_THRESHOLDS
    from pipelines.archive import ArchiveInputError, output_files, read_recording
    from pipelines.archive_index import write_index
    from pipelines.archive_linking import (archive_encoder, link_archive, remove_stale_linked, split_by_encoder,
                                           write_linked)
    from pipelines.outputs import OutputError, contained_name

    failed = 0
    recordings = []
    files = output_files(outdir)
    with progress(files, args.quiet, unit="file", desc="read") as bar:
        for path in bar:
            try:
                recording = read_recording(path, outdir)
                contained_name(recording.stem)
            except (ArchiveInputError, OutputError, OSError) as error:
                failed += 1
                from pipelines.errors import error_line

                bar.write(f"voicemap link: {error_line(path, error)}", file=sys.stderr)
                continue
            recordings.append(recording)
    encoder = archive_encoder(recordings, previous)
    if encoder is None:
        print(f"voicemap link: {outdir}: no voicemap outputs with speakers to link (diarize or identify "
              "recordings into it first)", file=sys.stderr)
        return 2
    recordings, refused = split_by_encoder(recordings, encoder, previous.dimension if previous else None)
    for _, error in refused:
        failed += 1
        print(f"voicemap link: {error}", file=sys.stderr)
    if refused and not any(r.speakers for r in recordings):
        # linking nothing would empty the archive: leave the last index and linked files as they are
        print(f"voicemap link: {outdir}: no output of the archive's encoder {encoder} left to link; nothing written",
              file=sys.stderr)
        return 2
    try:
        # the pair search grows with the square of the speakers (5 minutes at 100,000): show it
        with progress([], args.quiet, total=100, unit="%", desc="link",
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
            def advance(fraction: float) -> None:
                bar.n = int(100 * fraction)
                bar.refresh()

            linked = link_archive(recordings, previous, encoder, encoder_threshold=NAMING_THRESHOLDS.get(encoder),
                                  threshold=args.threshold, min_seconds=args.min_seconds, quantile=args.quantile,
                                  progress=advance)
    except LinkingError as error:
        print(f"voicemap link: {outdir}: {error}", file=sys.stderr)
        return 2
    with progress(recordings, args.quiet, unit="file", desc="write") as bar:
        for recording in bar:
            write_linked(outdir, recording, linked.labels, linked.index)
    remove_stale_linked(outdir, previous, {r.stem for r in recordings})
    write_index(outdir, linked.index)
    if not args.quiet:
        voices = linked.index.voices()
        unlinked = sum(1 for rows in voices.values() if rows[0].kind == "unlinked")
        print(f"{len(recordings)} recording(s), {len(linked.index.rows)} speaker(s) -> {len(voices) - unlinked} "
              f"voice(s) ({linked.new_voices} new, {linked.kept_voices} kept from the last run), {unlinked} "
              f"speaker(s) left unlinked; threshold {linked.linking.threshold.describe()}", file=sys.stderr)
    return 1 if failed else 0
