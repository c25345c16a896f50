"""`voicemap embed AUDIO... --embedding E -o OUT.npy`: one raw speaker vector per input file.

OUT.npy holds a float32 array (number of inputs, dimension), row i for input i, exactly as the encoder
gives it for the whole file (no VAD, no normalization: the Qwen3-TTS generator consumes the raw vector).
OUT.json beside it records the encoder id, dimension, normalization and the source of every row. Audio is
decoded at the encoder's own rate, so a 24 kHz file reaches the Qwen3 encoder untouched. Voice vectors
are biometric data: both files are written readable by their owner only, and nothing is written unless
every input was embedded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .common import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="raw speaker embeddings of whole audio files, as a .npy array",
        description="Embed each AUDIO file as a whole into one raw speaker vector. Writes OUT.npy (float32, "
        "one row per input, in input order) and OUT.json (encoder id, dimension, normalization, sources). "
        "Any unreadable input is reported on stderr and nothing is written.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files")
    parser.add_argument("--embedding", default="campplus", metavar="E",
                        help="encoder: campplus, ecapa, qwen3-0.6b, qwen3-1.7b (the vector the Qwen3-TTS generator "
                        "consumes), BACKEND:PATH, a checkpoint path or hub id")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.npy", help="output array (.npy)")
    parser.add_argument("--device", default="cpu", help="torch device for the encoder")
    parser.set_defaults(func=run)


def embed_files(paths: list[str], encoder) -> tuple[np.ndarray, list[dict], list[str]]:
    """(vectors (n, dim) float32, per-row source records, one-line errors) for `paths` in order."""
    from diarize.audio import AudioError, load_audio
    from diarize.embedding import EncoderError

    vectors = np.zeros((len(paths), encoder.dimension), dtype=np.float32)
    sources: list[dict] = []
    errors: list[str] = []
    for row, path in enumerate(paths):
        try:
            waveform = load_audio(path, sample_rate=encoder.sample_rate)
            vector = encoder.embed(waveform.samples)
        except (AudioError, EncoderError) as error:
            errors.append(str(error).splitlines()[0] if str(path) in str(error) else f"{path}: {error}")
            continue
        if not np.isfinite(vector).all():
            errors.append(f"{path}: the encoder returned non-finite values")
            continue
        vectors[row] = vector
        sources.append({"row": row, "path": str(Path(path).resolve()), "seconds": round(waveform.duration, 3)})
    return vectors, sources, errors


def run(args) -> int:
    from diarize.embedding import EncoderError, check_encoder_spec, load_encoder
    from diarize.models import ModelNotFoundError, check_device
    from cluster.atomic_files import atomic_write
    from pipelines.outputs import OutputError, refuse_overwriting, writable_file

    output = Path(args.output)
    if output.suffix != ".npy":
        output = output.with_name(output.name + ".npy")
    try:
        check_device(args.device)
        check_encoder_spec(args.embedding)
        writable_file(output)
        refuse_overwriting([output, output.with_suffix(".json")], args.inputs)
        encoder = load_encoder(args.embedding, device=args.device)
    except (EncoderError, ModelNotFoundError, OutputError, ValueError) as error:
        print(f"voicemap embed: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    vectors, sources, errors = embed_files(args.inputs, encoder)
    if errors:
        for line in errors:
            print(f"voicemap embed: {line}", file=sys.stderr)
        print(f"voicemap embed: {len(errors)} of {len(args.inputs)} inputs failed; nothing written", file=sys.stderr)
        return 1
    record = {
        "encoder_id": encoder.encoder_id,
        "embedding": str(args.embedding),
        "dimension": int(encoder.dimension),
        "dtype": "float32",
        "shape": list(vectors.shape),
        "normalization": "none",
        "normalize_for_scoring": bool(encoder.normalize_for_scoring),
        "note": "raw encoder output, one vector per whole input; L2-normalize before cosine scoring",
        "sample_rate": int(encoder.sample_rate),
        "sources": sources,
    }
    atomic_write(output, lambda stream: np.save(stream, vectors))
    atomic_write(output.with_suffix(".json"),
                   lambda stream: stream.write((json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()))
    print(f"{output}: {len(vectors)} x {encoder.dimension} ({encoder.encoder_id})", file=sys.stderr)
    return 0
