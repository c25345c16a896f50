"""Enrolled voices heard inside a recording's speakers: the runs of a speaker that, pooled, the naming rule
gives to another enrolled voice.

Naming gives each speaker one name, so a cluster that holds two voices is named for one of them or for
neither, and a cluster of an enrolled voice whose windows blend with a stranger's may miss the bar. The second
look has embedded every single-voice run on its own (diarize/second_look.py); one run is 0.5-3 s and alone a
weak witness, but the runs of one speaker that have the same nearest enrolled voice, pooled, are as good a
probe as a short enrollment clip. On the acted registry conversations (turns of 1-2 s, `benchmarks/
registry_conversations.py --speakers actors`) clusters of three enrolled actors came out as one `unknown_1`,
and grouped this way each actor's runs passed the naming rule for that actor (docs/naming.md has the
figures).

A group is given to voice j only under the naming rule itself (cluster/registry/match.py `nameable`): the raw
cosine at the threshold, `named_spreads` AS-norm spreads against the same impostors (the other voices, the
shipped cohort, the recording's speakers) and a lead of NAMING_LEAD over its runner-up voice. No constant of
its own.
"""

from __future__ import annotations

import numpy as np

from ..vectors import unit_vectors
from .match import nameable, naming_impostors
from .score_norm import normalized_scores


def runs_heard_as_enrolled(run_embeddings: np.ndarray, run_speakers: np.ndarray, speaker_centroids: np.ndarray,
                           speaker_voices: np.ndarray, voices: np.ndarray, threshold: float,
                           cohort: np.ndarray) -> np.ndarray:
    """(num_runs,) the enrolled voice each run goes to, -1 where it stays with its speaker.

    run_embeddings: (num_runs, d) raw, each run's own voice; run_speakers: (num_runs,) the speaker each run
    is given; speaker_centroids: (num_speakers, d) raw; speaker_voices: (num_speakers,) the enrolled voice
    each speaker is named for, -1 for unknown; voices: (num_voices, d) enrolled centroids; threshold: the raw
    cosine naming threshold; cohort: (num_cohort, d) shipped impostor vectors (may be empty).

    For each speaker and each enrolled voice j other than its own name, the speaker's runs whose nearest voice
    (AS-norm) is j, and whose most similar other run of the speaker is one of them (`_kept_by_neighbours`), are
    pooled; when their mean passes the naming rule for j, they all go to j.
    """
    runs = unit_vectors(np.asarray(run_embeddings, dtype=np.float64), np.float64)
    result = np.full(len(runs), -1)
    num_voices = len(voices)
    if len(runs) == 0 or num_voices == 0:
        return result
    voices = unit_vectors(np.asarray(voices, dtype=np.float64), np.float64)
    impostors = naming_impostors(voices, cohort, unit_vectors(np.asarray(speaker_centroids, dtype=np.float64),
                                                              np.float64))
    run_scores = normalized_scores(runs, voices, impostors)
    if not np.isfinite(run_scores).any():
        return result  # too few impostors to measure a spread: nothing to pool on
    nearest = np.nanargmax(np.where(np.isfinite(run_scores), run_scores, -np.inf), axis=1)

    def passes(group_runs: np.ndarray, voice: int) -> bool:
        # the naming rule on the runs' pooled voice, which here also needs the spread to be measured
        pooled = unit_vectors(group_runs.mean(axis=0)[None, :], np.float64)
        spreads = normalized_scores(pooled, voices, impostors)
        return bool(np.isfinite(spreads[0, voice]) and nameable(pooled @ voices.T, spreads, threshold)[0, voice])

    for speaker in np.unique(run_speakers):
        own_voice = speaker_voices[speaker] if 0 <= speaker < len(speaker_voices) else -1
        mine = run_speakers == speaker
        for voice in np.unique(nearest[mine]):
            if voice == own_voice:
                continue
            group = _kept_by_neighbours(runs, mine, mine & (nearest == voice))
            if group.any() and passes(runs[group], voice):
                result[group] = voice
    return result


def _kept_by_neighbours(runs: np.ndarray, mine: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(num_runs,) bool: the runs of `group` whose most similar other run of the speaker (`mine`) is in the
    group too, dropping the others until none is left to drop.

    A stranger's run whose nearest enrolled voice happens to be the group's would otherwise ride along with
    the group's true runs; its most similar run is then one of its own voice's, outside the group."""
    members = np.flatnonzero(mine)
    if len(members) < 2:
        return group
    similar = runs[members] @ runs[members].T
    np.fill_diagonal(similar, -np.inf)
    neighbour = members[np.argmax(similar, axis=1)]
    kept = group.copy()
    while True:
        dropped = kept[members] & ~kept[neighbour]
        if not dropped.any():
            return kept
        kept[members[dropped]] = False


__all__ = ["runs_heard_as_enrolled"]
