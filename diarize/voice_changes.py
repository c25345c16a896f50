"""Single-voice runs cut where the voice changes, so that the second look judges each side on its own.

Why: two readers taking turns across a short gap (0.1-0.3 s, often not near-silent: breath, room tone,
another reader's tail) can come out of the votes as one run of one of them, and a run the votes won
is only re-decided as a whole. Near-silent pauses (`diarize.edges.split_at_pauses`) find some of
these cuts; the rest are found here from the voice itself. For every cut position inside a run, the
frames on each side (up to `window` frames each) are pooled into an embedding; the run is cut where the
two sides are nearest to two different speakers' centroids, each by at least `margin` of cosine over
the other side's speaker, and the search goes on inside both halves. The cut is then moved to the
quietest frame near it, since a turn change sits in a pause.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from cluster.vectors import unit_vectors

from .second_look import single_voice_runs

#: a side's embedding is pooled from at most this many seconds next to the cut: a voice that comes back
#: after another's turn (A B A in one run) would otherwise outweigh B on both sides of every cut, and the
#: cost stays bounded on long runs. 4 s and whole sides gave the same or slightly worse DER (docs/diarization-experiments.md)
WINDOW_SECONDS = 2.0
#: cuts searched deeper than this many rounds are left uncut (each round is one pooling pass)
MAX_ROUNDS = 6


def best_cut(left: np.ndarray, right: np.ndarray, centroids: np.ndarray) -> tuple[int, float]:
    """The candidate cut whose two sides are nearest to two different speakers, and by how much.

    left, right: (num_cuts, d) the sides' embeddings at each candidate; centroids: (num_speakers, d) unit.
    The margin of a cut is the smaller of the two sides' leads of their own speaker over the other side's
    speaker (cosine); a cut whose sides are nearest to the same speaker has margin -1.
    Returns (index of the best cut, its margin)."""
    to_left = unit_vectors(left) @ centroids.T
    to_right = unit_vectors(right) @ centroids.T
    a, b = to_left.argmax(axis=1), to_right.argmax(axis=1)
    rows = np.arange(len(left))
    margin = np.minimum(to_left[rows, a] - to_left[rows, b], to_right[rows, b] - to_right[rows, a])
    margin[a == b] = -1.0
    best = int(np.argmax(margin))
    return best, float(margin[best])


def _groups(runs: list[tuple[int, int, int]], min_side: int, hop: int, most: int = 2048):
    """`runs` in consecutive groups of at most `most` candidate cuts (a longer run alone), so the sides'
    embeddings of an hour of speech are never all held at once, and a recording too long to keep its frames
    computes each group's frames again over that group's stretch only."""
    group, count = [], 0
    for run in runs:
        cuts = len(range(run[1] + min_side, run[2] - min_side + 1, hop))
        if group and count + cuts > most:
            yield group
            group, count = [], 0
        group.append(run)
        count += cuts
    if group:
        yield group


def split_at_voice_changes(exclusive: np.ndarray, centroids: np.ndarray,
                           embed_spans: Callable[[list[tuple[int, int]]], np.ndarray], min_side: int,
                           margin: float, levels: np.ndarray | None = None, hop: int = 3, window: int | None = None,
                           snap: int = 9) -> np.ndarray:
    """`exclusive` (num_frames, num_speakers) 0/1 with one frame set to 0 at every voice change found inside
    a speaker's runs, so that a run holding two voices becomes two runs.

    centroids: (num_speakers, d); embed_spans([(first, stop), ...]) -> (n, d) embeddings of those frame
    spans (frames of `exclusive`); min_side: fewest frames on either side of a cut; hop: frames between
    candidate cuts; window: most frames pooled on each side (None: the whole side); levels: (num_frames,)
    dB (`diarize.edges.frame_levels`) to move each cut to the quietest frame within `snap` frames, or None.
    Returns a new array of exclusive's dtype.
    """
    split = np.array(exclusive, copy=True)
    if len(centroids) < 2 or min_side < 1:
        return split
    unit_centroids = unit_vectors(np.asarray(centroids, dtype=np.float64))
    # in time order, so each group of runs covers one stretch of the recording
    pending = sorted(single_voice_runs(exclusive, 2 * min_side), key=lambda run: run[1])
    for _ in range(MAX_ROUNDS):
        next_round = []
        for group in _groups(pending, min_side, hop):
            cuts_of, spans = [], []
            for _, first, stop in group:
                cuts = np.arange(first + min_side, stop - min_side + 1, hop)
                cuts_of.append(cuts)
                for cut in cuts:
                    lo = first if window is None else max(first, cut - window)
                    hi = stop if window is None else min(stop, cut + window)
                    spans += [(lo, int(cut)), (int(cut), hi)]
            embeddings = np.asarray(embed_spans(spans), dtype=np.float64)
            offset = 0
            for (speaker, first, stop), cuts in zip(group, cuts_of):
                sides = embeddings[offset : offset + 2 * len(cuts)]
                offset += 2 * len(cuts)
                best, lead = best_cut(sides[0::2], sides[1::2], unit_centroids)
                if lead <= margin:
                    continue
                cut = int(cuts[best])
                if levels is not None and snap > 0:
                    lo, hi = max(first + 1, cut - snap), min(stop - 1, cut + snap + 1)
                    if hi > lo:
                        cut = lo + int(np.argmin(levels[lo:hi]))
                split[cut, speaker] = 0
                for part_first, part_stop in ((first, cut), (cut + 1, stop)):
                    if part_stop - part_first >= 2 * min_side:
                        next_round.append((speaker, part_first, part_stop))
        if not next_round:
            break
        pending = sorted(next_round, key=lambda run: run[1])
    return split


__all__ = ["best_cut", "split_at_voice_changes"]
