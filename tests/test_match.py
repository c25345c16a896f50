"""Open-set one-to-one naming of clusters, the threshold calibration, and naming real CAM++ voices."""

from __future__ import annotations

import numpy as np
import pytest

from cluster.registry.calibration import (calibrate, centroid, equal_error_rate, false_accept_threshold,
                                 fitted_false_accept_threshold, gaussian_eer_threshold, split_enroll_test,
                                 trial_scores)
from cluster.registry.match import (NAMING_THRESHOLDS, MatchError, assign, assign_scores, default_naming_threshold, match_registry,
                           name_speakers)
from cluster.registry import Registry

ENC = "test-encoder"


def directions(similarities: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit cluster and voice vectors whose cosine matrix is exactly `similarities` (num_clusters, num_voices).

    Voices are orthonormal basis vectors; each cluster mixes them by its row plus an orthogonal remainder.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    num_clusters, num_voices = similarities.shape
    dim = num_voices + num_clusters
    voices = np.eye(dim)[:num_voices]
    clusters = np.zeros((num_clusters, dim))
    clusters[:, :num_voices] = similarities
    for c in range(num_clusters):
        rest = 1.0 - float(similarities[c] @ similarities[c])
        assert rest >= 0
        clusters[c, num_voices + c] = np.sqrt(rest)
    return clusters * np.random.default_rng(seed).uniform(0.5, 3.0, (num_clusters, 1)), voices  # raw norms vary


def test_clusters_get_names_above_threshold_and_distinct_unknown_labels():
    sims = np.array([
        [0.90, 0.10, 0.00],  # Ada
        [0.20, 0.30, 0.20],  # nobody
        [0.05, 0.10, 0.80],  # Cy
        [0.40, 0.45, 0.30],  # nobody, though close-ish to everyone
        [0.10, 0.00, 0.10],  # nobody
    ])
    clusters, voices = directions(sims)
    result = assign(clusters, voices, ["Ada", "Bob", "Cy"], threshold=0.5)
    assert result.labels == ["Ada", "unknown_1", "Cy", "unknown_2", "unknown_3"]
    np.testing.assert_allclose(result.scores, [0.90, 0.30, 0.80, 0.45, 0.10], atol=1e-12)
    assert result.nearest == ["Ada", "Bob", "Cy", "Bob", "Ada"]
    assert result.known.tolist() == [True, False, True, False, False]


def test_one_name_per_recording_and_the_assignment_is_optimal_not_greedy():
    # Greedy (best pair first) would give A->X (0.90) and leave B unknown; the optimal one-to-one
    # assignment names both: A->Y (0.85) and B->X (0.88).
    sims = np.array([[0.90, 0.85], [0.88, 0.10]])
    result = assign_scores(sims, ["X", "Y"], threshold=0.5)
    assert result.labels == ["Y", "X"]
    np.testing.assert_allclose(result.scores, [0.85, 0.88], atol=1e-12)
    # two clusters both close to one voice only: the closer one gets it, the other stays unknown
    clusters, voices = directions(np.array([[0.80, 0.0], [0.92, 0.0]]))
    assert assign(clusters, voices, ["X", "Y"], threshold=0.5).labels == ["unknown_1", "X"]
    # larger random cases: the result equals the best of all one-to-one namings (brute force)
    from itertools import permutations

    rng = np.random.default_rng(7)
    for _ in range(30):
        sims = rng.uniform(0.0, 1.0, (3, 4))
        result = assign_scores(sims, list("ABCD"), threshold=0.5)
        best = max(sum(max(sims[c, p[c]] - 0.5, 0.0) for c in range(3)) for p in permutations(range(4), 3))
        got = sum(sims[c, "ABCD".index(l)] - 0.5 for c, l in enumerate(result.labels) if l in "ABCD")
        assert got == pytest.approx(best)
        assert len({l for l in result.labels if l in "ABCD"}) == sum(l in "ABCD" for l in result.labels)


def test_threshold_is_inclusive_and_overridable():
    clusters, voices = directions(np.array([[0.6]]))
    assert assign(clusters, voices, ["X"], threshold=0.6 - 1e-9).labels == ["X"]
    assert assign(clusters, voices, ["X"], threshold=0.6 + 1e-9).labels == ["unknown_1"]


def test_uncomparable_clusters_stay_unknown_and_bad_shapes_are_errors():
    voices = np.eye(4)[:2]
    clusters = np.array([[1.0, 0, 0, 0], [np.nan, 0, 0, 0], [0, 0, 0, 0], [0, 0.9, 0.1, 0]])
    result = assign(clusters, voices, ["X", "Y"], threshold=0.5)
    assert result.labels == ["X", "unknown_1", "unknown_2", "Y"]
    assert np.isnan(result.scores[1]) and np.isnan(result.scores[2])
    with pytest.raises(MatchError, match="dimension 3 but the enrolled voices have 4"):
        assign(np.ones((2, 3)), voices, ["X", "Y"], threshold=0.5)
    with pytest.raises(MatchError, match="expected \\(num_clusters, dim\\)"):
        assign(np.ones(4), voices, ["X", "Y"], threshold=0.5)
    # no voices at all: everything unknown
    empty = assign(np.eye(3), np.zeros((0, 3)), [], threshold=0.5)
    assert empty.labels == ["unknown_1", "unknown_2", "unknown_3"] and np.isnan(empty.scores).all()


def test_name_speakers_uses_only_the_voices_of_the_same_encoder(tmp_path):
    rng = np.random.default_rng(3)
    ada, bob = rng.standard_normal((2, 3, 32))
    with Registry(tmp_path / "r.sqlite") as registry:
        registry.enroll("Ada", ENC, ada)
        # Bob enrolled with another encoder of the same dimension: must not be a candidate
        registry.enroll("Bob", "other-encoder", bob)
        clusters = np.stack([ada.mean(0), bob.mean(0)])
        labels, scores = name_speakers(clusters, ENC, registry, threshold=0.5)
        assert labels == ["Ada", "unknown_1"]
        assert scores[0] > 0.5 > scores[1]
        assert name_speakers(clusters, "other-encoder", registry, threshold=0.5)[0] == ["unknown_1", "Bob"]
        with pytest.raises(MatchError, match="dimension 16 but test-encoder voices"):
            name_speakers(np.ones((2, 16)), ENC, registry, threshold=0.5)
        with pytest.raises(MatchError, match="no measured matching threshold for encoder 'test-encoder'"):
            name_speakers(clusters, ENC, registry)


def test_default_threshold_exists_for_the_default_encoder():
    assert 0.0 < default_naming_threshold("campplus-common-advanced") < 1.0
    with pytest.raises(MatchError):
        default_naming_threshold("never-measured")


# -- calibration ------------------------------------------------------------------------------------------


def test_error_rate_helpers_on_known_scores():
    target = np.array([0.6, 0.7, 0.8, 0.9])
    impostor = np.array([0.1, 0.2, 0.3, 0.65])
    eer, threshold = equal_error_rate(target, impostor)
    assert eer == pytest.approx(0.25) and 0.6 < threshold <= 0.65
    # separated scores: EER 0 and the threshold in the middle of the gap
    assert equal_error_rate(target, impostor[:3]) == (0.0, pytest.approx(0.45))
    t = false_accept_threshold(impostor, 0.25)
    assert np.mean(impostor >= t) <= 0.25 and np.mean(impostor >= np.nextafter(t, -1) - 1e-9) > 0.25


def test_fitted_thresholds_match_the_normal_distributions_they_fit():
    rng = np.random.default_rng(0)
    target = rng.normal(0.8, 0.05, 20000)
    impostor = rng.normal(0.1, 0.1, 20000)
    assert fitted_false_accept_threshold(impostor, 1e-4) == pytest.approx(0.1 + 3.719 * 0.1, abs=0.01)
    # equal-error point of N(0.8, 0.05) and N(0.1, 0.1): (0.1 * 0.05 + 0.8 * 0.1) / 0.15
    assert gaussian_eer_threshold(target, impostor) == pytest.approx(0.5667, abs=0.005)


def test_trial_scores_split_targets_from_impostors():
    rng = np.random.default_rng(1)
    means = rng.standard_normal((4, 24)) * 3
    labels = np.repeat(["a", "b", "c", "d"], 6)
    embeddings = means[np.repeat(np.arange(4), 6)] + rng.standard_normal((24, 24))
    enroll, test = split_enroll_test(labels, 3)
    assert enroll.sum() == 12 and all((labels[enroll] == s).sum() == 3 for s in "abcd")
    trials = trial_scores(embeddings[enroll], labels[enroll], embeddings[test], labels[test])
    assert len(trials.target) == 12 and len(trials.impostor) == 36 and len(trials.open_set) == 12
    own = np.array([centroid(embeddings[enroll & (labels == s)]) for s in labels[test]])
    normed = embeddings[test] / np.linalg.norm(embeddings[test], axis=1, keepdims=True)
    np.testing.assert_allclose(np.sort(trials.target), np.sort(np.sum(normed * own, axis=1)))
    assert trials.target.min() > trials.impostor.max()
    result = calibrate(trials)
    assert result.eer == 0.0 and result.false_reject == 0.0 and result.false_accept == 0.0


# -- real voices -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campplus_embeddings(shared_data):
    """CAM++ embeddings of LibriSpeech speakers: whole utterances to enroll, 3 s crops of others to test."""
    import soundfile as sf

    import torch

    from diarize.embedding import load_encoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared; one thread is also faster there
    folder = shared_data / "speakers" / "librispeech-test-other"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    encoder = load_encoder("campplus")
    enroll, test = {}, {}
    try:
        for speaker in ["1688", "2609", "3005", "533", "2033"]:
            files = sorted((folder / speaker).glob("*.flac"))
            if speaker in ("1688", "2609", "3005"):  # enrolled below: up to 8 s of each of 3 utterances
                enroll[speaker] = np.stack([encoder.embed(sf.read(f, dtype="float32")[0][: 8 * 16000])
                                            for f in files[:3]])
            crops = []
            for f in files[5:7]:
                samples = sf.read(f, dtype="float32")[0]
                crops.append(encoder.embed(samples[16000: 16000 * 4]))  # 3 s, like a short diarization cluster
            test[speaker] = np.stack(crops)
    finally:
        torch.set_num_threads(threads)
    return encoder.encoder_id, enroll, test


def test_a_recording_of_enrolled_and_unenrolled_real_speakers_is_named_with_the_default_threshold(
        campplus_embeddings, tmp_path):
    encoder_id, enroll, test = campplus_embeddings
    assert encoder_id in NAMING_THRESHOLDS
    enrolled = ["1688", "2609", "3005"]
    with Registry(tmp_path / "r.sqlite") as registry:
        for speaker in enrolled:
            registry.enroll(f"reader_{speaker}", encoder_id, enroll[speaker])
        # a recording's clusters: held-out speech of two enrolled readers and of two nobody enrolled
        order = ["533", "2609", "2033", "1688"]
        clusters = np.stack([test[s].mean(0) for s in order])
        result = match_registry(clusters, encoder_id, registry)
        assert result.labels == ["unknown_1", "reader_2609", "unknown_2", "reader_1688"]
        assert result.threshold == NAMING_THRESHOLDS[encoder_id]
        # a single 3 s crop of each enrolled reader also finds its own voice first
        for speaker in enrolled:
            for crop in test[speaker]:
                assert registry.search(crop, encoder_id, k=1)[0].name == f"reader_{speaker}"
