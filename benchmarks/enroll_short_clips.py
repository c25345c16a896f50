"""Is a voice enrolled from many short clips as good as one from a few whole utterances, and how short may one
clip's speech be before it only adds noise? The figures behind enroll's MIN_SPEECH_S (a total over all files)
and USABLE_SPEECH_S (the per-file floor).

    python benchmarks/enroll_short_clips.py [--data ../shared/data/speakers/librispeech-test-other]

Each reader's utterances (sorted by name) 0-4 enroll, 5-9 are held out. Enrollments as enroll builds them
(silero-vad speech of each file, one embedding per file, the registry's centroid: unit mean of unit vectors):
3 and 5 whole utterances; 5-20 clips of 1, 2 and 3 s cut from utterances 0-4. Each is scored on the held-out
whole utterances: target and impostor cosine, rank-1 among the readers, miss and false-accept rates at
match.py's threshold. Then one clip alone, by its length of speech: cosine with its reader's held-out
centroid, the nearest other reader's, and rank-1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/speakers/librispeech-test-other")
    parser.add_argument("--embedding", default="campplus")
    args = parser.parse_args()

    import soundfile as sf
    import torch

    from cluster.registry.match import NAMING_THRESHOLDS
    from diarize.embedding import load_encoder
    from diarize.vad import keep_speech
    from pipelines.voice_embedding import embed_speech_audio

    torch.set_num_threads(1)
    started = time.time()
    encoder = load_encoder(args.embedding)
    threshold = NAMING_THRESHOLDS.get(encoder.encoder_id, 0.5)
    readers = sorted(p.name for p in args.data.iterdir() if p.is_dir())
    audio = {r: [sf.read(f, dtype="float32")[0] for f in sorted((args.data / r).glob("*.flac"))] for r in readers}

    def embed(samples: np.ndarray):
        speech = keep_speech(samples, 16000)
        if speech.seconds < 0.05:
            return None, 0.0
        return embed_speech_audio(speech.samples, encoder, label="clip"), speech.seconds

    whole = {r: [embed(a)[0] for a in audio[r]] for r in readers}
    held_out = {r: unit(unit(np.stack(whole[r][5:])).mean(0)) for r in readers}

    def score(centroids: dict[str, np.ndarray]) -> str:
        matrix = unit(np.stack([centroids[r] for r in readers]))
        target, impostor, right = [], [], 0
        for r in readers:
            for vector in whole[r][5:]:
                scores = matrix @ unit(vector)
                right += readers[int(scores.argmax())] == r
                for other, s in zip(readers, scores):
                    (target if other == r else impostor).append(s)
        target, impostor = np.array(target), np.array(impostor)
        return (f"target {target.mean():.3f} (min {target.min():.3f}), impostor {impostor.mean():.3f} "
                f"(max {impostor.max():.3f}), rank-1 {right}/{len(readers) * 5}, miss {(target < threshold).mean():.1%}, "
                f"false accept {(impostor >= threshold).mean():.2%} at {threshold:.3f}")

    for count in (3, 5):
        print(f"{count} whole utterances:", score({r: unit(unit(np.stack(whole[r][:count])).mean(0)) for r in readers}))

    def clips(reader: str, seconds: float, count: int) -> list[np.ndarray]:
        n = int(seconds * 16000)
        cut = [a[start:start + n] for a in audio[reader][:5] for start in range(8000, len(a) - n + 1, n)]
        return cut[:: max(1, len(cut) // count)][:count]

    for seconds, count in [(2.0, 10), (2.0, 5), (1.0, 10), (1.0, 20), (3.0, 7)]:
        centroids, speech = {}, []
        for r in readers:
            vectors = []
            for clip in clips(r, seconds, count):
                vector, found = embed(clip)
                if vector is not None:
                    vectors.append(vector)
                    speech.append(found)
            centroids[r] = unit(unit(np.stack(vectors)).mean(0))
        print(f"{count} clips of {seconds:g} s ({np.mean(speech):.2f} s of speech each):", score(centroids))

    refs = np.stack([held_out[r] for r in readers])
    speech_of = {r: [keep_speech(a, 16000).samples for a in audio[r][:5]] for r in readers}
    for seconds in (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        own, nearest, right = [], [], []
        n = int(seconds * 16000)
        for i, r in enumerate(readers):
            for speech in speech_of[r]:
                for start in (16000, 48000):
                    if start + n <= len(speech):
                        scores = refs @ unit(embed_speech_audio(speech[start:start + n], encoder, label="clip"))
                        own.append(scores[i])
                        nearest.append(np.delete(scores, i).max())
                        right.append(scores.argmax() == i)
        print(f"one clip of {seconds:.2f} s of speech: cosine with its reader {np.mean(own):.3f}, nearest other "
              f"{np.mean(nearest):.3f}, rank-1 {np.mean(right):.0%} (n={len(own)})")
    print(f"({time.time() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
