"""The registry's edge with SQLite: whatever sqlite3 raises becomes one line naming the file, and what it means."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from .values import RegistryError

#: how long a call waits for another process's lock on the registry file before giving up
BUSY_TIMEOUT_S = 30.0


def describe_sqlite_error(path: Path, error: sqlite3.Error) -> str:
    """One line for an sqlite3 error on the registry at `path`: what it means for the user, then sqlite's words."""
    code = getattr(error, "sqlite_errorname", "") or ""
    cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if code.startswith("SQLITE_READONLY"):
        what = "is read-only; nothing was written"
    elif code == "SQLITE_NOTADB":
        what = "not a voicemap registry"
    elif code.startswith("SQLITE_CORRUPT"):
        what = "damaged or not a voicemap registry; restore it from a backup or an export"
    elif code.startswith("SQLITE_CANTOPEN"):
        # a WAL database needs its -wal/-shm companions beside it, even to be read
        what = "cannot open it, or its folder takes no -wal/-shm file beside it"
    elif code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        what = f"another process kept it locked for over {BUSY_TIMEOUT_S:g} s; try again"
    elif code == "SQLITE_FULL":
        what = "the disk is full; nothing was written"
    elif code.startswith("SQLITE_IOERR"):
        what = "read or write failed"
    elif code.startswith("SQLITE_PERM") or code.startswith("SQLITE_AUTH"):
        what = "permission denied"
    else:
        what = "database error"
    return f"registry {path}: {what} ({cause})"


def sqlite_edge(method):
    # The registry's edge: whatever sqlite3 raises inside becomes one line naming the file (RegistryError).
    # Writes run in one transaction that rolls back first, so the file is as it was.
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as error:
            raise RegistryError(describe_sqlite_error(self.path, error)) from error

    return wrapper
