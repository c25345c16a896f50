"""`voicemap batch diarize|identify`: who spoke when (and who is that) over an archive, on Ray, resumable from OUTDIR's job state."""

from __future__ import annotations

import math
import sys

from .common import HelpFormatter, add_diarization_options, add_naming_options, check_naming_options, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="Ray jobs over archives: resumable, fault-isolated, parallel",
        description="Run a job over many recordings on Ray (a local runtime by default, a cluster with --address "
        "or RAY_ADDRESS). Job state lives in OUTDIR/voicemap-batch.sqlite: rerunning the same command skips "
        "files already done (same content hash) and retries failed ones only with --retry-failed.",
    )
    jobs = parser.add_subparsers(dest="job", metavar="JOB")
    outputs = ("Writes OUTDIR/<path relative to its SRC, without extension>.rttm and .json; SRC is a folder "
               "(searched recursively), an audio file, or a manifest TSV (columns uri, audio; outputs named by "
               "uri). Prints a summary table and writes OUTDIR/summary.json. Exit status: 0 when nothing failed "
               "in this run, 1 when some input failed, 2 for a job-level error, 130 when interrupted.")
    diarize = jobs.add_parser("diarize", help="who spoke when, for every input",
                              description="Diarize every input, as `voicemap diarize` does. " + outputs,
                              formatter_class=HelpFormatter)
    _add_job_options(diarize)
    add_diarization_options(diarize)
    identify = jobs.add_parser(
        "identify", help="who spoke when and who is that, for every input",
        description="Diarize every input and name its speakers from the voice registry, as `voicemap identify` "
        "does; naming runs on the driver, so only its machine needs the registry. Files already done are not "
        "renamed when the registry changes later: use a new OUTDIR. " + outputs,
        formatter_class=HelpFormatter)
    _add_job_options(identify)
    add_naming_options(identify)
    # as in `voicemap identify`: --threshold names, --cluster-threshold cuts the clustering
    add_diarization_options(identify, threshold_alias=False)
    for job in (diarize, identify):
        job.set_defaults(func=run)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _add_job_options(job) -> None:
    job.add_argument("sources", nargs="+", metavar="SRC", help="folders, audio files or manifest .tsv files")
    job.add_argument("-o", "--outdir", required=True, help="folder for outputs, job state and summary.json")
    job.add_argument("--workers", type=int,
                     help="worker actors, each loading the models once (default: one per CPU of the runtime)")
    job.add_argument("--cpus-per-worker", type=float, default=1.0,
                     help="CPUs Ray reserves for each worker (fractions allowed); torch uses that many threads")
    job.add_argument("--address", help="Ray cluster to attach to (default: $RAY_ADDRESS, else a local runtime)")
    job.add_argument("--retry-failed", action="store_true", help="retry inputs that failed in an earlier run")
    job.add_argument("--split-over", type=float, default=900.0, metavar="SECONDS",
                     help="recordings longer than this are cut into pieces diarized on several workers, then "
                     "clustered once (wav/flac/ogg/mp3; 0: never split)")
    job.add_argument("--link", action="store_true",
                     help="at the end, link the speakers of every output in OUTDIR into archive voices, as "
                     "`voicemap link OUTDIR` does (on the driver, from the centroids alone)")


def run(args) -> int:
    from pipelines.batch import run_batch, summary_table
    from pipelines.batch_state import BatchError

    if args.workers is not None and args.workers < 1:
        print("voicemap batch: --workers must be at least 1", file=sys.stderr)
        return 2
    if not (math.isfinite(args.cpus_per_worker) and args.cpus_per_worker > 0):
        print(f"voicemap batch: --cpus-per-worker {args.cpus_per_worker:g}: must be a positive number", file=sys.stderr)
        return 2
    if not (math.isfinite(args.split_over) and args.split_over >= 0):
        print(f"voicemap batch: --split-over {args.split_over:g}: must be 0 (never split) or a number of seconds",
              file=sys.stderr)
        return 2
    try:
        # every option is checked here, before the output folder is touched, Ray starts or any audio is read
        config = config_from_args(args)
        if args.job == "identify":
            check_naming_options(args)
        summary = run_batch(args.sources, args.outdir, config, workers=args.workers, address=args.address,
                            retry_failed=args.retry_failed, cpus_per_worker=args.cpus_per_worker, quiet=args.quiet,
                            task=args.job, split_over=args.split_over or None, registry=getattr(args, "registry", None),
                            naming_threshold=getattr(args, "naming_threshold", None))
    except (BatchError, ValueError) as error:
        print(f"voicemap batch: {error}", file=sys.stderr)
        return 2
    print(f"batch {args.job}: {args.outdir}\n{summary_table(summary)}", file=sys.stderr)
    if summary.interrupted:
        return 130
    status = 1 if summary.failed else 0
    if getattr(args, "link", False):
        from pipelines.commands.link import link_defaults
        from pipelines.commands.link import run as link

        status = max(status, link(link_defaults(args.outdir, quiet=args.quiet)))
    return status
