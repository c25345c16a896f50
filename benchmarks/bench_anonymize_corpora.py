"""Anonymization utility on real and simulated diarization sets: DER of the anonymized recording's diarization
against the original's, per set.

    python benchmarks/bench_anonymize_corpora.py ../shared/data/diarization/manifest.tsv \\
        ../shared/data/simconv-dev/manifest.tsv [--method spread] [--seed 7]

For each recording of each manifest (`uri audio rttm uem`, as `voicemap eval` reads them): diarize it,
anonymize it with its own diarization (as `voicemap anonymize` does, 16 kHz), diarize the output, and score
the second diarization against the first (pyannote metrics, no collar). The speech timing error is the
detection error rate between the two (missed + false-alarm speech, speakers ignored). There is no attacker
here: these sets have no enrollment recordings (`bench_anonymize.py` measures privacy).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="+", type=Path, help="manifest.tsv files (columns uri audio rttm uem)")
    parser.add_argument("--method", default=None, help="anonymization method (default: the CLI's default)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the pseudo-voices (recording i gets seed + i)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from pyannote.metrics.detection import DetectionErrorRate

    from diarize.audio import Waveform, load_audio
    from diarize.pipeline import Diarizer
    from eval.corpora import read_manifest
    from eval.metrics import DiarizationScores
    from synth.anonymize.recording import anonymize_samples
    from synth.anonymize.voice_transforms import DEFAULT_METHOD

    method = args.method or DEFAULT_METHOD
    for manifest in args.manifests:
        if not manifest.is_file():
            print(f"bench_anonymize_corpora: {manifest}: no such manifest", file=sys.stderr)
            return 2
    diarizer = Diarizer()
    print(f"method {method}, seed {args.seed}; {platform.machine()}, torch threads 1", flush=True)
    for manifest in args.manifests:
        started = time.perf_counter()
        scores, timing, rows = DiarizationScores(), DetectionErrorRate(), []
        for index, item in enumerate(read_manifest(manifest)):
            waveform = load_audio(item.audio)
            original = diarizer(waveform).annotation
            if not original.labels():
                rows.append(f"{item.uri} no speech found, skipped")
                continue
            result = anonymize_samples(waveform.samples, waveform.sample_rate, original, seed=args.seed + index,
                                       method=method)
            again = diarizer(Waveform(result.samples, waveform.sample_rate, item.uri)).annotation
            row = scores.add(item.uri, original, again)
            timing(original, again)
            rows.append(f"{item.uri} {len(original.labels())}->{len(again.labels())} {100 * row['der']:.1f}")
        print(f"{manifest.parent.name}: DER vs original {100 * scores.total()['der']:.1f} %, speech timing error "
              f"{100 * abs(timing):.1f} % ({time.perf_counter() - started:.0f} s)", flush=True)
        print("  " + "; ".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
