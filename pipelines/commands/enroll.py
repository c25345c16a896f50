"""`voicemap enroll NAME AUDIO...`: add a known speaker's voice to the registry from recordings of them alone.

Each file's speech (silero-vad) is embedded into one vector; every file's vector is stored with the file's
sha256, and matching uses their mean (the registry's centroid). All files are checked and embedded before
the registry is touched, then stored in one transaction: a bad file, too little speech, or Ctrl-C leaves
the registry as it was.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: below this much speech a file is refused: CAM++ embeddings of shorter speech scatter much more
MIN_SPEECH_S = 3.0
#: speech is embedded in pieces of at most this length and the unit vectors averaged, bounding memory
#: for long files while each piece is still long enough for a stable embedding
CHUNK_S = 30.0


class EnrollError(ValueError):
    """One line naming the input and the cause."""


@dataclass(frozen=True)
class SpeechEmbedding:
    vector: np.ndarray  # (dimension,) float32 raw (mean of the pieces' unit vectors)
    speech_seconds: float
    total_seconds: float


def add_registry_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", metavar="PATH", default=None,
                        help="registry file (default: $VOICEMAP_REGISTRY, else registry.sqlite in the user data folder)")


def add_embedding_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embedding", metavar="E", default="campplus",
                        help="speaker encoder: campplus (default), qwen3-0.6b, qwen3-1.7b, BACKEND:PATH or a path")
    parser.add_argument("--device", default="cpu", help="torch device for the encoder (default cpu)")


def speech_for_encoder(samples: np.ndarray, sample_rate: int, encoder, *, label: str,
                       min_speech: float) -> tuple[np.ndarray, float, float]:
    """The speech of a 16 kHz waveform (silero-vad), at the encoder's rate -> (speech samples, speech seconds,
    total seconds); EnrollError when it holds < `min_speech` s of speech."""
    from diarize.vad import keep_speech

    speech = keep_speech(samples, sample_rate)
    total = len(samples) / sample_rate
    if speech.seconds < min_speech:
        # rounded down, so 2.99 s never reads as enough ("only 3.0 s ... at least 3 s needed")
        found = math.floor(speech.seconds * 100) / 100
        raise EnrollError(f"{label}: only {found:.2f} s of speech found in {total:.1f} s of audio "
                          f"(at least {min_speech:g} s needed)")
    audio = speech.samples
    if encoder.sample_rate != sample_rate:  # resample at the encoder's door (Qwen3 wants 24 kHz)
        import soxr

        audio = soxr.resample(audio, sample_rate, encoder.sample_rate).astype(np.float32, copy=False)
    return audio, speech.seconds, total


def embed_speech_audio(audio: np.ndarray, encoder, *, label: str) -> np.ndarray:
    """(num_samples,) speech at the encoder's rate -> (dimension,) float32 raw vector: the mean of the unit
    vectors of its pieces of at most CHUNK_S."""
    step = int(CHUNK_S * encoder.sample_rate)
    starts = list(range(0, len(audio), step))
    # a short last piece would embed poorly: fold it into the previous one
    if len(starts) > 1 and len(audio) - starts[-1] < step // 3:
        starts.pop()
    bounds = list(zip(starts, starts[1:] + [len(audio)]))
    vectors = np.stack([encoder.embed(audio[a:b]) for a, b in bounds]).astype(np.float64)
    if not np.isfinite(vectors).all():
        raise EnrollError(f"{label}: the encoder returned non-finite values")
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return units.mean(axis=0).astype(np.float32)


def file_speech(path: str, encoder, *, min_speech: float) -> tuple[np.ndarray, float, float]:
    """`speech_for_encoder` of an audio file; a file that cannot be decoded is an EnrollError."""
    from diarize.audio import AudioError, load_audio

    try:
        waveform = load_audio(path)
    except AudioError as error:
        raise EnrollError(str(error)) from None
    return speech_for_encoder(waveform.samples, waveform.sample_rate, encoder, label=path, min_speech=min_speech)


def embed_file(path: str, encoder, *, min_speech: float) -> SpeechEmbedding:
    audio, seconds, total = file_speech(path, encoder, min_speech=min_speech)
    return SpeechEmbedding(embed_speech_audio(audio, encoder, label=path), seconds, total)


def load_encoder_or_fail(name: str, device: str):
    from diarize.embedding import EncoderError, load_encoder
    from diarize.models import ModelNotFoundError

    try:
        return load_encoder(name, device=device)
    except (EncoderError, ModelNotFoundError) as error:
        raise EnrollError(f"--embedding {name}: {error}") from None


def fail(command: str, message: str) -> int:
    print(f"voicemap {command}: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from cluster.registry import Registry, RegistryError, check_voice_name, file_sha256, resolve_registry_path

    try:
        name = check_voice_name(args.name)
        registry_path = resolve_registry_path(args.registry)
        hashes: list[str] = []
        for path in args.audio:
            if not Path(path).is_file():
                raise EnrollError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a file")
            digest = file_sha256(path)
            if digest in hashes:
                raise EnrollError(f"{path}: the same file is given twice")
            hashes.append(digest)
        encoder = load_encoder_or_fail(args.embedding, args.device)
        existing = None
        if registry_path.exists():
            # Check before the slow part: a file already enrolled for this voice would be refused anyway.
            with Registry(registry_path, create=False) as registry:
                if name in registry:
                    existing = registry.get(name)
                    enrolled = {e.source_hash for e in registry.embeddings(name, encoder.encoder_id)}
                    for path, digest in zip(args.audio, hashes):
                        if digest in enrolled:
                            raise EnrollError(f"{path}: already enrolled for {name} with {encoder.encoder_id}")
        embeddings = [embed_file(path, encoder, min_speech=args.min_speech) for path in args.audio]
        metadata: dict = {}
        if args.tag:
            metadata["tags"] = list(dict.fromkeys(args.tag))
        if args.consent is not None:
            metadata["consent"] = args.consent
        with Registry(registry_path) as registry:
            voice = registry.enroll(name, encoder.encoder_id, np.stack([e.vector for e in embeddings]), hashes,
                                    metadata or None)
            for path, digest in zip(args.audio, hashes):
                others = [other for other in registry.sources(digest) if other != name]
                if others:
                    print(f"voicemap enroll: note: {path} is also enrolled for {', '.join(others)}", file=sys.stderr)
    except (EnrollError, RegistryError) as error:
        return fail("enroll", str(error))
    speech = sum(e.speech_seconds for e in embeddings)
    total = voice.counts.get(encoder.encoder_id, 0)
    verb = "added to" if existing is not None else "enrolled"
    print(f"{verb} {name}: {len(embeddings)} file(s), {speech:.1f} s of speech, {encoder.encoder_id} "
          f"({total} embedding(s) in total) -> {registry_path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "enroll", help="enroll a known speaker from recordings of them alone",
        description="Enroll NAME from one or more recordings where only that person speaks. Only speech is "
        "used (silero-vad); each file needs at least --min-speech seconds of it. The registry keeps one "
        "embedding and the sha256 of each file, never the audio. Enrolling an existing NAME adds to it.")
    parser.add_argument("name", metavar="NAME", help="the speaker's name, used as the label in outputs (no spaces)")
    parser.add_argument("audio", metavar="AUDIO", nargs="+", help="recordings of this speaker alone")
    add_embedding_argument(parser)
    add_registry_argument(parser)
    parser.add_argument("--tag", action="append", default=[], help="a free-form tag (repeatable)")
    parser.add_argument("--consent", metavar="NOTE", default=None, help="how and when consent was given")
    parser.add_argument("--min-speech", type=float, default=MIN_SPEECH_S, metavar="SECONDS",
                        help=f"refuse a file with less speech than this (default {MIN_SPEECH_S:g})")
    parser.set_defaults(func=run)
