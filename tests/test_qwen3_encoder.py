"""The Qwen3-TTS speaker encoder backend: parity with qwen-tts, checkpoint layouts, masked pooling, embed CLI.

No real Qwen3 weights exist on these machines, so every test builds random-weight checkpoints in the real
layouts; the parity tests load the same random weights into qwen-tts's own `Qwen3TTSSpeakerEncoder`.
"""

from __future__ import annotations

import json
import pickle
import stat

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from diarize.audio import load_audio
from diarize.embedding import EncoderError, load_encoder
from diarize.embedding.qwen3 import HOP_LENGTH, Qwen3Encoder, Qwen3SpeakerNetwork
from diarize.embedding.qwen3_weights import PREFIX, EncoderCheckpoint, EncoderConfig, infer_config, read_checkpoint
from diarize.models import ModelNotFoundError

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------ fixtures

def random_state(dim: int, seed: int) -> dict:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in Qwen3SpeakerNetwork(EncoderConfig(enc_dim=dim)).state_dict().items()}


def in_memory(state: dict) -> Qwen3Encoder:
    return Qwen3Encoder(EncoderCheckpoint(infer_config(state, {}, "memory"), state, "<memory>", "memory"))


def talker_tensors(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "talker.model.codec_embedding.weight": torch.randn(32, 16, generator=generator),
        "talker.model.layers.0.mlp.up_proj.weight": torch.randn(48, 16, generator=generator),
    }


def base_config(dim: int, variant: str = "base") -> dict:
    # the fields the real Base config.json carries (see qwen-tts's Qwen3TTSConfig)
    config = {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tts_model_type": variant,
        "tts_model_size": "0b6" if dim == 1024 else "1b7",
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "talker_config": {"hidden_size": 16, "num_hidden_layers": 1},
    }
    if variant == "base":
        config["speaker_encoder_config"] = {"enc_dim": dim, "sample_rate": 24000}
    return config


def write_base_sharded(folder, state: dict, dim: int) -> None:
    """Encoder split over two shards next to talker tensors, plus a talker-only shard that is not valid
    safetensors: loading succeeds only if the loader opens just the shards that hold encoder tensors."""
    folder.mkdir()
    encoder = {PREFIX + k: v for k, v in state.items()}
    keys = sorted(encoder)
    shards = {
        "model-00001-of-00003.safetensors": {**{k: encoder[k] for k in keys[::2]}, **talker_tensors(1)},
        "model-00002-of-00003.safetensors": {k: encoder[k] for k in keys[1::2]},
    }
    weight_map = {}
    for name, tensors in shards.items():
        save_file(tensors, str(folder / name))
        weight_map.update(dict.fromkeys(tensors, name))
    (folder / "model-00003-of-00003.safetensors").write_bytes(b"not a safetensors file")
    weight_map["talker.model.layers.1.mlp.up_proj.weight"] = "model-00003-of-00003.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(base_config(dim)))


def write_base_single(folder, state: dict, dim: int, dtype=torch.float32) -> None:
    """The released 0.6B Base layout: one model.safetensors holding talker and encoder."""
    folder.mkdir()
    tensors = {**{PREFIX + k: v.to(dtype) for k, v in state.items()}, **talker_tensors(2)}
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(base_config(dim)))


def write_standalone(folder, state: dict, dim: int) -> None:
    folder.mkdir()
    save_file(dict(state), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3_tts_speaker_encoder", "enc_dim": dim,
                                                    "sample_rate": 24000}))


@pytest.fixture(scope="module")
def speech24k(wheel_call) -> np.ndarray:
    """3 s of real speech resampled to 24 kHz (the wheel's call is 16 kHz), from 8 s, where both of its voices talk."""
    import soxr

    samples, rate = sf.read(wheel_call, dtype="float32")
    return soxr.resample(samples[rate * 8 :], rate, 24000).astype(np.float32)[: 3 * 24000]


@pytest.fixture(scope="module")
def qwen_tts():
    """qwen-tts's own encoder class and mel front end (importing it takes seconds: once per module)."""
    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSSpeakerEncoderConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSSpeakerEncoder, mel_spectrogram

    def reference(state: dict, dim: int):
        model = Qwen3TTSSpeakerEncoder(Qwen3TTSSpeakerEncoderConfig(enc_dim=dim)).eval()
        model.load_state_dict(state, strict=True)  # also proves our tensor names are qwen-tts's
        return model

    def mel(samples: np.ndarray) -> torch.Tensor:
        # the call Qwen3TTSForConditionalGeneration.extract_speaker_embedding makes
        return mel_spectrogram(torch.from_numpy(samples)[None], n_fft=1024, num_mels=128, sampling_rate=24000,
                               hop_size=256, win_size=1024, fmin=0, fmax=12000).transpose(1, 2)

    return reference, mel


@pytest.fixture(scope="module")
def state1024() -> dict:
    return random_state(1024, seed=11)


def assert_close(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-5) -> None:
    scale = float(np.abs(expected).max())
    difference = float(np.abs(np.asarray(actual) - np.asarray(expected)).max())
    assert difference <= rel * scale, f"max difference {difference:.3g} exceeds {rel:g} x {scale:.3g}"


# ------------------------------------------------------------------------------------------ parity

def test_mel_front_end_matches_qwen_tts(qwen_tts, speech24k, state1024):
    _, reference_mel = qwen_tts
    ours = in_memory(state1024).mel(speech24k)
    theirs = reference_mel(speech24k)
    assert ours.shape == theirs.shape == (1, len(speech24k) // HOP_LENGTH, 128)
    assert_close(ours.numpy(), theirs.numpy(), rel=1e-5)


@pytest.mark.parametrize("dim", [1024, 2048])
def test_embedding_matches_qwen_tts_reference(qwen_tts, speech24k, dim):
    reference, reference_mel = qwen_tts
    state = random_state(dim, seed=dim)
    encoder = in_memory(state)
    with torch.inference_mode():
        expected = reference(state, dim)(reference_mel(speech24k))[0].numpy()
    got = encoder.embed(speech24k)
    assert got.shape == (dim,) and got.dtype == np.float32
    assert_close(got, expected, rel=1e-5)
    assert abs(np.linalg.norm(got) - 1.0) > 0.1, "the raw vector must not be L2-normalized"
    assert encoder.dimension == dim and encoder.normalize_for_scoring


# ------------------------------------------------------------------------------------------ masked pooling

def test_all_ones_mask_equals_unmasked(speech24k, state1024):
    encoder = in_memory(state1024)
    features = encoder.frame_features(speech24k)
    assert features.shape == (len(speech24k) // HOP_LENGTH, 1536)
    pooled = encoder.pool(features, np.ones((1, len(features)), dtype=np.float32))[0]
    with torch.inference_mode():
        batched = encoder.network(encoder.mel(speech24k))[0].numpy()  # the unmasked (and ONNX) path
    assert_close(pooled, batched, rel=1e-5)
    masked = encoder.embed_masked(speech24k[None], np.ones((1, 7), dtype=np.float32))[0]
    assert_close(masked, encoder.embed(speech24k), rel=1e-6)


def test_masked_pooling_is_qwen_tts_pooling_of_the_selected_frames(qwen_tts, speech24k, state1024):
    reference, _ = qwen_tts
    model = reference(state1024, 1024)
    encoder = in_memory(state1024)
    features = encoder.frame_features(speech24k)
    mask = np.zeros((3, len(features)), dtype=np.float32)
    mask[0, 20:120] = 1
    mask[0, 180:240] = 1  # two separate runs of one speaker
    mask[1, 20:120] = 0.5
    mask[1, 180:240] = 0.5  # same frames, weighted uniformly lower: same embedding
    pooled = encoder.pool(features, mask)
    selected = torch.from_numpy(features[mask[0] > 0]).T[None]
    with torch.inference_mode():
        expected = model.fc(model.asp(selected))[0, :, 0].numpy()
    assert_close(pooled[0], expected, rel=1e-5)
    assert_close(pooled[1], pooled[0], rel=1e-5)
    assert not pooled[2].any(), "an all-zero weight row gives a zero vector"
    whole = encoder.pool(features, np.ones((1, len(features)), dtype=np.float32))[0]
    assert np.abs(whole - pooled[0]).max() > 1e-3 * np.abs(whole).max(), "the mask must change the result"


def test_short_input(state1024):
    encoder = in_memory(state1024)
    assert encoder.frame_features(np.zeros(1000, dtype=np.float32)).shape == (0, 1536)
    with pytest.raises(EncoderError, match="shorter than the encoder's minimum"):
        encoder.embed(np.zeros(1000, dtype=np.float32))


# ------------------------------------------------------------------------------------------ checkpoint layouts

def test_every_layout_loads_to_identical_outputs(tmp_path, speech24k, state1024):
    write_base_sharded(tmp_path / "base-sharded", state1024, 1024)
    write_base_single(tmp_path / "base-single", state1024, 1024)
    write_standalone(tmp_path / "standalone", state1024, 1024)
    save_file({PREFIX + k: v for k, v in state1024.items()}, str(tmp_path / "prefixed.safetensors"))
    save_file(dict(state1024), str(tmp_path / "bare.safetensors"))
    expected_layouts = {
        "base-sharded": "base-checkpoint", "base-single": "base-checkpoint", "standalone": "encoder-folder",
        "prefixed.safetensors": "safetensors-file", "bare.safetensors": "safetensors-file",
    }
    reference = in_memory(state1024)
    expected = reference.embed(speech24k)
    for name, layout in expected_layouts.items():
        encoder = Qwen3Encoder.from_weights(tmp_path / name)
        assert encoder.layout == layout, name
        assert encoder.dimension == 1024 and encoder.encoder_id == reference.encoder_id, name
        np.testing.assert_array_equal(encoder.embed(speech24k), expected, err_msg=name)
    # the backend registry routes paths and BACKEND:PATH to the same loader
    assert load_encoder(str(tmp_path / "base-sharded")).encoder_id == reference.encoder_id
    assert load_encoder(f"qwen3-0.6b:{tmp_path / 'standalone'}").encoder_id == reference.encoder_id


def test_only_encoder_tensors_and_shards_are_read(tmp_path, state1024):
    write_base_sharded(tmp_path / "base", state1024, 1024)
    checkpoint = read_checkpoint(tmp_path / "base")
    # the third shard is garbage: reading it would have raised
    assert checkpoint.files == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"]
    assert set(checkpoint.state_dict) == set(state1024)
    assert checkpoint.config == EncoderConfig(enc_dim=1024)


def test_bfloat16_checkpoint_is_read_as_float32(tmp_path, state1024):
    write_base_single(tmp_path / "bf16", state1024, 1024, dtype=torch.bfloat16)
    checkpoint = read_checkpoint(tmp_path / "bf16")
    for key, tensor in checkpoint.state_dict.items():
        assert tensor.dtype == torch.float32
        torch.testing.assert_close(tensor, state1024[key].to(torch.bfloat16).float(), rtol=0, atol=0)


@pytest.mark.parametrize("variant, label", [("custom_voice", "CustomVoice"), ("voice_design", "VoiceDesign")])
def test_checkpoints_without_encoder_are_refused(tmp_path, variant, label):
    folder = tmp_path / variant
    folder.mkdir()
    save_file(talker_tensors(3), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(base_config(1024, variant)))
    with pytest.raises(EncoderError) as caught:
        Qwen3Encoder.from_weights(folder)
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    assert label in message and "no speaker encoder" in message and "Base" in message


def test_declared_dimension_must_match_the_weights(tmp_path, state1024):
    write_base_single(tmp_path / "base", state1024, 1024)
    (tmp_path / "base" / "config.json").write_text(json.dumps(base_config(2048)))
    with pytest.raises(EncoderError, match="declares enc_dim 2048 but the weights give 1024"):
        read_checkpoint(tmp_path / "base")


def test_backend_name_uses_the_hugging_face_cache_only(tmp_path, speech24k, state1024):
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError) as caught:
        Qwen3Encoder.from_name("0.6b", cache_dir=empty)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("qwen3-0.6b: Qwen/Qwen3-TTS-12Hz-0.6B-Base")
    assert str(empty) in message

    # a cached snapshot in the hub cache layout is found without any network access
    cache = tmp_path / "hub"
    repo = cache / "models--Qwen--Qwen3-TTS-12Hz-0.6B-Base"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    write_base_single(repo / "snapshots" / commit, state1024, 1024)
    encoder = Qwen3Encoder.from_name("0.6b", cache_dir=cache)
    np.testing.assert_array_equal(encoder.embed(speech24k), in_memory(state1024).embed(speech24k))

    with pytest.raises(EncoderError, match="1024-d embeddings, not the 2048-d"):
        Qwen3Encoder.from_name("1.7b", weights=repo / "snapshots" / commit)


def test_pickled_encoder_reloads_its_weights(tmp_path, speech24k, state1024):
    write_standalone(tmp_path / "enc", state1024, 1024)
    encoder = Qwen3Encoder.from_weights(tmp_path / "enc")
    payload = pickle.dumps(encoder)
    assert len(payload) < 100_000, "a worker should receive the path, not the weights"
    np.testing.assert_array_equal(pickle.loads(payload).embed(speech24k), encoder.embed(speech24k))


# ------------------------------------------------------------------------------------------ audio and CLI

def test_24khz_audio_reaches_the_encoder_untouched(tmp_path, speech24k):
    loud = speech24k / np.abs(speech24k).max() * 0.99  # near full scale: any normalization would show
    sf.write(tmp_path / "float.wav", loud, 24000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "float.wav", sample_rate=24000).samples, loud)
    sf.write(tmp_path / "pcm.flac", loud, 24000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(tmp_path / "pcm.flac", sample_rate=24000).samples,
                                  sf.read(tmp_path / "pcm.flac", dtype="float32")[0])
    # the contrast: a 16 kHz file is resampled at the encoder's door
    sf.write(tmp_path / "16k.wav", loud[: 16000 * 2], 16000, subtype="FLOAT")
    assert abs(len(load_audio(tmp_path / "16k.wav", sample_rate=24000).samples) - 48000) <= 2


def test_embed_command(tmp_path, speech24k, state1024, capsys):
    from pipelines.cli import main

    write_standalone(tmp_path / "enc", state1024, 1024)
    sf.write(tmp_path / "a.wav", speech24k, 24000, subtype="FLOAT")
    sf.write(tmp_path / "b.flac", speech24k[: 24000 * 2], 24000, subtype="PCM_16")
    output = tmp_path / "out.npy"
    status = main(["embed", str(tmp_path / "a.wav"), str(tmp_path / "b.flac"), "--embedding", str(tmp_path / "enc"),
                   "-o", str(output)])
    assert status == 0
    vectors = np.load(output)
    encoder = in_memory(state1024)
    assert vectors.shape == (2, 1024) and vectors.dtype == np.float32
    # row 0 is exactly the encoder's output on the file's samples: no resampling, rescaling or normalization
    np.testing.assert_array_equal(vectors[0], encoder.embed(speech24k))
    np.testing.assert_array_equal(vectors[1], encoder.embed(sf.read(tmp_path / "b.flac", dtype="float32")[0]))
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["encoder_id"] == encoder.encoder_id and record["dimension"] == 1024
    assert record["normalization"] == "none" and record["normalize_for_scoring"] is True
    assert [s["path"] for s in record["sources"]] == [str(tmp_path / "a.wav"), str(tmp_path / "b.flac")]
    for path in (output, output.with_suffix(".json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, "voice vectors are biometric data"

    # one bad input: one line naming it, and nothing written
    capsys.readouterr()
    status = main(["embed", str(tmp_path / "a.wav"), str(tmp_path / "missing.wav"), "--embedding",
                   str(tmp_path / "enc"), "-o", str(tmp_path / "bad.npy")])
    assert status == 1 and not (tmp_path / "bad.npy").exists()
    errors = capsys.readouterr().err.strip().splitlines()
    assert any("missing.wav" in line and "no such file" in line for line in errors)
