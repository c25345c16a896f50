"""Name the speakers of diarized simulated conversations from an enrolled registry, and score it.

    python benchmarks/registry_naming.py [--data ../shared/data] [--threshold T]

For each conversation of simconv-dev, every LibriSpeech speaker is enrolled from the utterances that the
conversation does *not* use (simconv-dev/speakers.tsv lists those it uses), the conversation is diarized
with the default pipeline, and its cluster centroids are matched (cluster/registry/match.py). Prints:
- cosine scores of real cluster centroids against enrolled voices: target (the reference speaker the
  cluster overlaps most) and impostor (every other enrolled speaker), to compare with the single-crop
  measurement behind NAMING_THRESHOLDS;
- identification error rate (pyannote.metrics, no label mapping) with every participant enrolled;
- leave-one-out: each participant in turn removed from the registry; it must come out `unknown`
  (IER counted with all unknown labels merged into one `unknown` class on both sides).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_rttm(path: Path):
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=path.stem)
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            annotation[Segment(start, start + duration)] = parts[7]
    return annotation


def overlap(hypothesis, label: str, reference, speaker: str) -> float:
    return hypothesis.label_timeline(label).crop(reference.label_timeline(speaker).support(),
                                                  mode="intersection").duration()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--threshold", type=float, default=None, help="default: NAMING_THRESHOLDS of the encoder")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from pyannote.metrics.identification import IdentificationErrorRate

    torch.set_num_threads(args.threads)
    from cluster.registry.calibration import centroid, describe, unit
    from cluster.registry.match import assign, default_naming_threshold
    from diarize.audio import load_audio
    from diarize.config import DiarizationConfig
    from diarize.pipeline import Diarizer

    speakers_dir = args.data / "speakers/librispeech-test-other"
    conversations = args.data / "simconv-dev"
    used: dict[str, set[str]] = defaultdict(set)
    with open(conversations / "speakers.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            used[row["uri"]].add(row["file"])
    diarizer = Diarizer(DiarizationConfig())
    encoder = diarizer.encoder
    threshold = default_naming_threshold(encoder.encoder_id) if args.threshold is None else args.threshold
    files = sorted(str(p.relative_to(speakers_dir)) for p in speakers_dir.glob("*/*.flac"))
    started = time.time()
    embeddings = {f: encoder.embed(load_audio(speakers_dir / f).samples) for f in files}
    print(f"{len(files)} utterances embedded in {time.time() - started:.0f} s; threshold {threshold:.3f}")

    targets, impostors = [], []
    ier_all, ier_left_out = IdentificationErrorRate(), IdentificationErrorRate()
    left_out_unknown = left_out_total = 0
    for uri in sorted(used):
        result = diarizer(conversations / "audio" / f"{uri}.flac")
        reference = read_rttm(conversations / "rttm" / f"{uri}.rttm")
        names, centroids = [], []
        for speaker in sorted({f.split("/")[0] for f in files}):
            held_out = [f for f in files if f.startswith(speaker + "/") and f not in used[uri]]
            if held_out:
                names.append(speaker)
                centroids.append(centroid(np.stack([embeddings[f] for f in held_out])))
        voices = np.stack(centroids)
        similarity = unit(result.speaker_centroids) @ voices.T
        main_speaker = {label: max(reference.labels(), key=lambda s: overlap(result.annotation, label, reference, s))
                        for label in result.labels}
        for k, label in enumerate(result.labels):
            for j, name in enumerate(names):
                (targets if name == main_speaker[label] else impostors).append(similarity[k, j])
        naming = assign(result.speaker_centroids, voices, names, threshold)
        ier_all(reference, result.annotation.rename_labels(dict(zip(result.labels, naming.labels))))
        print(f"{uri}: reference {sorted(reference.labels())}; clusters -> "
              + ", ".join(f"{main_speaker[l]}:{n}({s:.2f})" for l, n, s in zip(result.labels, naming.labels, naming.scores)))
        for out in sorted(reference.labels()):
            keep = [j for j, name in enumerate(names) if name != out]
            partial = assign(result.speaker_centroids, voices[keep], [names[j] for j in keep], threshold)
            biggest = max(result.labels, key=lambda l: overlap(result.annotation, l, reference, out))
            left_out_total += 1
            left_out_unknown += partial.labels[result.labels.index(biggest)].startswith("unknown_")
            merged = {l: ("unknown" if n.startswith("unknown_") else n) for l, n in zip(result.labels, partial.labels)}
            ier_left_out(reference.rename_labels({out: "unknown"}), result.annotation.rename_labels(merged))
    print(f"target   {describe(np.array(targets))}")
    print(f"impostor {describe(np.array(impostors))}")
    print(f"IER, all participants enrolled: {100 * abs(ier_all):.1f}%")
    print(f"IER, one participant left out (unknowns merged): {100 * abs(ier_left_out):.1f}%; "
          f"left-out participant's main cluster reported unknown: {left_out_unknown}/{left_out_total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
