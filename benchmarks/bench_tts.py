"""Time per generated codec frame: qwen-tts's generate() against our cached loop (synth/tts/decode.py).

Both run the same random-weight Qwen3-TTS Base model (real vocabularies and special ids; "tiny" sizes or
the published 0.6B sizes), the same text, speaker vector, sampling settings and seed, and the codec tokens
are compared, so a speed-up never comes from doing different work. The random weights are rounded to
bfloat16 values, as Qwen's published checkpoints hold them (--float32-values to keep them float32); on a CPU
our loop then multiplies with bfloat16 copies of them (synth/tts/compact.py), and the row "ours-exact" times
it without them; a probe of how far the two paths' numbers differ is printed. Codec-to-audio decoding is not
timed (the 0.6B model is built in memory without a codec; see synth/tts/random_model.build_in_memory).

    python benchmarks/bench_tts.py                         # tiny, CPU, 1 thread
    python benchmarks/bench_tts.py --preset 0.6b --frames 16 --repeats 3
    python benchmarks/bench_tts.py --checkpoint PATH       # a real Base checkpoint folder instead
    python benchmarks/bench_tts.py --device cuda --threads 16

Prints per preset one row per variant (reference, ours, and with --compile ours with compiled layers):
medians over --repeats of (wall time / frames generated), the variants interleaved within each repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine_name import cpu_name  # noqa: E402  (benchmarks/ is on the path of a script run from it)

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."


def machine(device: str, threads: int) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"{cpu_name()}, {os.cpu_count()} cores visible, torch threads {threads} (torch {torch.__version__})"


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
    dtype = getattr(torch, args.dtype)
    if args.checkpoint:
        synth = Synthesizer.load(args.checkpoint, device=args.device, dtype=dtype)
    else:
        tts = build_in_memory(preset, seed=0)
        if not args.float32_values:
            with torch.no_grad():
                for parameter in tts.model.parameters():
                    parameter.copy_(parameter.to(torch.bfloat16))
        tts.model.to(device=args.device, dtype=dtype)
        tts.device = torch.device(args.device)
        synth = Synthesizer(tts)
    # same weights, our loop with compiled layer wrappers; timed in the same rounds as the eager loop
    compiled = Synthesizer(synth.tts, compile=True) if args.compile else None
    built = time.perf_counter() - built
    vector = torch.randn(synth.speaker_dim, generator=torch.Generator().manual_seed(0)).numpy()
    options = dict(max_new_tokens=args.frames + 1)  # +1: the token at the limit gets no residual codebooks
    if args.greedy:
        options.update(do_sample=False, subtalker_dosample=False)

    runners = {"reference": synth.reference_codes, "ours": synth.codes}
    if synth.compact is not None:
        runners["ours-exact"] = Synthesizer(synth.tts, compact_weights=False).codes
    if compiled is not None:
        runners["compiled"] = compiled.codes

    def run(which):
        torch.manual_seed(args.seed)
        return timed(lambda: runners[which](TEXT, vector, **options), args.device)

    warm = time.perf_counter()
    for which in runners:  # warm-up: first-call allocations, lazy initialisation, compilation
        run(which)
    warm = time.perf_counter() - warm
    per_frame = {which: [] for which in runners}
    equal = {which: True for which in runners}
    for _ in range(args.repeats):  # interleaved, so load changes on a shared machine hit every variant alike
        codes = {}
        for which in runners:
            codes[which], seconds = run(which)
            per_frame[which].append(seconds / max(len(codes[which]), 1))
            equal[which] &= torch.equal(codes[which], codes["reference"])
    ms = {which: 1000 * statistics.median(times) for which, times in per_frame.items()}
    return dict(preset=args.checkpoint or preset, frames=len(codes["ours"]), ms=ms, equal=equal, build_s=built,
                warm_s=warm, spread={w: (1000 * min(t), 1000 * max(t)) for w, t in per_frame.items()},
                compact=synth.compact, logit_gap=logit_gap(synth) if synth.compact is not None else None)


def logit_gap(synth) -> tuple[float, float]:
    """Probe: a random one-row input through the talker's first MLP and the codec head, float32 weights
    against the bfloat16 copies; the largest absolute difference of the logits, and that over the largest."""
    import torch

    talker = synth.model.talker
    step = torch.randn(1, 1, talker.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = talker.codec_head(talker.model.layers[0].mlp(step))
        with synth.compact.active():
            compact = talker.codec_head(talker.model.layers[0].mlp(step))
    gap = (compact - plain).abs().max().item()
    return gap, gap / plain.abs().max().item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", choices=["tiny", "0.6b"],
                        help="random model size(s) to time (default: tiny)")
    parser.add_argument("--checkpoint", help="time a real Base checkpoint folder instead of random weights")
    parser.add_argument("--frames", type=int, default=48, help="codec frames per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machines are shared)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="weights and activations of both loops")
    parser.add_argument("--float32-values", action="store_true",
                        help="keep the random weights float32 values (then no weight qualifies for bfloat16 copies)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (default: the reference's sampling)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--compile", action="store_true",
                        help="also time our loop with torch.compile'd decoder layers (compiles for minutes on CPU)")
    args = parser.parse_args()

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine(args.device, args.threads)}")
    print(f"mode: {'greedy' if args.greedy else 'sampled (reference defaults), seed ' + str(args.seed)}; "
          f"{args.frames} frames/run; median of {args.repeats}; {args.dtype}")
    print(f"{'model':>10} {'variant':>9} {'frames':>6} {'ms/frame':>9} {'min-max':>13} {'speed-up':>8}  tokens vs reference")
    for preset in ([None] if args.checkpoint else (args.preset or ["tiny"])):
        row = bench(args, preset)
        for which, ms in row["ms"].items():
            low, high = row["spread"][which]
            print(f"{row['preset']:>10} {which:>9} {row['frames']:>6} {ms:>9.1f} {f'{low:.0f}-{high:.0f}':>13} "
                  f"{row['ms']['reference'] / ms:>7.2f}x  {'identical' if row['equal'][which] else 'DIFFERENT'}",
                  flush=True)
        print(f"{'':>10} (model built in {row['build_s']:.0f} s; warm-up incl. compilation {row['warm_s']:.0f} s)")
        if row["compact"] is not None:
            absolute, relative = row["logit_gap"]
            print(f"{'':>10} (ours: {row['compact'].bytes_held / 2**20:.0f} MiB of bfloat16 weight copies; probe "
                  f"(first MLP + codec head): logits differ by at most {absolute:.2e}, {relative:.1e} of the largest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
