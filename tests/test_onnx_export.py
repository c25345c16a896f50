"""ONNX export of the Qwen3-TTS speaker encoder: onnxruntime must give torch's vectors on real audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from diarize.embedding import EncoderError
from diarize.embedding.onnx_export import export_onnx
from diarize.embedding.qwen3 import Qwen3Encoder, Qwen3SpeakerNetwork
from diarize.embedding.qwen3_weights import EncoderConfig

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def speech(shared_data):
    """Two real utterances at 24 kHz, cut to different lengths (2.1 s and 4.6 s)."""
    import soxr

    paths = sorted((shared_data / "speakers" / "librispeech-test-other").glob("*/*.flac"))
    clips = []
    for path, seconds in ((paths[0], 2.1), (paths[-1], 4.6)):
        samples, rate = sf.read(path, dtype="float32")
        clips.append(soxr.resample(samples, rate, 24000).astype(np.float32)[: int(seconds * 24000)])
    return clips


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    torch.manual_seed(5)
    state = Qwen3SpeakerNetwork(EncoderConfig(enc_dim=1024)).state_dict()
    folder = tmp_path_factory.mktemp("encoder")
    save_file(dict(state), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"enc_dim": 1024, "sample_rate": 24000}))
    return folder


@pytest.mark.slow
def test_onnx_equals_torch_on_real_audio_of_two_lengths(tmp_path, speech, encoder_folder):
    import onnx
    import onnxruntime

    encoder = Qwen3Encoder.from_weights(encoder_folder)
    report = export_onnx(encoder, tmp_path / "encoder.onnx", check_audio=speech)
    assert [frames for frames, _, _ in report.checks] == [len(s) // 256 for s in speech]
    assert report.max_relative_error < 1e-4

    # independently of the report: run the file, feed it the front end's mel, compare with embed()
    session = onnxruntime.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert [d for d in session.get_inputs()[0].shape][2] == 128
    assert not isinstance(session.get_inputs()[0].shape[1], int), "the frame axis must be dynamic"
    for samples in speech:
        got = session.run(["embedding"], {"mel": encoder.mel(samples).numpy()})[0][0]
        expected = encoder.embed(samples)
        assert got.shape == expected.shape == (1024,)
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    # a batch of two equal-length inputs goes through the dynamic batch axis
    mel = torch.cat([encoder.mel(speech[1][:48000]), encoder.mel(speech[0][:48000])]).numpy()
    both = session.run(["embedding"], {"mel": mel})[0]
    assert both.shape == (2, 1024)
    assert np.abs(both[1] - encoder.embed(speech[0][:48000])).max() <= 1e-4 * np.abs(both[1]).max()

    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "encoder.onnx"), load_external_data=False).metadata_props}
    assert metadata["voicemap.encoder_id"] == encoder.encoder_id
    assert metadata["voicemap.sample_rate"] == "24000" and "n_fft=1024 hop=256" in metadata["voicemap.front_end"]


def test_export_refuses_other_encoders(tmp_path):
    class NotQwen:
        encoder_id = "campplus-common-advanced"

    with pytest.raises(EncoderError, match="only the Qwen3 encoders"):
        export_onnx(NotQwen(), tmp_path / "x.onnx")
