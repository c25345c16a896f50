"""`voicemap eval-verification SPEAKERS_DIR --embedding E [E ...]`: EER, minDCF and speed per encoder."""

from __future__ import annotations

import json
import sys

from .common import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval-verification",
        help="compare speaker encoders on same/different-speaker trials (EER, minDCF, speed)",
        description="Build every same/different-speaker trial from SPEAKERS_DIR/<speaker>/<utterance> audio files, "
        "embed each utterance with each encoder, and print EER, normalized minDCF and the encoder time to embed "
        "one minute of audio as a Markdown table.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("folder", metavar="SPEAKERS_DIR", help="folder of <speaker>/<utterance> audio files")
    parser.add_argument("--embedding", nargs="+", default=["campplus"], metavar="E",
                        help="encoders to compare: campplus, ecapa, qwen3-0.6b, qwen3-1.7b, BACKEND:PATH, checkpoint paths")
    parser.add_argument("--per-speaker", type=int, metavar="N", help="use at most N utterances per speaker")
    parser.add_argument("--crop", type=float, metavar="SECONDS",
                        help="embed only the first SECONDS of each utterance (harder, shorter trials)")
    parser.add_argument("--p-target", type=float, default=0.01, help="target prior of the detection cost")
    parser.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="torch device for the encoders")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from diarize.embedding import EncoderError, load_encoder
    from diarize.models import ModelNotFoundError
    from eval.verification import VerificationError, collect_utterances, evaluate, format_table

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        utterances = collect_utterances(args.folder, per_speaker=args.per_speaker)
    except VerificationError as error:
        print(f"voicemap eval-verification: {error}", file=sys.stderr)
        return 2
    results = []
    failed = 0
    for name in args.embedding:
        try:
            encoder = load_encoder(name, device=args.device)
            results.append(evaluate(encoder, utterances, p_target=args.p_target, crop=args.crop))
        except (EncoderError, ModelNotFoundError, VerificationError, ValueError) as error:
            # one encoder whose weights are absent must not hide the others' results
            print(f"voicemap eval-verification: {name}: {str(error).splitlines()[0]}", file=sys.stderr)
            failed += 1
    if results:
        print(format_table(results))
    if args.json and results:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump([r.as_dict() for r in results], stream, indent=2)
    return 1 if failed else 0
