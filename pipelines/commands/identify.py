"""`voicemap identify`: who spoke when, and who is that — diarize, then name speakers from the registry."""

from __future__ import annotations

import sys

from .common import (HelpFormatter, add_diarization_options, add_naming_options, check_naming_options, config_from_args, fail_line,
                     loaded_diarizer, progress, speaker_count_note)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "identify",
        help="diarize recordings and name the speakers enrolled in the voice registry",
        description="Diarize recordings (files, or folders searched recursively), then match every speaker "
        "with the enrolled voices of the same encoder: one name per speaker and per recording, and speakers "
        "nobody enrolled stay unknown_1, unknown_2, ... Writes OUTDIR/<name>.rttm (labels are names) and "
        "OUTDIR/<name>.json (per speaker: score, nearest enrolled voice). Inputs that fail are reported on "
        "stderr, one line each, and the others still run; the exit status is 1 if any failed.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    parser.add_argument("-o", "--outdir", required=True, help="folder for <name>.rttm and <name>.json")
    # --threshold stays the naming threshold here, as users of `identify` have meant it
    add_naming_options(parser)
    add_diarization_options(parser, threshold_alias=False)
    parser.set_defaults(func=run)


def run(args) -> int:
    from cluster.registry.match import MatchError, default_naming_threshold
    from cluster.registry import Registry, RegistryError
    from diarize.audio import AudioError
    from pipelines.identify import enrolled_voices, identify_result, write_identification
    from pipelines.inputs import expand_inputs, input_problem, output_stems
    from pipelines.outputs import OutputError, refuse_overwriting, writable_folder

    inputs = expand_inputs(args.inputs)
    try:
        config = config_from_args(args)
        check_naming_options(args)
        stems = output_stems(inputs)
        registry = Registry(args.registry, create=False)  # identifying against nothing is a mistake, not a default
    except (ValueError, RegistryError, OutputError) as error:
        print(f"voicemap identify: {error}", file=sys.stderr)
        return 2
    try:
        outdir = writable_folder(args.outdir)
        refuse_overwriting([outdir / f"{stem}{suffix}" for stem in stems if stem for suffix in (".rttm", ".json")],
                           [registry.path, *(path for path, _ in inputs)])
        diarizer = loaded_diarizer(config)
    except (ValueError, OutputError) as error:
        registry.close()
        print(f"voicemap identify: {error}", file=sys.stderr)
        return 2
    with registry:
        if args.naming_threshold is None:
            try:
                default_naming_threshold(diarizer.encoder.encoder_id)  # fail before diarizing anything
            except MatchError as error:
                print(f"voicemap identify: {error}", file=sys.stderr)
                return 2
        if not registry.centroids(diarizer.encoder.encoder_id)[0]:
            print(f"voicemap identify: note: {registry.path} holds no {diarizer.encoder.encoder_id} voices; "
                  "every speaker will be unknown", file=sys.stderr)
        voices = enrolled_voices(registry, diarizer.encoder.encoder_id, args.naming_threshold)
        failed = 0
        with progress(inputs, args.quiet, unit="file", desc="identify") as bar:
            for (path, root), stem in zip(bar, stems):
                bar.set_postfix_str(path.name)
                try:
                    problem = input_problem(path)
                    if problem:
                        raise ValueError(problem)
                    identification = identify_result(diarizer(path, voices=voices), registry, args.naming_threshold)
                    write_identification(identification, args.outdir, stem, extra={"registry": str(registry.path)})
                except (AudioError, OSError, ValueError, RuntimeError) as error:  # MatchError is a ValueError
                    failed += 1
                    bar.write(fail_line(path, error), file=sys.stderr)
                    continue
                note = speaker_count_note(identification.result, config)
                if note:
                    bar.write(f"voicemap identify: {note}", file=sys.stderr)
                if not args.quiet:
                    named = ", ".join(
                        f"{s.label} {s.speech_seconds:.1f}s"
                        + (f" ({s.score:.2f})" if s.known else f" (nearest {s.nearest} {s.score:.2f})" if s.nearest else "")
                        for s in identification.speakers)
                    bar.write(f"{path}: {identification.result.duration:.1f}s, {len(identification.speakers)} "
                              f"speaker(s)" + (f": {named}" if named else ""), file=sys.stderr)
    return 1 if failed else 0
