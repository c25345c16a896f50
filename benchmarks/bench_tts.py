"""Time per generated codec frame: qwen-tts's generate() against our cached loop (synth/tts/decode.py).

Both run the same random-weight Qwen3-TTS Base model (real vocabularies and special ids; "tiny" sizes or
the published 0.6B sizes), the same text, speaker vector, sampling settings and seed, and the codec tokens
are compared, so a speed-up never comes from doing different work. Codec-to-audio decoding is not timed
(the 0.6B model is built in memory without a codec; see synth/tts/random_model.build_in_memory).

    python benchmarks/bench_tts.py                         # tiny, CPU, 1 thread
    python benchmarks/bench_tts.py --preset 0.6b --frames 16 --repeats 3
    python benchmarks/bench_tts.py --checkpoint PATH       # a real Base checkpoint folder instead
    python benchmarks/bench_tts.py --device cuda --threads 16

Prints one table row per preset: medians over --repeats of (wall time / frames generated).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."


def machine(device: str, threads: int) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores visible, torch threads {threads} (torch {torch.__version__})"


def timed(fn, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def bench(args, preset: str) -> dict:
    import torch

    from synth.tts.random_model import build_in_memory
    from synth.tts.synthesizer import Synthesizer

    built = time.perf_counter()
    if args.checkpoint:
        synth = Synthesizer.load(args.checkpoint, device=args.device, compile=args.compile)
    else:
        tts = build_in_memory(preset, seed=0)
        tts.model.to(args.device)
        tts.device = torch.device(args.device)
        synth = Synthesizer(tts, compile=args.compile)
    built = time.perf_counter() - built
    vector = torch.randn(synth.speaker_dim, generator=torch.Generator().manual_seed(0)).numpy()
    options = dict(max_new_tokens=args.frames + 1)  # +1: the token at the limit gets no residual codebooks
    if args.greedy:
        options.update(do_sample=False, subtalker_dosample=False)

    def run(which):
        torch.manual_seed(args.seed)
        fn = synth.codes if which == "ours" else synth.reference_codes
        return timed(lambda: fn(TEXT, vector, **options), args.device)

    run("reference"), run("ours")  # warm-up: first-call allocations, lazy initialisation, compilation
    per_frame = {"reference": [], "ours": []}
    equal = True
    for _ in range(args.repeats):
        reference, t_ref = run("reference")
        ours, t_ours = run("ours")
        equal &= torch.equal(reference, ours)
        per_frame["reference"].append(t_ref / max(len(reference), 1))
        per_frame["ours"].append(t_ours / max(len(ours), 1))
    ref_ms = 1000 * statistics.median(per_frame["reference"])
    ours_ms = 1000 * statistics.median(per_frame["ours"])
    return dict(preset=args.checkpoint or preset, frames=len(ours), ref_ms=ref_ms, ours_ms=ours_ms,
                speedup=ref_ms / ours_ms, equal=equal, build_s=built,
                spread=(min(per_frame["ours"]) * 1000, max(per_frame["ours"]) * 1000))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", choices=["tiny", "0.6b"],
                        help="random model size(s) to time (default: tiny)")
    parser.add_argument("--checkpoint", help="time a real Base checkpoint folder instead of random weights")
    parser.add_argument("--frames", type=int, default=48, help="codec frames per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machines are shared)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (default: the reference's sampling)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--compile", action="store_true", help="torch.compile each decoder layer of our loop")
    args = parser.parse_args()

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine(args.device, args.threads)}")
    print(f"mode: {'greedy' if args.greedy else 'sampled (reference defaults), seed ' + str(args.seed)}; "
          f"{args.frames} frames/run; median of {args.repeats}; compile={args.compile}")
    print(f"{'model':>10} {'frames':>6} {'reference ms/frame':>19} {'ours ms/frame':>14} {'speed-up':>8}  tokens")
    for preset in ([None] if args.checkpoint else (args.preset or ["tiny"])):
        row = bench(args, preset)
        print(f"{row['preset']:>10} {row['frames']:>6} {row['ref_ms']:>19.1f} {row['ours_ms']:>14.1f} "
              f"{row['speedup']:>7.2f}x  {'identical' if row['equal'] else 'DIFFERENT'}"
              f"   (ours min/max {row['spread'][0]:.1f}/{row['spread'][1]:.1f} ms; model built in {row['build_s']:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
