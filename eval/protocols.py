"""What `voicemap eval` scores, from any of the shapes a diarization corpus comes in.

A SOURCE is a manifest TSV (eval/corpora.py), a pyannote.database protocol name (Database.Task.Protocol, read
by pyannote.database itself from a database.yml), or a corpus folder in one of the layouts its publishers
ship: the AMI-diarization-setup tree, VoxConverse, DIHARD III. Each becomes the same list of items, one per
recording: uri, audio path, reference RTTM, UEM, and a `problem` line when the recording cannot be scored
(audio missing, no reference), which the command reports when it reaches that item so that the rest still
scores. A source that cannot be read at all raises SourceError (the command exits 2 before any audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eval.corpora import ManifestError, ManifestItem, read_manifest

LAYOUTS = ("ami", "voxconverse", "dihard")
SUBSETS = ("test", "development", "train")

#: AMI-diarization-setup calls the development split "dev"
AMI_SPLIT = {"test": "test", "development": "dev", "train": "train"}
#: VoxConverse ships dev/ and test/ only
VOXCONVERSE_SPLIT = {"test": "test", "development": "dev"}
#: where a VoxConverse uri's audio is looked for, in this order ({split}: dev or test); the first that exists
VOXCONVERSE_AUDIO = ("audio/{split}/{uri}.wav", "{split}/{uri}.wav", "audio/{uri}.wav", "voxconverse_{split}_wav/{uri}.wav",
                     "wav/{split}/{uri}.wav")
#: DIHARD III scoring partitions: data/uem_scoring/{partition}/all.uem
DIHARD_PARTITIONS = ("full", "core")


class SourceError(ValueError):
    """A SOURCE that cannot be used at all: one line naming it and the cause."""


@dataclass(frozen=True)
class ProtocolItem:
    """One file of a pyannote.database protocol. The reference (and the UEM, when the protocol gives one as
    `annotated`) come from pyannote.database's own loaders through `file`; rttm and uem stay None."""

    uri: str
    audio: Path | None
    file: object = field(repr=False)  # pyannote.database ProtocolFile
    where: str = ""
    problem: str | None = None
    rttm: None = None
    uem: None = None
    line: int = 0


@dataclass(frozen=True)
class Source:
    """The items to score and one line saying where they came from (printed above the table)."""

    items: list
    description: str
    read_paths: list = field(default_factory=list)  # files a run reads besides the items' own (never overwritten)


def open_source(source: str, layout: str | None = None, subset: str = "test", database: str | None = None,
                partition: str = "full") -> Source:
    """The items of SOURCE (see the module's docstring). SourceError when it cannot be used at all."""
    path = Path(source).expanduser()
    if layout is not None:
        if not path.is_dir():
            raise SourceError(f"{source}: {'not a folder' if path.exists() else 'no such folder'} "
                              f"(--layout {layout} reads a corpus folder)")
        return {"ami": _ami, "voxconverse": _voxconverse, "dihard": _dihard}[layout](path, subset, partition)
    if path.is_dir():
        raise SourceError(f"{source}: is a folder; give --layout {'|'.join(LAYOUTS)} to read it as a corpus")
    if not path.exists() and _looks_like_protocol(source):
        return _protocol(source, subset, database)
    try:
        items = read_manifest(path)
    except ManifestError as error:
        raise SourceError(str(error)) from None
    return Source(items, f"manifest {source}", [path])


def _looks_like_protocol(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 3 and all(part and "/" not in part for part in parts)


def _item(uri: str, audio: Path, rttm: Path, uem: Path | None, what: str) -> ManifestItem:
    """A layout's item; `problem` when the audio or the reference is missing (said with the layout's `what`)."""
    problem = None
    if not rttm.is_file():
        problem = f"{rttm}: no such RTTM file, so {uri!r} ({what}) has no reference"
    elif not audio.is_file():
        problem = f"{audio}: no such audio file for {uri!r} ({what})"
    return ManifestItem(uri, audio, rttm, uem, 0, problem)


def _ami(root: Path, subset: str, partition: str) -> Source:
    split = AMI_SPLIT[subset]
    listing = root / "lists" / f"{split}.meetings.txt"
    if not listing.is_file():
        raise SourceError(f"{listing}: no such file (an AMI-diarization-setup tree has lists/{{train,dev,test}}.meetings.txt)")
    try:
        uris = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"{listing}: cannot read ({error})") from None
    if not uris:
        raise SourceError(f"{listing}: lists no meeting")
    items = []
    for uri in dict.fromkeys(uris):
        uem = root / "uems" / split / f"{uri}.uem"
        items.append(_item(uri, root / "amicorpus" / uri / "audio" / f"{uri}.Mix-Headset.wav",
                           root / "only_words" / "rttms" / split / f"{uri}.rttm", uem if uem.is_file() else None,
                           f"listed in {listing.name}"))
    return Source(items, f"AMI {root} {split} ({len(items)} meetings, only_words references, Mix-Headset audio)",
                  [listing])


def _voxconverse(root: Path, subset: str, partition: str) -> Source:
    if subset not in VOXCONVERSE_SPLIT:
        raise SourceError(f"--subset {subset}: VoxConverse has no {subset} set (dev and test only)")
    split = VOXCONVERSE_SPLIT[subset]
    folder = root / split
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder (VoxConverse keeps the {split} RTTMs in {split}/)")
    rttms = sorted(folder.glob("*.rttm"))
    if not rttms:
        raise SourceError(f"{folder}: holds no .rttm file")
    items = []
    for rttm in rttms:
        uri = rttm.stem
        candidates = [root / pattern.format(split=split, uri=uri) for pattern in VOXCONVERSE_AUDIO]
        audio = next((path for path in candidates if path.is_file()), candidates[0])
        problem = None if audio.is_file() else (
            f"{candidates[0]}: no such audio file for {uri!r} (also looked for {split}/{uri}.wav, audio/{uri}.wav, "
            f"voxconverse_{split}_wav/{uri}.wav, wav/{split}/{uri}.wav)")
        items.append(ManifestItem(uri, audio, rttm, None, 0, problem))
    return Source(items, f"VoxConverse {root} {split} ({len(items)} recordings, no UEM: scored over the extent "
                         "of reference and hypothesis)")


def _dihard(root: Path, subset: str, partition: str) -> Source:
    data = root / "data"
    for needed in ("flac", "rttm"):
        if not (data / needed).is_dir():
            raise SourceError(f"{data / needed}: no such folder (a DIHARD III release holds data/flac, data/rttm, data/uem)")
    scoring = data / "uem_scoring" / partition / "all.uem"
    audio = {path.stem: path for path in data.glob("flac/*.flac")}
    references = {path.stem: path for path in data.glob("rttm/*.rttm")}
    if not references:
        raise SourceError(f"{data / 'rttm'}: holds no .rttm file")
    read = []
    if scoring.is_file():
        from eval.corpora import _fields, _read_lines

        try:
            in_partition = {fields[0] for fields in map(_fields, _read_lines(scoring, "UEM file")) if fields}
        except ManifestError as error:
            raise SourceError(str(error)) from None
        read.append(scoring)
    elif partition == "core":
        raise SourceError(f"{scoring}: no such file (the core partition is defined by its scoring UEM)")
    else:
        in_partition = set(references) | set(audio)
    items = []
    for uri in sorted((set(references) | set(audio)) & in_partition):
        uem = scoring if scoring.is_file() else data / "uem" / f"{uri}.uem"
        items.append(_item(uri, audio.get(uri, data / "flac" / f"{uri}.flac"),
                           references.get(uri, data / "rttm" / f"{uri}.rttm"), uem if uem.is_file() else None,
                           "DIHARD III"))
    if not items:
        raise SourceError(f"{scoring}: names none of the recordings in {data / 'rttm'}")
    how = f"scoring UEM uem_scoring/{partition}/all.uem" if scoring.is_file() else "per-file UEMs data/uem/"
    return Source(items, f"DIHARD III {root} ({len(items)} recordings, {partition} partition, {how}; "
                         "--subset does not apply: a release folder is one set)", read)


def _protocol(name: str, subset: str, database: str | None) -> Source:
    """A pyannote.database protocol: loaded from `database` (a database.yml) into a registry of its own, else
    from pyannote.database's usual places (PYANNOTE_DATABASE_CONFIG, ./database.yml, ~/.pyannote/database.yml),
    which its global registry read on import."""
    import contextlib
    import io
    import warnings

    try:
        # importing pyannote.database loads ./database.yml and the other usual places into its global registry,
        # printing notes on stdout (where the table goes) and raising on a broken file
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            from pyannote.database import FileFinder
            from pyannote.database.registry import Registry, _find_default_ymls
    except Exception as error:  # yaml and pyannote.database errors of a broken database.yml found on import
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SourceError(f"{name}: pyannote.database could not load its configuration files ({text})") from None

    # A registry of this call's own, so that PYANNOTE_DATABASE_CONFIG is read now, not when pyannote.database
    # was first imported; _find_default_ymls is pyannote.database's own list of its usual places.
    paths = [Path(database)] if database is not None else _find_default_ymls()
    where = database or "PYANNOTE_DATABASE_CONFIG, ./database.yml or ~/.pyannote/database.yml"
    if not paths:
        raise SourceError(f"{name}: no such manifest, and no pyannote.database configuration to find it as a "
                          f"protocol in (give --database FILE.yml or set PYANNOTE_DATABASE_CONFIG)")
    registry = Registry()
    for path in paths:
        try:
            # pyannote.database prints notes (the scope of speaker labels) on stdout, where the table goes
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                registry.load_database(path)
        except FileNotFoundError:
            raise SourceError(f"--database {path}: no such file") from None
        except Exception as error:  # yaml, KeyError, TypeError: whatever a broken database.yml makes it raise
            text = str(error).splitlines()[0] if str(error) else ""
            raise SourceError(f"{path}: not a pyannote.database configuration ({type(error).__name__}: {text})") from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            protocol = registry.get_protocol(name)
            files = list(getattr(protocol, subset)())
    except (ValueError, KeyError, AttributeError, NotImplementedError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "Could not find any protocol" in text:
            text = f"no database {name.split('.')[0]!r} defined"
        raise SourceError(f"{name}: not a protocol of {where} ({text})") from None
    except (OSError, ManifestError) as error:
        raise SourceError(f"{name} {subset}: {str(error).splitlines()[0]}") from None
    if not files:
        raise SourceError(f"{name}: its {subset} subset holds no file")
    finder = FileFinder(registry)
    items = []
    for file in files:
        uri = file["uri"]
        audio, problem = None, None
        try:
            audio = Path(finder(file))
        except (FileNotFoundError, KeyError, ValueError):
            templates = registry.sources.get(file["database"], [])
            looked = ", ".join(str(t).format(uri=uri, database=file["database"]) for t in templates) or \
                f"nowhere: no Databases entry for {file['database']}"
            problem = f"{name} {subset} {uri!r}: no audio found (looked for {looked})"
        items.append(ProtocolItem(uri, audio, file, f"{name} {subset} {uri!r}", problem))
    return Source(items, f"protocol {name} {subset} ({len(items)} files, from {where})",
                  [database] if database else [])


def protocol_reference(item: ProtocolItem):
    """(reference, uem or None) of a protocol file, through pyannote.database's loaders; ManifestError with one
    line naming the file when they fail, or when a region of the UEM (`annotated`) lies past the audio's end."""
    from eval.corpora import DURATION_TOLERANCE, audio_duration

    try:
        reference = item.file["annotation"]
        uem = item.file["annotated"] if "annotated" in item.file else None
    except Exception as error:  # pyannote.database's loaders raise what pandas and open raise
        raise ManifestError(f"{item.where}: cannot load its reference ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    if not reference:
        # pyannote.database gives an empty annotation for a uri its RTTM does not mention, which would score
        # as DER 0 (nothing to miss)
        raise ManifestError(f"{item.where}: no reference (the protocol's annotation holds no speech of this uri)")
    if uem is not None and item.audio is not None and uem:
        end = uem.extent().end
        duration, exact = audio_duration(item.audio)
        if end > duration + DURATION_TOLERANCE and not exact:
            duration, exact = audio_duration(item.audio, exact=True)
        if end > duration + DURATION_TOLERANCE:
            raise ManifestError(f"{item.where}: its annotated region ends at {end:.3f} s, beyond the end of the "
                                f"audio ({item.audio.name} lasts {duration:.3f} s)")
    return reference, uem
