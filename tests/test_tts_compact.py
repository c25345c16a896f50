"""bfloat16 weight copies in our decoding loop (synth/tts/compact.py): same products, fewer bytes, same tokens.

The checkpoint is written with bfloat16 weights, as Qwen publishes them, and loaded as float32, as our CPU
path loads them; the reference is qwen-tts's generate() on that same float32 model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("qwen_tts")

from synth.tts.compact import CompactLinears, kernel, kernel_problem  # noqa: E402
from synth.tts.random_model import write_checkpoint  # noqa: E402

TEXT = "Hello there, this is a test of the voice."



@pytest.fixture(scope="module")
def linear_bf16():
    """The compiled kernel; without it (no AVX-512, no C++ compiler) the loop keeps float32 weights, and these
    tests say why they skip."""
    built = kernel()
    if built is None:
        pytest.skip(kernel_problem())
    return built.linear_bf16


def bfloat16_valued(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16).float()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("qwen3tts") / "tiny-bf16", "tiny", seed=3,
                            weights_dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def synth(checkpoint, linear_bf16):
    torch.set_num_threads(1)
    from synth.tts import Synthesizer

    return Synthesizer.load(checkpoint, dtype=torch.float32)


@pytest.fixture(scope="module")
def vector(synth):
    return torch.randn(synth.speaker_dim, generator=torch.Generator().manual_seed(7)).numpy()


@pytest.mark.parametrize("rows, out_features, in_features", [(1, 1027, 1024), (2, 64, 64), (3, 3072, 1024),
                                                              (1, 1024, 3072)])
@pytest.mark.slow
def test_kernel_gives_the_float32_product_of_the_same_numbers(linear_bf16, rows, out_features, in_features):
    weight = bfloat16_valued(out_features, in_features, seed=0)
    x = torch.randn(rows, in_features, generator=torch.Generator().manual_seed(1))
    ours = linear_bf16(x, weight.to(torch.bfloat16))
    blas = F.linear(x, weight)
    exact = F.linear(x.double(), weight.double())
    assert ours.shape == (rows, out_features) and ours.dtype == torch.float32
    # float32 arithmetic summed in another order: last-bit differences only (bfloat16 activations would be
    # ~1e-3 off), and no further from the float64 product than the BLAS result is
    assert (ours - blas).abs().max() <= 1e-5 * blas.abs().max()
    assert (ours.double() - exact).abs().max() <= 2 * (blas.double() - exact).abs().max() + 1e-6


def test_only_layers_holding_bfloat16_values_get_copies(linear_bf16):
    model = nn.Sequential(nn.Linear(64, 96), nn.Linear(96, 40), nn.Linear(40, 64), nn.Linear(64, 64))
    with torch.no_grad():
        for layer in model[:3]:
            layer.weight.copy_(layer.weight.to(torch.bfloat16))  # the last layer keeps float32 values
    compact = CompactLinears.of(model)
    # the 40-wide input is not a multiple of the kernel's 32-weight stride, the last layer is not bfloat16
    assert set(compact.layers) == {model[0], model[1]}
    assert CompactLinears.of(model) is compact  # one set of copies per model
    assert CompactLinears.of(nn.Sequential(nn.Linear(64, 64))) is None


def test_copies_apply_only_inside_active_and_only_to_short_inputs(linear_bf16):
    layer = nn.Linear(128, 256)
    with torch.no_grad():
        layer.weight.copy_(bfloat16_valued(256, 128, seed=2))
    compact = CompactLinears.of(nn.Sequential(layer))
    step, prompt = torch.randn(1, 1, 128), torch.randn(1, 20, 128)
    plain_step, plain_prompt = F.linear(step, layer.weight, layer.bias), F.linear(prompt, layer.weight, layer.bias)
    assert torch.equal(layer(step), plain_step)  # outside the block: the float32 layer, bit for bit
    with compact.active():
        fast_step, fast_prompt = layer(step), layer(prompt)
    assert torch.equal(fast_prompt, plain_prompt)  # a long input (a prompt) keeps the float32 path: bit for bit
    difference = (fast_step - plain_step).abs().max()
    assert 0 < difference <= 1e-5 * plain_step.abs().max()  # the kernel ran, and only the sum order differs
    assert torch.equal(layer(step), plain_step)


def test_bfloat16_checkpoint_gets_copies_of_its_talker_layers(synth):
    compact = synth.compact
    assert compact is not None
    talker_layers = {m for m in synth.model.talker.modules() if isinstance(m, nn.Linear) and m.in_features % 32 == 0}
    assert set(compact.layers) == talker_layers
    assert all(torch.equal(m.weight, w.float()) for m, w in compact.layers.items())


@pytest.mark.slow
def test_greedy_and_sampled_codes_equal_reference_with_copies(synth, vector):
    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=30)
    ours = synth.codes(TEXT, vector, **greedy)
    assert ours.shape == (29, 16)
    assert torch.equal(ours, synth.reference_codes(TEXT, vector, **greedy))

    sampled = dict(max_new_tokens=25)
    torch.manual_seed(1234)
    ours = synth.codes(TEXT, vector, **sampled)
    torch.manual_seed(1234)
    assert torch.equal(ours, synth.reference_codes(TEXT, vector, **sampled))


def test_cli_speaks_the_same_with_or_without_float32_weights(checkpoint, synth, vector, tmp_path):
    import soundfile as sf

    from pipelines.cli import main

    voice = tmp_path / "voice.npy"
    np.save(voice, vector)
    common = ["synth", "--voice", str(voice), "--text", TEXT, "--model", str(checkpoint), "--greedy",
              "--max-new-tokens", "12", "--quiet"]
    assert main(common + ["-o", str(tmp_path / "compact.wav")]) == 0
    assert main(common + ["-o", str(tmp_path / "float32.wav"), "--float32-weights"]) == 0
    compact, rate = sf.read(tmp_path / "compact.wav")
    plain, _ = sf.read(tmp_path / "float32.wav")
    assert rate == 24000 and compact.shape == plain.shape == (11 * 1920,)
    assert np.array_equal(compact, plain)
