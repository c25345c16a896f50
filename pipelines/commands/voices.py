"""`voicemap voices list|show|remove|export|import|search`: look after the registry of enrolled voices."""

from __future__ import annotations

import argparse
import json
import sys

from pipelines.voice_embedding import EnrollError, embed_file

from . import voice_algebra
from .common import registry_of
from .enroll import (UsageError, add_embedding_argument, add_registry_argument, check_min_speech, fail,
                     load_encoder_or_fail)

#: a search query may be short (a clip of someone to look up), but under a second embeddings are noise
SEARCH_MIN_SPEECH_S = 1.0


def _list(args: argparse.Namespace) -> int:
    from cluster.registry import resolve_registry_path

    from cluster.registry.voice_separation import registry_separations, separation_line

    path = resolve_registry_path(args.registry)
    voices = []
    separations: dict[str, dict] = {}  # name -> encoder id -> how it sits among the other voices
    if path.exists():
        with registry_of(args) as registry:
            voices = registry.list()
            for encoder_id in registry.encoders():
                for item in registry_separations(registry, encoder_id):
                    separations.setdefault(item.name, {})[encoder_id] = item
    if args.json:
        def separation(item):
            return {"files": item.files, "consistency": None if item.consistency is None else round(item.consistency, 3),
                    "nearest": item.nearest,
                    "nearest_cosine": None if item.nearest_cosine is None else round(item.nearest_cosine, 3),
                    "nearest_spreads": None if item.nearest_spreads is None else round(item.nearest_spreads, 2),
                    "too_close": item.too_close}

        print(json.dumps([{"name": v.name, "embeddings": v.counts, "metadata": v.metadata, "created": v.created,
                           "updated": v.updated,
                           "separation": {enc: separation(item) for enc, item in separations.get(v.name, {}).items()}}
                          for v in voices], ensure_ascii=False, indent=1))
        return 0
    if not voices:
        print(f"no voices enrolled ({path})")
        return 0
    width = max(len(v.name) for v in voices)
    for voice in voices:
        counts = ", ".join(f"{encoder} x{count}" for encoder, count in voice.counts.items()) or "no embeddings"
        tags = voice.metadata.get("tags") or []
        print(f"{voice.name:<{width}}  {counts}  updated {voice.updated[:19]}" + (f"  tags: {', '.join(tags)}" if tags else ""))
        for encoder_id, item in separations.get(voice.name, {}).items():
            alike = "" if item.consistency is None else f"files alike at cosine {item.consistency:.2f}; "
            print(f"{'':<{width}}    {encoder_id}: {alike}{separation_line(item)}")
    print(f"{len(voices)} voice(s) in {path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    with registry_of(args) as registry:
        voice = registry.get(args.name)
        embeddings = registry.embeddings(args.name)
    if args.json:
        print(json.dumps({"name": voice.name, "metadata": voice.metadata, "created": voice.created,
                          "updated": voice.updated, "embeddings": [
                              {"encoder_id": e.encoder_id, "dimension": int(e.vector.size),
                               "source_sha256": e.source_hash, "created": e.created} for e in embeddings]},
                         ensure_ascii=False, indent=1))
        return 0
    print(f"name      {voice.name}")
    print(f"created   {voice.created}")
    print(f"updated   {voice.updated}")
    for key, value in voice.metadata.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        print(f"{key:<9} {shown}")
    for e in embeddings:
        source = f"source sha256 {e.source_hash[:16]}..." if e.source_hash else "no source file"
        print(f"embedding {e.encoder_id} ({e.vector.size}-d)  {source}  added {e.created[:19]}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with registry_of(args) as registry:
        scrubbed = registry.remove(args.name, args.encoder)
    what = f"{args.encoder} embeddings of {args.name}" if args.encoder else args.name
    print(f"removed {what}")
    if not scrubbed:
        print("voicemap voices remove: warning: another process is reading the registry; the deleted vectors "
              "may stay in its -wal file until that process ends (run `voicemap voices scrub` then)", file=sys.stderr)
    return 0


def _scrub(args: argparse.Namespace) -> int:
    with registry_of(args) as registry:
        if not registry.scrub():
            return fail("voices scrub", f"{registry.path}: another process is reading the registry; try again later")
    print("registry compacted; no deleted data remains in its files")
    return 0


def _export(args: argparse.Namespace) -> int:
    from cluster.registry import resolve_registry_path
    from pipelines.outputs import refuse_overwriting, writable_file

    registry_path = resolve_registry_path(args.registry)
    # the export is JSON: written over the registry (or its -wal/-shm) it would destroy every enrolled voice
    refuse_overwriting([args.file], [registry_path, f"{registry_path}-wal", f"{registry_path}-shm"])
    writable_file(args.file)
    with registry_of(args) as registry:
        count = registry.export_file(args.file)
    print(f"exported {count} voice(s) to {args.file} (it holds voice embeddings: keep it as private as the registry)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cluster.registry import open_registry
    from cluster.registry.export import parse_export, read_export

    source = Path(args.file).expanduser()
    data = read_export(source)
    parse_export(data, str(source))  # a bad file is refused before any registry is opened or created
    # a registry created here is deleted again if the import fails (say, a name conflict inside the file)
    with open_registry(args.registry, create=True) as registry:
        count = registry.import_data(data, on_conflict=args.on_conflict, label=str(source))
        path = registry.path
    print(f"imported {count} voice(s) into {path}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from cluster.registry.match import NAMING_THRESHOLDS

    if args.direction is not None:
        if args.audio is not None:
            raise UsageError("search: give an AUDIO clip or --direction, not both")
        return voice_algebra.search_direction(args)
    if args.audio is None:
        raise UsageError("search: give an AUDIO clip to search by example, or --direction NAME")
    if args.k < 1:
        raise UsageError(f"-k {args.k}: must be at least 1")
    check_min_speech(args.min_speech)
    with registry_of(args) as registry:
        encoder = load_encoder_or_fail(args.embedding, args.device)
        if not registry.centroids(encoder.encoder_id)[0]:
            enrolled = ", ".join(registry.encoders()) or "none"
            raise EnrollError(f"no voices enrolled with {encoder.encoder_id} in {registry.path} "
                              f"(encoders enrolled: {enrolled})")
        query = embed_file(args.audio, encoder, min_speech=args.min_speech)
        hits = registry.search(query.vector, encoder.encoder_id, k=args.k)
    threshold = NAMING_THRESHOLDS.get(encoder.encoder_id)
    if args.json:
        print(json.dumps([{"name": h.name, "score": round(h.score, 4),
                           "match": None if threshold is None else h.score >= threshold} for h in hits],
                         ensure_ascii=False, indent=1))
        return 0
    width = max(len(h.name) for h in hits)
    for hit in hits:
        flag = "" if threshold is None else ("  match" if hit.score >= threshold else "")
        print(f"{hit.name:<{width}}  {hit.score:.3f}{flag}")
    if threshold is not None:
        print(f"(match: cosine >= {threshold:.3f}, the open-set threshold of {encoder.encoder_id})")
    return 0


def run(args: argparse.Namespace) -> int:
    import sqlite3

    from cluster.registry import RegistryError, describe_sqlite_error, resolve_registry_path
    from pipelines.errors import error_line
    from pipelines.outputs import OutputError
    from synth.algebra import AlgebraError

    if not getattr(args, "action", None):
        args.voices_parser.print_help()
        return 2
    command = f"voices {args.voices_command}"
    try:
        return args.action(args)
    except (UsageError, OutputError) as error:
        return fail(command, str(error), 2)
    except (EnrollError, RegistryError, AlgebraError) as error:
        return fail(command, str(error))
    except sqlite3.Error as error:  # the registry wraps its own; this is the last guard for one line
        return fail(command, describe_sqlite_error(resolve_registry_path(args.registry), error))
    except OSError as error:
        return fail(command, error_line(getattr(args, "file", None) or getattr(args, "audio", None), error))


def register(subparsers) -> None:
    parser = subparsers.add_parser("voices", help="list, show, remove, export, import or search enrolled voices; "
                                   "attribute directions, edits and mixes",
                                   description="Look after the registry of enrolled voices.")
    parser.set_defaults(func=run, voices_parser=parser, action=None)
    commands = parser.add_subparsers(dest="voices_command", metavar="ACTION")

    def add(name: str, action, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        add_registry_argument(sub)
        sub.set_defaults(action=action)
        return sub

    sub = add("list", _list, "list enrolled voices")
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub = add("show", _show, "show one voice: metadata and stored embeddings (never vector values)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub = add("remove", _remove, "delete a voice and its vectors from the registry file for good")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--encoder", metavar="ENCODER_ID", default=None,
                     help="remove only this encoder's embeddings of the voice")
    add("scrub", _scrub, "compact the registry so that no deleted data remains in its files")
    sub = add("export", _export, "write every voice (and stored direction) to a JSON file, atomically")
    sub.add_argument("file", metavar="FILE")
    sub = add("import", _import, "add the voices of an exported JSON file, all or nothing")
    sub.add_argument("file", metavar="FILE")
    sub.add_argument("--on-conflict", choices=("error", "skip", "replace"), default="error",
                     help="for a name already enrolled: fail (default), keep ours, or take theirs")
    sub = add("search", _search, "the enrolled voices nearest to the speaker of an audio clip, or ranked along "
              "a stored direction (--direction)")
    sub.add_argument("audio", metavar="AUDIO", nargs="?", default=None)
    sub.add_argument("-k", "--top", dest="k", type=int, default=5, help="how many voices to list (default 5)")
    sub.add_argument("--direction", metavar="NAME", default=None,
                     help="rank voices by their reading along this stored direction instead (highest first)")
    sub.add_argument("--lowest", action="store_true", help="with --direction: lowest readings first")
    sub.add_argument("--min-speech", type=float, default=SEARCH_MIN_SPEECH_S, metavar="SECONDS",
                     help=f"refuse a clip with less speech than this (default {SEARCH_MIN_SPEECH_S:g})")
    sub.add_argument("--json", action="store_true", help="print JSON")
    add_embedding_argument(sub)
    voice_algebra.add_subcommands(add, add_embedding_argument)
