"""`voicemap report OUTDIR`: a static site over a linked archive, in OUTDIR/report/."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import HelpFormatter, progress


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a static site over a linked archive (OUTDIR/report/index.html)",
        description="Write OUTDIR/report/: index.html (every archive voice with its speech time, its number of "
        "recordings and the voices it appears with; every recording), voices/<voice>.html (its recordings and "
        "turns) and recordings/<recording>.html (an audio player, a timeline of the speakers coloured by "
        "archive voice where a click on a turn plays it, and the speakers' totals). Run `voicemap link OUTDIR` "
        "first. The pages load nothing from the network; the audio is linked where it lies by a relative path "
        "(found under the --audio folders as <name>.<ext>), so keep the report and the audio together when "
        "moving them.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="a folder linked by `voicemap link`")
    parser.add_argument("--audio", metavar="FOLDER", action="append", default=[],
                        help="folder holding the recordings (as given to diarize or batch); repeatable")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from cluster.atomic_files import atomic_write_text
    from pipelines.archive import REPORT_FOLDER, ArchiveInputError, output_files, read_recording
    from pipelines.archive_index import ArchiveIndexError, read_index
    from pipelines.errors import error_line
    from pipelines.outputs import OutputError, writable_folder
    from pipelines.report import write_report

    outdir = Path(args.outdir).expanduser()
    if not outdir.is_dir():
        print(f"voicemap report: {outdir}: no such folder", file=sys.stderr)
        return 2
    audio_folders = [Path(folder).expanduser() for folder in args.audio]
    for folder in audio_folders:
        if not folder.is_dir():
            print(f"voicemap report: --audio {folder}: no such folder", file=sys.stderr)
            return 2
    try:
        index = read_index(outdir, vectors=False)
        if index is None:
            raise OutputError(f"{outdir}: not linked yet (run `voicemap link {args.outdir}` first)")
        report_dir = writable_folder(outdir / REPORT_FOLDER)
    except (ArchiveIndexError, OutputError) as error:
        print(f"voicemap report: {error}", file=sys.stderr)
        return 2
    linked_stems = {row.stem: row.digest for row in index.rows}
    recordings, failed = [], 0
    for path in output_files(outdir):
        try:
            recording = read_recording(path, outdir)
        except (ArchiveInputError, OSError) as error:
            if path.relative_to(outdir).with_suffix("").as_posix() in linked_stems:
                failed += 1
                print(f"voicemap report: {error_line(path, error)}", file=sys.stderr)
            continue
        if recording.stem not in linked_stems:
            continue  # added after the last `link`: it has no archive labels yet
        if linked_stems[recording.stem] != recording.digest:
            print(f"voicemap report: note: {path} changed since it was linked; run `voicemap link` again",
                  file=sys.stderr)
        recordings.append(recording)
    missing = sorted(set(linked_stems) - {r.stem for r in recordings})
    for stem in missing:
        failed += 1
        print(f"voicemap report: {outdir / (stem + '.json')}: linked but gone; run `voicemap link` again", file=sys.stderr)
    if not args.audio and not args.quiet:
        print("voicemap report: note: no --audio folder given; pages will have no player", file=sys.stderr)

    def bar(items):
        with progress(items, args.quiet, unit="page", desc="report") as pages:
            yield from pages

    count = write_report(report_dir, index, recordings, audio_folders, atomic_write_text, progress=bar)
    if not args.quiet:
        print(f"{count} page(s) in {report_dir}; open {report_dir / 'index.html'}", file=sys.stderr)
    return 1 if failed else 0
