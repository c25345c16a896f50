"""Running the CLI inside a test and reading what it stored: the helpers the command tests share."""

from __future__ import annotations

import sqlite3


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`voicemap ARGV...` in this process -> (exit status, stdout, stderr)."""
    from pipelines.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def dump(path) -> list[str]:
    """Every row of a registry file, to show that a refused command stored nothing."""
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())
