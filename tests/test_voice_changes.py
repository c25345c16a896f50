"""Runs cut where the voice changes (diarize/voice_changes.py), and the span pooling it relies on."""

from __future__ import annotations

import numpy as np
import pytest

from diarize.second_look import redecide_runs, single_voice_runs
from diarize.voice_changes import best_cut, split_at_voice_changes

CENTROIDS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def voice_embedder(voice: np.ndarray, centroids: np.ndarray = CENTROIDS):
    """embed_spans for a frame-level `voice` (speaker index per frame, -1 silent): each span's embedding
    is the mean of its voiced frames' centroids."""
    def embed_spans(spans):
        out = []
        for start, end in spans:
            spoken = voice[start:end][voice[start:end] >= 0]
            out.append(centroids[spoken].mean(axis=0) if len(spoken) else np.zeros(centroids.shape[1]))
        return np.array(out)
    return embed_spans


def test_the_best_cut_is_where_the_sides_lean_to_different_speakers():
    left = np.array([[1.0, 1.0, 0.0], [1.0, 0.2, 0.0], [1.0, 0.0, 0.0]])
    right = np.array([[0.0, 1.0, 0.0], [0.1, 1.0, 0.0], [1.0, 0.1, 0.0]])
    best, lead = best_cut(left, right, CENTROIDS)
    assert best == 1  # cut 0: left is a tie; cut 2: both sides are speaker 0's
    unit_left = left[1] / np.linalg.norm(left[1])
    unit_right = right[1] / np.linalg.norm(right[1])
    assert lead == pytest.approx(min(unit_left[0] - unit_left[1], unit_right[1] - unit_right[0]))
    assert best_cut(right[2:], right[2:], CENTROIDS)[1] == -1.0  # one speaker on both sides: no cut


def test_a_run_holding_two_voices_is_cut_at_the_quiet_frame_between_them():
    voice = np.array([0] * 60 + [-1] * 2 + [1] * 50 + [-1] * 10)
    levels = np.where(voice < 0, -60.0, -20.0)  # not near-silent enough for a pause cut, but the quietest
    exclusive = np.zeros((len(voice), 3), dtype=np.int8)
    exclusive[:112, 0] = 1
    split = split_at_voice_changes(exclusive, CENTROIDS, voice_embedder(voice), min_side=20, margin=0.1,
                                   levels=levels, hop=3)
    runs = single_voice_runs(split, min_frames=1)
    assert len(runs) == 2 and runs[0][1] == 0 and runs[1][2] == 112
    assert runs[0][2] in (60, 61)  # the zeroed frame is one of the two quiet ones
    assert split.dtype == exclusive.dtype and exclusive[:112, 0].all()  # the input is left as it was
    # the second look then gives the second voice back to its speaker
    out, _ = redecide_runs(exclusive, split, CENTROIDS, lambda a, b: (a, b), voice_embedder(voice), min_frames=10)
    assert out[70:112, 1].all() and not out[70:112, 0].any() and out[:60, 0].all()


def test_every_change_of_a_run_is_found_and_one_voice_is_never_cut():
    # voice 1 comes back after voice 2: pooled over whole sides, voice 1 would lead on both sides of every
    # cut after the first; sides of at most `window` frames see one voice each
    voice = np.array([0] * 40 + [1] * 40 + [2] * 40 + [1] * 40)
    exclusive = np.zeros((len(voice), 3), dtype=np.int8)
    exclusive[:, 2] = 1
    split = split_at_voice_changes(exclusive, CENTROIDS, voice_embedder(voice), min_side=15, margin=0.1, hop=1,
                                   window=20)
    assert [run[1:] for run in single_voice_runs(split, min_frames=1)] == [(0, 40), (41, 80), (81, 120), (121, 160)]
    same = np.zeros_like(voice)
    np.testing.assert_array_equal(split_at_voice_changes(exclusive, CENTROIDS, voice_embedder(same), min_side=15,
                                                         margin=0.1, hop=1), exclusive)
    # a run too short for two sides of min_side frames is not looked at; one centroid leaves nothing to tell
    # apart
    short_voice, short = np.array([0] * 15 + [1] * 14), exclusive[:29]
    np.testing.assert_array_equal(split_at_voice_changes(short, CENTROIDS, voice_embedder(short_voice),
                                                         min_side=15, margin=0.1, hop=1), short)
    assert len(single_voice_runs(split_at_voice_changes(short, CENTROIDS, voice_embedder(short_voice), min_side=10,
                                                        margin=0.1, hop=1), min_frames=1)) == 2
    np.testing.assert_array_equal(split_at_voice_changes(exclusive, CENTROIDS[:1], voice_embedder(voice),
                                                         min_side=15, margin=0.1, hop=1), exclusive)


def test_a_weak_lead_is_not_a_change():
    # the second half leans to speaker 1 only slightly (mixed voice): under the margin, nothing is cut
    mixed = np.array([[1.0, 0.0, 0.0]] * 40 + [[0.9, 1.0, 0.0]] * 40)

    def embed_spans(spans):
        return np.array([mixed[start:end].mean(axis=0) for start, end in spans])

    exclusive = np.ones((80, 1), dtype=np.int8) @ np.array([[1, 0, 0]], dtype=np.int8)
    assert len(single_voice_runs(split_at_voice_changes(exclusive, CENTROIDS, embed_spans, min_side=15,
                                                        margin=0.01, hop=1), min_frames=1)) == 2
    np.testing.assert_array_equal(split_at_voice_changes(exclusive, CENTROIDS, embed_spans, min_side=15,
                                                         margin=0.2, hop=1), exclusive)


@pytest.fixture(scope="module")
def two_readers(shared_data):
    """Two LibriSpeech readers (a woman and a man) joined with no pause, CAM++ frame features of the join,
    and each reader's centroid from other utterances."""
    import soundfile as sf

    from diarize.embedding import load_encoder

    encoder = load_encoder("campplus")
    folder = shared_data / "speakers" / "librispeech-test-other"
    clips, centroids = [], []
    for reader in ("3080", "2033"):
        files = sorted((folder / reader).rglob("*.flac"))
        samples, rate = sf.read(files[0], dtype="float32")
        assert rate == encoder.sample_rate
        clips.append(samples[: 4 * rate])
        centroids.append(np.mean([encoder.embed(sf.read(path, dtype="float32")[0]) for path in files[1:3]], axis=0))
    joined = np.concatenate(clips)
    return encoder, encoder.frame_features(joined), np.array(centroids), len(clips[0]) / encoder.sample_rate, joined


def test_the_change_between_two_real_voices_is_found_near_the_join(two_readers):
    from diarize.speaker_embeddings import pool_frame_spans

    encoder, frames, centroids, join, _ = two_readers
    exclusive = np.zeros((len(frames), 2), dtype=np.int8)
    exclusive[:, 0] = 1  # the votes gave it all to the first reader
    split = split_at_voice_changes(exclusive, centroids, lambda spans: pool_frame_spans(encoder, frames, spans),
                                   min_side=int(encoder.frame_rate), margin=0.1, hop=2)
    runs = single_voice_runs(split, min_frames=1)
    assert len(runs) == 2
    assert abs(runs[0][2] / encoder.frame_rate - join) < 0.3


def test_pooling_spans_together_matches_pooling_each_alone(two_readers):
    from diarize.speaker_embeddings import pool_frame_spans, pool_spans

    encoder, frames, _, _, samples = two_readers
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(frames) - 120, size=40)
    spans = [(int(start), int(start + length)) for start, length in zip(starts, rng.integers(5, 120, size=40))]
    spans.append((0, len(frames)))  # wider than one shared stretch
    alone = np.stack([encoder.pool(frames[start:end], np.ones((1, end - start), dtype=np.float32))[0]
                      for start, end in spans])
    together = pool_frame_spans(encoder, frames, spans, reach=200, batch=7)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)
    assert pool_frame_spans(encoder, frames, []).shape == (0, encoder.dimension)
    # past KEEP_FRAMES_SECONDS the frames are computed again block by block: overlapping spans pool the same
    again = pool_spans(encoder, samples, [(0.0, len(samples) / encoder.sample_rate)], spans)
    np.testing.assert_allclose(again, pool_frame_spans(encoder, frames.astype(np.float16), spans), rtol=1e-3, atol=1e-3)


def test_the_stretches_to_compute_again_cover_every_span_and_join_close_ones():
    from diarize.speaker_embeddings import covered_seconds

    assert covered_seconds([(500, 600), (0, 100), (50, 120), (150, 200)], frame_rate=50.0) == [(0.0, 4.0), (10.0, 12.0)]
    assert covered_seconds([], frame_rate=50.0) == []
