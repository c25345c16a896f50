"""Diarization figures: total DER on the shared sets, real-time factor and peak memory on long inputs.

    python benchmarks/bench_diarize.py                 # DER + RTF (10 min) + peak memory (60 min)
    python benchmarks/bench_diarize.py --skip-der --minutes 10 --memory-minutes 0

The long inputs are conversations stitched from the shared single-speaker LibriSpeech recordings.
RTF is the median over repeats of diarizing an already decoded waveform with loaded models, and
separately the wall time of a whole `voicemap diarize` process (model loading included). Peak memory
is the maximum resident set size of a `voicemap diarize` process on the long file.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from machine_name import cpu_name  # noqa: E402  (benchmarks/ is on the path of a script run from it)
SHARED = REPO.parent / "shared" / "data"


def long_conversation(minutes: float, num_speakers: int = 4, seed: int = 0) -> np.ndarray:
    """16 kHz float32 turns of `num_speakers` LibriSpeech speakers, 0.2-1.0 s pauses, until `minutes` long."""
    from diarize.audio import load_audio

    rng = np.random.default_rng(seed)
    speakers = sorted(p for p in (SHARED / "speakers" / "librispeech-test-other").iterdir() if p.is_dir())
    chosen = rng.choice(len(speakers), size=num_speakers, replace=False)
    utterances = [[load_audio(f).samples for f in sorted(speakers[i].glob("*.flac"))] for i in chosen]
    pieces, total, speaker = [], 0, 0
    target = int(minutes * 60 * 16000)
    while total < target:
        speaker = (speaker + 1 + rng.integers(num_speakers - 1)) % num_speakers
        turn = utterances[speaker][rng.integers(len(utterances[speaker]))]
        pause = np.zeros(int(rng.uniform(0.2, 1.0) * 16000), dtype=np.float32)
        pieces += [turn, pause]
        total += len(turn) + len(pause)
    return np.concatenate(pieces)[:target]


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def total_der(manifest: Path) -> str:
    completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "eval", str(manifest), "-q"],
                               capture_output=True, text=True, cwd=REPO)
    total = [line for line in completed.stdout.splitlines() if line.startswith("TOTAL")]
    return total[0] if total else completed.stderr.strip().splitlines()[-1]


def cli_run(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `voicemap diarize` process on `path`."""
    with tempfile.TemporaryDirectory() as outdir:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        clock = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "pipelines.cli", "diarize", str(path), "-o", outdir, "-q"],
                                   capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - clock
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr.strip().splitlines()[-1])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the maximum over all of them so far: run the largest file last
    return wall, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the RTF input")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-minutes", type=float, default=60.0, help="length of the peak-memory input (0: skip)")
    parser.add_argument("--skip-der", action="store_true")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    if not args.skip_der:
        for name in ("diarization", "simconv-dev"):
            print(f"DER {name:<12} (collar 0, overlap scored): {total_der(SHARED / name / 'manifest.tsv')}")

    import soundfile as sf

    from diarize.audio import load_audio
    from diarize.pipeline import Diarizer

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.flac"
        sf.write(path, long_conversation(args.minutes), 16000)
        waveform = load_audio(path)
        diarizer = Diarizer()
        diarizer(load_audio(SHARED / "diarization" / "audio" / "sample.flac"))  # load the models once
        times = []
        for _ in range(args.repeats):
            clock = time.perf_counter()
            result = diarizer(waveform)
            times.append(time.perf_counter() - clock)
        median = statistics.median(times)
        print(f"RTF, {args.minutes:g} min, models loaded: median {median / waveform.duration:.4f} "
              f"({median:.1f} s over {args.repeats} runs; {len(result.labels)} speakers found of 4)")
        print("  stages of the last run: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
        # what the second look (diarize/second_look.py) costs: the same run with it off
        import dataclasses

        from diarize.config import SecondLookConfig

        for name, change in (("off", {"second_look": SecondLookConfig(enabled=False)}),):
            other = Diarizer(dataclasses.replace(diarizer.config, **change))
            other.segmenter, other._encoder = diarizer.segmenter, diarizer.encoder
            clock = time.perf_counter()
            other(waveform)
            print(f"  second look {name}: {time.perf_counter() - clock:.1f} s (one run)")
        wall, peak = cli_run(path)
        print(f"RTF, {args.minutes:g} min, whole `voicemap diarize` process: {wall / waveform.duration:.4f} "
              f"({wall:.1f} s, peak RSS {peak:.0f} MiB)")
        if args.memory_minutes > 0:
            del waveform
            big = Path(folder) / "hour.flac"
            sf.write(big, long_conversation(args.memory_minutes, seed=1), 16000)
            wall, peak = cli_run(big)
            print(f"{args.memory_minutes:g} min recording, whole process: {wall:.1f} s "
                  f"(RTF {wall / (args.memory_minutes * 60):.4f}), peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
