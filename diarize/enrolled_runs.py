"""Named diarization: the runs that the registry hears as an enrolled voice move to that voice's speaker.

After the second look (and the recount), a speaker may still hold runs of an enrolled voice that is not its
own: clusters of fast turn-taking mix voices, and naming gives one name per speaker. The runs of one speaker
that pool to an enrolled voice under the naming rule (cluster/registry/run_naming.py) go to the speaker that
voice names, or to a new speaker of that voice when none does, so naming can then give them that name.
"""

from __future__ import annotations

import numpy as np

from cluster.anchoring import EnrolledVoices
from cluster.registry.match import assign
from cluster.registry.run_naming import runs_heard_as_enrolled
from cluster.registry.score_norm import cohort_vectors

from .second_look import RunVoices, move_runs, run_centroids, with_new_speaker_votes


def move_enrolled_runs(active: np.ndarray, scores: np.ndarray, centroids: np.ndarray, runs: RunVoices,
                       voices: EnrolledVoices, encoder_id: str, room: int | None = None):
    """-> (num_frames, num_speakers') activity, its votes, (num_speakers', d) raw centroids, the runs with
    their new speakers.

    active, scores: (num_frames, num_speakers); centroids: (num_speakers, d) raw; runs: the second look's,
    with spans; voices: the enrolled voices of this encoder; room: how many speakers may be added (None: no
    bound; 0 where the speaker count is given). Nothing changes when no run is heard as another voice.
    """
    unchanged = active, scores, centroids, runs
    if runs.spans is None or len(runs.embeddings) == 0 or len(voices) == 0:
        return unchanged
    cohort = cohort_vectors(encoder_id)
    speaker_centroids = run_centroids(centroids, runs)
    # the names the speakers would get now, weighed by their speech as identify weighs them
    seconds = active.sum(axis=0).astype(np.float64)
    names = list(voices.names)
    naming = assign(speaker_centroids, voices.vectors, names, voices.threshold, seconds, cohort=cohort)
    speaker_voices = np.array([names.index(label) if label in names else -1 for label in naming.labels])
    heard = runs_heard_as_enrolled(runs.embeddings, runs.speakers, speaker_centroids, speaker_voices,
                                   voices.vectors, voices.threshold, cohort)
    if not (heard >= 0).any():
        return unchanged
    targets = runs.speakers.copy()
    added: list[np.ndarray] = []
    for voice in np.unique(heard[heard >= 0]):
        mine = heard == voice
        owner = np.flatnonzero(speaker_voices == voice)
        if len(owner):
            targets[mine] = owner[0]
        elif room is None or len(added) < room:
            targets[mine] = len(centroids) + len(added)
            added.append(runs.embeddings[mine].mean(axis=0))
    if not (targets != runs.speakers).any():
        return unchanged
    if added:
        active = np.hstack([active, np.zeros((len(active), len(added)), dtype=active.dtype)])
        centroids = np.vstack([centroids, np.stack(added).astype(centroids.dtype)])
    spans = [(int(speaker), int(first), int(stop)) for speaker, (first, stop) in zip(runs.speakers, runs.spans)]
    active = move_runs(active, spans, targets)
    return active, with_new_speaker_votes(active, scores), centroids, RunVoices(runs.embeddings, targets, runs.spans)


__all__ = ["move_enrolled_runs"]
