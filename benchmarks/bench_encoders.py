"""Time to embed one minute of audio with each speaker encoder; prints medians. With --verification, instead:
verification EER of real encoders (and of a score fusion) on the shared speaker sets, and the AHC threshold
derived for ECAPA from its score distribution on the readers.

    python benchmarks/bench_encoders.py [--seconds 60] [--repeats 5] [--threads 1 2] [--encoders ...]
    python benchmarks/bench_encoders.py --verification [--encoders campplus ecapa]

Qwen3 encoders run with random weights in the real architecture (the cost is the same as with the
released weights, which are not on these machines): `qwen3-0.6b-random` (1024-d) and `qwen3-1.7b-random`
(2048-d). Any other name goes through `load_encoder` (e.g. `campplus`, or a Qwen3 checkpoint path).
The audio is real read speech from ../shared/data (LibriSpeech test-other utterances joined), decoded and
resampled before timing starts. Besides the whole-input embedding, each row splits the time into the
frame-level pass (wall time, and the process's CPU seconds per minute of audio, which shared cores do not
inflate) and the pooling, and times the diarizer's use: 100 masked poolings of 5 s segments.

Verification (see `verification`): cosine scores of every pair of utterances, EER over target and impostor
pairs; the fusion averages each encoder's cosines after z-normalising them over the set's own trial list
(label-free). The ECAPA AHC threshold is set from the readers' whole-utterance trials by the rule in
`derived_threshold`, never from a diarization set's DER.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# sleeping OpenMP waits, as the CLI sets them (pipelines/cli.py): on shared cores spinning threads made a
# CAM++ utterance take 4-6 s of CPU instead of 0.2-0.3 s; libgomp reads this once, when torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPEAKERS = REPO.parent / "shared" / "data" / "speakers" / "librispeech-test-other"
RAVDESS = REPO.parent / "shared" / "data" / "speakers" / "ravdess-dev"
CROP_SECONDS = 1.5


def speech(seconds: float, rate: int) -> np.ndarray:
    from diarize.audio import load_audio

    pieces, total = [], 0
    for path in sorted(SPEAKERS.glob("*/*.flac")):
        samples = load_audio(path, sample_rate=rate).samples
        pieces.append(samples)
        total += len(samples)
        if total >= seconds * rate:
            return np.concatenate(pieces)[: int(seconds * rate)]
    print(f"(shared speech not found at {SPEAKERS}: using noise)", file=sys.stderr)
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32)


def random_qwen3(dim: int):
    import torch

    from diarize.embedding.qwen3 import Qwen3Encoder, Qwen3SpeakerNetwork
    from diarize.embedding.qwen3_weights import EncoderCheckpoint, EncoderConfig

    torch.manual_seed(0)
    config = EncoderConfig(enc_dim=dim)
    state = Qwen3SpeakerNetwork(config).state_dict()
    return Qwen3Encoder(EncoderCheckpoint(config, state, f"<random {dim}-d>", "memory"))


def load(name: str):
    if name == "qwen3-0.6b-random":
        return random_qwen3(1024)
    if name == "qwen3-1.7b-random":
        return random_qwen3(2048)
    from diarize.embedding import load_encoder

    return load_encoder(name)


def timed(function, repeats: int) -> list[float]:
    function()  # warm-up: lazy loading, allocator, oneDNN kernel selection
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--encoders", nargs="+", default=None,
                        help="default: qwen3-0.6b-random qwen3-1.7b-random campplus ecapa (timing), campplus ecapa "
                             "(verification)")
    parser.add_argument("--verification", action="store_true", help="EER tables instead of timing")
    args = parser.parse_args()

    import torch

    if args.verification:
        verification(args.encoders or ["campplus", "ecapa"])
        return
    args.encoders = args.encoders or ["qwen3-0.6b-random", "qwen3-1.7b-random", "campplus", "ecapa"]

    print(f"{args.seconds:g} s of speech, median (min) of {args.repeats} runs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads available by default")
    print("| encoder | threads | embed s | frame pass s | frame pass CPU s per min | pooling s | 100 masked 5 s poolings s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.encoders:
        try:
            encoder = load(name)
        except Exception as error:  # a missing model must not hide the others' rows
            print(f"| {name} | - | not available: {str(error).splitlines()[0]} | | | | |")
            continue
        samples = speech(args.seconds, encoder.sample_rate)
        for threads in args.threads:
            torch.set_num_threads(threads)
            embed = timed(lambda: encoder.embed(samples), args.repeats)
            cells = [f"{statistics.median(embed):.3f} ({min(embed):.3f})"]
            features = encoder.frame_features(samples)
            ones = np.ones((1, len(features)), dtype=np.float32)
            rng = np.random.default_rng(0)
            segment = int(5 * encoder.frame_rate)
            masks = np.zeros((100, len(features)), dtype=np.float32)
            for row, start in enumerate(rng.integers(0, len(features) - segment, 100)):
                masks[row, start:start + segment] = 1
            cpu_before = time.process_time()
            frames = timed(lambda: encoder.frame_features(samples), args.repeats)
            cpu_per_minute = (time.process_time() - cpu_before) / (args.repeats + 1) / (args.seconds / 60)
            pooling = timed(lambda: encoder.pool(features, ones), args.repeats)
            masked = timed(lambda: encoder.pool(features, masks), max(1, args.repeats // 2))
            cells += [f"{statistics.median(frames):.3f}", f"{cpu_per_minute:.2f}",
                      f"{statistics.median(pooling):.3f}", f"{statistics.median(masked):.3f}"]
            print(f"| {encoder.encoder_id} | {threads} | " + " | ".join(cells) + " |", flush=True)


# ---------------------------------------------------------------------------------------------- verification

def verification_sets() -> dict[str, list[tuple[str, str, Path]]]:
    """Set name -> [(speaker, condition, path)]: the readers (condition: chapter) and the RAVDESS actors
    (condition: emotion, the third field of the file name)."""
    readers = [(path.parent.name, path.stem.split("-")[1], path) for path in sorted(SPEAKERS.glob("*/*.flac"))]
    actors = [(path.parent.name, path.stem.split("-")[2], path) for path in sorted(RAVDESS.glob("Actor_*/*.flac"))]
    return {"readers": readers, "ravdess": actors}


def centre_crop(samples: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    length = int(seconds * rate)
    start = max(0, (len(samples) - length) // 2)
    return samples[start:start + length]


def unit_embeddings(encoder, waveforms: list[np.ndarray]) -> np.ndarray:
    """(len(waveforms), dimension) L2-normalised whole-input embeddings."""
    from cluster.vectors import unit_vectors

    return unit_vectors(np.stack([encoder.embed(samples) for samples in waveforms]).astype(np.float64))


def one_pass_embeddings(encoder, waveforms: list[np.ndarray]) -> np.ndarray:
    """The diarizer's path: the inputs joined into one recording, frame features computed once over it in
    30 s blocks (diarize.speaker_embeddings.feature_blocks), each input pooled from its span. (n, dimension)."""
    from cluster.vectors import unit_vectors
    from diarize.speaker_embeddings import pool_spans

    hop = int(round(encoder.sample_rate / encoder.frame_rate))
    joined = np.concatenate(waveforms)
    bounds = np.cumsum([0] + [len(samples) for samples in waveforms])
    frame_spans = [(int(start) // hop, int(end) // hop) for start, end in zip(bounds[:-1], bounds[1:])]
    pooled = pool_spans(encoder, joined, [(0.0, len(joined) / encoder.sample_rate)], frame_spans)
    return unit_vectors(pooled)


def trials(speakers: np.ndarray, conditions: np.ndarray, cross_condition: bool = False):
    """Index pairs (i < j) and whether each is a target trial; with `cross_condition`, only pairs whose
    conditions differ."""
    first, second = np.triu_indices(len(speakers), k=1)
    if cross_condition:
        keep = conditions[first] != conditions[second]
        first, second = first[keep], second[keep]
    return first, second, speakers[first] == speakers[second]


def eer_of(scores: np.ndarray, target: np.ndarray) -> float:
    from cluster.registry.calibration import equal_error_rate

    return 100 * equal_error_rate(scores[target], scores[~target])[0]


def znorm(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean()) / scores.std()


def derived_threshold(reference: tuple[float, float], encoder: tuple[float, float], reference_cosine: float) -> float:
    """The AHC cosine for a new encoder that sits where the reference encoder's measured cut sits between
    its own mean impostor and mean target cosines on the same trials: with t = (c_ref - mu_imp_ref) /
    (mu_tgt_ref - mu_imp_ref), the new cut is mu_imp + t (mu_tgt - mu_imp). `reference`, `encoder`:
    (mean impostor, mean target) cosines."""
    position = (reference_cosine - reference[0]) / (reference[1] - reference[0])
    return encoder[0] + position * (encoder[1] - encoder[0])


def verification(names: list[str]) -> None:
    import torch

    from diarize.audio import load_audio
    from diarize.embedding import load_encoder
    from diarize.pipeline import CLUSTER_THRESHOLDS

    sets = verification_sets()
    if not sets["readers"] or not sets["ravdess"]:
        sys.exit(f"shared speaker sets not found under {SPEAKERS.parent}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cosine scoring, every pair of utterances; "
          f"crops: the central {CROP_SECONDS:g} s")
    encoders = {name: load_encoder(name) for name in names}
    audio = {key: [load_audio(path, sample_rate=16000).samples for _, _, path in rows] for key, rows in sets.items()}
    inputs = {"readers, whole utterances": ("readers", audio["readers"]),
              f"readers, {CROP_SECONDS:g} s crops": ("readers", [centre_crop(x, CROP_SECONDS, 16000) for x in audio["readers"]]),
              "ravdess-dev, whole utterances": ("ravdess", audio["ravdess"])}
    scores: dict[str, dict[str, np.ndarray]] = {label: {} for label in inputs}
    for name, encoder in encoders.items():
        if encoder.sample_rate != 16000:
            sys.exit(f"{name}: verification here feeds 16 kHz audio")
        for label, (key, waveforms) in inputs.items():
            started = time.perf_counter()
            unit = unit_embeddings(encoder, waveforms)
            scores[label][name] = unit @ unit.T
            print(f"  {name}: {label}: {len(waveforms)} embeddings in {time.perf_counter() - started:.0f} s", flush=True)

    rows = []
    for label, (key, _) in inputs.items():
        speakers = np.array([row[0] for row in sets[key]])
        conditions = np.array([row[1] for row in sets[key]])
        variants = [("all trials", False)] + ([("cross-emotion trials", True)] if key == "ravdess" else [])
        for variant, cross in variants:
            first, second, target = trials(speakers, conditions, cross)
            trial_scores = {name: matrix[first, second] for name, matrix in scores[label].items()}
            cells = [eer_of(values, target) for values in trial_scores.values()]
            if len(trial_scores) > 1:
                cells.append(eer_of(np.mean([znorm(values) for values in trial_scores.values()], axis=0), target))
            rows.append((f"{label}, {variant} ({int(target.sum())} target / {int((~target).sum())} impostor)", cells))
    fused = " + ".join(names)
    header = names + ([f"fusion ({fused})"] if len(names) > 1 else [])
    print("\nEER %")
    print("| set | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(f"{value:.2f}" for value in cells) + " |")

    print("\nmean cosine (impostor / target), readers")
    speakers = np.array([row[0] for row in sets["readers"]])
    conditions = np.array([row[1] for row in sets["readers"]])
    first, second, target = trials(speakers, conditions)
    means = {}
    for label in ("readers, whole utterances", f"readers, {CROP_SECONDS:g} s crops"):
        for name in names:
            values = scores[label][name][first, second]
            means[label, name] = (float(values[~target].mean()), float(values[target].mean()))
            print(f"  {label}, {name}: {means[label, name][0]:.3f} / {means[label, name][1]:.3f}")
    if "campplus" in names and "ecapa" in names:
        campplus_cut = CLUSTER_THRESHOLDS["campplus-common-advanced"]
        for label in ("readers, whole utterances", f"readers, {CROP_SECONDS:g} s crops"):
            cosine = derived_threshold(means[label, "campplus"], means[label, "ecapa"], campplus_cut)
            print(f"ECAPA AHC cut from {label}: cosine {cosine:.3f} = distance {np.sqrt(2 - 2 * cosine):.3f} "
                  f"(CAM++'s cut: cosine {campplus_cut:.3f})")

    # the diarizer pools spans of one frame pass over the recording: how far is that from embedding alone?
    # Neighbours in this order are mostly the same reader; every 4th utterance joined puts readers side by side.
    print("\none frame pass over the readers' utterances joined (30 s blocks), each pooled from its span, vs each "
          "embedded alone")
    print("| encoder | utterances joined | cosine to alone, mean | min | EER % one pass | EER % alone |")
    print("|---|---|---|---|---|---|")
    for name, encoder in encoders.items():
        alone = unit_embeddings(encoder, audio["readers"])
        for label, picked in (("all 100 in order", slice(None)), ("every 4th (25)", slice(None, None, 4))):
            joined = one_pass_embeddings(encoder, audio["readers"][picked])
            agreement = np.sum(alone[picked] * joined, axis=1)
            sub_first, sub_second, sub_target = trials(speakers[picked], conditions[picked])
            sub_alone = alone[picked]
            print(f"| {name} | {label} | {agreement.mean():.4f} | {agreement.min():.4f} | "
                  f"{eer_of((joined @ joined.T)[sub_first, sub_second], sub_target):.2f} | "
                  f"{eer_of((sub_alone @ sub_alone.T)[sub_first, sub_second], sub_target):.2f} |", flush=True)

if __name__ == "__main__":
    main()
