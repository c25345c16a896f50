"""Reading sex by projection on an attribute direction, leave one speaker out, on LibriSpeech test-other.

    python benchmarks/bench_directions.py [--data ../shared/data/speakers/librispeech-test-other]
                                          [--embedding campplus] [--crop 4]

10 speakers (5 F, 5 M per SPEAKERS.TXT) x 10 utterances. Each utterance is embedded once, whole and cut to
its first --crop seconds. For each held-out speaker the direction and its threshold are fitted on the other
9 speakers' 90 utterances only; the held-out speaker's utterances are classified one by one ("utt") and
from the mean of their unit vectors ("spk"). Prints one table row per (input, method, k).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = [("mean", None), ("topk", 5), ("topk", 10), ("topk", 20), ("topk", 50), ("topk", 192)]


def speaker_sex(folder: Path) -> dict[str, str]:
    """SPEAKERS.TXT (`ID | SEX | SUBSET | MINUTES | NAME`, `;` comments) -> {speaker id: F|M}."""
    sexes = {}
    for line in (folder / "SPEAKERS.TXT").read_text(encoding="utf-8").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [field.strip() for field in line.split("|")]
        sexes[fields[0]] = fields[1]
    return sexes


def embed_corpus(folder: Path, encoder, crop_s: float) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(n, dim) whole-utterance and (n, dim) cropped raw embeddings, speaker ids, sexes."""
    from diarize.audio import load_audio

    sexes = speaker_sex(folder)
    whole, cropped, speakers, labels = [], [], [], []
    for path in sorted(folder.glob("*/*.flac")):
        samples = load_audio(path).samples
        if encoder.sample_rate != 16000:  # resample at the encoder's door (Qwen3 wants 24 kHz)
            import soxr

            samples = soxr.resample(samples, 16000, encoder.sample_rate).astype(np.float32)
        whole.append(encoder.embed(samples))
        cropped.append(encoder.embed(samples[: int(crop_s * encoder.sample_rate)]))
        speakers.append(path.parent.name)
        labels.append(sexes[path.parent.name])
    return np.stack(whole), np.stack(cropped), speakers, labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/speakers/librispeech-test-other")
    parser.add_argument("--embedding", default="campplus")
    parser.add_argument("--crop", type=float, default=4.0, help="seconds kept for the cropped rows (default 4)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # the machine's cores are shared
    from diarize.embedding import load_encoder
    from synth.algebra import leave_one_group_out

    encoder = load_encoder(args.embedding)
    started = time.perf_counter()
    whole, cropped, speakers, labels = embed_corpus(args.data, encoder, args.crop)
    seconds = time.perf_counter() - started
    counts = {sex: len({s for s, l in zip(speakers, labels) if l == sex}) for sex in sorted(set(labels))}
    print(f"{encoder.encoder_id}: {len(speakers)} utterances of {len(set(speakers))} speakers {counts}, "
          f"embedded whole and cut to {args.crop:g} s in {seconds:.0f} s")
    print("\n| input | method | k | utterance accuracy | speaker accuracy | speakers misread |")
    print("|---|---|---|---|---|---|")
    for name, vectors in (("whole", whole), (f"first {args.crop:g} s", cropped)):
        for method, k in METHODS:
            result = leave_one_group_out(vectors, labels, speakers, method=method, k=k)
            wrong = [g for g, ok in zip(result.groups, result.group_correct) if not ok]
            print(f"| {name} | {method} | {k if k else encoder.dimension} | {result.item_accuracy:.0%} | "
                  f"{result.group_accuracy:.0%} | {', '.join(wrong) or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
