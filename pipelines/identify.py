"""Naming a diarized recording's speakers from the voice registry: DiarizationResult -> labels that are
enrolled names or `unknown_1`, `unknown_2`, ...

`identify_result` is the one step the `identify` command and the batch job share: it matches the
recording's cluster centroids with cluster/registry/match.py (one-to-one, open-set, measured threshold) and returns
the same diarization with its labels renamed, plus per speaker the score and the nearest enrolled voice.

Over-split speakers (a 1-4 s extra cluster of someone already named) stay unknown here. Letting such a
cluster share the name its best match already got in this recording was measured on simconv-dev and the
conversations of tests/test_identify.py (11 recordings, every participant enrolled, then each left out):
it renamed 5 fragments, 4 rightly and 1 wrongly (a 1.4 s fragment whose centroid, built from different
audio than the speech it ended up labelling, was nearest another reader), for 0.5 points of IER. A wrong
name costs the user more than an unknown, so it is not done; the diarizer folds its tiniest clusters itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class NamedSpeaker:
    """One speaker of an identified recording.

    label: the enrolled name or `unknown_<n>`; cluster: the diarization's label it came from;
    score: cosine with the assigned voice, or for an unknown speaker with its nearest voice (None when the
    registry holds no voice of this encoder); nearest: best-scoring enrolled voice regardless of threshold.
    """

    label: str
    cluster: str
    score: float | None
    nearest: str | None
    speech_seconds: float
    normalized: float | None = None  # AS-norm score of the same pair, in impostor spreads (cluster/registry/score_norm.py)

    @property
    def known(self) -> bool:
        return not self.label.startswith("unknown_")


@dataclass
class Identification:
    """A diarization whose labels are names: `result` is the renamed DiarizationResult (same order of labels
    and centroids), `speakers` one NamedSpeaker per label in that order."""

    result: object
    speakers: list[NamedSpeaker]
    threshold: float

    def to_json_dict(self, extra: dict | None = None) -> dict:
        """diarize/output.py's JSON, with score, nearest voice and cluster added per speaker."""
        from scipy.stats import norm

        from diarize.output import to_json_dict

        payload = to_json_dict(self.result, extra)
        for speaker in self.speakers:
            payload["speakers"][speaker.label].update({
                "known": speaker.known,
                "score": None if speaker.score is None else round(speaker.score, 4),
                "normalized_score": None if speaker.normalized is None else round(speaker.normalized, 2),
                # the chance that a voice nobody enrolled scores this high against this one, from the normal
                # fit of the impostor scores the normalisation measured (cluster/registry/score_norm.py)
                "impostor_chance": None if speaker.normalized is None else float(f"{norm.sf(speaker.normalized):.2g}"),
                "nearest": speaker.nearest,
                "cluster": speaker.cluster,
            })
        payload["identification"] = {"threshold": self.threshold}
        return payload


def enrolled_voices(registry, encoder_id: str, threshold: float | None = None):
    """The registry's voices of `encoder_id` as cluster.anchoring.EnrolledVoices, to steer a diarization that
    will be named from them (Diarizer(..., voices=)); None when it holds none. threshold: as identify_result."""
    from cluster.anchoring import EnrolledVoices
    from cluster.registry.match import default_naming_threshold

    names, vectors = registry.centroids(encoder_id)
    if not names:
        return None
    # Steering stays on raw cosines at the threshold: on the acted-speech registry, steering by the AS-norm
    # rule too named the same share right but left diarization 5.7 points worse (docs/naming.md)
    threshold = default_naming_threshold(encoder_id) if threshold is None else float(threshold)
    return EnrolledVoices(tuple(names), np.asarray(vectors), threshold)


def identify_result(result, registry, threshold: float | None = None) -> Identification:
    """Name the speakers of `result` (diarize.pipeline.DiarizationResult) from `registry` (cluster.registry.Registry).

    threshold: the open-set cosine threshold; None takes the measured default of the result's encoder
    (cluster/registry/match.py NAMING_THRESHOLDS), MatchError when the encoder has none.
    """
    from cluster.registry.match import match_registry

    # Margins count in proportion to each cluster's speech, so a short fragment never outbids the long
    # cluster of the same voice (cluster/registry/match.py assign_scores says what that fixed, measured).
    seconds = np.array([result.annotation.label_duration(label) for label in result.labels], dtype=np.float64)
    assignment = match_registry(result.speaker_centroids, result.encoder_id, registry, threshold, weights=seconds)
    mapping = dict(zip(result.labels, assignment.labels))
    speakers = []
    normalized = assignment.normalized if assignment.normalized is not None else np.full(len(seconds), np.nan)
    for cluster, label, score, nearest, speech, spreads in zip(result.labels, assignment.labels, assignment.scores,
                                                               assignment.nearest, seconds, normalized):
        speakers.append(NamedSpeaker(label, cluster, None if not math.isfinite(score) else float(score), nearest,
                                     float(speech), None if not math.isfinite(spreads) else float(spreads)))
    # The assignment is one-to-one and unknown labels are distinct, so renaming never merges two speakers:
    # labels and centroids keep their order and stay one per speaker.
    named = dataclasses.replace(
        result,
        annotation=result.annotation.rename_labels(mapping),
        exclusive=result.exclusive.rename_labels(mapping),
        labels=[mapping[label] for label in result.labels],
        speaker_centroids=np.asarray(result.speaker_centroids),
    )
    return Identification(named, speakers, assignment.threshold)


def write_identification(identification: Identification, outdir: str | Path, stem: str | None = None,
                         extra: dict | None = None) -> tuple[Path, Path]:
    """OUTDIR/<stem>.rttm (labels are names) and OUTDIR/<stem>.json, each written atomically."""
    from cluster.atomic_files import atomic_write_text
    from diarize.output import to_rttm

    outdir = Path(outdir)
    stem = stem or identification.result.uri
    rttm_path, json_path = outdir / f"{stem}.rttm", outdir / f"{stem}.json"
    atomic_write_text(rttm_path, to_rttm(identification.result))
    text = json.dumps(identification.to_json_dict(extra), ensure_ascii=False, indent=1)
    atomic_write_text(json_path, text + "\n")
    return rttm_path, json_path


__all__ = ["Identification", "NamedSpeaker", "enrolled_voices", "identify_result", "write_identification"]
