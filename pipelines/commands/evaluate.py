"""`voicemap eval`: DER (missed, false alarm, confusion) and JER on a manifest, diarizing or reading RTTMs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_diarization_options, config_from_args, fail_line, progress


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score diarization (DER, JER) on a manifest of recordings with reference RTTMs",
        description="Score with pyannote.metrics. MANIFEST is a TSV with columns `uri audio rttm uem`, paths "
        "relative to it. Without --hyp every recording is diarized first; with --hyp DIR the RTTMs "
        "DIR/<uri>.rttm are scored. Prints a table per file and in total.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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


def run(args) -> int:
    from diarize.audio import AudioError
    from eval.corpora import ManifestError, load_rttm, load_uem, read_manifest
    from eval.metrics import DiarizationScores, IdentificationScores

    try:
        items = read_manifest(args.manifest)
    except ManifestError as error:
        print(f"voicemap eval: {error}", file=sys.stderr)
        return 2
    diarizer = None
    if not args.hyp:
        from diarize.pipeline import Diarizer

        diarizer = Diarizer(config_from_args(args))
    scores = DiarizationScores(collar=args.collar, skip_overlap=args.skip_overlap)
    registry = identification = voices = None
    if args.registry:
        from cluster.registry import Registry, RegistryError

        try:
            registry = Registry(args.registry, create=False)
        except RegistryError as error:
            print(f"voicemap eval: {error}", file=sys.stderr)
            return 2
        enrolled = set(registry.centroids(diarizer.encoder.encoder_id)[0]) if diarizer else {v.name for v in registry.list()}
        identification = IdentificationScores(enrolled, collar=args.collar, skip_overlap=args.skip_overlap)
        if diarizer:  # the voices steer the diarization that will be named from them, as `voicemap identify` does
            from pipelines.identify import enrolled_voices

            voices = enrolled_voices(registry, diarizer.encoder.encoder_id, args.match_threshold)
    failed = 0
    with progress(items, args.quiet, unit="file", desc="eval") as bar:
        for item in bar:
            try:
                if item.rttm is None:
                    raise ManifestError(f"{item.uri}: no reference RTTM in the manifest")
                reference = load_rttm(item.rttm, item.uri)
                uem = load_uem(item.uem, item.uri) if item.uem else None
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
                        from diarize.output import atomic_write_text, rttm_lines

                        # with --registry the saved labels are the names, so `--hyp DIR --registry` rescores them
                        lines = rttm_lines(result.annotation if named is None else named, item.uri)
                        atomic_write_text(Path(args.save_hyp) / f"{item.uri}.rttm", "\n".join(lines) + "\n")
            except (AudioError, ManifestError, OSError, ValueError, RuntimeError) as error:
                failed += 1
                bar.write(fail_line(item.audio, error), file=sys.stderr)
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
        from diarize.output import atomic_write_text

        payload = {"collar": args.collar, "skip_overlap": args.skip_overlap, "files": scores.rows,
                   "total": total, "failed": failed}
        atomic_write_text(args.json, json.dumps(payload, ensure_ascii=False, indent=1, default=float) + "\n")
    return 1 if failed else 0
