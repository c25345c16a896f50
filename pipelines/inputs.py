"""Expanding command-line inputs: files as given, folders searched recursively for audio files."""

from __future__ import annotations

from pathlib import Path

from diarize.audio import AUDIO_EXTENSIONS


def expand_inputs(sources: list[str]) -> list[tuple[Path, Path]]:
    """-> (audio path, root it was found under) pairs, folders expanded recursively in sorted order.

    A path that does not exist, and a folder that holds no audio file, are kept (as (path, path) for the
    folder), so that each is reported as a failed input rather than dropped: see `input_problem`.
    """
    found: list[tuple[Path, Path]] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            inside = [candidate for candidate in sorted(path.rglob("*"))
                      if candidate.is_file() and candidate.suffix.lower() in AUDIO_EXTENSIONS]
            found.extend((candidate, path) for candidate in inside)
            if not inside:
                found.append((path, path))
        else:
            found.append((path, path.parent))
    return found


def input_problem(path: Path) -> str | None:
    """The one-line cause for an input that `expand_inputs` kept but that cannot be diarized, else None."""
    if path.is_dir():
        return f"{path}: no audio files in this folder ({', '.join(sorted(AUDIO_EXTENSIONS))})"
    return None


def output_stems(inputs: list[tuple[Path, Path]]) -> list[str]:
    """One output name per input (`output_stem`), refused before any work when two inputs would share one
    (pipelines.outputs.OutputError); inputs that are empty folders get no name ("")."""
    from .outputs import unique_names

    stems = ["" if path.is_dir() else output_stem(path, root) for path, root in inputs]
    named = [(stem, path) for stem, (path, _) in zip(stems, inputs) if stem]
    unique_names([stem for stem, _ in named], [path for _, path in named])
    return stems


def output_stem(path: Path, root: Path) -> str:
    """Output name: the path relative to its source folder, without extension (flat inputs give the stem)."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return str(relative.with_suffix(""))
