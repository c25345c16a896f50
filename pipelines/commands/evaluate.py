"""`voicemap eval`: DER (missed, false alarm, confusion) and JER on a manifest, diarizing or reading RTTMs."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from pipelines.errors import error_line

from .common import HelpFormatter, add_diarization_options, config_from_args, fail_line, loaded_diarizer, progress


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score diarization (DER, JER) on a manifest of recordings with reference RTTMs",
        description="Score with pyannote.metrics. MANIFEST is a TSV with columns `uri audio rttm uem`, paths "
        "relative to it. Without --hyp every recording is diarized first; with --hyp DIR the RTTMs "
        "DIR/<uri>.rttm are scored. Prints a table per file and in total.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("manifest", metavar="MANIFEST")
    parser.add_argument("--hyp", metavar="DIR", help="score the RTTMs in DIR instead of diarizing")
    parser.add_argument("--collar", type=float, default=0.0, help="forgiveness collar around reference boundaries, seconds")
    parser.add_argument("--skip-overlap", action="store_true", help="do not score overlapping speech")
    parser.add_argument("--json", metavar="OUT", help="also write the scores as JSON to OUT")
    parser.add_argument("--save-hyp", metavar="DIR", help="when diarizing, also write DIR/<uri>.rttm")
    parser.add_argument("--registry", metavar="PATH",
                        help="also score identification (IER, names compared as they are) against references "
                        "labelled with enrolled names: diarized speakers are named from this registry (with "
                        "--hyp, the RTTMs' labels are taken as names); reference speakers not enrolled there "
                        "count as right when called unknown_*; the enrolled voices also steer the diarization, "
                        "as in `voicemap identify`, so DER is that of the named diarization")
    parser.add_argument("--match-threshold", type=float, metavar="T",
                        help="with --registry: naming threshold (default: the measured one of the encoder)")
    add_diarization_options(parser)
    parser.set_defaults(func=run)


def format_table(rows: list[dict]) -> str:
    with_ier = any("ier" in row for row in rows)
    header = f"{'uri':<20} {'DER%':>6} {'miss%':>6} {'FA%':>6} {'conf%':>6} {'JER%':>6} {'ref':>4} {'hyp':>4} {'scored s':>9}"
    header += f" {'IER%':>6}" if with_ier else ""
    lines = [header, "-" * len(header)]
    for row in rows:
        total = row["total"] or 1.0
        lines.append(
            f"{row['uri']:<20} {100 * row['der']:>6.1f} {100 * row['missed'] / total:>6.1f} "
            f"{100 * row['false_alarm'] / total:>6.1f} {100 * row['confusion'] / total:>6.1f} {100 * row['jer']:>6.1f} "
            f"{row['reference_speakers']:>4} {row['hypothesis_speakers']:>4} {row['total']:>9.1f}"
            + (f" {100 * row['ier']:>6.1f}" if with_ier else "")
        )
    return "\n".join(lines)


def _refused(message: str) -> int:
    print(f"voicemap eval: {message}", file=sys.stderr)
    return 2


def _option_problem(args) -> str | None:
    """The first option that cannot be right, as one line; None when all can. Reads no file."""
    if not math.isfinite(args.collar) or args.collar < 0:
        # pyannote.metrics takes any float without a word; a negative or NaN collar has no meaning
        return f"--collar {args.collar}: must be a finite number of seconds, 0 or more"
    if args.match_threshold is not None and not -1.0 <= args.match_threshold <= 1.0:
        return f"--match-threshold {args.match_threshold}: must be a cosine between -1 and 1"
    if args.hyp and args.save_hyp:
        return "--save-hyp writes the diarization eval runs; with --hyp nothing is diarized"
    if args.hyp and not Path(args.hyp).is_dir():
        return f"--hyp {args.hyp}: {'not a folder' if Path(args.hyp).exists() else 'no such folder'}"
    return None


def _check_outputs(args, items) -> None:
    """--json and --save-hyp checked before any work (pipelines/outputs.py): OutputError when OUT cannot be
    written, when a uri would put DIR/<uri>.rttm outside DIR, or when an output would replace the manifest, a
    reference, a UEM, an audio file, a hypothesis RTTM or the registry this run reads. Makes DIR."""
    from pipelines.outputs import contained_name, refuse_overwriting, writable_file, writable_folder

    read = [args.manifest, args.registry]
    for item in items:
        read += [item.audio, item.rttm, item.uem]
        if args.hyp:
            read.append(Path(args.hyp) / f"{item.uri}.rttm")
    saved = []
    if args.save_hyp:
        # a uri is a name: DIR/<uri>.rttm must stay under DIR
        saved = [Path(args.save_hyp) / f"{contained_name(item.uri)}.rttm" for item in items if item.uri]
        # Outputs are renamed into place, which replaces a directory entry but never writes through a link:
        # only a read path of the same file name can be the same entry, so compare those (linear, not N x 4N).
        by_name: dict[str, list] = {}
        for path in read:
            if path is not None:
                by_name.setdefault(Path(path).name, []).append(path)
        for output in saved:
            refuse_overwriting([output], by_name.get(output.name, []))
    if args.json:
        writable_file(args.json)
        refuse_overwriting([args.json], read + saved)
    if args.save_hyp:
        writable_folder(args.save_hyp)


def run(args) -> int:
    from diarize.audio import AudioError
    from eval.corpora import ManifestError, load_rttm, load_uem, read_manifest
    from eval.metrics import DiarizationScores, IdentificationScores
    from pipelines.outputs import OutputError, writable_file

    problem = _option_problem(args)
    if problem:
        return _refused(problem)
    try:
        config = None if args.hyp else config_from_args(args)
        if args.json:  # before the manifest is read: an OUT that is a folder needs no manifest to be refused
            writable_file(args.json)
        items = read_manifest(args.manifest)
        _check_outputs(args, items)
    except (ManifestError, OutputError, ValueError) as error:
        return _refused(str(error).splitlines()[0])
    registry = identification = voices = None
    if args.registry:
        import sqlite3

        from cluster.registry import Registry, RegistryError

        try:
            registry = Registry(args.registry, create=False)
        except (RegistryError, sqlite3.Error, OSError) as error:
            return _refused(error_line(args.registry, error))
    diarizer = None
    if config is not None:
        try:
            diarizer = loaded_diarizer(config)  # weights that do not load: one line now, not one per file
            if registry is not None and args.match_threshold is None:
                from cluster.match import default_threshold

                default_threshold(diarizer.encoder.encoder_id)
        except ValueError as error:  # cluster.match.MatchError is one
            if registry is not None:
                registry.close()
            return _refused(str(error).splitlines()[0])
    scores = DiarizationScores(collar=args.collar, skip_overlap=args.skip_overlap)
    if registry is not None:
        enrolled = set(registry.centroids(diarizer.encoder.encoder_id)[0]) if diarizer else {v.name for v in registry.list()}
        identification = IdentificationScores(enrolled, collar=args.collar, skip_overlap=args.skip_overlap)
        if diarizer:  # the voices steer the diarization that will be named from them, as `voicemap identify` does
            from pipelines.identify import enrolled_voices

            voices = enrolled_voices(registry, diarizer.encoder.encoder_id, args.match_threshold)
    failures = []
    with progress(items, args.quiet, unit="file", desc="eval") as bar:
        for item in bar:
            try:
                if item.problem:
                    raise ManifestError(item.problem)
                if item.rttm is None:
                    raise ManifestError(f"{args.manifest}:{item.line}: row {item.uri!r} has no reference RTTM")
                reference = load_rttm(item.rttm, item.uri)
                # the UEM is checked against the audio's length (its header, cheap) before any diarization
                uem = load_uem(item.uem, item.uri, audio=item.audio) if item.uem else None
                named = None
                if diarizer is None:
                    hypothesis = named = load_rttm(Path(args.hyp) / f"{item.uri}.rttm", item.uri)
                else:
                    result = diarizer(item.audio, voices=voices)
                    if registry is not None:
                        from pipelines.identify import identify_result

                        named = identify_result(result, registry, args.match_threshold).result.annotation
                        named.uri = item.uri
                    hypothesis = result.annotation.rename_labels()  # labels need not match the reference's
                    hypothesis.uri = item.uri
                    if args.save_hyp:
                        from cluster.atomic_files import atomic_write_text
                        from diarize.output import rttm_lines

                        # with --registry the saved labels are the names, so `--hyp DIR --registry` rescores them
                        lines = rttm_lines(result.annotation if named is None else named, item.uri)
                        atomic_write_text(Path(args.save_hyp) / f"{item.uri}.rttm", "\n".join(lines) + "\n")
            except ManifestError as error:  # its message names the file and line
                failures.append({"uri": item.uri, "error": str(error)})
                bar.write(f"voicemap: {error}", file=sys.stderr)
                continue
            except (AudioError, OSError, ValueError, RuntimeError) as error:
                line = fail_line(item.audio, error)
                failures.append({"uri": item.uri, "error": line.removeprefix("voicemap: ")})
                bar.write(line, file=sys.stderr)
                continue
            row = scores.add(item.uri, reference, hypothesis, uem)
            if identification is not None:
                row.update(identification.add(item.uri, reference, named, uem))
    if registry is not None:
        registry.close()
    total = scores.total() if scores.rows else None
    if total is not None and identification is not None:
        total.update(identification.total())
    rows = scores.rows + ([total] if total else [])
    print(format_table(rows))
    if args.json:
        from cluster.atomic_files import atomic_write_text

        payload = {"collar": args.collar, "skip_overlap": args.skip_overlap, "files": scores.rows,
                   "total": total, "failed": len(failures), "failures": failures}
        try:
            atomic_write_text(args.json, json.dumps(payload, ensure_ascii=False, indent=1, default=float) + "\n")
        except OSError as error:
            print(f"voicemap eval: {error_line(args.json, error)}", file=sys.stderr)
            return 1
    return 1 if failures else 0
