"""Random-weight Qwen3-TTS checkpoints in the real folder layout, for tests and benchmarks.

No real Qwen3-TTS weights can be fetched on our machines, so tests and benchmarks write a checkpoint folder
that qwen-tts loads exactly like a published one: `config.json` (qwen-tts's own config classes), weights in
`model.safetensors`, `generation_config.json`, a Qwen2 text tokenizer, and `speech_tokenizer/` (the 12 Hz codec).
Only the sizes shrink for the "tiny" preset; vocabularies and special-token ids are the real ones, so the
prompt layout, token suppression and end-of-speech handling are exercised as they are with real weights.

The text tokenizer is a byte-level BPE with no merges (one token per UTF-8 byte) whose special tokens sit
at the real Qwen2 ids; a real checkpoint ships its own tokenizer files and never goes through this module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .loading import import_qwen_tts

#: the 12 Hz Base checkpoints' token layout (talker codec vocabulary 3072, text vocabulary 151936)
CODEC_IDS = dict(
    codec_pad_id=2148,
    codec_bos_id=2149,
    codec_eos_token_id=2150,
    codec_think_id=2154,
    codec_nothink_id=2155,
    codec_think_bos_id=2156,
    codec_think_eos_id=2157,
)
LANGUAGE_IDS = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
}
TEXT_SPECIAL_TOKENS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<tts_pad>": 151671,
    "<tts_text_bos>": 151672,
    "<tts_text_eod>": 151673,
}
#: "assistant" is one token in Qwen2's vocabulary; qwen-tts slices the chat-formatted ids assuming
#: "<|im_start|>assistant\n" is exactly three tokens, so the stand-in tokenizer must agree.
ASSISTANT_TOKEN = ("assistant", 77091)
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
GENERATION_DEFAULTS = dict(
    do_sample=True, top_k=50, top_p=1.0, temperature=0.9, repetition_penalty=1.05,
    subtalker_dosample=True, subtalker_top_k=50, subtalker_top_p=1.0, subtalker_temperature=0.9,
    max_new_tokens=8192,
)


def talker_sizes(preset: str) -> dict:
    """Talker / code-predictor / speaker-encoder sizes: "tiny" for tests, "0.6b" for the published 0.6B layout."""
    if preset == "0.6b":
        talker = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                      num_key_value_heads=8, head_dim=128, text_hidden_size=2048,
                      rope_scaling={"mrope_section": [24, 20, 20], "interleaved": True, "rope_type": "default"})
        predictor = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=5, num_attention_heads=16,
                         num_key_value_heads=8, head_dim=128)
        encoder = dict(enc_dim=1024)
    elif preset == "tiny":
        # head_dim 16 -> 8 rotary pairs split 2/3/3 across the three M-RoPE sections, like 24/20/20 of 64;
        # a code predictor narrower than the talker exercises the talker->predictor projection of the 1.7B.
        talker = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, text_hidden_size=32,
                      rope_scaling={"mrope_section": [2, 3, 3], "interleaved": True, "rope_type": "default"})
        predictor = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=12)
        encoder = dict(enc_dim=64, enc_channels=[32, 32, 32, 32, 96], enc_attention_channels=16,
                       enc_res2net_scale=4, enc_se_channels=16)
    else:
        raise ValueError(f"random Qwen3-TTS preset {preset!r}: unknown (known: tiny, 0.6b)")
    return dict(talker=talker, predictor=predictor, encoder=encoder)


def tts_config(preset: str = "tiny", *, tts_model_type: str = "base"):
    """A `Qwen3TTSConfig` with the real vocabulary layout and the preset's sizes."""
    import_qwen_tts()
    from qwen_tts.core.models import Qwen3TTSConfig

    sizes = talker_sizes(preset)
    talker = dict(
        sizes["talker"], vocab_size=3072, text_vocab_size=151936, num_code_groups=16, hidden_act="silu",
        max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
        codec_language_id=dict(LANGUAGE_IDS), **CODEC_IDS,
        code_predictor_config=dict(sizes["predictor"], vocab_size=2048, num_code_groups=16,
                                   max_position_embeddings=65536, rope_theta=1000000.0, rms_norm_eps=1e-6),
    )
    if tts_model_type == "custom_voice":
        talker.update(spk_id={"vivian": 3000}, spk_is_dialect={"vivian": False})
    else:
        talker.update(spk_id={}, spk_is_dialect={})
    return Qwen3TTSConfig(
        talker_config=talker, speaker_encoder_config=dict(sizes["encoder"], sample_rate=24000),
        tokenizer_type="qwen3_tts_tokenizer_12hz", tts_model_size="0b6" if preset == "0.6b" else "tiny",
        tts_model_type=tts_model_type, architectures=["Qwen3TTSForConditionalGeneration"],
    )


def codec_config(preset: str = "tiny"):
    """The 12 Hz speech tokenizer config: real codebooks (16 x 2048) and 1920x upsampling, small widths for tiny."""
    import_qwen_tts()
    from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import Qwen3TTSTokenizerV2Config

    if preset == "tiny":
        decoder = dict(hidden_size=32, latent_dim=32, codebook_dim=32, decoder_dim=64, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=16)
        encoder = dict(hidden_size=32, num_filters=4, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=2, head_dim=16, intermediate_size=64, codebook_dim=16,
                       vector_quantization_hidden_dimension=16, upsample_groups=32)
    else:
        decoder = dict(hidden_size=512, latent_dim=1024, codebook_dim=512, decoder_dim=1536, intermediate_size=1024,
                       num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=16, head_dim=64)
        encoder = dict(hidden_size=512, num_filters=64, num_hidden_layers=8, num_attention_heads=8,
                       num_key_value_heads=8, head_dim=64, intermediate_size=2048, codebook_dim=256,
                       vector_quantization_hidden_dimension=256)
    decoder.update(codebook_size=2048, num_quantizers=16, sliding_window=72, upsample_rates=[8, 5, 4, 3],
                   upsampling_ratios=[2, 2], rms_norm_eps=1e-5, max_position_embeddings=8000)
    encoder.update(codebook_size=2048, num_quantizers=32, upsampling_ratios=[8, 6, 5, 4], sampling_rate=24000,
                   _frame_rate=12.5, num_semantic_quantizers=1, use_causal_conv=True)
    return Qwen3TTSTokenizerV2Config(
        encoder_config=encoder, decoder_config=decoder, encoder_valid_num_quantizers=16,
        architectures=["Qwen3TTSTokenizerV2Model"],
    )


def write_text_tokenizer(folder: str | Path) -> None:
    """Write a Qwen2 fast tokenizer over raw bytes, with the special tokens at their real ids, into `folder`.

    Written as tokenizer.json + tokenizer_config.json directly: wrapping a 151k-entry vocabulary in
    `Qwen2TokenizerFast` just to save it costs seconds, and the files are all that loading reads.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(byte_alphabet))}
    # Unreachable fillers make the id space contiguous, as in the real vocabulary (the tokenizers library
    # warns about every missing id of a vocabulary with holes).
    last = max(TEXT_SPECIAL_TOKENS.values())
    vocab.update({f"<|unused_{index}|>": index for index in range(len(vocab), last + 1)})
    for token, index in (*TEXT_SPECIAL_TOKENS.items(), ASSISTANT_TOKEN):
        del vocab[f"<|unused_{index}|>"]
        vocab[token] = index
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    # Qwen2's pre-tokenizer shape: a regex split, then byte-level mapping (transformers patches element 0).
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(token, normalized=False, special=True) for token in TEXT_SPECIAL_TOKENS])
    core.add_tokens([AddedToken(ASSISTANT_TOKEN[0], normalized=False, special=False)])
    folder = Path(folder)
    core.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "bos_token": None, "unk_token": None, "model_max_length": 131072, "clean_up_tokenization_spaces": False,
        "additional_special_tokens": [t for t in TEXT_SPECIAL_TOKENS if t != "<|endoftext|>"],
    }, indent=2))


def _randomize(model: torch.nn.Module, seed: int, *, fan_in_scaled: bool = False) -> None:
    """Seeded random weights; norms and learned activation scales keep their init.

    The talker uses a flat 0.02 std (its transformer init). The codec is a deep conv stack: at 0.02 its output
    would hardly depend on the codes, so it takes 0.75/sqrt(fan_in) scaling: loud enough that the waveform
    depends on the codes (std about 0.05 for the tiny codec), quiet enough not to clip at +-1.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight") or ".norm." in name or name.endswith("layernorm.weight"):
                continue
            if any(key in name for key in ("alpha", "beta", "gamma", "scale", "cluster_usage")):
                continue  # SnakeBeta, LayerScale and codebook usage counts keep their init (exp(alpha), 1/usage)
            std = 0.02
            if fan_in_scaled:
                fan_in = parameter[0].numel() if parameter.dim() > 1 else 0
                std = 0.75 / math.sqrt(fan_in) if fan_in else 0.0
                if "embedding_sum" in name:  # codebook vectors
                    std = 1.0
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def write_checkpoint(folder: str | Path, preset: str = "tiny", *, seed: int = 0, tts_model_type: str = "base",
                     weights_dtype: torch.dtype = torch.float32) -> Path:
    """Write a complete random-weight checkpoint folder loadable by `qwen_tts.Qwen3TTSModel.from_pretrained`.

    weights_dtype=torch.bfloat16 stores the model's weights as bfloat16, as Qwen's published checkpoints do
    (the codec's are left as they are)."""
    import_qwen_tts()
    from qwen_tts.core.models import Qwen3TTSForConditionalGeneration
    from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import Qwen3TTSTokenizerV2Model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = Qwen3TTSForConditionalGeneration(tts_config(preset, tts_model_type=tts_model_type)).eval()
    _randomize(model, seed)
    model.to(weights_dtype)
    model.save_pretrained(folder, safe_serialization=True)
    # Qwen3TTSSpeakerEncoderConfig takes only its own fields; save_pretrained adds PretrainedConfig's generic
    # keys to the nested dict, which the published config.json does not carry and loading would reject.
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    encoder_fields = ("mel_dim", "enc_dim", "enc_channels", "enc_kernel_sizes", "enc_dilations",
                      "enc_attention_channels", "enc_res2net_scale", "enc_se_channels", "sample_rate")
    config["speaker_encoder_config"] = {k: config["speaker_encoder_config"][k] for k in encoder_fields}
    config_path.write_text(json.dumps(config, indent=2))
    (folder / "generation_config.json").write_text(json.dumps(GENERATION_DEFAULTS, indent=2))
    del model

    write_text_tokenizer(folder)

    codec_folder = folder / "speech_tokenizer"
    codec = Qwen3TTSTokenizerV2Model(codec_config("tiny" if preset == "tiny" else "full")).eval()
    _randomize(codec, seed + 1, fan_in_scaled=True)
    codec.save_pretrained(codec_folder, safe_serialization=True)
    (codec_folder / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "EncodecFeatureExtractor", "feature_size": 1, "sampling_rate": 24000,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
    }, indent=2))
    return folder


def build_in_memory(preset: str = "tiny", *, seed: int = 0, tokenizer_folder: str | Path | None = None):
    """A qwen-tts `Qwen3TTSModel` with random weights, built without writing weights to disk.

    For benchmarks of the full-size layout, where saving and reloading ~3.5 GB of float32 would dominate.
    It has no speech tokenizer (codec), so it can produce codec tokens but not audio. The text tokenizer is
    written to `tokenizer_folder` (a temporary folder when None) and loaded back, as a checkpoint's would be.
    """
    import tempfile

    import_qwen_tts()
    from qwen_tts import Qwen3TTSModel
    from qwen_tts.core.models import Qwen3TTSForConditionalGeneration, Qwen3TTSProcessor
    from transformers import AutoTokenizer

    from transformers.modeling_utils import no_init_weights

    with no_init_weights():  # every weight is drawn by _randomize anyway; skip transformers' own init pass
        model = Qwen3TTSForConditionalGeneration(tts_config(preset)).eval()
    _randomize(model, seed)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(tokenizer_folder or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_tokenizer(folder)
        processor = Qwen3TTSProcessor(tokenizer=AutoTokenizer.from_pretrained(str(folder)))
    return Qwen3TTSModel(model=model, processor=processor, generate_defaults=dict(GENERATION_DEFAULTS))
