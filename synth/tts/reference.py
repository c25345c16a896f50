"""qwen-tts's own generation path for an x-vector-only prompt: the yardstick for parity tests and benchmarks.

This is what `Qwen3TTSModel.generate_voice_clone(..., x_vector_only_mode=True)` runs after it has computed a
speaker embedding from reference audio; here the embedding is the caller's vector instead.
"""

from __future__ import annotations

import torch

from .prompt import tokenize
from .sampling import SamplingParams


@torch.no_grad()
def reference_codes(tts, text: str, vector: torch.Tensor, params: SamplingParams, *, language: str = "auto",
                    non_streaming_mode: bool = False) -> torch.Tensor:
    """(frames, 16) codec tokens from qwen-tts's `generate()` for a checked (H,) vector."""
    model = tts.model
    prompt = dict(ref_code=[None], ref_spk_embedding=[vector], x_vector_only_mode=[True], icl_mode=[False])
    codes, _ = model.generate(
        input_ids=[tokenize(tts.processor, text, model.talker.device)],
        voice_clone_prompt=prompt,
        languages=[language],
        non_streaming_mode=non_streaming_mode,
        **params.reference_kwargs(),
    )
    return codes[0]
