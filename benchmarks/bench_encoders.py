"""Time to embed one minute of audio with each speaker encoder; prints medians.

    python benchmarks/bench_encoders.py [--seconds 60] [--repeats 5] [--threads 1 2] [--encoders ...]

Qwen3 encoders run with random weights in the real architecture (the cost is the same as with the
released weights, which are not on these machines): `qwen3-0.6b-random` (1024-d) and `qwen3-1.7b-random`
(2048-d). Any other name goes through `load_encoder` (e.g. `campplus`, or a Qwen3 checkpoint path).
The audio is real read speech from ../shared/data (LibriSpeech test-other utterances joined), decoded and
resampled before timing starts. Besides the whole-input embedding, the Qwen3 rows split the time into the
frame-level pass and the pooling, and time the diarizer's use: 100 masked poolings of 5 s segments.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPEAKERS = REPO.parent / "shared" / "data" / "speakers" / "librispeech-test-other"


def speech(seconds: float, rate: int) -> np.ndarray:
    from diarize.audio import load_audio

    pieces, total = [], 0
    for path in sorted(SPEAKERS.glob("*/*.flac")):
        samples = load_audio(path, sample_rate=rate).samples
        pieces.append(samples)
        total += len(samples)
        if total >= seconds * rate:
            return np.concatenate(pieces)[: int(seconds * rate)]
    print(f"(shared speech not found at {SPEAKERS}: using noise)", file=sys.stderr)
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32)


def random_qwen3(dim: int):
    import torch

    from diarize.embedding.qwen3 import Qwen3Encoder, Qwen3SpeakerNetwork
    from diarize.embedding.qwen3_weights import EncoderCheckpoint, EncoderConfig

    torch.manual_seed(0)
    config = EncoderConfig(enc_dim=dim)
    state = Qwen3SpeakerNetwork(config).state_dict()
    return Qwen3Encoder(EncoderCheckpoint(config, state, f"<random {dim}-d>", "memory"))


def load(name: str):
    if name == "qwen3-0.6b-random":
        return random_qwen3(1024)
    if name == "qwen3-1.7b-random":
        return random_qwen3(2048)
    from diarize.embedding import load_encoder

    return load_encoder(name)


def timed(function, repeats: int) -> list[float]:
    function()  # warm-up: lazy loading, allocator, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--encoders", nargs="+", default=["qwen3-0.6b-random", "qwen3-1.7b-random", "campplus"])
    args = parser.parse_args()

    import torch

    print(f"{args.seconds:g} s of speech, median (min) of {args.repeats} runs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads available by default")
    print("| encoder | threads | embed s | frame pass s | pooling s | 100 masked 5 s poolings s |")
    print("|---|---|---|---|---|---|")
    for name in args.encoders:
        try:
            encoder = load(name)
        except Exception as error:  # a missing model must not hide the others' rows
            print(f"| {name} | - | not available: {str(error).splitlines()[0]} | | | |")
            continue
        samples = speech(args.seconds, encoder.sample_rate)
        for threads in args.threads:
            torch.set_num_threads(threads)
            embed = timed(lambda: encoder.embed(samples), args.repeats)
            cells = [f"{statistics.median(embed):.3f} ({min(embed):.3f})"]
            if hasattr(encoder, "network"):
                features = encoder.frame_features(samples)
                ones = np.ones((1, len(features)), dtype=np.float32)
                rng = np.random.default_rng(0)
                segment = int(5 * encoder.frame_rate)
                masks = np.zeros((100, len(features)), dtype=np.float32)
                for row, start in enumerate(rng.integers(0, len(features) - segment, 100)):
                    masks[row, start:start + segment] = 1
                frames = timed(lambda: encoder.frame_features(samples), args.repeats)
                pooling = timed(lambda: encoder.pool(features, ones), args.repeats)
                masked = timed(lambda: encoder.pool(features, masks), max(1, args.repeats // 2))
                cells += [f"{statistics.median(t):.3f}" for t in (frames, pooling, masked)]
            else:
                cells += ["", "", ""]
            print(f"| {encoder.encoder_id} | {threads} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
