"""`voicemap anonymize --method tts`: the options and the run of re-voicing from a transcript.

Kept apart from anonymize.py, which owns the signal-processing methods: that command only registers these
options and hands over when the method is tts. Exit codes: 2 for usage and checkpoint problems (found before
anything is read), 1 for a problem with INPUT or its transcript; nothing is written in either case.
"""

from __future__ import annotations

import sys

from .common import config_from_args, fail_line

METHOD = "tts"


def add_tts_options(parser) -> None:
    group = parser.add_argument_group("re-voicing (--method tts)")
    group.add_argument("--transcript", metavar="FILE",
                       help="what was said and when: NIST STM ('file channel speaker start end [<label>] text') or "
                       "JSON {\"segments\": [{\"start\", \"end\", \"speaker\", \"text\"}]}; required with "
                       "--method tts. Each segment is spoken by the pseudo-voice of the diarized speaker overlapping it most, "
                       "time-stretched to the segment; all else is silence")
    group.add_argument("--tts", metavar="MODEL",
                       help="Qwen3-TTS Base checkpoint: a local folder, or a hub id such as "
                       "Qwen/Qwen3-TTS-12Hz-0.6B-Base (downloaded only because named); required with --method tts")
    group.add_argument("--language", default="auto", help="language of the transcript for the TTS (english, ...)")


def run_tts(args) -> int:
    """Re-voice args.input from args.transcript; prints one line per failure."""
    from diarize.audio import AudioError
    from diarize.models import ModelNotFoundError
    from diarize.pipeline import Diarizer
    from synth.anonymize.transcripts import TranscriptError
    from synth.tts import TTSModelError, checkpoint_folder, read_base_config
    from synth.anonymize.revoice import revoice_file

    if args.method != METHOD:
        print(f"voicemap anonymize: --transcript is only used by --method {METHOD}", file=sys.stderr)
        return 2
    if not args.transcript:
        print(f"voicemap anonymize: --method {METHOD} needs --transcript FILE (STM or JSON)", file=sys.stderr)
        return 2
    try:
        diarizer = Diarizer(config_from_args(args))
        # config.json only (a second): a wrong or missing checkpoint fails before any audio is read
        read_base_config(checkpoint_folder(args.tts), label=str(args.tts))
    except (ModelNotFoundError, TTSModelError, ValueError) as error:
        print(f"voicemap anonymize: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    try:
        # the weights load inside, after the transcript and the audio have been checked
        result = revoice_file(args.input, args.output, args.transcript, model=args.tts, seed=args.seed,
                              diarizer=diarizer, language=args.language, device=args.device)
    except (ModelNotFoundError, TTSModelError) as error:
        print(f"voicemap anonymize: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except TranscriptError as error:
        print(f"voicemap: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    except (AudioError, OSError, ValueError, RuntimeError) as error:
        print(fail_line(args.input, error), file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{args.input} -> {args.output}: {len(result.segments)} segment(s) re-voiced by "
              f"{len(result.vectors)} pseudo-voice(s), method tts, seed {result.seed}", file=sys.stderr)
    return 0
