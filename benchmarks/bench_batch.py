"""Throughput of `voicemap batch diarize` with 1 and 2 workers on the same input set (not a test).

Builds an archive of the shared diarization clips (copied, never into the repository), runs the batch
job into a fresh OUTDIR for each worker count on its own local Ray runtime, and prints audio-hours per
wall-hour. Wall time includes starting Ray and loading the models in each worker, as a user sees it;
"steady" divides by the time from the first finished file to the last, which leaves those costs out.

    python benchmarks/bench_batch.py [--clips 12] [--workers 1 2] [--repeat 1] [--long-minutes 10]

--long-minutes M also builds one M-minute conversation from the shared LibriSpeech speakers and compares
`voicemap diarize` on it (one process, torch on every core) with the batch job splitting it over 2 workers,
with the peak memory of each.

Run it on a quiet machine: other processes on the same cores distort both figures, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from diarize.privacy import quiet_dependencies  # noqa: E402

quiet_dependencies()


def build_archive(folder: Path, clips: int) -> list[Path]:
    audio = REPO_ROOT.parent / "shared" / "data" / "diarization" / "audio"
    sources = sorted(audio.glob("*.flac"))
    if not sources:
        sys.exit(f"bench_batch: no clips in {audio}")
    paths = []
    for index in range(clips):
        target = folder / f"clip{index:03d}.flac"
        shutil.copyfile(sources[index % len(sources)], target)
        paths.append(target)
    return paths


def build_conversation(target: Path, minutes: float) -> None:
    import numpy as np
    import soundfile as sf

    speakers = REPO_ROOT.parent / "shared" / "data" / "speakers" / "librispeech-test-other"
    voices = [sorted(folder.glob("*.flac")) for folder in sorted(speakers.iterdir())[:4]]
    with sf.SoundFile(target, "w", 16000, 1) as out:
        written, turn = 0, 0
        while written < minutes * 60 * 16000:
            utterances = voices[turn % len(voices)]
            samples, _ = sf.read(utterances[(turn // len(voices)) % len(utterances)], dtype="float32")
            samples = np.concatenate([samples, np.zeros(8000, dtype=np.float32)])
            out.write(samples)
            written += len(samples)
            turn += 1


def long_recording(scratch: Path, minutes: float) -> None:
    import resource
    import subprocess

    from pipelines.batch import run_batch
    from pipelines.batch_state import read_rows

    path = scratch / "long" / "conversation.flac"
    path.parent.mkdir()
    build_conversation(path, minutes)
    clock = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "diarize", str(path), "-o", str(scratch / "single"), "-q"],
                   cwd=REPO_ROOT, check=True)
    single = time.perf_counter() - clock
    single_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    clock = time.perf_counter()
    summary = run_batch([str(path)], scratch / "split", workers=2, split_over=minutes * 60 / 4)
    split = time.perf_counter() - clock
    timings = json.loads(read_rows(scratch / "split")[0]["timings"])
    same = (scratch / "single" / "conversation.rttm").read_text() == (scratch / "split" / "conversation.rttm").read_text()
    print(f"{minutes:g}-minute recording: voicemap diarize {single:.1f} s (peak {single_peak:.0f} MB); batch, 2 workers, "
          f"{timings['pieces']} pieces: {split:.1f} s (worker peak {timings['worker_peak_mb']:.0f} MB), "
          f"{single / split:.2f}x; same RTTM: {same}; done {summary.done}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12, help="files in the archive (the 30 s shared clips, cycled)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count (the best is reported)")
    parser.add_argument("--long-minutes", type=float, default=0, help="also time one recording this long (0: skip)")
    args = parser.parse_args()

    from pipelines.batch import run_batch
    from pipelines.batch_state import read_rows

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    rates = {}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as scratch:
        archive = Path(scratch) / "archive"
        archive.mkdir()
        build_archive(archive, args.clips)
        if args.long_minutes:
            long_recording(Path(scratch), args.long_minutes)
        for workers in args.workers:
            best = None
            for attempt in range(args.repeat):
                outdir = Path(scratch) / f"out-{workers}-{attempt}"
                clock = time.perf_counter()
                summary = run_batch([str(archive)], outdir, workers=workers)
                wall = time.perf_counter() - clock
                finished = sorted(row["updated"] for row in read_rows(outdir) if row["status"] == "done")
                if summary.failed or summary.done != args.clips:
                    sys.exit(f"bench_batch: {workers} worker(s): {summary.done} done, failures {summary.failed}")
                # from the first result to the last, (done - 1) files were finished: the steady rate
                steady = (summary.audio_seconds * (len(finished) - 1) / len(finished)) / (finished[-1] - finished[0]) \
                    if len(finished) > 1 and finished[-1] > finished[0] else float("nan")
                run = {"wall": wall, "rate": summary.audio_seconds / wall, "steady": steady,
                       "audio": summary.audio_seconds}
                if best is None or run["rate"] > best["rate"]:
                    best = run
            rates[workers] = best
            print(f"{workers} worker(s): {best['audio'] / 3600:.3f} h audio in {best['wall']:.1f} s wall -> "
                  f"{best['rate']:.1f} audio-h per wall-h ({best['steady']:.1f} steady, after start-up)", flush=True)
    if 1 in rates and len(rates) > 1:
        for workers, run in rates.items():
            if workers != 1:
                print(f"speed-up {workers} vs 1 worker(s): {run['rate'] / rates[1]['rate']:.2f}x wall, "
                      f"{run['steady'] / rates[1]['steady']:.2f}x steady")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
