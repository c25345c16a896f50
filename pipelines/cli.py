"""The `voicemap` command line: one sub-command per module in pipelines/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: sub-command modules, each with `register(subparsers)` that sets `func(args) -> exit status`
COMMAND_MODULES = [
    "pipelines.commands.diarize",
    "pipelines.commands.identify",
    "pipelines.commands.evaluate",
    "pipelines.commands.enroll",
    "pipelines.commands.voices",
    "pipelines.commands.embed",
    "pipelines.commands.export_onnx",
    "pipelines.commands.eval_verification",
    "pipelines.commands.synth",
    "pipelines.commands.batch",
    "pipelines.commands.anonymize",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicemap",
        description="Who spoke when, and who is that: overlap-aware speaker diarization on a CPU, "
        "a registry of enrolled voices, and voices as vectors. Everything runs offline.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that spin while waiting turn a busy machine into a crawl: with both cores taken by
    # other work, a 2-thread CAM++ pass ran 25x slower than with sleeping waits (0.93 s vs 24.6 s per
    # 32 s block). libgomp reads this once, when torch loads, so it is set before any command imports it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from diarize.privacy import quiet_dependencies

    quiet_dependencies()  # before any command imports a library that phones home
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("voicemap: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
