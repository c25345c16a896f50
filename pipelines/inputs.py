"""Expanding command-line inputs: files as given, folders searched recursively for audio files."""

from __future__ import annotations

from pathlib import Path

from diarize.audio import AUDIO_EXTENSIONS


def expand_inputs(sources: list[str]) -> list[tuple[Path, Path]]:
    """-> (audio path, root it was found under) pairs, folders expanded recursively in sorted order.

    A path that does not exist is kept, so that it is reported as a failed input rather than dropped.
    """
    found: list[tuple[Path, Path]] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.is_file() and candidate.suffix.lower() in AUDIO_EXTENSIONS:
                    found.append((candidate, path))
        else:
            found.append((path, path.parent))
    return found


def output_stem(path: Path, root: Path) -> str:
    """Output name: the path relative to its source folder, without extension (flat inputs give the stem)."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return str(relative.with_suffix(""))
