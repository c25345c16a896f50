"""Naming scores measured against the voices around them: adaptive symmetric score normalisation (AS-norm).

A raw cosine says little across domains: impostors average 0.10 on read audiobooks and 0.5-0.6 among actors
recorded in one studio, so one fixed cosine threshold either names strangers there or misses people here.
What transfers is how far a score stands above the scores of voices that are known to be someone else:
- for an enrolled voice v, its cosines with the other enrolled voices, the recording's other speakers and a
  small shipped cohort (`cohort_vectors`) give the impostor scores of v (the "z" side);
- for a recording's speaker c, its cosines with those same impostors give the impostor scores of c (the "t"
  side: a voice that sits close to everybody in this room is not close to v in particular).
The normalised score is the mean of the two standardised scores, each against the top-k most similar
impostors only (an impostor that stands out as the same person left out) (adaptive: the impostors that matter are the near ones, and they come from the domain at hand).
It is in units of the impostor spread, so one threshold means the same false-accept rate in any domain
(cluster/registry/calibration.py: 3.72 sd is a 1e-4 tail of a normal impostor distribution).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from ..vectors import unit_vectors
from scipy.stats import norm

from .calibration import DEFAULT_FALSE_ACCEPT

#: share of the impostors each side is standardised against (the most similar ones); at least MIN_IMPOSTORS
TOP_SHARE = 0.5
#: fewer impostors than this cannot give a spread; the shipped cohort keeps every registry above it
MIN_IMPOSTORS = 4
#: an impostor standing this many spreads above the others is taken for the same person and left out: the
#: 1e-4 normal tail, the point at which naming would call it the same voice (cluster/registry/calibration.py)
SAME_PERSON_SPREADS = float(norm.isf(DEFAULT_FALSE_ACCEPT))
#: a spread below this (cosine units) is taken as this: a handful of near-identical impostor scores would
#: otherwise turn a tiny score difference into many standard deviations
MIN_SPREAD = 0.03


@dataclass(frozen=True)
class Impostors:
    """Vectors known to belong to other people than a given enrolled voice.

    vectors: (num_members, dim) unit; owners: (num_members,) the index of the enrolled voice a member stands
    for (-1: nobody enrolled, such as the shipped cohort or a recording's speaker)."""

    vectors: np.ndarray
    owners: np.ndarray


def _standardise(scores: np.ndarray, impostor_scores: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(n,) scores standardised against the top share of each row of (n, m) impostor scores where `usable`."""
    out = np.full(len(scores), np.nan)
    for row in range(len(scores)):
        values = np.sort(impostor_scores[row, usable[row]])[::-1]
        if len(values) < MIN_IMPOSTORS:
            continue
        # An "impostor" that the naming rule itself would take for the same person (a cohort speaker who is
        # also enrolled, a second cluster of the speaker) is not one: it would pull mean and spread up.
        while len(values) > MIN_IMPOSTORS:
            rest = values[1: max(MIN_IMPOSTORS, int(np.ceil(TOP_SHARE * (len(values) - 1)))) + 1]
            if (values[0] - rest.mean()) / max(rest.std(), MIN_SPREAD) < SAME_PERSON_SPREADS:
                break
            values = values[1:]
        top = values[: max(MIN_IMPOSTORS, int(np.ceil(TOP_SHARE * len(values))))]
        out[row] = (scores[row] - top.mean()) / max(top.std(), MIN_SPREAD)
    return out


def normalized_scores(probes: np.ndarray, voices: np.ndarray, impostors: Impostors,
                      probe_members: np.ndarray | None = None) -> np.ndarray:
    """AS-norm scores of every probe against every enrolled voice: (num_probes, num_voices), NaN where a side
    has under MIN_IMPOSTORS impostors.

    probes: (num_probes, dim) unit, e.g. a recording's speaker centroids; voices: (num_voices, dim) unit
    enrolled centroids; impostors: members that are not voice v are v's impostors (and the probe's);
    probe_members: (num_probes,) index in `impostors.vectors` of each probe itself when the probes are also
    members (a recording's speakers are impostors for each other), -1 otherwise, so a probe is never
    standardised against itself.
    """
    probes, voices = unit_vectors(probes, np.float64), unit_vectors(voices, np.float64)
    raw = probes @ voices.T
    probe_vs_members = probes @ impostors.vectors.T  # (P, M)
    voice_vs_members = voices @ impostors.vectors.T  # (V, M)
    members = np.arange(len(impostors.vectors))
    own = np.full(len(probes), -1) if probe_members is None else np.asarray(probe_members)
    result = np.full(raw.shape, np.nan)
    for v in range(len(voices)):
        usable = (impostors.owners != v)[None, :] & (members[None, :] != own[:, None])  # (P, M)
        t_side = _standardise(raw[:, v], probe_vs_members, usable)
        z_side = _standardise(raw[:, v], np.broadcast_to(voice_vs_members[v], probe_vs_members.shape), usable)
        result[:, v] = (t_side + z_side) / 2
    return result


@lru_cache(maxsize=8)
def _shipped(encoder_id: str) -> tuple[tuple[float, ...], ...]:
    name = f"{encoder_id}.json"
    folder = resources.files("cluster.registry") / "cohort"
    if not (folder / name).is_file():
        return ()
    record = json.loads((folder / name).read_text(encoding="utf-8"))
    return tuple(tuple(vector) for vector in record["vectors"])


def cohort_vectors(encoder_id: str) -> np.ndarray:
    """(num_speakers, dim) unit vectors of the shipped cohort for `encoder_id` (speakers whose licence lets
    their voice vectors ship, never their audio; see cluster/registry/cohort/*.json for where they come from), or an
    empty (0, 0) array for an encoder without one."""
    vectors = _shipped(encoder_id)
    return unit_vectors(np.array(vectors), np.float64) if vectors else np.zeros((0, 0))


__all__ = ["Impostors", "cohort_vectors", "normalized_scores"]
