"""The second look at short turns (diarize/resegment.py)."""

from __future__ import annotations

import numpy as np

from diarize.resegment import best_speakers, doubtful, move_runs, resegment, single_voice_runs


def activity(*columns: str) -> np.ndarray:
    """One string of 0/1 per speaker -> (num_frames, num_speakers) int8."""
    return np.array([[int(c) for c in column] for column in columns], dtype=np.int8).T


def test_runs_are_single_voice_stretches_within_the_length_bounds():
    exclusive = activity("1110000111111", "0001110000000")
    assert single_voice_runs(exclusive, min_frames=3) == [(0, 0, 3), (0, 7, 13), (1, 3, 6)]
    assert single_voice_runs(exclusive, min_frames=3, max_frames=4) == [(0, 0, 3), (1, 3, 6)]
    assert single_voice_runs(exclusive, min_frames=4) == [(0, 7, 13)]


def test_moving_a_run_never_merges_two_voices():
    active = activity("111111", "000110")  # speaker 1 already talks over frames 3-4
    moved = move_runs(active, [(0, 0, 6)], np.array([1]))
    np.testing.assert_array_equal(moved, activity("000110", "111111"))
    assert moved.sum(axis=1).tolist() == active.sum(axis=1).tolist()  # no frame lost a voice
    np.testing.assert_array_equal(move_runs(active, [(0, 0, 6)], np.array([0])), active)


def test_only_runs_won_by_a_thin_margin_are_doubtful():
    scores = np.array([[0.9, 0.1]] * 4 + [[0.55, 0.45]] * 4)
    runs = [(0, 0, 4), (0, 4, 8)]
    assert doubtful(runs, scores, max_margin=0.5) == [(0, 4, 8)]
    assert doubtful(runs, scores, max_margin=0.9) == runs
    assert doubtful([(0, 0, 4)], scores[:, :1], max_margin=0.5) == []  # alone: margin is its whole vote


def test_a_run_whose_own_voice_is_another_speakers_moves_to_that_speaker():
    centroids = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert best_speakers(np.array([[0.1, 0.9, 0.0], [2.0, 0.5, 0.0]]), centroids).tolist() == [1, 0]
    # the votes gave frames 4-7 to speaker 1, but the voice there is speaker 0's; frames 10-12 are speaker 1's
    voice = np.array([0] * 10 + [1] * 3)
    active = activity("1111000011000", "0000111100111")

    def embed(start, end):
        return centroids[np.bincount(voice[start:end], minlength=2).argmax()]

    out = resegment(active, active, centroids, lambda first, stop: (first, stop), embed, min_frames=2)
    np.testing.assert_array_equal(out, activity("1111111111000", "0000000000111"))
    # runs outside the length bounds are left alone, and one speaker leaves nothing to choose
    np.testing.assert_array_equal(resegment(active, active, centroids, lambda a, b: (a, b), embed, min_frames=5), active)
    np.testing.assert_array_equal(
        resegment(active[:, :1], active[:, :1], centroids[:1], lambda a, b: (a, b), embed, min_frames=2), active[:, :1])


def test_the_command_line_can_turn_the_second_look_off():
    import argparse

    from pipelines.commands.common import add_diarization_options, config_from_args

    parser = argparse.ArgumentParser()
    add_diarization_options(parser)
    assert config_from_args(parser.parse_args([])).resegment_seconds == (0.5, 8.0)
    assert config_from_args(parser.parse_args(["--no-second-look"])).resegment_seconds is None


def test_a_run_cut_at_a_pause_gives_the_second_voice_back():
    """One long run that the votes gave to speaker 0 holds speaker 1's voice after a pause: whole, its
    embedding is mostly speaker 0's and nothing moves; cut at the pause, the piece after it moves."""
    from diarize.edges import MIN_ALONE_FRAMES, split_at_pauses

    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    first, pause, second = 2 * MIN_ALONE_FRAMES, 5, MIN_ALONE_FRAMES
    tail = 40  # silence nobody holds, as recordings have: it sets the noise floor
    voice = np.array([0] * first + [-1] * pause + [1] * second + [-1] * tail)  # -1: silence
    levels = np.where(voice < 0, -80.0, -20.0)
    active = np.zeros((len(voice), 2), dtype=np.int8)
    active[: len(voice) - tail, 0] = 1

    def embed(start, end):
        spoken = voice[start:end][voice[start:end] >= 0]
        return centroids[np.bincount(spoken, minlength=2).argmax()]

    whole = resegment(active, active, centroids, lambda a, b: (a, b), embed, min_frames=10)
    np.testing.assert_array_equal(whole, active)
    cut = resegment(active, split_at_pauses(active, levels, min_pause=pause), centroids, lambda a, b: (a, b),
                    embed, min_frames=10)
    np.testing.assert_array_equal(cut[:, 1], (voice == 1).astype(np.int8))
    np.testing.assert_array_equal(cut[:, 0], active[:, 0] * (voice != 1))  # the pause stays with speaker 0
