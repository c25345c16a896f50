"""Speakers counted again from the second look's runs (cluster/run_recount.py)."""

import numpy as np
import pytest

from cluster.run_recount import recount_from_runs, silhouette
from cluster.vectors import unit_vectors


def voices_and_runs(num_voices=4, runs_each=10, spread=0.35, seed=0, dimension=64):
    """(num_voices, d) unit voices and (num_voices * runs_each, d) runs scattered around them, with the voice of
    each run."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dimension)  # what every voice of one recording shares
    voices = unit_vectors(rng.normal(size=(num_voices, dimension)) + 0.8 * common / np.linalg.norm(common) * np.sqrt(dimension) / 4)
    truth = np.repeat(np.arange(num_voices), runs_each)
    runs = unit_vectors(voices[truth] + spread * rng.normal(size=(len(truth), dimension)) / np.sqrt(dimension) * 3)
    return voices, runs, truth


def test_runs_recover_voices_the_windows_merged():
    voices, runs, truth = voices_and_runs()
    merged = np.minimum(truth, 1)  # voices 1, 2 and 3 given to one speaker, as blended windows do
    centroids = recount_from_runs(runs, merged, min_runs=20)
    assert centroids is not None and len(centroids) == 4
    # every true voice has its own centroid
    nearest = np.argmax(voices @ centroids.T, axis=1)
    assert sorted(nearest) == [0, 1, 2, 3]


def test_speakers_that_already_separate_the_runs_stand():
    _, runs, truth = voices_and_runs()
    assert recount_from_runs(runs, truth, min_runs=20) is None


def test_too_few_runs_change_nothing():
    _, runs, truth = voices_and_runs(runs_each=4)
    assert recount_from_runs(runs, np.zeros(len(runs), dtype=int), min_runs=20) is None
    assert recount_from_runs(runs, np.zeros(len(runs), dtype=int), min_runs=16) is not None


def test_silhouette_is_higher_for_the_true_partition():
    _, runs, truth = voices_and_runs()
    assert silhouette(runs, truth) > silhouette(runs, np.minimum(truth, 1))
    assert silhouette(runs, np.zeros(len(runs), dtype=int)) == -1.0


def test_recount_settings_are_checked():
    from diarize.config import SecondLookConfig

    with pytest.raises(ValueError, match="recount_min_runs"):
        SecondLookConfig(recount_min_runs=-1)


def test_no_recount_option_reaches_the_config():
    import argparse

    from pipelines.commands.common import add_diarization_options, config_from_args

    parser = argparse.ArgumentParser()
    add_diarization_options(parser)
    assert config_from_args(parser.parse_args([])).second_look.recount
    assert not config_from_args(parser.parse_args(["--no-recount"])).second_look.recount


@pytest.mark.slow
def test_fast_turn_taking_of_acted_voices_is_counted_closer_with_the_recount(shared_data, tmp_path):
    """Three conversations of 3-5 actors, one RAVDESS utterance (about 1.5 s) per turn: the windows blend
    voices and undercount; counting again from the turns' own voices comes closer to the truth."""
    from dataclasses import replace

    from diarize.config import DiarizationConfig
    from diarize.pipeline import Diarizer
    from eval.corpora import load_rttm, read_manifest
    from eval.simulate import SimulationConfig, write_simulated_set

    manifest = write_simulated_set(tmp_path, shared_data / "speakers" / "ravdess-dev", 3, seed=23,
                                   config=SimulationConfig(vad_confirmed=False), prefix="quick")
    with_recount = Diarizer()
    without = Diarizer(replace(DiarizationConfig(), second_look=replace(DiarizationConfig().second_look, recount=False)))
    without.segmenter, without._encoder = with_recount.segmenter, with_recount.encoder
    error_with = error_without = 0
    for item in read_manifest(manifest):
        true = len(load_rttm(item.rttm, item.uri).labels())
        error_with += abs(len(with_recount(item.audio).labels) - true)
        error_without += abs(len(without(item.audio).labels) - true)
    assert error_with < error_without
