"""Speaker verification on a folder of `<speaker>/<utterance>` files: the yardstick for comparing encoders.

Every pair of utterances is a trial (same speaker: target; different: non-target). Each utterance is
embedded once as a whole, trials are scored by cosine similarity (which is where raw vectors get their
L2 normalization), and the trials give the equal error rate and the normalized minimum
detection cost (NIST SRE style: C_miss = C_fa = 1, P_target 0.01 by default). Speed is reported as the
encoder's time to embed one minute of audio, decoding excluded: audio is decoded and resampled to the
encoder's rate before the clock starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cluster.vectors import unit_vectors
from diarize.audio import AUDIO_EXTENSIONS, load_audio

P_TARGET = 0.01


@dataclass(frozen=True)
class Utterance:
    speaker: str
    path: Path


@dataclass
class VerificationResult:
    encoder_id: str
    dimension: int
    speakers: int
    utterances: int
    target_trials: int
    nontarget_trials: int
    eer: float  # fraction, 0..1
    eer_threshold: float
    min_dcf: float  # normalized
    p_target: float
    audio_seconds: float
    embed_seconds: float
    crop: float | None = None

    @property
    def seconds_per_audio_minute(self) -> float:
        return self.embed_seconds / (self.audio_seconds / 60.0)

    def as_dict(self) -> dict:
        values = dict(self.__dict__)
        values["seconds_per_audio_minute"] = self.seconds_per_audio_minute
        return values


class VerificationError(ValueError):
    """One line naming the folder and why no trials can be built from it."""


def collect_utterances(folder: str | Path, *, per_speaker: int | None = None) -> list[Utterance]:
    """Audio files under each first-level subfolder (the speaker), sorted; at most `per_speaker` each."""
    root = Path(folder)
    if not root.is_dir():
        raise VerificationError(f"{root}: not a folder")
    utterances: list[Utterance] = []
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in speaker_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        utterances += [Utterance(speaker_dir.name, path) for path in files[:per_speaker]]
    speakers = {u.speaker for u in utterances}
    if len(speakers) < 2:
        raise VerificationError(f"{root}: needs audio in at least two <speaker>/ subfolders, found {len(speakers)}")
    counts = [sum(u.speaker == s for u in utterances) for s in speakers]
    if max(counts) < 2:
        raise VerificationError(f"{root}: no speaker has two utterances, so there are no same-speaker trials")
    return utterances


def trial_pairs(speakers: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All unordered pairs (i < j) of utterances: (first index, second index, is-same-speaker)."""
    first, second = np.triu_indices(len(speakers), k=1)
    labels = np.asarray(speakers)
    return first, second, labels[first] == labels[second]


def cosine_scores(embeddings: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    units = unit_vectors(embeddings)
    return np.einsum("ij,ij->i", units[first], units[second])


def error_rates(scores: np.ndarray, targets: np.ndarray, *, p_target: float = P_TARGET) -> tuple[float, float, float]:
    """(EER, score threshold at the EER, normalized minDCF) of trials; higher score = more likely same speaker.

    The EER is where the miss and false-alarm rates cross, interpolated linearly between the two operating
    points around the crossing. (pyannote.metrics' `det_curve` averages the two points instead, which
    reports a non-zero EER for perfectly separated scores; hence this.)
    """
    from sklearn.metrics import roc_curve

    targets = np.asarray(targets, dtype=bool)
    if targets.all() or not targets.any():
        raise VerificationError("verification needs both same-speaker and different-speaker trials")
    false_alarm, hit, thresholds = roc_curve(targets, np.asarray(scores, dtype=np.float64), drop_intermediate=False)
    miss = 1.0 - hit
    gap = miss - false_alarm  # starts at 1 (reject everything), ends at -1 (accept everything)
    after = int(np.nonzero(gap < 0)[0][0])
    before = after - 1
    share = gap[before] / (gap[before] - gap[after])
    eer = false_alarm[before] + share * (false_alarm[after] - false_alarm[before])
    threshold = thresholds[before] if np.isfinite(thresholds[before]) else thresholds[after]
    cost = p_target * miss + (1.0 - p_target) * false_alarm
    min_dcf = float(cost.min() / min(p_target, 1.0 - p_target))
    return float(eer), float(threshold), min_dcf


def embed_utterances(encoder, utterances: list[Utterance], *, crop: float | None = None) -> tuple[np.ndarray, float, float]:
    """(embeddings (n, dim), seconds of audio, seconds spent in the encoder); `crop`: use the first seconds only."""
    embeddings = np.zeros((len(utterances), encoder.dimension), dtype=np.float32)
    audio_seconds = 0.0
    embed_seconds = 0.0
    for row, utterance in enumerate(utterances):
        samples = load_audio(utterance.path, sample_rate=encoder.sample_rate).samples
        if crop is not None:
            samples = samples[: int(crop * encoder.sample_rate)]
        audio_seconds += len(samples) / encoder.sample_rate
        started = time.perf_counter()
        embeddings[row] = encoder.embed(samples)
        embed_seconds += time.perf_counter() - started
    return embeddings, audio_seconds, embed_seconds


def evaluate(encoder, utterances: list[Utterance], *, p_target: float = P_TARGET,
             crop: float | None = None) -> VerificationResult:
    """Embed every utterance (the first `crop` seconds of each when given), score every trial."""
    embeddings, audio_seconds, embed_seconds = embed_utterances(encoder, utterances, crop=crop)
    first, second, targets = trial_pairs([u.speaker for u in utterances])
    scores = cosine_scores(embeddings, first, second)
    eer, threshold, min_dcf = error_rates(scores, targets, p_target=p_target)
    return VerificationResult(
        encoder_id=encoder.encoder_id, dimension=int(encoder.dimension),
        speakers=len({u.speaker for u in utterances}), utterances=len(utterances),
        target_trials=int(targets.sum()), nontarget_trials=int((~targets).sum()),
        eer=eer, eer_threshold=threshold, min_dcf=min_dcf, p_target=p_target,
        audio_seconds=audio_seconds, embed_seconds=embed_seconds, crop=crop,
    )


def format_table(results: list[VerificationResult]) -> str:
    """Markdown table, one row per encoder."""
    lines = [
        "| encoder | dim | audio per utterance | speakers / utterances | target / non-target trials | EER % "
        "| minDCF (P_target) | s to embed 1 min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.encoder_id} | {r.dimension} | {'whole' if r.crop is None else f'first {r.crop:g} s'} "
            f"| {r.speakers} / {r.utterances} | {r.target_trials} / {r.nontarget_trials} "
            f"| {100 * r.eer:.2f} | {r.min_dcf:.3f} ({r.p_target:g}) | {r.seconds_per_audio_minute:.2f} |"
        )
    return "\n".join(lines)
