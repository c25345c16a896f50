"""`voicemap anonymize`: hide who spoke in a recording, keeping what was said and who spoke when."""

from __future__ import annotations

import sys
from pathlib import Path

from .anonymize_tts import METHOD as TTS_METHOD, add_tts_options, run_tts
from .common import HelpFormatter, add_diarization_options, config_from_args, fail_line, loaded_diarizer


def register(subparsers) -> None:
    from synth.anonymize.voice_transforms import DEFAULT_METHOD, METHODS

    parser = subparsers.add_parser(
        "anonymize",
        help="give every speaker of a recording a consistent pseudo-voice (offline signal processing)",
        description="Diarize INPUT, then transform each speaker's speech with its own pseudo-voice (McAdams LPC "
        "warp, pitch moved to a drawn target, formant warp). OUT has exactly INPUT's sample rate and length "
        "(mono); OUT.json maps each speaker label to its drawn pseudo-voice parameters, never to anything "
        "measured from the speaker.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="audio file")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="anonymized audio (WAV or FLAC)")
    parser.add_argument("--seed", type=int, help="draws the pseudo-voices; default: a fresh random seed, "
                        "written to the sidecar")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=[*METHODS, TTS_METHOD],
                        help="mcadams: the VoicePrivacy baseline alone (alpha 0.75-0.9); pitch: pitch moved to a drawn "
                        "target + formant warp; combined: both; strong: both with alpha 0.6-0.75; warp: pitch target "
                        "+ a wide formant warp (0.8-1.25), no McAdams; spread: pitch slots and formant warps (20-40 %% up or "
                        "down) dealt so the speakers of a recording sit far apart; tts: re-voice the transcript with Qwen3-TTS, "
                        "a pseudo-voice per speaker (needs --transcript and --tts). Privacy/utility figures: "
                        "docs/anonymization-experiments.md")
    add_tts_options(parser)
    add_diarization_options(parser)
    parser.set_defaults(func=run)


def check_output(args) -> None:
    """OUT (and its OUT.json sidecar) can be written and replace nothing this command reads; OutputError or
    ValueError otherwise, before any audio is read."""
    from pipelines.outputs import refuse_overwriting, writable_file

    output = writable_file(args.output)
    if output.suffix.lower() not in (".wav", ".flac"):
        raise ValueError(f"{output}: the anonymized audio is written as .wav or .flac")
    refuse_overwriting([output, output.with_suffix(".json")],
                       [args.input, *(path for path in (getattr(args, "transcript", None),) if path)])


def run(args) -> int:
    from diarize.audio import AudioError
    from pipelines.outputs import OutputError
    from synth.anonymize.recording import anonymize_file

    try:
        check_output(args)
    except (OutputError, ValueError) as error:
        print(f"voicemap anonymize: {error}", file=sys.stderr)
        return 2
    if not Path(args.input).is_file():  # an input problem (exit 1), found before the models load
        print(f"voicemap: {args.input}: {'no such file' if not Path(args.input).exists() else 'not a file'}",
              file=sys.stderr)
        return 1
    if args.method == TTS_METHOD or args.transcript:
        return run_tts(args)
    try:
        diarizer = loaded_diarizer(config_from_args(args))
    except ValueError as error:
        print(f"voicemap anonymize: {error}", file=sys.stderr)
        return 2
    try:
        result = anonymize_file(args.input, args.output, seed=args.seed, method=args.method, diarizer=diarizer)
    except (AudioError, OSError, ValueError, RuntimeError) as error:
        print(fail_line(args.input, error), file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{args.input} -> {args.output}: {len(result.voices)} speaker(s), method {result.method}, "
              f"seed {result.seed}", file=sys.stderr)
    return 0
