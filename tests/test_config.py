"""diarize/config.py: a group per stage, each refusing values that cannot mean anything, all picklable."""

from __future__ import annotations

import pickle

import pytest

from diarize.config import (ClusteringConfig, DiarizationConfig, EdgesConfig, EmbeddingConfig, SecondLookConfig,
                            SegmentationConfig)


@pytest.mark.parametrize("make, message", [
    (lambda: SegmentationConfig(step=0.001), r"--step 0.001: must be between 0.25 and 10"),
    (lambda: SegmentationConfig(step=float("nan")), r"--step nan"),
    (lambda: EmbeddingConfig(min_seconds=-1.0), r"embedding.min_seconds must be a finite number >= 0"),
    (lambda: ClusteringConfig(method="kmeans"), r"--clustering kmeans: use one of auto, ahc, spectral, hdbscan"),
    (lambda: ClusteringConfig(threshold=1.0), r"--cluster-threshold 1: the clustering cut is a cosine similarity"),
    (lambda: ClusteringConfig(threshold=0.75 * 2), r"--cluster-threshold 1.5: .*between -1 and 1"),
    (lambda: ClusteringConfig(min_speakers=3, max_speakers=2), r"max_speakers \(2\) is below min_speakers \(3\)"),
    (lambda: ClusteringConfig(num_speakers=0), r"num_speakers must be at least 1"),
    (lambda: SecondLookConfig(run_seconds=(8.0, 0.5)), r"the shortest is above the longest"),
    (lambda: SecondLookConfig(new_voice_cosine=1.5), r"new_voice_cosine 1.5: a cosine"),
    (lambda: SecondLookConfig(max_new_voices=-1), r"second_look.max_new_voices must be a finite number >= 0"),
    (lambda: ClusteringConfig(split_voice_cosine=float("nan")), r"clustering.split_voice_cosine nan: a cosine"),
    (lambda: ClusteringConfig(spectral_from=-5), r"clustering.spectral_from must be a finite number >= 0"),
    (lambda: EdgesConfig(trim_seconds=float("inf")), r"edges.trim_seconds must be a finite number >= 0"),
    (lambda: EdgesConfig(extend_seconds=-0.5), r"edges.extend_seconds must be a finite number >= 0"),
])
def test_each_group_refuses_what_cannot_mean_anything_in_one_line(make, message):
    with pytest.raises(ValueError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value)


def test_a_configuration_travels_to_a_worker_unchanged_and_defaults_name_every_stage_on():
    config = DiarizationConfig(clustering=ClusteringConfig(num_speakers=3), second_look=SecondLookConfig(new_voices=False),
                               edges=EdgesConfig(enabled=False))
    assert pickle.loads(pickle.dumps(config)) == config
    default = DiarizationConfig()
    assert default.second_look.enabled and default.second_look.new_voices and default.edges.enabled
    assert default.clustering.bounds.num_speakers is None and config.clustering.bounds.num_speakers == 3
    assert DiarizationConfig() == default  # groups are values, not shared mutable defaults


def test_batch_settings_name_every_option_of_every_stage_by_a_dotted_name():
    from diarize.config import flat_settings

    settings = flat_settings(DiarizationConfig(clustering=ClusteringConfig(num_speakers=3)))
    assert settings["clustering.num_speakers"] == 3 and settings["device"] == "cpu"
    assert settings["second_look.enabled"] is True and "edges.trim_seconds" in settings
    assert not any(isinstance(value, dict) for value in settings.values())


def test_the_clustering_cut_is_a_cosine_and_a_higher_one_keeps_two_voices_apart():
    """Two tight groups of unit vectors whose centres sit at cosine 0.6: a cut below that joins them, above it
    keeps them apart, through the same conversion the diarizer uses."""
    import numpy as np

    from cluster.clustering import SpeakerBounds, ahc
    from cluster.vectors import unit_distance, unit_vectors
    from diarize.config import ClusteringConfig
    from diarize.pipeline import Diarizer

    rng = np.random.default_rng(0)
    first, second = np.zeros(16), np.zeros(16)
    first[0], second[0], second[1] = 1.0, 0.6, 0.8
    embeddings = unit_vectors(np.concatenate([first + 0.01 * rng.standard_normal((5, 16)),
                                              second + 0.01 * rng.standard_normal((5, 16))]))
    counts = {}
    for cut in (0.5, 0.7):
        diarizer = Diarizer(DiarizationConfig(clustering=ClusteringConfig(threshold=cut)))
        assert diarizer.cut_distance() == pytest.approx(np.sqrt(2 - 2 * cut))
        counts[cut] = len(set(ahc(embeddings, diarizer.cut_distance(), SpeakerBounds())))
    assert counts == {0.5: 1, 0.7: 2}
    assert unit_distance(1.0) == 0.0 and unit_distance(-1.0) == pytest.approx(2.0)


def test_auto_clustering_switches_to_spectral_at_the_configured_number_of_embeddings():
    """Three well-separated voices, 60 embeddings: with `spectral_from` at 60 or below "auto" is spectral (its
    labels equal an explicit spectral run), above it AHC, whose loose cut here joins everything."""
    import numpy as np

    from cluster.clustering import cluster_embeddings
    from cluster.vectors import unit_vectors

    rng = np.random.default_rng(1)
    centres = np.eye(3, 24)
    embeddings = unit_vectors(np.repeat(centres, 20, axis=0) + 0.05 * rng.standard_normal((60, 24)))
    spectral = cluster_embeddings(embeddings, "spectral", 1.9)
    assert len(set(spectral)) == 3
    np.testing.assert_array_equal(cluster_embeddings(embeddings, "auto", 1.9, spectral_from=60), spectral)
    assert len(set(cluster_embeddings(embeddings, "auto", 1.9, spectral_from=61))) == 1


def test_room_for_new_speakers_follows_the_count_options():
    from diarize.config import ClusteringConfig

    assert ClusteringConfig(num_speakers=3).room_for(2, cap=5) == 0  # a given count is never exceeded
    assert ClusteringConfig().room_for(4) is None  # nothing bounds it
    assert ClusteringConfig().room_for(4, cap=5) == 5
    assert ClusteringConfig(max_speakers=6).room_for(4, cap=5) == 2
    assert ClusteringConfig(max_speakers=6).room_for(4) == 2
    assert ClusteringConfig(max_speakers=3).room_for(4, cap=5) == 0  # already past the maximum: none, not -1
