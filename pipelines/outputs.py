"""Where a command may write: never over an input or the registry in use, one output name per input, and
nothing outside the output folder. Every command that writes checks its plan here before any audio is read.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from cluster.atomic_files import probe_new_file


class OutputError(ValueError):
    """A refused output plan: one line naming the path and the cause (the command exits 2, nothing written)."""


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same resolved path, or (both existing) the same inode."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting(outputs, protected) -> None:
    """OutputError when any path of `outputs` is one of `protected` (inputs, the registry in use, ...)."""
    protected = [Path(p) for p in protected if p is not None]
    for output in outputs:
        for kept in protected:
            if same_file(output, kept):
                raise OutputError(f"{output}: would replace {kept}, which this command reads; choose another output")


def writable_folder(folder: str | Path, *, create: bool = True) -> Path:
    """The output folder, checked (and made) before any work: OutputError when it is a file, lies under a file,
    or refuses a new file (read-only, no permission). A probe file proves it can be written, even as root."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{folder}: {parent} is a file, not a folder")
            break
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        if folder.is_dir():
            probe_new_file(folder)
    except OSError as error:
        raise OutputError(f"{folder}: cannot write there ({error.strerror or error})") from None
    return folder


def writable_file(path: str | Path) -> Path:
    """An output file's path, checked before any work: not a folder, and its folder (made here when missing,
    as an output folder is) can take a new file."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    writable_folder(path.parent if str(path.parent) else Path("."))
    return path


def contained_name(name: str) -> str:
    """An output name (a uri, or a sub-path under OUTDIR) that cannot leave OUTDIR: relative, no `..`, no empty
    parts. A uri is a name, not a path: `../../x` or `/etc/x` is refused."""
    text = str(name)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text.strip() or text.startswith(("/", "\\", "~")) or any(part in ("..", ".") for part in parts) \
            or "\0" in text or (len(text) > 1 and text[1] == ":"):
        raise OutputError(f"output name {text!r} is a path outside the output folder; a uri must be a plain name")
    return text


def unique_names(names: list[str], sources: list) -> None:
    """OutputError naming both inputs when two would write the same OUTDIR/<name>.* (checked before any work)."""
    seen: dict[str, object] = {}
    for name, source in zip(names, sources):
        key = os.path.normcase(str(name))
        if key in seen:
            raise OutputError(f"{source} and {seen[key]} would both be written as {name}.*; give their folder "
                              "(names keep the sub-path) or diarize them in separate runs")
        seen[key] = source
