"""Reading sex by projection on an attribute direction, leave one speaker out, on LibriSpeech test-other.

    python benchmarks/bench_directions.py [--data ../shared/data/speakers/librispeech-test-other]
                                          [--embedding campplus] [--crop 4]

10 speakers (5 F, 5 M per SPEAKERS.TXT) x 10 utterances. Each utterance is embedded once, whole and cut to
its first --crop seconds. For each held-out speaker the direction and its threshold are fitted on the other
9 speakers' 90 utterances only; the held-out speaker's utterances are classified one by one ("utt") and
from the mean of their unit vectors ("spk"). Prints one table row per (input, method, k), and a last row
where the direction is the training readers' own speed-perturbation move (no labels) and the labels only
set its sign, length and threshold.
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


#: speed factor of the label-free prior: each crop played 15 % faster and 15 % slower (pitch and formants
#: move together, roughly the vocal-tract length ratio between the sexes); fixed before measuring, not tuned
SPEED = 1.15


def speed(samples: np.ndarray, factor: float, rate: int) -> np.ndarray:
    """Play `factor` times faster (resample, keep the rate): pitch and formants rise by `factor`."""
    import soxr

    return soxr.resample(samples, rate, int(round(rate / factor))).astype(np.float32)


def embed_corpus(folder: Path, encoder, crop_s: float):
    """(n, dim) whole-utterance and cropped raw embeddings, (n, dim) x 2 of the crop sped up / slowed down,
    speaker ids, sexes."""
    from diarize.audio import load_audio

    sexes = speaker_sex(folder)
    whole, cropped, faster, slower, speakers, labels = [], [], [], [], [], []
    for path in sorted(folder.glob("*/*.flac")):
        samples = load_audio(path).samples
        if encoder.sample_rate != 16000:  # resample at the encoder's door (Qwen3 wants 24 kHz)
            import soxr

            samples = soxr.resample(samples, 16000, encoder.sample_rate).astype(np.float32)
        whole.append(encoder.embed(samples))
        crop = samples[: int(crop_s * encoder.sample_rate)]
        cropped.append(encoder.embed(crop))
        faster.append(encoder.embed(speed(crop, SPEED, encoder.sample_rate)))
        slower.append(encoder.embed(speed(crop, 1 / SPEED, encoder.sample_rate)))
        speakers.append(path.parent.name)
        labels.append(sexes[path.parent.name])
    return np.stack(whole), np.stack(cropped), np.stack(faster), np.stack(slower), speakers, labels


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
    whole, cropped, faster, slower, speakers, labels = embed_corpus(args.data, encoder, args.crop)
    seconds = time.perf_counter() - started
    counts = {sex: len({s for s, l in zip(speakers, labels) if l == sex}) for sex in sorted(set(labels))}
    print(f"{encoder.encoder_id}: {len(speakers)} utterances of {len(set(speakers))} speakers {counts}, "
          f"embedded whole, cut to {args.crop:g} s, and the cut at speed x{SPEED:g} and x1/{SPEED:g} in {seconds:.0f} s")
    print("\n| input | method | k | utterance accuracy | speaker accuracy | speakers misread |")
    print("|---|---|---|---|---|---|")
    for name, vectors in (("whole", whole), (f"first {args.crop:g} s", cropped)):
        for method, k in METHODS:
            result = leave_one_group_out(vectors, labels, speakers, method=method, k=k)
            wrong = [g for g, ok in zip(result.groups, result.group_correct) if not ok]
            print(f"| {name} | {method} | {k if k else encoder.dimension} | {result.item_accuracy:.0%} | "
                  f"{result.group_accuracy:.0%} | {', '.join(wrong) or '-'} |")
    # the labels only set the sign and length along the training readers' mean faster -> slower move
    result = leave_one_group_out(cropped, labels, speakers, method="mean", pairs=(faster, slower))
    wrong = [g for g, ok in zip(result.groups, result.group_correct) if not ok]
    print(f"| first {args.crop:g} s | mean along the x{SPEED:g} speed prior | 1 line | {result.item_accuracy:.0%} | "
          f"{result.group_accuracy:.0%} | {', '.join(wrong) or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
