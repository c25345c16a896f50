"""`voicemap eval`: DER (missed, false alarm, confusion) and JER of one or more systems on a corpus (a manifest,
a pyannote.database protocol, or an AMI / VoxConverse / DIHARD III folder), diarizing or reading RTTMs."""

from __future__ import annotations

import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import error_line

from .common import HelpFormatter, add_diarization_options, config_from_args, fail_line, loaded_diarizer, progress

#: the name of the system `voicemap eval` diarizes itself
LIVE = "voicemap"


def register(subparsers) -> None:
    from eval.bootstrap import RESAMPLES
    from eval.metrics import CONVENTIONS
    from eval.protocols import DIHARD_PARTITIONS, LAYOUTS, SUBSETS

    parser = subparsers.add_parser(
        "eval",
        help="score diarization (DER, JER) of one or more systems on a corpus with reference RTTMs",
        description="Score with pyannote.metrics. SOURCE is a manifest TSV (columns `uri audio rttm uem`, paths "
        "relative to it), a pyannote.database protocol name (Database.SpeakerDiarization.Protocol, from --database "
        "or pyannote.database's usual places), or a corpus folder read with --layout. Without --hyp every "
        "recording is diarized (the system is called voicemap); each --hyp NAME=DIR scores the RTTMs "
        "DIR/<uri>.rttm as one more system (with --diarize, next to the diarized one). Prints one table: per "
        "file and in total, a column per system, the total's bootstrap 95 % interval over files "
        f"({RESAMPLES} resamples, fixed seed), and the speed of the diarized run. A file that fails for any "
        "system is reported on stderr (one line) and left out for all, so the totals stay comparable.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("source", metavar="SOURCE", help="manifest TSV, protocol name, or corpus folder (with --layout)")
    corpus = parser.add_argument_group("corpus")
    corpus.add_argument("--layout", choices=LAYOUTS,
                        help="read SOURCE as a corpus folder: ami (AMI-diarization-setup: lists/, only_words/rttms/, "
                        "uems/, amicorpus/<uri>/audio/<uri>.Mix-Headset.wav), voxconverse (dev/, test/ of RTTMs; "
                        "audio in audio/<split>/, <split>/, audio/, voxconverse_<split>_wav/ or wav/<split>/ as "
                        "<uri>.wav; no UEM), dihard (DIHARD III release: data/flac, data/rttm, data/uem, "
                        "data/uem_scoring)")
    corpus.add_argument("--subset", choices=SUBSETS, default="test",
                        help="which set of a protocol or layout (AMI: development is dev; VoxConverse: test or "
                        "development; DIHARD III: a release folder is one set, so not used)")
    corpus.add_argument("--database", metavar="FILE.yml",
                        help="pyannote.database configuration defining the protocol SOURCE names (default: "
                        "PYANNOTE_DATABASE_CONFIG, ./database.yml, ~/.pyannote/database.yml)")
    corpus.add_argument("--partition", choices=DIHARD_PARTITIONS, default="full",
                        help="DIHARD III scoring partition: its data/uem_scoring/<partition>/all.uem")
    systems = parser.add_argument_group("systems")
    systems.add_argument("--hyp", metavar="[NAME=]DIR", action="append", default=[],
                         help="score the RTTMs DIR/<uri>.rttm as system NAME (default: the folder's name); "
                         "repeatable, one column each")
    systems.add_argument("--diarize", action="store_true",
                         help=f"with --hyp: also diarize every recording now, as system {LIVE!r}")
    scoring = parser.add_argument_group(
        "scoring", "Conventions in md-eval terms: " + "; ".join(c.describe() for c in CONVENTIONS.values())
        + ". md-eval -c X forgives X s on EACH side of a boundary; pyannote.metrics' collar is the whole width. "
        "Default: full.")
    scoring.add_argument("--convention", choices=tuple(CONVENTIONS),
                         help="a named scoring convention (see above); not with --collar or --skip-overlap")
    scoring.add_argument("--collar", type=float, default=None, metavar="WIDTH",
                         help="raw pyannote.metrics collar: the WHOLE width in seconds of the forgiven region "
                         "centred on each reference boundary, so WIDTH/2 on each side (md-eval -c WIDTH/2); "
                         "default 0")
    scoring.add_argument("--skip-overlap", action="store_true", default=None,
                         help="do not score regions where reference speakers overlap")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--json", metavar="OUT", help="also write the scores as JSON to OUT")
    outputs.add_argument("--report", metavar="DIR",
                         help="write DIR/index.html (a self-contained page: totals, error chart, a timeline per "
                         "file) and DIR/scores.csv")
    outputs.add_argument("--save-hyp", metavar="DIR", help="when diarizing, also write DIR/<uri>.rttm")
    parser.add_argument("--registry", metavar="PATH",
                        help="also score identification (IER, names compared as they are) against references "
                        "labelled with enrolled names: diarized speakers are named from this registry (with "
                        "--hyp, the RTTMs' labels are taken as names); reference speakers not enrolled there "
                        "count as right when called unknown_*; the enrolled voices also steer the diarization, "
                        "as in `voicemap identify`, so DER is that of the named diarization")
    parser.add_argument("--naming-threshold", "--match-threshold", dest="naming_threshold", type=float, metavar="T",
                        help="with --registry: naming threshold (default: the measured one of the encoder)")
    add_diarization_options(parser)
    parser.set_defaults(func=run)


@dataclass
class System:
    """One column of the table: a folder of RTTMs, or the diarization run now (folder None)."""

    name: str
    folder: Path | None
    scores: object = None  # eval.metrics.DiarizationScores
    identification: object = None  # eval.metrics.IdentificationScores, with --registry
    speed: list = field(default_factory=list)  # per scored file: {"uri", "wall_s", "cpu_s", "audio_s"}


def _refused(message: str) -> int:
    print(f"voicemap eval: {message}", file=sys.stderr)
    return 2


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}$")


def _systems(args) -> list[System]:
    """The systems the options name, in column order (the diarized one first); ValueError for a bad --hyp."""
    systems = [System(LIVE, None)] if not args.hyp or args.diarize else []
    for value in args.hyp:
        name, _, folder = value.partition("=")
        if not folder or Path(value).is_dir() or not _NAME.match(name):
            if "=" in value and not Path(value).is_dir() and not _NAME.match(name):
                raise ValueError(f"--hyp {value}: NAME must be 1-40 letters, digits or _.+- (NAME=DIR)")
            name, folder = Path(value).expanduser().resolve().name or "hyp", value
        if not Path(folder).is_dir():
            where = "" if folder == value else f"{folder}: "
            raise ValueError(f"--hyp {value}: {where}{'not a folder' if Path(folder).exists() else 'no such folder'}")
        if any(system.name == name for system in systems):
            raise ValueError(f"--hyp {value}: a second system named {name!r}; name them: --hyp NAME=DIR")
        systems.append(System(name, Path(folder)))
    return systems


def _option_problem(args) -> str | None:
    """The first option that cannot be right, as one line; None when all can. Reads no audio."""
    if args.collar is not None and (not math.isfinite(args.collar) or args.collar < 0):
        # pyannote.metrics takes any float without a word; a negative or NaN collar has no meaning
        return f"--collar {args.collar}: must be a finite number of seconds, 0 or more"
    if args.convention and (args.collar is not None or args.skip_overlap):
        return (f"--convention {args.convention} sets the collar and overlap rule itself; give it or "
                "--collar/--skip-overlap, not both")
    if args.naming_threshold is not None and not -1.0 <= args.naming_threshold <= 1.0:
        return f"--naming-threshold {args.naming_threshold}: must be a cosine between -1 and 1"
    if args.diarize and not args.hyp:
        return "--diarize adds the diarized system to --hyp systems; without --hyp it is the only one anyway"
    if args.hyp and args.save_hyp and not args.diarize:
        return "--save-hyp writes the diarization eval runs; with --hyp nothing is diarized (add --diarize)"
    if args.database and args.layout:
        return "--database names where a protocol is defined; with --layout SOURCE is a folder"
    return None


def _check_outputs(args, source, systems) -> None:
    """--json, --report and --save-hyp checked before any work (pipelines/outputs.py): OutputError when one
    cannot be written, when a uri would put DIR/<uri>.rttm outside DIR, or when an output would replace a file
    this run reads (manifest, reference, UEM, audio, hypothesis RTTM, registry). Makes the folders."""
    from pipelines.outputs import contained_name, refuse_overwriting, writable_file, writable_folder

    read = [args.registry, *source.read_paths]
    for item in source.items:
        read += [item.audio, item.rttm, item.uem]
        read += [system.folder / f"{item.uri}.rttm" for system in systems if system.folder is not None]
    # Outputs are renamed into place, which replaces a directory entry but never writes through a link: only a
    # read path of the same file name can be the same entry, so compare those (linear, not N x 4N).
    by_name: dict[str, list] = {}
    for path in read:
        if path is not None:
            by_name.setdefault(Path(path).name, []).append(path)
    saved = []
    if args.save_hyp:
        # a uri is a name: DIR/<uri>.rttm must stay under DIR
        saved = [Path(args.save_hyp) / f"{contained_name(item.uri)}.rttm" for item in source.items if item.uri]
        for output in saved:
            refuse_overwriting([output], by_name.get(output.name, []))
    report = []
    if args.report:
        from eval.report_page import REPORT_FILES

        writable_folder(args.report, create=False)
        report = [Path(args.report) / name for name in REPORT_FILES]
        refuse_overwriting(report, [p for name in REPORT_FILES for p in by_name.get(name, [])] + saved)
    if args.json:
        writable_file(args.json)
        refuse_overwriting([args.json], read + saved + report)
    if args.save_hyp:
        writable_folder(args.save_hyp)
    if args.report:
        writable_folder(args.report)


def _convention(args):
    from eval.metrics import CONVENTIONS, convention_of

    if args.convention:
        return CONVENTIONS[args.convention]
    return convention_of(args.collar or 0.0, bool(args.skip_overlap))


def _reference(item, manifest: str):
    """(reference, uem or None) of an item; ManifestError / AudioError with one line naming the file."""
    from diarize.audio import AudioError
    from eval.corpora import ManifestError, load_rttm, load_uem
    from eval.protocols import ProtocolItem, protocol_reference

    if item.problem:
        raise ManifestError(item.problem)
    if item.audio is not None and not Path(item.audio).exists():
        raise AudioError(f"{item.audio}: no such file")
    if isinstance(item, ProtocolItem):
        return protocol_reference(item)
    if item.rttm is None:
        raise ManifestError(f"{manifest}:{item.line}: row {item.uri!r} has no reference RTTM")
    reference = load_rttm(item.rttm, item.uri)
    # the UEM is checked against the audio's length (its header, cheap) before any diarization
    return reference, (load_uem(item.uem, item.uri, audio=item.audio) if item.uem else None)


def run(args) -> int:
    from diarize.audio import AudioError
    from eval.corpora import ManifestError, load_rttm
    from eval.metrics import DiarizationScores, IdentificationScores
    from eval.protocols import SourceError, open_source
    from pipelines.outputs import OutputError, writable_file, writable_folder

    problem = _option_problem(args)
    if problem:
        return _refused(problem)
    convention = _convention(args)
    try:
        systems = _systems(args)
        live = next((system for system in systems if system.folder is None), None)
        config = config_from_args(args) if live else None
        if args.json:  # before the source is read: an OUT that is a folder needs no manifest to be refused
            writable_file(args.json)
        if args.report:
            writable_folder(args.report, create=False)
        source = open_source(args.source, args.layout, args.subset, args.database, args.partition)
        _check_outputs(args, source, systems)
    except (SourceError, OutputError, ValueError) as error:
        return _refused(str(error).splitlines()[0])
    registry = voices = enrolled = None
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
            if registry is not None and args.naming_threshold is None:
                from cluster.registry.match import default_naming_threshold

                default_naming_threshold(diarizer.encoder.encoder_id)
        except ValueError as error:  # cluster.registry.match.MatchError is one
            if registry is not None:
                registry.close()
            return _refused(str(error).splitlines()[0])
    if registry is not None:
        enrolled = set(registry.centroids(diarizer.encoder.encoder_id)[0]) if diarizer else {v.name for v in registry.list()}
        if diarizer:  # the voices steer the diarization that will be named from them, as `voicemap identify` does
            from pipelines.identify import enrolled_voices

            voices = enrolled_voices(registry, diarizer.encoder.encoder_id, args.naming_threshold)
    for system in systems:
        system.scores = DiarizationScores(collar=convention.pyannote_collar, skip_overlap=convention.skip_overlap)
        if registry is not None:
            system.identification = IdentificationScores(enrolled, collar=convention.pyannote_collar,
                                                         skip_overlap=convention.skip_overlap)
    failures, scored = [], []
    with progress(source.items, args.quiet, unit="file", desc="eval") as bar:
        for item in bar:
            hypotheses, named, timing = {}, {}, None
            try:
                reference, uem = _reference(item, args.source)
                for system in systems:  # the RTTMs first: a missing one skips the file before it is diarized
                    if system.folder is not None:
                        hypotheses[system.name] = named[system.name] = load_rttm(system.folder / f"{item.uri}.rttm", item.uri)
                if live is not None:
                    hypotheses[LIVE], named[LIVE], timing = _diarize(item, diarizer, voices, registry, args)
            except ManifestError as error:  # its message names the file and line
                failures.append({"uri": item.uri, "error": str(error)})
                bar.write(f"voicemap: {error}", file=sys.stderr)
                continue
            except (AudioError, OSError, ValueError, RuntimeError) as error:
                line = fail_line(item.audio, error)
                failures.append({"uri": item.uri, "error": line.removeprefix("voicemap: ")})
                bar.write(line, file=sys.stderr)
                continue
            for system in systems:
                row = system.scores.add(item.uri, reference, hypotheses[system.name], uem)
                if system.identification is not None:
                    row.update(system.identification.add(item.uri, reference, named[system.name], uem))
            if timing is not None:
                live.speed.append(timing)
                live.scores.rows[-1].update({key: timing[key] for key in ("wall_s", "cpu_s", "audio_s")})
            if args.report:
                scored.append((item.uri, reference, uem, hypotheses))
    if registry is not None:
        registry.close()
    results = [_summary(system) for system in systems]
    _paired_differences(results)
    print(format_report(source.description, convention, results))
    payload = _payload(args, source, convention, results, failures)
    from cluster.atomic_files import atomic_write_text

    written_ok = True
    if args.json:
        try:
            atomic_write_text(args.json, json.dumps(payload, ensure_ascii=False, indent=1, default=float) + "\n")
        except OSError as error:
            print(f"voicemap eval: {error_line(args.json, error)}", file=sys.stderr)
            written_ok = False
    if args.report:
        from eval.report_page import write_report

        try:
            write_report(Path(args.report), payload, results, scored, convention, atomic_write_text)
        except OSError as error:
            print(f"voicemap eval: {error_line(args.report, error)}", file=sys.stderr)
            written_ok = False
        else:
            if not args.quiet:
                print(f"voicemap eval: report in {Path(args.report) / 'index.html'}", file=sys.stderr)
    return 1 if failures or not written_ok else 0


def _diarize(item, diarizer, voices, registry, args):
    """(hypothesis with plain labels, hypothesis as named, timing) of the live system on one item."""
    started, cpu = time.perf_counter(), time.process_time()
    result = diarizer(item.audio, voices=voices)
    timing = {"uri": item.uri, "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
              "audio_s": float(result.duration)}
    named = None
    if registry is not None:
        from pipelines.identify import identify_result

        named = identify_result(result, registry, args.naming_threshold).result.annotation
        named.uri = item.uri
    hypothesis = result.annotation.rename_labels()  # labels need not match the reference's
    hypothesis.uri = item.uri
    if args.save_hyp:
        from cluster.atomic_files import atomic_write_text
        from diarize.output import rttm_lines

        # with --registry the saved labels are the names, so `--hyp DIR --registry` rescores them
        lines = rttm_lines(result.annotation if named is None else named, item.uri)
        atomic_write_text(Path(args.save_hyp) / f"{item.uri}.rttm", "\n".join(lines) + "\n")
    return hypothesis, (hypothesis if named is None else named), timing


def _summary(system: System) -> dict:
    """A system's rows, total, bootstrap interval of the total DER and (diarized) speed, as plain data."""
    from eval.bootstrap import ratio_interval

    scores = system.scores
    total = scores.total() if scores.rows else None
    if total is not None and system.identification is not None:
        total.update(system.identification.total())
    interval = ratio_interval([row["missed"] + row["false_alarm"] + row["confusion"] for row in scores.rows],
                              [row["total"] for row in scores.rows])
    speed = None
    if system.folder is None and system.speed:
        wall, cpu = sum(t["wall_s"] for t in system.speed), sum(t["cpu_s"] for t in system.speed)
        audio = sum(t["audio_s"] for t in system.speed)
        speed = {"files": len(system.speed), "audio_s": audio, "wall_s": wall, "cpu_s": cpu,
                 "real_time_factor": wall / audio if audio else None,
                 "wall_s_per_audio_hour": 3600 * wall / audio if audio else None,
                 "cpu_s_per_audio_hour": 3600 * cpu / audio if audio else None}
    return {"name": system.name, "hyp": str(system.folder) if system.folder else None, "files": scores.rows,
            "total": total, "total_interval": interval.as_dict() if interval else None, "speed": speed}


def _paired_differences(results: list[dict]) -> None:
    """Each system but the first gets `difference_from_first`: its total DER minus the first's, with a paired
    bootstrap interval (the same files drawn for both)."""
    from eval.bootstrap import difference_interval

    def parts(result):
        return ([row["missed"] + row["false_alarm"] + row["confusion"] for row in result["files"]],
                [row["total"] for row in result["files"]])

    for result in results[1:]:
        interval = difference_interval(*parts(result), *parts(results[0]))
        if interval is not None:
            result["difference_from_first"] = {"than": results[0]["name"],
                                               "der": result["total"]["der"] - results[0]["total"]["der"],
                                               **interval.as_dict()}


def _payload(args, source, convention, results, failures) -> dict:
    """The JSON: with one system its rows and total at the top level (as before several could be compared),
    with several `systems: {NAME: ...}`."""
    payload = {"source": source.description, "collar": convention.pyannote_collar,
               "skip_overlap": convention.skip_overlap,
               "convention": {"name": convention.name, "collar_each_side_s": convention.each_side,
                              "pyannote_collar": convention.pyannote_collar, "skip_overlap": convention.skip_overlap,
                              "description": convention.describe()}}
    if len(results) == 1:
        payload.update({"system": results[0]["name"], **{k: v for k, v in results[0].items() if k != "name"}})
    else:
        payload["systems"] = {result["name"]: {k: v for k, v in result.items() if k != "name"} for result in results}
    payload.update({"failed": len(failures), "failures": failures})
    return payload


def format_table(rows: list[dict]) -> str:
    """One system's table: a row per file and the total."""
    with_ier = any("ier" in row for row in rows)
    with_speed = any("wall_s" in row for row in rows)
    header = f"{'uri':<20} {'DER%':>6} {'miss%':>6} {'FA%':>6} {'conf%':>6} {'JER%':>6} {'ref':>4} {'hyp':>4} {'scored s':>9}"
    header += f" {'IER%':>6}" if with_ier else ""
    header += f" {'wall s':>7} {'RTF':>5}" if with_speed else ""
    lines = [header, "-" * len(header)]
    for row in rows:
        total = row["total"] or 1.0
        line = (f"{row['uri']:<20} {100 * row['der']:>6.1f} {100 * row['missed'] / total:>6.1f} "
                f"{100 * row['false_alarm'] / total:>6.1f} {100 * row['confusion'] / total:>6.1f} {100 * row['jer']:>6.1f} "
                f"{row['reference_speakers']:>4} {row['hypothesis_speakers']:>4} {row['total']:>9.1f}"
                + (f" {100 * row['ier']:>6.1f}" if with_ier else ""))
        if with_speed and "wall_s" in row:
            line += f" {row['wall_s']:>7.1f} {row['wall_s'] / row['audio_s'] if row['audio_s'] else 0:>5.2f}"
        lines.append(line)
    return "\n".join(lines)


def _side_by_side(results: list[dict]) -> str:
    """Several systems: a DER column and a speaker-count-error column per system, per file and in total."""
    width = max(9, *(len(result["name"]) for result in results))
    names = " ".join(f"{result['name']:>{width}}" for result in results)
    span = len(names)
    above = f"{'':<25} | {'DER %':<{span}} | {'speakers: hyp - ref':<{span}}"
    header = f"{'uri':<20} {'ref':>4} | {names} | {names}"
    timed = next((result for result in results if result["speed"]), None)
    if timed:  # the diarized system's time per file
        above += f" | {timed['name'] + ' speed':<13}"
        header += f" | {'wall s':>7} {'RTF':>5}"
    lines = [above.rstrip(), header, "-" * max(len(header), len(above.rstrip()))]
    rows = [result["files"] + ([result["total"]] if result["total"] else []) for result in results]
    for index, row in enumerate(rows[0]):
        ders = " ".join(f"{100 * r[index]['der']:>{width}.1f}" for r in rows)
        counts = " ".join(f"{r[index]['speaker_count_error']:>+{width}d}" for r in rows)
        line = f"{row['uri']:<20} {row['reference_speakers']:>4} | {ders} | {counts}"
        if timed and index < len(timed["files"]):
            own = timed["files"][index]
            line += f" | {own['wall_s']:>7.1f} {own['wall_s'] / own['audio_s'] if own['audio_s'] else 0:>5.2f}"
        elif timed:  # the total row
            line += f" | {timed['speed']['wall_s']:>7.1f} {timed['speed']['real_time_factor']:>5.2f}"
        lines.append(line)
    if results[0]["total"]:
        for label, key in (("missed %", "missed"), ("false alarm %", "false_alarm"), ("confusion %", "confusion")):
            values = " ".join(f"{100 * result['total'][key] / (result['total']['total'] or 1):>{width}.1f}"
                              for result in results)
            lines.append(f"{'  ' + label:<25} | {values} |")
        values = " ".join(f"{100 * result['total']['jer']:>{width}.1f}" for result in results)
        lines.append(f"{'  JER %':<25} | {values} |")
    return "\n".join(lines)


def format_report(description: str, convention, results: list[dict]) -> str:
    """The printed table(s), with comment lines (#) saying what was scored, how, and how sure the totals are."""
    from eval.bootstrap import RESAMPLES, SEED

    lines = [f"# {description}", f"# convention {convention.describe()}"]
    lines.append(format_table(results[0]["files"] + ([results[0]["total"]] if results[0]["total"] else []))
                 if len(results) == 1 else _side_by_side(results))
    for result in results:
        interval, total = result["total_interval"], result["total"]
        if interval:
            lines.append(f"# {result['name']}: DER {100 * total['der']:.1f} %, 95 % interval "
                         f"{100 * interval['low']:.1f}-{100 * interval['high']:.1f} % (bootstrap over "
                         f"{len(result['files'])} files, {RESAMPLES} resamples, seed {SEED}); speaker count right "
                         f"in {total['speaker_count_right']}/{len(result['files'])} files")
        speed = result["speed"]
        if speed:
            lines.append(f"# {result['name']} speed: {speed['audio_s']:.1f} s of audio in {speed['wall_s']:.1f} s "
                         f"wall, real-time factor {speed['real_time_factor']:.3f}, {speed['wall_s_per_audio_hour']:.0f} "
                         f"s wall and {speed['cpu_s_per_audio_hour']:.0f} s CPU (all threads) per hour of audio")
    for result in results[1:]:  # each other system against the first, on the same files
        difference = result.get("difference_from_first")
        if difference:
            lines.append(f"# {result['name']} - {results[0]['name']}: DER {100 * difference['der']:+.1f} points, 95 % "
                         f"interval {100 * difference['low']:+.1f} to {100 * difference['high']:+.1f} (paired bootstrap "
                         "over files: both systems on the same draws)")
    return "\n".join(lines)
