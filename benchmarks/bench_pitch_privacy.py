"""Which part of a voice transform hides a reader from CAM++: pitch moves up or down, formant warps, or both.

    python benchmarks/bench_pitch_privacy.py            # 10 readers x 15 settings, about 2 minutes (1 torch thread)

Every LibriSpeech test-other reader is moved by the same fixed settings (no per-recording deal, no
diarization): its pitch by a number of semitones (on the LPC residual) and its formants by a scale
(`synth.anonymize.voice_transforms.lpc_warp`, as method `spread` does). For each setting:

- ignorant EER: enrollment = 3 original recordings per reader (8 s each, as in bench_anonymize), trials =
  3 s pieces of 18 s of the reader's other recordings, transformed; 50 % is no identity left;
- self: mean cosine between the pieces of one transformed reader (how stable the pseudo-voice stays);
- others: mean cosine between pieces of two different readers under the same setting (how far the
  transform pulls different people together; diarization needs others well below self).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SPEAKERS = REPO.parent / "shared" / "data" / "speakers" / "librispeech-test-other"
RATE = 16000
PIECE_SECONDS = 3.0
TRIAL_SECONDS = 18.0


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", default="-6,-3,0,3,6", help="pitch moves in semitones, comma-separated")
    parser.add_argument("--scales", default="0.77,1,1.3", help="formant scales, comma-separated")
    args = parser.parse_args(argv)
    if not SPEAKERS.is_dir():
        print(f"bench_pitch_privacy: the shared readers are not at {SPEAKERS} (see the README)", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(1)
    from cluster.registry.calibration import equal_error_rate
    from diarize.audio import load_audio
    from diarize.pipeline import Diarizer
    from eval.simulate import speakers_from_folder
    from synth.anonymize.voice_transforms import lpc_warp

    moves = [float(m) for m in args.moves.split(",")]
    scales = [float(s) for s in args.scales.split(",")]
    readers = speakers_from_folder(SPEAKERS)
    encoder = Diarizer().encoder
    started = time.perf_counter()

    def embed_pieces(samples: np.ndarray) -> np.ndarray:
        size = int(PIECE_SECONDS * RATE)
        return unit(np.array([encoder.embed(samples[s : s + size].astype(np.float32))
                              for s in range(0, len(samples) - size + 1, size)]))

    enrollment, trials = {}, {}
    for reader, paths in sorted(readers.items()):
        paths = sorted(paths)
        pieces = [unit(encoder.embed(load_audio(p).samples[: 8 * RATE])) for p in paths[:3]]
        enrollment[reader] = unit(np.mean(pieces, axis=0))
        trials[reader] = np.concatenate([load_audio(p).samples for p in paths[3:]]).astype(np.float64)[
            : int(TRIAL_SECONDS * RATE)]
    names = sorted(enrollment)
    enrolled = np.array([enrollment[r] for r in names])
    print(f"{len(names)} LibriSpeech test-other readers; {TRIAL_SECONDS:.0f} s each in {PIECE_SECONDS:.0f} s pieces "
          f"against 3 x 8 s enrollments; attacker CAM++; {platform.machine()}, torch threads 1", flush=True)
    print(f"{'pitch move':>10} {'formant scale':>14} {'ignorant EER':>13} {'self':>6} {'others':>7}", flush=True)
    for scale in scales:
        for move in moves:
            embedded = {r: embed_pieces(lpc_warp(trials[r], RATE, formant_scale=scale, pitch_ratio=2 ** (move / 12)))
                        for r in names}
            scores = np.concatenate([embedded[r] @ enrolled.T for r in names])
            is_target = np.concatenate([np.tile(np.array(names) == r, (len(embedded[r]), 1)) for r in names])
            self_cosine = np.mean([(e @ e.T)[np.triu_indices(len(e), 1)].mean() for e in embedded.values()])
            others = np.mean([(embedded[a] @ embedded[b].T).mean() for i, a in enumerate(names) for b in names[i + 1:]])
            eer, _ = equal_error_rate(scores[is_target], scores[~is_target])
            print(f"{move:>+8.0f} st {scale:>14.2f} {100 * eer:>11.1f} % {self_cosine:>6.2f} {others:>7.2f}", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
