"""`voicemap diarize`: who spoke when in one or more recordings, written as RTTM and JSON."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import (HelpFormatter, add_diarization_options, config_from_args, fail_line, file_progress,
                     loaded_diarizer, progress, speaker_count_note)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "diarize",
        help="who spoke when: overlap-aware diarization of recordings",
        description="Diarize recordings (files, or folders searched recursively) with overlapping speech. "
        "Writes OUTDIR/<name>.rttm and OUTDIR/<name>.json; without -o, prints RTTM on stdout. "
        "Inputs that fail are reported on stderr, one line each, and the others still run; the exit status "
        "is 1 if any failed.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders")
    parser.add_argument("-o", "--outdir", help="folder for <name>.rttm and <name>.json")
    parser.add_argument("--demo", action="store_true",
                        help="diarize the two-speaker call that ships inside the pyannote.audio wheel")
    add_diarization_options(parser)
    parser.set_defaults(func=run)


def demo_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the demo recording ships with pyannote.audio, which is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "sample" / "sample.wav"


def run(args) -> int:
    from diarize.audio import AudioError
    from diarize.output import rttm_lines, write_result
    from pipelines.inputs import expand_inputs, input_problem, output_stems
    from pipelines.outputs import OutputError, refuse_overwriting, writable_folder

    sources = list(args.inputs)
    if args.demo:
        sources.append(str(demo_path()))
    if not sources:
        print("voicemap diarize: no input given (pass files or folders, or --demo)", file=sys.stderr)
        return 2
    inputs = expand_inputs(sources)
    try:
        config = config_from_args(args)
        stems = output_stems(inputs)
        if args.outdir:
            outdir = writable_folder(args.outdir)
            refuse_overwriting([outdir / f"{stem}{suffix}" for stem in stems if stem for suffix in (".rttm", ".json")],
                               [path for path, _ in inputs])
        diarizer = loaded_diarizer(config)
    except (ValueError, OutputError) as error:
        print(f"voicemap diarize: {error}", file=sys.stderr)
        return 2
    failed = 0
    with progress(inputs, args.quiet, unit="file", desc="diarize") as bar:
        for (path, root), stem in zip(bar, stems):
            bar.set_postfix_str(path.name)
            try:
                problem = input_problem(path)
                if problem:
                    raise ValueError(problem)
                with file_progress(path.name, args.quiet) as hook:
                    result = diarizer(path, hook=hook)
                if args.outdir:
                    write_result(result, args.outdir, stem)
            except (AudioError, OSError, ValueError, RuntimeError) as error:
                failed += 1
                bar.write(fail_line(path, error), file=sys.stderr)
                continue
            if not args.outdir:
                lines = rttm_lines(result.annotation, result.uri)
                print("\n".join(lines), flush=True)
            note = speaker_count_note(result, config)
            if note:
                bar.write(f"voicemap diarize: {note}", file=sys.stderr)
            if not args.quiet:
                spoken = ", ".join(f"{label} {result.annotation.label_duration(label):.1f}s" for label in result.labels)
                bar.write(f"{path}: {result.duration:.1f}s, {len(result.labels)} speaker(s)"
                          + (f": {spoken}" if spoken else ""), file=sys.stderr)
    return 1 if failed else 0
