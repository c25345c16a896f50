"""The `voicemap` command line: one sub-command per module in pipelines/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
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
    "pipelines.commands.link",
    "pipelines.commands.search",
    "pipelines.commands.report",
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
    command = " ".join(part for part in (args.command, getattr(args, "voices_command", None),
                                          getattr(args, "job", None)) if part)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("voicemap: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        # a file or folder a command reads or writes failed on it (full disk, permissions, a file where a
        # folder should be): one line naming it, never a traceback
        from pipelines.errors import error_line

        print(f"voicemap {command}: {error_line(None, error)}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"voicemap {command}: database error: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
