"""`voicemap synth`: speak a text in the voice of a speaker vector (a .npy file or an enrolled voice)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cluster.atomic_files import atomic_path

from .common import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="speech from a speaker vector with a Qwen3-TTS Base checkpoint",
        description="Generate speech for --text in the voice given by --voice: a .npy vector of the checkpoint's "
        "speaker dimension (enrolled, edited or mixed), or the name of a voice in the registry enrolled with a "
        "Qwen3-TTS speaker encoder. Writes a 24 kHz mono WAV. Nothing is downloaded unless --model names a hub id.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--voice", required=True, help="VECTOR.npy, or the name of an enrolled voice")
    parser.add_argument("--text", required=True, help="what to say")
    parser.add_argument("-o", "--output", required=True, help="WAV file to write")
    parser.add_argument("--model", required=True,
                        help="Qwen3-TTS Base checkpoint: a local folder or a hub id (e.g. Qwen/Qwen3-TTS-12Hz-0.6B-Base)")
    parser.add_argument("--language", default="auto", help="language tag of the checkpoint (english, chinese, ...)")
    parser.add_argument("--stream", action="store_true",
                        help="decode audio chunk by chunk as codec frames arrive, appending them to a temporary WAV beside "
                        "OUT as they come (renamed to OUT at the end)")
    parser.add_argument("--registry", help="registry file for --voice NAME (default: $VOICEMAP_REGISTRY or the user data dir)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling (deterministic)")
    parser.add_argument("--seed", type=int, help="seed for sampling (reproducible output)")
    parser.add_argument("--max-new-tokens", type=int, help="cap on generated codec frames (default: the checkpoint's)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default: the checkpoint's)")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="weight precision (bfloat16/float16 are for GPUs: on our CPU bfloat16 was slower than float32)")
    parser.add_argument("--float32-weights", action="store_true",
                        help="multiply with the float32 weights only: bit-exact with qwen-tts's generate(), and slower on "
                             "a CPU (by default weights that are bfloat16 values are read as bfloat16, with float32 "
                             "arithmetic; see synth/tts/compact.py)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=run)


def _voice_vector(args, synthesizer):
    from synth.tts.loading import checkpoint_folder
    from synth.tts.voices import checkpoint_encoder_id, load_vector_file, registry_vector

    spec = args.voice
    path = Path(spec).expanduser()
    if path.suffix == ".npy" or path.exists():
        return load_vector_file(path), str(path)
    own = checkpoint_encoder_id(checkpoint_folder(args.model))
    vector, encoder_id = registry_vector(spec, synthesizer.speaker_dim, own_encoder_id=own,
                                         registry_path=args.registry)
    if own is not None and encoder_id != own and not args.quiet:
        print(f"voicemap synth: voice {spec!r} uses {encoder_id}, not this checkpoint's own encoder", file=sys.stderr)
    return vector, f"voice {spec!r}"


def run(args) -> int:
    import soundfile as sf
    import torch

    from diarize.models import ModelNotFoundError, check_device
    from pipelines.outputs import OutputError, refuse_overwriting, writable_file
    from synth.tts import Synthesizer, TTSModelError, VoiceVectorError
    from synth.tts.voices import VoiceSourceError

    output = Path(args.output)
    try:
        check_device(args.device)
        writable_file(output)
        refuse_overwriting([output], [args.voice] if Path(args.voice).expanduser().exists() else [])
        synthesizer = Synthesizer.load(args.model, device=args.device, dtype=getattr(torch, args.dtype),
                                       compact_weights=not args.float32_weights)
        vector, label = _voice_vector(args, synthesizer)
        sampling = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                    "subtalker_temperature": args.temperature}
        if args.greedy:
            sampling.update(do_sample=False, subtalker_dosample=False)
        if args.seed is not None:
            torch.manual_seed(args.seed)
        options = dict(language=args.language, **sampling)
        synthesizer.prompt(args.text, vector, language=args.language, label=label)  # fail fast, before any output
    except (ModelNotFoundError, TTSModelError, VoiceVectorError, VoiceSourceError, OutputError, ValueError,
            TypeError) as error:
        print(f"voicemap synth: {error}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    # written beside OUT and renamed at the end: an interrupted or failed synthesis leaves no partial WAV
    with atomic_path(output, suffix=".wav") as temporary:
        if args.stream:
            frames = 0
            with sf.SoundFile(temporary, "w", samplerate=synthesizer.sample_rate, channels=1, subtype="PCM_16",
                              format="WAV") as wav:
                for chunk in synthesizer.stream(args.text, vector, **options):
                    if chunk.index == 0 and not args.quiet:
                        print(f"voicemap synth: first audio after {time.perf_counter() - started:.2f} s",
                              file=sys.stderr)
                    wav.write(chunk.audio)
                    wav.flush()
                    frames += chunk.codes.shape[0]
        else:
            audio, rate = synthesizer.synthesize(args.text, vector, **options)
            sf.write(temporary, audio, rate, subtype="PCM_16", format="WAV")
            frames = audio.shape[0] // synthesizer.samples_per_frame
    if not args.quiet:
        seconds = frames * synthesizer.samples_per_frame / synthesizer.sample_rate
        print(f"voicemap synth: {output} ({seconds:.2f} s of audio, {frames} frames, "
              f"{time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0
