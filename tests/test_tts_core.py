"""The Qwen3-TTS core against qwen-tts itself, on a small random-weight checkpoint in the real layout.

No real Qwen3-TTS weights exist on these machines, so the checkpoint is written by synth.tts.random_model
from qwen-tts's own config classes (2-layer talker and code predictor, real 3072/2048/151936 vocabularies
and special-token ids, 12 Hz codec with 16 codebooks and 1920x upsampling) and loaded through the same
`from_pretrained` path a published checkpoint takes. The reference is qwen-tts's `generate()`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("qwen_tts")

from synth.tts import SamplingParams, TTSModelError, VoiceVectorError  # noqa: E402
from synth.tts.random_model import write_checkpoint  # noqa: E402

TEXT = "Hello there, this is a test of the voice."


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("qwen3tts") / "tiny-base", "tiny", seed=0)


@pytest.fixture(scope="module")
def synth(checkpoint):
    torch.set_num_threads(1)
    from synth.tts import Synthesizer

    return Synthesizer.load(checkpoint)


@pytest.fixture(scope="module")
def vector(synth):
    return torch.randn(synth.speaker_dim, generator=torch.Generator().manual_seed(7)).numpy()


# -- parity with qwen-tts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("language, non_streaming_mode", [("auto", False), ("english", True)])
def test_greedy_codes_equal_reference(synth, vector, language, non_streaming_mode):
    options = dict(language=language, non_streaming_mode=non_streaming_mode, do_sample=False,
                   subtalker_dosample=False, max_new_tokens=30)
    ours = synth.codes(TEXT, vector, **options)
    reference = synth.reference_codes(TEXT, vector, **options)
    # the reference never predicts the 15 residual codebooks of the token at the max_new_tokens limit
    assert ours.shape == (29, 16)
    assert torch.equal(ours, reference)


@pytest.mark.parametrize("top_p", [1.0, 0.8])
def test_sampled_codes_equal_reference_for_the_same_seed(synth, vector, top_p):
    options = dict(top_p=top_p, subtalker_top_p=top_p, max_new_tokens=25)  # temperature/top-k/penalty: defaults
    torch.manual_seed(1234)
    ours = synth.codes(TEXT, vector, **options)
    torch.manual_seed(1234)
    reference = synth.reference_codes(TEXT, vector, **options)
    torch.manual_seed(4321)
    other_seed = synth.codes(TEXT, vector, **options)
    assert torch.equal(ours, reference)
    assert not torch.equal(ours, other_seed)  # the seed matters, so the equality above is not vacuous


def test_end_of_speech_is_barred_for_two_tokens_then_stops(synth, vector):
    """With end-of-speech made the talker's top choice, both loops give exactly min_new_tokens frames."""
    head = synth.model.talker.codec_head.weight
    eos = synth.model.config.talker_config.codec_eos_token_id
    saved = head[eos].clone()
    options = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=30)
    try:
        with torch.no_grad():
            head[eos] = synth.model.talker.model.norm.weight * 50.0  # aligned with every normed hidden state
        ours = synth.codes(TEXT, vector, **options)
        reference = synth.reference_codes(TEXT, vector, **options)
    finally:
        with torch.no_grad():
            head[eos] = saved
    assert ours.shape[0] == 2 and synth.decoder.stats.stopped_by_eos
    assert torch.equal(ours, reference)


def test_vector_fills_the_speaker_slot_and_steers_generation(synth, vector):
    from synth.tts.prompt import check_vector

    prompt = synth.prompt(TEXT, vector)
    # rows: <|im_start|> assistant \n | nothink think_bos think_eos | speaker | pad | bos+first text token
    speaker_row = prompt.prefill[0, 6]
    expected = prompt.pad[0, 0] + check_vector(vector, synth.model)
    assert torch.equal(speaker_row, expected)
    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=12)
    edited = vector + 0.5 * np.sign(vector)  # an "edited" vector of the same size is accepted and changes speech
    assert not torch.equal(synth.codes(TEXT, vector, **greedy), synth.codes(TEXT, edited, **greedy))


def test_caches_are_allocated_once_not_per_step(synth, vector):
    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=16)
    frames = synth.frames(TEXT, vector, **greedy)
    next(frames)
    talker, predictor = synth.decoder.talker_stack.cache, synth.decoder.predictor_stack.cache
    pointers = (talker.keys.data_ptr(), talker.values.data_ptr(), predictor.keys.data_ptr())
    for _ in frames:  # every later step writes into the same buffers
        assert (talker.keys.data_ptr(), talker.values.data_ptr(), predictor.keys.data_ptr()) == pointers
    synth.codes("Short.", vector, **greedy)  # a shorter utterance reuses them too
    assert synth.decoder.talker_stack.cache is talker and talker.keys.data_ptr() == pointers[0]


# -- streaming --------------------------------------------------------------------------------------------------

def test_stream_starts_after_first_frames_and_concatenates_to_the_full_output(synth, vector):
    options = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=24)
    chunks = []
    frames_done_at_chunk = []
    for chunk in synth.stream(TEXT, vector, first_chunk_frames=2, chunk_frames=5, **options):
        chunks.append(chunk)
        frames_done_at_chunk.append(synth.decoder.stats.frames)
    full_codes = synth.codes(TEXT, vector, **options)
    full_audio, rate = synth.synthesize(TEXT, vector, **options)

    assert frames_done_at_chunk[0] == 2  # the first audio exists while the talker has produced only 2 frames
    assert [c.codes.shape[0] for c in chunks] == [2, 5, 5, 5, 5, 1] and chunks[-1].final
    assert torch.equal(torch.cat([c.codes for c in chunks]), full_codes)
    streamed = np.concatenate([c.audio for c in chunks])
    assert rate == 24000 and streamed.shape == full_audio.shape == (23 * 1920,)
    assert full_audio.std() > 1e-3  # the random codec's output really depends on the codes
    np.testing.assert_allclose(streamed, full_audio, rtol=0, atol=1e-5)


def test_streaming_codec_decoder_equals_one_shot_decode_for_any_chunking(synth):
    from synth.tts.stream import StreamingCodecDecoder

    codes = torch.randint(0, 2048, (40, 16), generator=torch.Generator().manual_seed(3))
    one_shot = synth.decode(codes)
    decoder = StreamingCodecDecoder(synth.model.speech_tokenizer.model.decoder)
    for sizes in ([1] * 40, [3, 17, 20], [40]):
        decoder.reset()
        pieces, start = [], 0
        for size in sizes:
            pieces.append(decoder.push(codes[start:start + size]).numpy())
            start += size
        np.testing.assert_allclose(np.concatenate(pieces), one_shot, rtol=0, atol=1e-5)


# -- refusals ---------------------------------------------------------------------------------------------------

def test_wrong_vector_dimension_is_a_one_line_error(synth):
    with pytest.raises(VoiceVectorError) as caught:
        synth.codes(TEXT, np.zeros(synth.speaker_dim // 2, dtype=np.float32))
    message = str(caught.value)
    assert "\n" not in message and f"dimension {synth.speaker_dim // 2}" in message and str(synth.speaker_dim) in message
    with pytest.raises(VoiceVectorError, match="NaN"):
        synth.codes(TEXT, np.full(synth.speaker_dim, np.nan, dtype=np.float32))


@pytest.mark.parametrize("kind", ["custom_voice", "voice_design"])
def test_non_base_checkpoints_are_refused_before_loading(checkpoint, tmp_path, kind):
    from synth.tts import Synthesizer

    folder = tmp_path / kind
    folder.mkdir()
    config = json.loads((checkpoint / "config.json").read_text())
    config["tts_model_type"] = kind
    (folder / "config.json").write_text(json.dumps(config))  # no weights: the check must come first
    with pytest.raises(TTSModelError) as caught:
        Synthesizer.load(folder)
    assert kind in str(caught.value) and "Base" in str(caught.value) and "\n" not in str(caught.value)


def test_missing_checkpoint_names_where_it_looked(tmp_path, monkeypatch):
    from diarize.models import ModelNotFoundError
    from synth.tts import Synthesizer

    with pytest.raises(ModelNotFoundError, match="not found"):
        Synthesizer.load(tmp_path / "nowhere")
    # a hub id is only looked up because the user named it; offline and uncached, it fails without a download
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError, match="Qwen/Qwen3-TTS-12Hz-0.6B-Base.*HF_HUB_OFFLINE"):
        Synthesizer.load("Qwen/Qwen3-TTS-12Hz-0.6B-Base")


def test_sampling_parameters_follow_reference_precedence():
    merged = SamplingParams.merged({"temperature": 0.7, "top_k": 30, "max_new_tokens": 8192}, top_k=10)
    assert (merged.temperature, merged.top_k, merged.max_new_tokens, merged.top_p) == (0.7, 10, 8192, 1.0)
    with pytest.raises(TypeError, match="unknown"):
        SamplingParams.merged({}, topk=3)


# -- voices from the registry and the command line ----------------------------------------------------------------

def test_registry_voice_is_the_mean_of_its_qwen3_tts_vectors(tmp_path):
    from cluster.registry import Registry
    from synth.tts.voices import VoiceSourceError, registry_vector

    path = tmp_path / "voices.sqlite"
    qwen = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    with Registry(path) as registry:
        registry.enroll("alice", "qwen3-tts-4d-0123abcd", qwen, source_hashes=["a" * 64, "b" * 64])
        registry.enroll("bob", "campplus", np.ones((1, 192), dtype=np.float32), source_hashes=["c" * 64])
    vector, encoder_id = registry_vector("alice", 4, registry_path=path)
    assert encoder_id == "qwen3-tts-4d-0123abcd" and np.allclose(vector, [2.0, 2.0, 2.0, 2.0])
    with pytest.raises(VoiceSourceError, match="no 4-dimensional Qwen3-TTS embedding"):
        registry_vector("bob", 4, registry_path=path)


@pytest.mark.slow
def test_cli_writes_the_same_speech_streamed_or_not(checkpoint, synth, vector, tmp_path, capsys):
    import soundfile as sf

    from pipelines.cli import main

    voice = tmp_path / "voice.npy"
    np.save(voice, vector)
    common = ["synth", "--voice", str(voice), "--text", TEXT, "--model", str(checkpoint), "--greedy",
              "--max-new-tokens", "9", "--quiet"]
    assert main(common + ["-o", str(tmp_path / "a.wav")]) == 0
    assert main(common + ["-o", str(tmp_path / "b.wav"), "--stream"]) == 0
    plain, rate = sf.read(tmp_path / "a.wav")
    streamed, _ = sf.read(tmp_path / "b.wav")
    assert rate == 24000 and plain.shape == streamed.shape == (8 * 1920,)
    assert np.abs(plain - streamed).max() <= 2 / 32768  # equal up to 16-bit rounding
    expected, _ = synth.synthesize(TEXT, vector, do_sample=False, subtalker_dosample=False, max_new_tokens=9)
    assert np.abs(plain - expected).max() <= 1 / 32768 + 1e-6

    # --voice NAME: the registry's vectors from this checkpoint's own speaker encoder win over another encoder's
    from cluster.registry import Registry
    from synth.tts.voices import checkpoint_encoder_id

    registry = tmp_path / "voices.sqlite"
    own_id = checkpoint_encoder_id(checkpoint)
    assert own_id is not None and own_id.startswith(f"qwen3-tts-{synth.speaker_dim}d-")
    enrolled = np.stack([vector, -vector * 0.5]).astype(np.float32)
    with Registry(registry) as store:
        store.enroll("alice", own_id, enrolled, source_hashes=["a" * 64, "b" * 64])
        store.enroll("alice", "qwen3-tts-64d-0000000000000000", np.ones((1, 64), np.float32), source_hashes=["c" * 64])
    assert main(["synth", "--voice", "alice", "--registry", str(registry), "--text", TEXT, "--model",
                 str(checkpoint), "--greedy", "--max-new-tokens", "9", "--quiet", "-o", str(tmp_path / "d.wav")]) == 0
    named, _ = sf.read(tmp_path / "d.wav")
    expected, _ = synth.synthesize(TEXT, enrolled.mean(0), do_sample=False, subtalker_dosample=False, max_new_tokens=9)
    assert np.abs(named - expected).max() <= 1 / 32768 + 1e-6

    np.save(voice, vector[:-1])
    assert main(common + ["-o", str(tmp_path / "c.wav")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "dimension" in error and str(voice) in error
    assert not (tmp_path / "c.wav").exists()
