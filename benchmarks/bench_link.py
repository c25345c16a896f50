"""Linking and search at archive scale, on synthetic centroids: time and memory from 1,000 to 100,000 speakers.

Synthetic, because no shared set holds that many speakers: voices are random directions in 192 dimensions
(CAM++'s size) plus a common offset, so that two different voices score about 0.3, as raw CAM++ centroids
of different readers did on simconv-dev (median 0.30); each per-recording speaker is its voice plus noise
sized so that two recordings of one voice score about 0.8 (0.69-0.96 there). Recordings hold 2-5 speakers of
distinct voices, and there are a quarter as many voices as speakers, so a voice recurs in about 4 recordings.
Speech seconds are drawn from 1 to 120 s; speakers under 2 s stay unlinked, as in `voicemap link`.

Each size runs in a fresh process so that its peak resident memory is its own. Search is brute force
(pipelines/archive_search.py), timed per query over the index of that size.

    python benchmarks/bench_link.py [--sizes 1000 10000 30000 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIMENSION = 192
IGNORE_TOP_OVERRIDE = None  # set by --ignore-top, to compare threshold rules at scale


def synthetic_archive(num_speakers: int, seed: int = 0):
    """-> (vectors (n, 192) float32, recordings (n,), seconds (n,), true voice (n,))."""
    rng = np.random.default_rng(seed)
    num_voices = max(2, num_speakers // 4)
    common = rng.standard_normal(DIMENSION)
    common /= np.linalg.norm(common)
    voices = rng.standard_normal((num_voices, DIMENSION))
    voices /= np.linalg.norm(voices, axis=1, keepdims=True)
    # different voices: cos ~ a^2 / (a^2 + 1) = 0.3 with a = 0.65; speaker noise of norm ~0.55 brings two
    # recordings of one voice to about 0.8
    voices = 0.65 * common + voices
    recordings, truth = [], []
    recording = 0
    while len(truth) < num_speakers:
        size = min(int(rng.integers(2, 6)), num_speakers - len(truth))
        truth.extend(rng.choice(num_voices, size=size, replace=False).tolist())
        recordings.extend([recording] * size)
        recording += 1
    truth = np.array(truth)
    noise = rng.standard_normal((num_speakers, DIMENSION)) * (0.55 / np.sqrt(DIMENSION))
    vectors = (voices[truth] + noise).astype(np.float32)
    seconds = rng.uniform(1.0, 120.0, num_speakers)
    return vectors, np.array(recordings), seconds, truth


def measure(num_speakers: int, queries: int = 20) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from cluster.linking import MIN_LINK_SECONDS, link_speakers, linking_threshold, unit_rows
    from pipelines.archive_search import nearest_rows

    vectors, recordings, seconds, truth = synthetic_archive(num_speakers)
    start = time.perf_counter()
    unit, valid = unit_rows(vectors)
    eligible = valid & (seconds >= MIN_LINK_SECONDS)
    threshold = linking_threshold(unit, recordings, eligible, encoder_threshold=None,
                                  **({} if IGNORE_TOP_OVERRIDE is None else {"ignore_top": IGNORE_TOP_OVERRIDE}))
    threshold_s = time.perf_counter() - start
    start = time.perf_counter()
    linking = link_speakers(vectors, recordings, seconds, threshold)
    link_s = time.perf_counter() - start  # the candidate search (all pairs, blockwise) and the merging
    linked = linking.voice >= 0
    start = time.perf_counter()
    rng = np.random.default_rng(1)
    hits = 0
    for row in rng.choice(num_speakers, size=queries, replace=False):
        query = vectors[row] + rng.standard_normal(DIMENSION).astype(np.float32) * (0.55 / np.sqrt(DIMENSION))
        best, _ = nearest_rows(unit, query, 10)
        hits += truth[best[0]] == truth[row]
    search_ms = 1000 * (time.perf_counter() - start) / queries
    return {
        "speakers": num_speakers, "true_voices": int(len(np.unique(truth[linked]))),
        "voices": int(len(np.unique(linking.voice[linked]))), "unlinked": int((~linked).sum()),
        "ari": float(adjusted_rand_score(truth[linked], linking.voice[linked])),
        "threshold": round(threshold.value, 3), "merges": linking.merges,
        "threshold_s": threshold_s, "link_s": link_s, "search_ms": search_ms,
        "search_p1": hits / queries,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 30000, 100000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a single size, in this process
    parser.add_argument("--ignore-top", type=int, default=None,
                        help="threshold: the (N+1)-th highest within-recording cosine (default: the library's)")
    args = parser.parse_args(argv)
    global IGNORE_TOP_OVERRIDE
    IGNORE_TOP_OVERRIDE = args.ignore_top
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    print("speakers\ttrue_voices\tvoices\tunlinked\tARI\tthreshold\tmerges\tthreshold_s\tlink_s\t"
          "search_ms/query\tsearch_P@1\tpeak_RSS_MiB")
    for size in args.sizes:
        extra = [] if args.ignore_top is None else ["--ignore-top", str(args.ignore_top)]
        out = subprocess.run([sys.executable, __file__, "--one", str(size), *extra], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['speakers']}\t{r['true_voices']}\t{r['voices']}\t{r['unlinked']}\t{r['ari']:.3f}\t{r['threshold']}\t"
              f"{r['merges']}\t{r['threshold_s']:.2f}\t{r['link_s']:.1f}\t{r['search_ms']:.1f}\t"
              f"{r['search_p1']:.2f}\t{r['peak_rss_mib']:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
