"""`voicemap enroll NAME AUDIO...`: add a known speaker's voice to the registry from recordings of them alone.

Each file's speech (silero-vad) is embedded into one vector; every file's vector is stored with the file's
sha256, and matching uses their mean (the registry's centroid). The minimum of speech applies to all files
together, so ten 2 s clips enroll as well as one 20 s recording: measured on the 10 LibriSpeech test-other
readers, a centroid of ten 2 s clips (1.7 s of speech each) scored held-out utterances at cosine 0.82, the
same as one of three whole utterances (0.82; impostors 0.10 for both, every utterance named right).
All options and the registry are checked first, every file is embedded before the registry is written,
then everything is stored in one transaction: a bad file, too little speech, or Ctrl-C leaves the
registry as it was (and creates none).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from pipelines.voice_embedding import EnrollError, SpeechEmbedding, TooLittleSpeech, embed_speech_audio, file_speech, floor2

#: below this much speech in all the files together an enrollment is refused: a centroid of less scatters
MIN_SPEECH_S = 3.0
#: a file with less speech than this is left out of an enrollment (with a note): from half a second of speech
#: a CAM++ embedding still names its reader almost always, below it the voice is mostly lost, so shorter
#: speech would only add noise to the voice's centroid (docs/registry.md)
USABLE_SPEECH_S = 0.5


class UsageError(EnrollError):
    """A refused option or argument value, found before any audio is read or model loaded (exit 2)."""


def check_min_speech(value: float, flag: str = "--min-speech") -> float:
    """`value` if it is a finite number of seconds above 0, else UsageError (0 would embed silence)."""
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag} {value:g}: must be a number of seconds above 0")
    return value


def add_registry_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", metavar="PATH", default=None,
                        help="registry file (default: $VOICEMAP_REGISTRY, else registry.sqlite in the user data folder)")


def add_embedding_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embedding", metavar="E", default="campplus",
                        help="speaker encoder: campplus (default), ecapa, qwen3-0.6b, qwen3-1.7b, BACKEND:PATH or a path")
    parser.add_argument("--device", default="cpu", help="torch device for the encoder (default cpu)")


def check_encoder_options(name: str, device: str) -> None:
    """UsageError (one line) unless --embedding names an encoder and --device one this machine has: checked
    before anything is read or loaded (a missing GPU otherwise shows only at the first embedding)."""
    from diarize.embedding import EncoderError, check_encoder_spec
    from diarize.models import ModelNotFoundError, check_device

    try:
        check_device(device)
        check_encoder_spec(name)
    except (EncoderError, ModelNotFoundError, ValueError) as error:
        raise UsageError(str(error).strip().splitlines()[0]) from None


def load_encoder_or_fail(name: str, device: str):
    """The encoder, loaded before any audio is read; UsageError (one line) when --embedding or --device is wrong."""
    from diarize.embedding import EncoderError, load_encoder
    from diarize.models import ModelNotFoundError

    check_encoder_options(name, device)
    try:
        return load_encoder(name, device=device)
    except (EncoderError, ModelNotFoundError) as error:
        raise UsageError(f"--embedding {name}: {str(error).strip().splitlines()[0]}") from None
    except (RuntimeError, ValueError, OSError, KeyError, AssertionError) as error:
        # torch's words for a device it does not have, or weights that exist but do not load
        cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"--embedding {name} --device {device}: cannot load ({cause})") from None


def fail(command: str, message: str, status: int = 1) -> int:
    print(f"voicemap {command}: {message}", file=sys.stderr)
    return status


def check_registry_for_writing(registry_path: Path, name: str | None = None, hashes: Sequence[str] = (),
                                paths: Sequence[str] = (), encoder_id: str | None = None) -> bool:
    """Before any slow work: RegistryError when the registry cannot take a write (read-only, damaged, not a
    registry, or a new one cannot be created there), EnrollError when one of `paths` is already enrolled for
    `name`. -> whether the voice exists already."""
    from cluster.registry import Registry, check_can_create

    if not registry_path.exists():
        check_can_create(registry_path)
        return False
    with Registry(registry_path, create=False) as registry:
        registry.check_writable()
        if name is None or name not in registry:
            return False
        if encoder_id is not None:
            enrolled = {e.source_hash for e in registry.embeddings(name, encoder_id)}
            for path, digest in zip(paths, hashes):
                if digest in enrolled:
                    raise EnrollError(f"{path}: already enrolled for {name} with {encoder_id}")
        return True


def too_little_in_all(found: list[tuple[str, float, float]], min_speech: float) -> str:
    """The one line refusing an enrollment whose files hold under `min_speech` s of usable speech together."""
    if len(found) == 1:
        path, seconds, total = found[0]
        return f"{path}: only {floor2(seconds)} s of speech found in {total:.1f} s of audio (at least {min_speech:g} s needed)"
    usable = sum(seconds for _, seconds, _ in found if seconds >= min(USABLE_SPEECH_S, min_speech))
    shown = [f"{path} {floor2(seconds)} s" + ("" if seconds >= min(USABLE_SPEECH_S, min_speech) else " [too short to use]")
             for path, seconds, _ in found[:8]]
    if len(found) > 8:
        shown.append(f"and {len(found) - 8} more")
    return (f"only {floor2(usable)} s of usable speech in all {len(found)} files ({', '.join(shown)}); at least "
            f"{min_speech:g} s needed in all: add recordings or lower --min-speech")


def run(args: argparse.Namespace) -> int:
    from cluster.registry import RegistryError, check_voice_name, file_sha256, open_registry, resolve_registry_path
    from cluster.registry.voice_separation import registry_separations, separation_line
    from pipelines.errors import error_line

    notes: list[str] = []
    try:
        try:
            name = check_voice_name(args.name)
        except RegistryError as error:
            raise UsageError(str(error)) from None
        check_min_speech(args.min_speech)
        check_encoder_options(args.embedding, args.device)
        registry_path = resolve_registry_path(args.registry)
        hashes: list[str] = []
        for path in args.audio:
            if not Path(path).is_file():
                raise EnrollError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file")
            try:
                digest = file_sha256(path)
            except OSError as error:
                raise EnrollError(error_line(path, error)) from None
            if digest in hashes:
                raise EnrollError(f"{path}: the same file is given twice")
            hashes.append(digest)
        # a read-only, damaged or foreign registry is refused before the model loads and the audio is read
        check_registry_for_writing(registry_path)
        encoder = load_encoder_or_fail(args.embedding, args.device)
        existing = check_registry_for_writing(registry_path, name, hashes, args.audio, encoder.encoder_id)
        # A file with no usable speech is left out with a note rather than refusing the rest: the minimum is
        # about the speech of all files together, a near-silent clip among real ones (a pause cut from a longer
        # recording, a take that failed) adds nothing to the voice, and nothing of it is stored, so it can be
        # enrolled again later. Files that cannot be decoded at all are still refused: that is a broken input.
        floor = min(USABLE_SPEECH_S, args.min_speech)
        kept: list[tuple[str, str, SpeechEmbedding]] = []
        found: list[tuple[str, float, float]] = []
        for path, digest in zip(args.audio, hashes):
            try:
                audio, seconds, total = file_speech(path, encoder, min_speech=floor)
            except TooLittleSpeech as short:
                found.append((path, short.seconds, short.total))
                continue
            found.append((path, seconds, total))
            kept.append((path, digest, SpeechEmbedding(embed_speech_audio(audio, encoder, label=path), seconds, total)))
        speech = sum(e.speech_seconds for _, _, e in kept)
        if speech < args.min_speech:
            raise EnrollError(too_little_in_all(found, args.min_speech))
        for path, seconds, total in found:
            if seconds < floor:
                notes.append(f"{path}: left out, only {floor2(seconds)} s of speech found in {total:.1f} s of audio "
                             f"(a file needs {floor:g} s to be used)")
        metadata: dict = {}
        if args.tag:
            metadata["tags"] = list(dict.fromkeys(args.tag))
        if args.consent is not None:
            metadata["consent"] = args.consent
        with open_registry(registry_path, create=True) as registry:
            voice = registry.enroll(name, encoder.encoder_id, np.stack([e.vector for _, _, e in kept]),
                                    [digest for _, digest, _ in kept], metadata or None)
            for path, digest, _ in kept:
                others = [other for other in registry.sources(digest) if other != voice.name]
                if others:
                    notes.append(f"{path} is also enrolled for {', '.join(others)}")
            separation = next(item for item in registry_separations(registry, encoder.encoder_id)
                              if item.name == voice.name)
    except UsageError as error:
        return fail("enroll", str(error), 2)
    except (EnrollError, RegistryError) as error:
        return fail("enroll", str(error))
    except OSError as error:
        return fail("enroll", error_line(getattr(error, "filename", None), error))
    for note in notes:
        print(f"voicemap enroll: note: {note}", file=sys.stderr)
    total = voice.counts.get(encoder.encoder_id, 0)
    verb = "added to" if existing else "enrolled"
    print(f"{verb} {voice.name}: {len(kept)} file(s), {speech:.1f} s of speech, {encoder.encoder_id} "
          f"({total} embedding(s) in total) -> {registry_path}")
    if separation.too_close:
        print(f"voicemap enroll: warning: {voice.name}: {separation_line(separation)}", file=sys.stderr)
    else:
        print(f"  {separation_line(separation)}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "enroll", help="enroll a known speaker from recordings of them alone",
        description="Enroll NAME from one or more recordings where only that person speaks. Only speech is "
        "used (silero-vad); all files together need at least --min-speech seconds of it (ten 2 s clips are "
        f"fine), and a file with under {USABLE_SPEECH_S:g} s is left out with a note. The registry keeps one "
        "embedding and the sha256 of each file, never the audio. Enrolling an existing NAME adds to it.")
    parser.add_argument("name", metavar="NAME",
                        help='the speaker\'s name, e.g. "Ada Lovelace" (quoted); outputs use it as the label, RTTM '
                             "with '_' for spaces")
    parser.add_argument("audio", metavar="AUDIO", nargs="+", help="recordings of this speaker alone")
    add_embedding_argument(parser)
    add_registry_argument(parser)
    parser.add_argument("--tag", action="append", default=[], help="a free-form tag (repeatable)")
    parser.add_argument("--consent", metavar="NOTE", default=None, help="how and when consent was given")
    parser.add_argument("--min-speech", type=float, default=MIN_SPEECH_S, metavar="SECONDS",
                        help="refuse an enrollment whose files hold less speech than this in all, in seconds above 0 "
                             f"(default {MIN_SPEECH_S:g})")
    parser.set_defaults(func=run)
