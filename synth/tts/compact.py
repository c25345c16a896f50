"""Weights read at half the bytes in our decoding loop on CPU: bfloat16-valued float32 weights kept as bfloat16.

A decoding step multiplies one or two rows by every weight matrix of the talker and, 15 times a frame, of the
code predictor, so on a CPU a frame costs what it takes to read the weights (6.5 GB of float32 for the 0.6B
model). Qwen's checkpoints are stored in bfloat16; loaded as float32 (our CPU default) every weight is still
a bfloat16 value, and a bfloat16 widens to float32 exactly. So each such weight is kept a second time as
bfloat16 and, while our loop runs, `nn.Linear` layers multiply through `linear_bf16.cpp`: the same float32
products of the same numbers, read at half the bytes. The one difference from the float32 BLAS is the order of
the additions (results move in the last bits; `benchmarks/bench_tts.py` prints the tokens' agreement).

Only step inputs of up to `MAX_KERNEL_ROWS` rows use the kernel; the prompt's pass, once per utterance, keeps
BLAS on the float32 weight, bit for bit. Layers whose weights are not all
bfloat16 values (a float32-trained or random model), other dtypes, other devices, a CPU without AVX-512 or a
machine where the kernel cannot be compiled keep the plain float32 path, so the loop stays bit-exact there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

#: inputs with at most this many rows (decoding steps: 1, or 2 for the code predictor's start) use the kernel
MAX_KERNEL_ROWS = 8
#: the kernel reads 32 bfloat16 weights per register
K_MULTIPLE = 32

_SOURCE = Path(__file__).with_name("linear_bf16.cpp")
_NAME = "voicemap_linear_bf16"
_kernel_module = None
_kernel_error: str | None = None
_kernel_lock = threading.Lock()
_state = threading.local()  # per thread: whether the layers of a built CompactLinears use the kernel now


def kernel():
    """The compiled `linear_bf16` extension, built on first use (about 40 s, then cached by torch), or None
    with the reason logged once: a CPU without AVX-512, no C++ compiler, or a failed build."""
    global _kernel_module, _kernel_error
    with _kernel_lock:
        if _kernel_module is not None or _kernel_error is not None:
            return _kernel_module
        capability = torch.backends.cpu.get_cpu_capability()
        if "AVX512" not in capability:
            _kernel_error = f"this CPU's vector capability is {capability}, the kernel needs AVX-512"
        else:
            try:
                # importing it warns that no CUDA runtime was found, which says nothing about a CPU kernel
                quiet = logging.getLogger("torch.utils.cpp_extension")
                level = quiet.level
                quiet.setLevel(logging.ERROR)
                try:
                    from torch.utils.cpp_extension import load
                finally:
                    quiet.setLevel(level)
                if not _built_before(_NAME):
                    log.warning("building the bfloat16-weight kernel of the speech synthesizer (once, about 40 s)")
                _kernel_module = load(name=_NAME, sources=[str(_SOURCE)],
                                      extra_cflags=["-O3", "-mavx512f", "-mavx512bw", "-mavx512dq", "-fopenmp"],
                                      extra_ldflags=["-fopenmp"], verbose=False)
            except Exception as error:  # a missing compiler or ninja shows up here, as many exception types
                _kernel_error = f"could not build the bfloat16-weight kernel: {str(error).splitlines()[0][:200]}"
        if _kernel_error:
            log.warning("%s; the decoding loop reads float32 weights", _kernel_error)
        return _kernel_module


def _built_before(name: str) -> bool:
    """Whether torch's extension cache already holds a build of `name` (then loading takes a moment)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return (Path(_get_build_directory(name, verbose=False)) / f"{name}.so").exists()
    except Exception:  # a private helper of torch's: if it moves, the only loss is the notice
        return True


def kernel_problem() -> str | None:
    """Why `kernel()` gave None (after it was called), else None."""
    return _kernel_error


def holds_bfloat16_values(weight: torch.Tensor) -> bool:
    """Whether every element of a float32 tensor is exactly a bfloat16 value."""
    return weight.dtype == torch.float32 and torch.equal(weight, weight.to(torch.bfloat16).to(torch.float32))


def eligible(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (isinstance(module, nn.Linear) and weight is not None and weight.device.type == "cpu"
            and weight.dtype == torch.float32 and module.in_features % K_MULTIPLE == 0
            and holds_bfloat16_values(weight.detach()))


class CompactLinears:
    """The bfloat16 copies of a model's eligible `nn.Linear` weights, and the switch that makes those layers use
    them (`with compact.active(): ...`, for the calling thread only; other threads and code outside the block,
    such as qwen-tts's own generate() on the same model, keep the float32 path).

    Build with `CompactLinears.of(model)`, which returns None where nothing would change.
    """

    def __init__(self, layers: dict[nn.Linear, torch.Tensor], linear_bf16):
        self.layers = layers  # module -> (out_features, in_features) bfloat16 weight
        self._linear_bf16 = linear_bf16
        for module, compact in layers.items():
            module.forward = self._forward_of(module, compact)

    @classmethod
    def of(cls, model: nn.Module) -> "CompactLinears | None":
        built = model.__dict__.get("_voicemap_compact", False)
        if built is not False:  # one set of copies per model, however many loops drive it
            return built
        compact = cls._build(model)
        model.__dict__["_voicemap_compact"] = compact
        return compact

    @classmethod
    def _build(cls, model: nn.Module) -> "CompactLinears | None":
        candidates = [module for module in model.modules() if isinstance(module, nn.Linear)]
        if not candidates or candidates[0].weight.device.type != "cpu":
            return None
        chosen = {module: module.weight.detach().to(torch.bfloat16).contiguous()
                  for module in candidates if eligible(module)}
        if not chosen:
            return None
        linear_bf16 = kernel()
        if linear_bf16 is None:
            return None
        return cls(chosen, linear_bf16.linear_bf16)

    @property
    def bytes_held(self) -> int:
        return sum(weight.numel() * weight.element_size() for weight in self.layers.values())

    def _forward_of(self, module: nn.Linear, compact: torch.Tensor):
        linear_bf16 = self._linear_bf16

        def forward(x: torch.Tensor) -> torch.Tensor:
            if not getattr(_state, "on", False) or x.dtype != torch.float32:
                return F.linear(x, module.weight, module.bias)
            rows = x.numel() // module.in_features
            if rows > MAX_KERNEL_ROWS:  # a prompt pass: BLAS on the float32 weight, once per utterance
                return F.linear(x, module.weight, module.bias)
            y = linear_bf16(x.reshape(rows, module.in_features).contiguous(), compact)
            if module.bias is not None:
                y = y + module.bias
            return y.view(*x.shape[:-1], module.out_features)

        return forward

    @contextlib.contextmanager
    def active(self):
        previous = getattr(_state, "on", False)
        _state.on = True
        try:
            yield self
        finally:
            _state.on = previous
