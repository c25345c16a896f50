"""Writing a file so that readers see the old one or the whole new one, never a part, and a failure leaves
nothing behind: the one helper every output and the registry's exports use.

Temporary files are made beside the target (a rename is atomic only within one file system) with mode 0600:
most outputs of this project hold voice data.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (soundfile, numpy); renamed onto
    `path` when the block ends, removed if it raises. `suffix` lets writers that read the format from the
    name (".wav", ".flac") see the right one. The folder is made if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(stream)` on a temporary file beside `path`, flush it to disk, then rename it into place."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        write(stream)
        stream.flush()
        os.fsync(stream.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def probe_new_file(folder: str | os.PathLike) -> None:
    """OSError unless `folder` takes a new file: one is made and removed again. Permission bits do not stop
    root, and a read-only mount only shows on a real write, so asking the file system (os.access) is not
    enough."""
    handle, probe = tempfile.mkstemp(prefix=".voicemap-probe.", dir=folder)
    os.close(handle)
    os.unlink(probe)
