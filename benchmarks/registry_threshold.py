"""Measure target / impostor cosine scores of an encoder and the open-set threshold match.py uses.

    python benchmarks/registry_threshold.py [--data ../shared/data/speakers/librispeech-test-other]
        [--embedding campplus] [--crops 3] [--seed 0]

Each speaker's utterances (sorted by name) are split in halves; every speaker is enrolled from one half
(the registry's centroid: unit mean of unit embeddings) and tested on the other, then the halves swap.
Two test conditions: whole utterances, and random 2-4 s crops of them (diarization clusters can be that
short). Prints the score distributions, the empirical EER, and the calibrated threshold of
cluster/registry/calibration.py for each condition; the crop condition's threshold is the one to store in
cluster/registry/match.py NAMING_THRESHOLDS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/speakers/librispeech-test-other")
    parser.add_argument("--embedding", default="campplus")
    parser.add_argument("--crops", type=int, default=3, help="random 2-4 s crops per test utterance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from cluster.registry.calibration import Trials, calibrate, describe, split_enroll_test, trial_scores
    from diarize.audio import load_audio
    from diarize.embedding import load_encoder

    encoder = load_encoder(args.embedding)
    files = sorted(args.data.glob("*/*.flac"))
    if not files:
        print(f"{args.data}: no */*.flac files", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    started = time.time()
    full, speakers, crops, crop_speakers, crop_source = [], [], [], [], []
    for index, path in enumerate(files):
        samples = load_audio(path, sample_rate=encoder.sample_rate).samples
        full.append(encoder.embed(samples))
        speakers.append(path.parent.name)
        for _ in range(args.crops):
            length = int(rng.uniform(2.0, 4.0) * encoder.sample_rate)
            if len(samples) <= length:
                continue
            start = int(rng.integers(0, len(samples) - length))
            crops.append(encoder.embed(samples[start:start + length]))
            crop_speakers.append(path.parent.name)
            crop_source.append(index)
    full_m, speakers_a = np.stack(full), np.array(speakers)
    crops_m, crop_speakers_a, crop_source_a = np.stack(crops), np.array(crop_speakers), np.array(crop_source)
    print(f"encoder {encoder.encoder_id}: {len(files)} utterances of {len(set(speakers))} speakers, "
          f"{len(crops)} crops, embedded in {time.time() - started:.0f} s")

    per_speaker = int(np.min(np.unique(speakers_a, return_counts=True)[1]))
    first, second = split_enroll_test(speakers_a, per_speaker // 2)
    for condition in ("whole utterances", "2-4 s crops"):
        parts = []
        for enroll, test in ((first, second), (second, first)):
            if condition == "whole utterances":
                parts.append(trial_scores(full_m[enroll], speakers_a[enroll], full_m[test], speakers_a[test]))
            else:
                keep = test[crop_source_a]
                parts.append(trial_scores(full_m[enroll], speakers_a[enroll], crops_m[keep], crop_speakers_a[keep]))
        trials = Trials(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("target", "impostor", "open_set")))
        print(f"\n== {condition}")
        print(f"target    {describe(trials.target)}")
        print(f"impostor  {describe(trials.impostor)}")
        print(f"open-set  {describe(trials.open_set)}  (best other-speaker score per test)")
        print(calibrate(trials).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
