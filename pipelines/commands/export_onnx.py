"""`voicemap export-onnx --embedding E -o model.onnx`: the Qwen3-TTS speaker encoder as an ONNX graph."""

from __future__ import annotations

import sys

from .common import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-onnx",
        help="export a Qwen3-TTS speaker encoder to ONNX (log-mel in, raw vector out), checked with onnxruntime",
        description="Export the encoder network to ONNX: input 'mel' (batch, frames, 128) log-mel float32, output "
        "'embedding' (batch, dim) raw float32, batch and frames dynamic. The front end's settings are stored in "
        "the model's metadata. The file is checked against torch with onnxruntime on two inputs of different "
        "lengths (--check-audio files, else built-in test signals); a mismatch is an error.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--embedding", default="qwen3-0.6b", metavar="E",
                        help="qwen3-0.6b, qwen3-1.7b, qwen3-*:PATH, a checkpoint path or hub id")
    parser.add_argument("-o", "--output", required=True, metavar="model.onnx", help="ONNX file to write")
    parser.add_argument("--check-audio", nargs=2, metavar="AUDIO", help="two audio files to check the export on")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest accepted |onnx - torch| relative to the largest output component")
    parser.set_defaults(func=run)


def run(args) -> int:
    from diarize.audio import AudioError, load_audio
    from diarize.embedding import EncoderError, load_encoder
    from diarize.embedding.onnx_export import export_onnx
    from diarize.models import ModelNotFoundError

    try:
        encoder = load_encoder(args.embedding)
        audio = None
        if args.check_audio:
            audio = [load_audio(path, sample_rate=encoder.sample_rate).samples for path in args.check_audio]
        report = export_onnx(encoder, args.output, check_audio=audio, tolerance=args.tolerance)
    except (EncoderError, ModelNotFoundError, AudioError) as error:
        print(f"voicemap export-onnx: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    for frames, difference, scale in report.checks:
        print(f"checked {frames} frames: max |onnx - torch| = {difference:.2e} (largest component {scale:.3f})",
              file=sys.stderr)
    print(f"{report.path}: {report.encoder_id}, {report.dimension}-d, exported in {report.seconds:.1f} s", file=sys.stderr)
    return 0
