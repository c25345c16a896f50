"""Near-silent turn edges (diarize/edges.py)."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from diarize.edges import extend_voiced_edges, frame_levels, split_at_pauses, trim_silent_edges


def activity(*columns: str) -> np.ndarray:
    """One string of 0/1 per speaker -> (num_frames, num_speakers) int8."""
    return np.array([[int(c) for c in column] for column in columns], dtype=np.int8).T


def test_frame_levels_follow_the_frame_grid():
    rate = 1000
    samples = np.zeros(1000, dtype=np.float32)
    samples[200:400] = 0.1  # frames 2 and 3 of a 0.1 s grid starting at 0
    levels = frame_levels(samples, rate, origin=0.0, step=0.1, num_frames=12)
    np.testing.assert_allclose(levels[2:4], 20 * np.log10(0.1), atol=1e-4)
    assert levels[0] < -150 and levels[5] < -150
    assert (levels[10:] < -150).all()  # past the end of the recording
    shifted = frame_levels(samples, rate, origin=-0.05, step=0.1, num_frames=12)  # half a frame earlier
    np.testing.assert_allclose(shifted[2], 20 * np.log10(0.1) + 10 * np.log10(0.5), atol=1e-4)


def test_a_run_is_cut_at_pauses_of_at_least_the_given_length_and_only_there():
    from diarize.edges import MIN_ALONE_FRAMES
    from diarize.second_look import single_voice_runs

    loud, quiet = -20.0, -80.0
    voice = [loud] * MIN_ALONE_FRAMES
    # one run of speaker 0: voice, a 3-frame pause, voice, a 1-frame dip, voice; then silence nobody holds
    levels = np.array(voice + [quiet] * 3 + voice + [quiet] + voice + [quiet] * 40)
    talking = len(levels) - 40
    exclusive = np.zeros((len(levels), 2), dtype=np.int8)
    exclusive[:talking, 0] = 1
    split = split_at_pauses(exclusive, levels, min_pause=3)
    assert single_voice_runs(split, min_frames=1) == [(0, 0, 30), (0, 33, talking)]
    assert split.dtype == exclusive.dtype and exclusive[:talking, 0].all()  # the input is left as it was
    # a pause shorter than min_pause does not cut; neither does a speaker with too few frames of its own
    assert single_voice_runs(split_at_pauses(exclusive, levels, min_pause=4), min_frames=1) == [(0, 0, talking)]
    few = np.zeros_like(exclusive)
    few[20:20 + MIN_ALONE_FRAMES - 1, 1] = 1  # across the 3-frame pause
    np.testing.assert_array_equal(split_at_pauses(few, levels, min_pause=3), few)
    few[20:20 + MIN_ALONE_FRAMES, 1] = 1
    assert single_voice_runs(split_at_pauses(few, levels, min_pause=3), min_frames=1) == [(1, 20, 30), (1, 33, 50)]


def test_only_near_silent_frames_at_the_ends_of_a_run_go():
    loud, quiet = -20.0, -80.0
    levels = np.array([quiet] * 3 + [loud] * 2 + [quiet] * 2 + [loud] * 3 + [quiet] * 3 + [quiet] * 7)
    active = activity("01111111111100000000")
    trimmed = trim_silent_edges(active, levels, max_frames=5)
    # the 2 quiet frames before the voice and the 2 after it go; the quiet pause inside the run stays
    np.testing.assert_array_equal(trimmed, activity("00011111110000000000"))
    # at most max_frames from each end
    np.testing.assert_array_equal(trim_silent_edges(active, levels, max_frames=1),
                                  activity("00111111111000000000"))
    np.testing.assert_array_equal(trim_silent_edges(active, levels, max_frames=0), active)


def test_each_speaker_is_judged_against_its_own_loudness():
    # speaker 0 is loud (-10 dB), speaker 1 is a distant voice (-50 dB) over a -90 dB floor; the frame at
    # -60 dB is quiet for speaker 0 but clearly voiced for speaker 1
    levels = np.array([-90.0] * 10 + [-10.0] * 40 + [-90.0] * 10 + [-60.0] + [-50.0] * 39 + [-90.0] * 10)
    active = np.zeros((110, 2), dtype=np.int8)
    active[10:51, 0] = 1  # speaker 0's run ends on the -90 dB frame 50
    active[59:100, 1] = 1  # speaker 1's run starts one frame early (59 is at the floor), 60 is -60 dB
    trimmed = trim_silent_edges(active, levels, max_frames=5, share=0.3)
    assert np.flatnonzero(trimmed[:, 0]).tolist() == list(range(10, 50))
    assert np.flatnonzero(trimmed[:, 1]).tolist() == list(range(60, 100))


def test_a_run_that_is_all_near_silence_is_removed_and_a_short_voiced_one_is_kept():
    levels = np.array([-20.0] * 40 + [-80.0] * 10 + [-20.0] * 2 + [-80.0] * 8)
    active = activity("1" * 40 + "0" + "1111" + "00000" + "11" + "0" * 8)
    trimmed = trim_silent_edges(active, levels, max_frames=5)
    assert trimmed[41:45, 0].sum() == 0  # 4 frames of floor: gone
    assert trimmed[50:52, 0].sum() == 2  # a 2-frame voiced run is untouched (nothing was trimmed from it)


@pytest.mark.parametrize("flags, trimmed", [([], True), (["--keep-edges"], False)])
def test_the_command_line_can_keep_the_edges(flags, trimmed):
    from pipelines.commands.common import add_diarization_options, config_from_args

    parser = argparse.ArgumentParser()
    add_diarization_options(parser)
    edges = config_from_args(parser.parse_args(flags)).edges
    assert edges.enabled == trimmed and edges.trim_seconds == 0.1 and edges.extend_seconds == 0.5


def scores_by_edges(conversation, edge_configs: dict) -> dict:
    """One real conversation diarized once, then rebuilt under each of `edge_configs` (name -> EdgesConfig):
    -> name -> its DER totals (missed, false_alarm, confusion, total seconds)."""
    from diarize.audio import load_audio
    from diarize.pipeline import Diarizer
    from eval.corpora import load_rttm
    from eval.metrics import DiarizationScores

    waveform = load_audio(conversation.audio, name=conversation.uri)
    reference = load_rttm(conversation.rttm, conversation.uri)
    diarizer = Diarizer()
    samples = diarizer.encoder_samples(waveform)
    evidence = diarizer.evidence(waveform, encoder_samples=samples)
    local_labels, centroids = diarizer.cluster(evidence)
    scores = {}
    for name, edges in edge_configs.items():
        variant = Diarizer(dataclasses.replace(diarizer.config, edges=edges))
        variant._encoder = diarizer.encoder
        result = variant.reconstruct(evidence, local_labels, centroids, waveform.duration, conversation.uri,
                                     samples)
        board = DiarizationScores()
        board.add(conversation.uri, reference, result.annotation)
        scores[name] = board.total()
    return scores


@pytest.mark.slow
def test_trimming_removes_false_alarm_on_a_simulated_conversation(shared_data):
    """simconv-dev's references mark speech from the voice's energy: the trimmed edges were false alarm."""
    from diarize.config import EdgesConfig
    from eval.corpora import read_manifest

    conversation = read_manifest(shared_data / "simconv-dev" / "manifest.tsv")[0]
    scores = scores_by_edges(conversation, {"kept": EdgesConfig(enabled=False),
                                            "trimmed": EdgesConfig(trim_seconds=0.1, extend_seconds=0.0)})
    kept, trimmed = scores["kept"], scores["trimmed"]
    assert trimmed["false_alarm"] < kept["false_alarm"]
    assert trimmed["missed"] - kept["missed"] < kept["false_alarm"] - trimmed["false_alarm"]
    assert trimmed["confusion"] <= kept["confusion"] + 0.01 * kept["total"]


def test_digital_silence_is_not_the_noise_floor():
    """A recording padded with zeros between its sounds (a simulated conversation, a muted channel): the
    floor is the room noise under the speech, so the noise frames at a turn's edges still count as quiet."""
    from diarize.edges import noise_floor

    noise, loud, zeros = -60.0, -20.0, -200.0
    levels = np.array([zeros] * 30 + [noise] * 3 + [loud] * 20 + [noise] * 3 + [zeros] * 30)
    assert noise_floor(levels) == noise
    assert noise_floor(np.full(10, zeros)) == zeros  # nothing but silence: no better estimate
    active = np.zeros((len(levels), 1), dtype=np.int8)
    active[30:56] = 1
    trimmed = trim_silent_edges(active, levels, max_frames=5)
    np.testing.assert_array_equal(np.flatnonzero(trimmed[:, 0]), np.arange(33, 53))


def test_voiced_frames_next_to_a_turn_join_it_up_to_max_frames_and_silence_stops_it():
    from diarize.edges import MIN_ALONE_FRAMES

    floor, soft, loud = -80.0, -60.0, -20.0  # soft: a third of the way from the floor to the loudest
    # silence, 4 soft frames of an onset the segmentation missed, the run, 2 soft frames, silence
    levels = np.array([floor] * 10 + [soft] * 4 + [loud] * MIN_ALONE_FRAMES + [soft] * 2 + [floor] * 10)
    active = np.zeros((len(levels), 1), dtype=np.int8)
    active[14:14 + MIN_ALONE_FRAMES] = 1
    grown = extend_voiced_edges(active, levels, max_frames=3)
    # three of the four onset frames (max_frames), both trailing frames, and never a frame at the floor
    np.testing.assert_array_equal(np.flatnonzero(grown[:, 0]), np.arange(11, 14 + MIN_ALONE_FRAMES + 2))
    assert grown.dtype == active.dtype and active[:14].sum() == 0  # the input is left as it was
    np.testing.assert_array_equal(extend_voiced_edges(active, levels, max_frames=10)[:, 0].nonzero()[0][0], 10)
    np.testing.assert_array_equal(extend_voiced_edges(active, levels, max_frames=0), active)
    # judged against the speaker's loudest: for a share of 0.6 the soft frames are near-silent and stay out
    np.testing.assert_array_equal(extend_voiced_edges(active, levels, max_frames=10, share=0.6), active)


def test_a_voiced_gap_between_two_speakers_is_shared_without_making_overlap():
    from diarize.edges import MIN_ALONE_FRAMES

    loud, floor = -20.0, -80.0
    run = MIN_ALONE_FRAMES
    # speaker 0 talks, 5 voiced frames nobody holds, speaker 1 talks; another speaker's frames are never taken
    levels = np.array([loud] * (run + 5 + run) + [floor] * 20)  # enough floor for its 10th percentile
    active = np.zeros((len(levels), 2), dtype=np.int8)
    active[:run, 0] = 1
    active[run + 5:2 * run + 5, 1] = 1
    grown = extend_voiced_edges(active, levels, max_frames=10)
    assert grown.sum(axis=1).max() == 1  # no frame given to both
    # each takes the two frames on its side; the middle one, reached by both at once, stays nobody's
    assert np.flatnonzero(grown[:, 0])[-1] == run + 1 and np.flatnonzero(grown[:, 1])[0] == run + 3
    assert grown[run + 2].sum() == 0
    assert (grown[:, 0] >= active[:, 0]).all() and (grown[:, 1] >= active[:, 1]).all()


@pytest.mark.slow
def test_voiced_edges_recover_missed_speech_on_an_acted_conversation(shared_data):
    """simconv-emo-dev's acted lines start and end softly; the segmentation leaves those frames to nobody.
    Growing turns over them must lower missed speech by more than it adds false alarm and confusion."""
    from diarize.config import EdgesConfig
    from eval.corpora import read_manifest

    conversation = read_manifest(shared_data / "simconv-emo-dev" / "manifest.tsv")[1]
    scores = scores_by_edges(conversation, {seconds: EdgesConfig(extend_seconds=seconds) for seconds in (0.0, 0.5)})
    kept, grown = scores[0.0], scores[0.5]
    assert grown["missed"] < kept["missed"]
    added = (grown["false_alarm"] - kept["false_alarm"]) + (grown["confusion"] - kept["confusion"])
    assert kept["missed"] - grown["missed"] > added
