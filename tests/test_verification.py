"""Verification trials, EER and minDCF, and the eval-verification command on real speakers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from eval.verification import VerificationError, collect_utterances, error_rates, trial_pairs

torch.set_num_threads(1)


def test_trials_are_all_unordered_pairs():
    first, second, same = trial_pairs(["a", "a", "b", "a"])
    pairs = set(zip(first.tolist(), second.tolist()))
    assert pairs == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert {p for p, s in zip(zip(first.tolist(), second.tolist()), same) if s} == {(0, 1), (0, 3), (1, 3)}


def test_error_rates_on_known_cases():
    targets = np.array([True, True, False, False])
    assert error_rates(np.array([0.9, 0.8, 0.1, 0.2]), targets)[0] == 0.0  # separable: no error at all
    assert error_rates(np.array([0.9, 0.8, 0.1, 0.2]), targets)[2] == 0.0
    assert error_rates(np.array([0.1, 0.2, 0.9, 0.8]), targets)[0] == 1.0  # inverted scores
    assert error_rates(np.array([0.9, 0.1, 0.8, 0.2]), targets)[0] == 0.5
    # two unit-variance Gaussians two apart: EER is Phi(-1) = 0.1587 in the limit
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)]
    labels = np.r_[np.ones(20000, bool), np.zeros(20000, bool)]
    eer, threshold, min_dcf = error_rates(scores, labels, p_target=0.5)
    assert abs(eer - 0.1587) < 0.006 and abs(threshold) < 0.05
    assert abs(min_dcf - 2 * 0.1587) < 0.015  # at P_target 0.5 the normalized DCF is FA + miss at the EER
    with pytest.raises(VerificationError):
        error_rates(np.array([0.1, 0.2]), np.array([True, True]))


def test_collect_utterances(tmp_path):
    for speaker, count in (("s1", 2), ("s2", 3)):
        (tmp_path / speaker).mkdir()
        for i in range(count):
            (tmp_path / speaker / f"{speaker}-{i}.flac").write_bytes(b"")
    (tmp_path / "s2" / "notes.txt").write_text("not audio")
    found = collect_utterances(tmp_path, per_speaker=2)
    assert [(u.speaker, u.path.name) for u in found] == [("s1", "s1-0.flac"), ("s1", "s1-1.flac"),
                                                         ("s2", "s2-0.flac"), ("s2", "s2-1.flac")]
    with pytest.raises(VerificationError, match="two <speaker>/ subfolders"):
        collect_utterances(tmp_path / "s1")


def test_eval_verification_command_on_real_speakers(tmp_path, shared_data, capsys):
    """Qwen3-size encoder with random weights on 4 real speakers x 3 utterances (cropped to 2 s): the table
    and JSON come out with the right trial counts; with random weights the EER itself means nothing."""
    from diarize.embedding.qwen3 import Qwen3SpeakerNetwork
    from diarize.embedding.qwen3_weights import EncoderConfig
    from pipelines.cli import main

    source = shared_data / "speakers" / "librispeech-test-other"
    subset = tmp_path / "speakers"
    for speaker_dir in sorted(p for p in source.iterdir() if p.is_dir())[:4]:
        (subset / speaker_dir.name).mkdir(parents=True)
        for path in sorted(speaker_dir.glob("*.flac"))[:3]:
            (subset / speaker_dir.name / path.name).symlink_to(path)
    torch.manual_seed(2)
    save_file(dict(Qwen3SpeakerNetwork(EncoderConfig()).state_dict()), str(tmp_path / "enc.safetensors"))
    status = main(["eval-verification", str(subset), "--embedding", str(tmp_path / "enc.safetensors"), "qwen3-1.7b:/nowhere",
                   "--crop", "2", "--json", str(tmp_path / "results.json")])
    output = capsys.readouterr()
    assert status == 1, "the missing second encoder is reported and counted as a failure"
    assert "/nowhere" in output.err and len(output.err.strip().splitlines()) == 1
    assert "| 4 / 12 | 12 / 54 |" in output.out  # 4 x C(3,2) target trials, C(12,2) - 12 non-target
    [result] = json.loads((tmp_path / "results.json").read_text())
    assert result["dimension"] == 1024 and 0.0 <= result["eer"] <= 1.0
    assert abs(result["audio_seconds"] - 12 * 2.0) < 1e-6 and result["seconds_per_audio_minute"] > 0
