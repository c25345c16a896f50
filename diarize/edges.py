"""Speech edges moved to where the voice is: near-silent frames at the start and end of a turn are dropped,
and frames of voice next to a turn that the segmentation gave nobody are added to it.

Why: every frame's speaker activity is the vote of the ~10 overlapping 10 s windows that cover it, and the
segmentation model marks a turn from its context, so a turn's edges come out smeared: on simulated
conversations the decided speech starts ~55 ms before the voice and ends ~60 ms after it, in frames that are
barely above the recording's noise floor. Frames inside a turn are left alone (a pause in a far-field
meeting is often quiet too, and cutting those cost 2.5-6 points of DER on the AMI clips); only a turn's first
and last frames, up to `max_frames`, are checked.

The other way round, soft onsets and trailing syllables (a whispered or sad line, a word's voiced end) often
stay under the segmentation's speech count although they stand well above the noise floor: on the acted
conversations three quarters of the missed speech lay at a turn's start or end, at a median of 17 % of the way
from the floor to the speaker's loudest, where frames nobody speaks in sit at 1 %. Those frames are given to
the turn they touch, by the same near-silence measure, up to `extend_voiced_edges`' `max_frames`.
"""

from __future__ import annotations

import numpy as np

#: frames quieter than this (dBFS) carry no signal at all (digital silence: zeros, or 16-bit rounding of
#: zeros at about -101 dB), so they say nothing about the noise under the speech
DIGITAL_SILENCE_DB = -100.0

#: a speaker needs this many frames alone to get a level of its own; otherwise its frames with others count
MIN_ALONE_FRAMES = 30


def frame_levels(samples: np.ndarray, rate: int, origin: float, step: float, num_frames: int,
                 block: int = 4096) -> np.ndarray:
    """Energy in dB of each recording frame f, which spans [origin + f * step, origin + (f + 1) * step)
    seconds of `samples` (mono): (num_frames,). Frames outside the recording are at -200 dB.

    Frames are summed `block` at a time, so an hour of audio needs megabytes, not a float64 copy of it."""
    edges = np.round((origin + np.arange(num_frames + 1) * step) * rate).astype(np.int64)
    edges = np.clip(edges, 0, len(samples))
    energy = np.zeros(num_frames, dtype=np.float64)
    for first in range(0, num_frames, block):
        stop = min(first + block, num_frames)
        begin, end = edges[first], edges[stop]
        if end <= begin:
            continue
        power = np.concatenate([[0.0], np.cumsum(np.square(samples[begin:end], dtype=np.float64))])
        local = edges[first:stop + 1] - begin
        energy[first:stop] = (power[local[1:]] - power[local[:-1]]) / np.maximum(np.diff(local), 1)
    return 10.0 * np.log10(np.maximum(energy, 1e-20))


def noise_floor(levels: np.ndarray) -> float:
    """The recording's noise floor in dB: the 10th percentile of `levels` (num_frames,), leaving out
    digitally silent frames. A recording padded with zeros between its sounds (a simulated conversation,
    a muted channel) would otherwise get a floor of -200 dB, and no frame of real room noise would count
    as near-silent."""
    signal = levels[levels > DIGITAL_SILENCE_DB]
    return float(np.percentile(signal if len(signal) else levels, 10))


def quiet_for(levels: np.ndarray, own: np.ndarray, floor: float, share: float) -> np.ndarray | None:
    """(num_frames,) True where `levels` is under floor + share * (loudest - floor), loudest being the 99th
    percentile of the frames `own` marks as the speaker's; None when the speaker has no frames above floor."""
    if not own.any():
        return None
    loudest = float(np.percentile(levels[own], 99))
    if loudest <= floor:
        return None
    return levels < floor + share * (loudest - floor)


def split_at_pauses(exclusive: np.ndarray, levels: np.ndarray, min_pause: int, share: float = 0.1) -> np.ndarray:
    """`exclusive` (num_frames, num_speakers) 0/1 with every near-silent stretch of at least `min_pause`
    frames inside a speaker's runs set to 0, so a run that spans a pause becomes two runs.

    Near-silent as in `trim_silent_edges`, against the loudest of the frames `exclusive` gives the speaker.
    Returns a new array of exclusive's dtype."""
    split = np.array(exclusive, copy=True)
    if len(levels) == 0 or min_pause <= 0:
        return split
    floor = noise_floor(levels)
    for speaker in range(exclusive.shape[1]):
        own = exclusive[:, speaker].astype(bool)
        if own.sum() < MIN_ALONE_FRAMES:
            continue
        quiet = quiet_for(levels, own, floor, share)
        if quiet is None:
            continue
        column = np.concatenate([[0], (own & quiet).astype(np.int8), [0]])
        changes = np.flatnonzero(np.diff(column))
        for first, stop in zip(changes[0::2], changes[1::2]):
            if stop - first >= min_pause:
                split[first:stop, speaker] = 0
    return split


def _own_frames(talking: np.ndarray, speaker: int) -> np.ndarray:
    """(num_frames,) the frames that set a speaker's loudest: where it talks alone when it has enough of them,
    else wherever it talks. talking: (num_frames, num_speakers) bool."""
    alone = talking[:, speaker] & (talking.sum(axis=1) == 1)
    return alone if alone.sum() >= MIN_ALONE_FRAMES else talking[:, speaker]


def trim_silent_edges(active: np.ndarray, levels: np.ndarray, max_frames: int, share: float = 0.1,
                      min_frames: int = 3) -> np.ndarray:
    """Drop near-silent frames at the edges of each speaker's runs.

    active: (num_frames, num_speakers) 0/1; levels: (num_frames,) dB (`frame_levels`). A frame is near-silent
    for a speaker when its level is below floor + share * (loudest - floor): floor is the recording's 10th
    percentile, loudest the 99th percentile of the frames where that speaker talks alone. Up to `max_frames`
    such frames are removed from each end of each run; a trimmed run left shorter than `min_frames` is
    removed whole.
    Returns a new (num_frames, num_speakers) array of active's dtype.
    """
    trimmed = np.array(active, copy=True)
    if len(levels) == 0 or max_frames <= 0:
        return trimmed
    floor = noise_floor(levels)
    talking = active.astype(bool)
    for speaker in range(active.shape[1]):
        quiet = quiet_for(levels, _own_frames(talking, speaker), floor, share)
        if quiet is None:
            continue
        column = np.concatenate([[0], talking[:, speaker].astype(np.int8), [0]])
        changes = np.flatnonzero(np.diff(column))
        for first, stop in zip(changes[0::2], changes[1::2]):
            start, end = first, stop
            while start < stop and start - first < max_frames and quiet[start]:
                start += 1
            while end > start and stop - end < max_frames and quiet[end - 1]:
                end -= 1
            if end - start < min_frames and (start > first or end < stop):
                start = end = stop
            trimmed[first:start, speaker] = 0
            trimmed[end:stop, speaker] = 0
    return trimmed


def extend_voiced_edges(active: np.ndarray, levels: np.ndarray, max_frames: int, share: float = 0.1) -> np.ndarray:
    """Each speaker's runs grown, a frame at a time and up to `max_frames` on each side, over frames where
    nobody talks and that are not near-silent for that speaker (near-silent as in `trim_silent_edges`).

    active: (num_frames, num_speakers) 0/1; levels: (num_frames,) dB. A frame that two speakers reach in the
    same step (the last of a gap between two turns) is left to neither, so no overlap is made up; frames
    inside a pause of a run are filled from both sides like any gap.
    Returns a new (num_frames, num_speakers) array of active's dtype."""
    grown = active.astype(bool)
    if len(levels) == 0 or max_frames <= 0 or not grown.any():
        return np.array(active, copy=True)
    floor = noise_floor(levels)
    voiced = np.zeros_like(grown)
    for speaker in range(grown.shape[1]):
        quiet = quiet_for(levels, _own_frames(grown, speaker), floor, share)
        if quiet is not None:
            voiced[:, speaker] = ~quiet
    free = ~grown.any(axis=1)
    for _ in range(max_frames):
        beside = np.zeros_like(grown)
        beside[:-1] |= grown[1:]
        beside[1:] |= grown[:-1]
        claims = beside & voiced & free[:, None]
        claims[claims.sum(axis=1) > 1] = False
        if not claims.any():
            break
        grown |= claims
        free &= ~claims.any(axis=1)
    return grown.astype(active.dtype)
