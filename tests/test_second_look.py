"""The second look at short turns (diarize/second_look.py)."""

from __future__ import annotations

import numpy as np
import pytest

from diarize.second_look import best_speakers, move_runs, redecide_runs, single_voice_runs


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


def test_a_run_whose_own_voice_is_another_speakers_moves_to_that_speaker():
    centroids = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert best_speakers(np.array([[0.1, 0.9, 0.0], [2.0, 0.5, 0.0]]), centroids).tolist() == [1, 0]
    # the votes gave frames 4-7 to speaker 1, but the voice there is speaker 0's; frames 10-12 are speaker 1's
    voice = np.array([0] * 10 + [1] * 3)
    active = activity("1111000011000", "0000111100111")

    def embed(spans):
        return np.stack([centroids[np.bincount(voice[start:end], minlength=2).argmax()] for start, end in spans])

    out, kept = redecide_runs(active, active, centroids, lambda first, stop: (first, stop), embed, min_frames=2)
    np.testing.assert_array_equal(kept, centroids)
    np.testing.assert_array_equal(out, activity("1111111111000", "0000000000111"))
    # runs outside the length bounds are left alone, and one speaker leaves nothing to choose
    np.testing.assert_array_equal(redecide_runs(active, active, centroids, lambda a, b: (a, b), embed, min_frames=5)[0], active)
    np.testing.assert_array_equal(
        redecide_runs(active[:, :1], active[:, :1], centroids[:1], lambda a, b: (a, b), embed, min_frames=2)[0], active[:, :1])


def test_the_command_line_can_turn_the_second_look_off():
    import argparse

    from pipelines.commands.common import add_diarization_options, config_from_args

    parser = argparse.ArgumentParser()
    add_diarization_options(parser)
    default = config_from_args(parser.parse_args([])).second_look
    assert default.enabled and default.run_seconds == (0.5, 8.0) and default.new_voices
    assert not config_from_args(parser.parse_args(["--no-second-look"])).second_look.enabled
    assert not config_from_args(parser.parse_args(["--no-new-voices"])).second_look.new_voices
    assert not config_from_args(parser.parse_args(["--keep-edges"])).edges.enabled


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

    def embed(spans):
        spoken = [voice[start:end][voice[start:end] >= 0] for start, end in spans]
        return np.stack([centroids[np.bincount(piece, minlength=2).argmax()] for piece in spoken])

    whole, _ = redecide_runs(active, active, centroids, lambda a, b: (a, b), embed, min_frames=10)
    np.testing.assert_array_equal(whole, active)
    cut, _ = redecide_runs(active, split_at_pauses(active, levels, min_pause=pause), centroids, lambda a, b: (a, b),
                       embed, min_frames=10)
    np.testing.assert_array_equal(cut[:, 1], (voice == 1).astype(np.int8))
    np.testing.assert_array_equal(cut[:, 0], active[:, 0] * (voice != 1))  # the pause stays with speaker 0


def test_runs_of_a_voice_no_speaker_has_are_unmatched_only_when_there_is_enough_of_it():
    from diarize.second_look import unmatched_runs

    centroids = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    stranger = np.array([0.1, 0.0, 1.0])
    runs = np.array([[1.0, 0.2, 0.0], stranger, stranger + [0.0, 0.2, 0.0], [0.0, 1.0, 0.1]])
    lengths = np.array([30, 15, 15, 30])
    assert unmatched_runs(runs, centroids, lengths, 0.4, min_each=10, min_total=25).tolist() == [False, True, True, False]
    # too little of it in all, or each piece too short to trust its embedding: nothing
    assert not unmatched_runs(runs, centroids, lengths, 0.4, min_each=10, min_total=40).any()
    assert not unmatched_runs(runs, centroids, lengths, 0.4, min_each=20, min_total=25).any()
    # two different strangers are not one voice: each is kept only if it is enough alone
    other = np.array([0.0, -1.0, 0.05])
    mixed = np.array([stranger, other])
    assert not unmatched_runs(mixed, centroids, np.array([15, 15]), 0.4, min_each=10, min_total=25).any()
    assert unmatched_runs(mixed, centroids, np.array([30, 15]), 0.4, min_each=10, min_total=25).tolist() == [True, False]


def test_a_voice_the_clustering_missed_becomes_a_new_speaker_in_the_second_look():
    centroids = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    voices = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # speaker 0's votes took two turns of a third voice (frames 10-19 and 40-49)
    voice = np.array([0] * 10 + [2] * 10 + [1] * 10 + [0] * 10 + [2] * 10 + [1] * 10)
    active = np.stack([np.isin(voice, (0, 2)), voice == 1], axis=1).astype(np.int8)
    exclusive = np.zeros_like(active)
    for first in range(0, 60, 10):  # runs as the pause cuts would leave them
        exclusive[first : first + 9, active[first].argmax()] = 1

    def embed_all(spans):
        return np.array([voices[np.bincount(voice[a:b], minlength=3).argmax()] for a, b in spans])

    def second_look(new_voice):
        return redecide_runs(active, exclusive, centroids, lambda a, b: (a, b), embed_all, min_frames=5,
                             new_voice=new_voice)

    found, grown = second_look((0.4, 5, 15))
    assert found.shape == (60, 3) and grown.shape == (3, 3)
    assert grown[2] @ voices[2] > 0.99 * np.linalg.norm(grown[2])
    np.testing.assert_array_equal(found[:, 2].nonzero()[0], np.r_[10:19, 40:49])
    assert not found[10:19, 0].any() and found[:10, 0].all()
    # not enough of it, or the search off: the speakers stay as they were
    for new_voice in ((0.4, 5, 20), None):
        same, kept = second_look(new_voice)
        np.testing.assert_array_equal(same, active)
        np.testing.assert_array_equal(kept, centroids)
    # one speaker found: its stranger's turns still become a second
    alone, one = redecide_runs(active[:, :1], exclusive[:, :1], centroids[:1], lambda a, b: (a, b), embed_all, min_frames=5,
                               new_voice=(0.4, 5, 15))
    assert alone.shape == (60, 2) and len(one) == 2 and alone[10:19, 1].all()


@pytest.mark.slow
def test_real_turns_of_a_reader_the_clustering_missed_are_the_unmatched_ones(shared_data):
    """Real CAM++ embeddings of 2 s turns of the 10 LibriSpeech readers. Each reader in turn is the one
    the clustering missed: with the other nine as the speakers found (centroids from other utterances), its
    turns are exactly the unmatched ones at the pipeline's setting (`new_voice_cosine`), and nobody else's are."""
    import soundfile as sf

    from diarize.embedding import load_encoder
    from diarize.config import SecondLookConfig
    from diarize.second_look import unmatched_runs

    encoder = load_encoder("campplus")
    folder = shared_data / "speakers" / "librispeech-test-other"
    rate, piece = encoder.sample_rate, 2 * encoder.sample_rate
    readers = sorted(path.name for path in folder.iterdir() if path.is_dir())
    centroids, runs, owners = [], [], []
    for index, reader in enumerate(readers):
        files = sorted((folder / reader).rglob("*.flac"))
        centroids.append(np.mean([encoder.embed(sf.read(path, dtype="float32")[0]) for path in files[:2]], axis=0))
        samples = sf.read(max(files[2:], key=lambda path: sf.info(str(path)).frames), dtype="float32")[0]
        for start in range(rate // 2, rate // 2 + 3 * piece, piece):  # inside the utterance, past its lead-in
            runs.append(encoder.embed(samples[start : start + piece]))
            owners.append(index)
    runs, owners, centroids = np.array(runs), np.array(owners), np.array(centroids)
    frames = np.full(len(runs), 200)
    config = SecondLookConfig()
    for missed in range(len(readers)):
        found = np.delete(centroids, missed, axis=0)
        unmatched = unmatched_runs(runs, found, frames, config.new_voice_cosine, min_each=100, min_total=200)
        np.testing.assert_array_equal(unmatched, owners == missed, err_msg=f"reader {readers[missed]} missed")


@pytest.mark.slow
def test_a_reader_heard_for_8_s_of_a_minute_is_found_as_a_third_speaker(shared_data):
    """A real 60 s conversation of three readers (one of the anonymization benchmark's, `--seed 200`), where
    one reader speaks 8 s: the clustering sees two speakers, the second look finds the third. Asking for no
    new voices, an exact count or at most two speakers keeps two."""
    from dataclasses import replace

    from diarize.audio import Waveform
    from diarize.config import SecondLookConfig
    from diarize.pipeline import Diarizer
    from eval.simulate import (SimulationConfig, SourceCache, child_seeds, plan_conversation, render,
                               speakers_from_folder)

    readers = speakers_from_folder(shared_data / "speakers" / "librispeech-test-other")
    pool = {reader: sorted(paths)[3:] for reader, paths in readers.items()}
    config = SimulationConfig(target_duration=60.0)
    cache = SourceCache(config)
    plan_seed, noise_seed = child_seeds(child_seeds(200, 10)[8], 2)
    turns = plan_conversation(pool, 3, seed=plan_seed, config=config, cache=cache)
    samples, reference = render(turns, config=config, cache=cache, uri="brief", seed=noise_seed)
    waveform = Waveform(np.asarray(samples, dtype=np.float32), 16000, "brief")

    diarizer = Diarizer()
    evidence = diarizer.evidence(waveform)

    def speakers(second_look=None, **counts):
        variant = Diarizer(replace(diarizer.config, second_look=second_look or diarizer.config.second_look,
                                   clustering=replace(diarizer.config.clustering, **counts)))
        variant.segmenter, variant._encoder = diarizer.segmenter, diarizer.encoder
        local_labels, centroids = variant.cluster(evidence)
        result = variant.reconstruct(evidence, local_labels, centroids, waveform.duration, "brief", waveform.samples)
        assert len(result.labels) == len(result.speaker_centroids)
        return result

    found = speakers()
    assert len(reference.labels()) == 3 and len(found.labels) == 3
    # one speaker found is the brief reader: it holds most of that reader's speech, and is mostly that reader
    brief = reference.label_timeline(min(reference.labels(), key=reference.label_duration)).support()
    held = {label: brief.crop(found.annotation.label_timeline(label).support()).duration() for label in found.labels}
    label = max(held, key=held.get)
    assert held[label] >= 0.5 * brief.duration()
    assert held[label] >= 0.5 * found.annotation.label_timeline(label).support().duration()
    assert len(speakers(SecondLookConfig(new_voices=False)).labels) == 2
    assert len(speakers(max_speakers=2).labels) == 2
    assert len(speakers(num_speakers=2).labels) == 2


def test_a_speakers_centroid_comes_from_its_runs_when_it_has_enough():
    """A blended centroid (two voices' windows averaged) is replaced by the mean of the speaker's own runs,
    which sits on its voice; a speaker heard in a single run keeps the clustering's centroid."""
    from diarize.second_look import RunVoices, run_centroids

    rng = np.random.default_rng(0)
    voices = rng.normal(size=(3, 64))
    blended = (voices[0] + voices[1]) / 2
    centroids = np.stack([blended, voices[2]]).astype(np.float32)
    runs = RunVoices(np.vstack([voices[0] + 0.1 * rng.normal(size=(4, 64)), voices[2][None] + 0.1]),
                     np.array([0, 0, 0, 0, 1]))

    result = run_centroids(centroids, runs)

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(result[0], voices[0]) > 0.99 > cosine(centroids[0], voices[0])
    np.testing.assert_array_equal(result[1], centroids[1])  # one run: kept
    assert result.dtype == np.float32 and result.shape == centroids.shape
