"""The talker's input for one utterance: text plus a speaker vector in the x-vector-only layout of qwen-tts.

Layout of the prefill (one row per position, each row the sum of a text-side and a codec-side embedding):

    <|im_start|> assistant \n           projected text embeddings only
    tts_pad + codec control tokens      "nothink, think_bos, think_eos" (language auto) or
                                        "think, think_bos, <language>, think_eos"
    tts_pad + SPEAKER VECTOR            the slot where qwen-tts puts its speaker encoder's output
    tts_bos + codec_pad
    first text token + codec_bos        (streaming text; non-streaming: every text token and tts_eos over
                                        codec_pad, then tts_pad + codec_bos)

In streaming-text mode (qwen-tts's default for voice cloning) the remaining text tokens, then tts_eos, are fed
one per generated frame ("trailing text"); in non-streaming mode the whole text sits in the prefill.
The vector is used as given: enrolled, edited or mixed vectors all go in the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class VoiceVectorError(ValueError):
    """One line: the speaker vector, and why the model cannot take it."""


@dataclass
class Prompt:
    """prefill: (1, L, H) talker inputs; trailing: (1, T, H) text fed one per frame; pad: (1, 1, H) after that."""

    prefill: torch.Tensor
    trailing: torch.Tensor
    pad: torch.Tensor


def speaker_dim(model) -> int:
    """Length of the speaker vectors a model takes (its talker width; its encoder's output size)."""
    return int(model.config.talker_config.hidden_size)


def check_vector(vector, model, label: str = "speaker vector") -> torch.Tensor:
    """The vector as a (H,) tensor in the talker's dtype; VoiceVectorError for a wrong size or non-finite values."""
    array = vector.detach().cpu().numpy() if isinstance(vector, torch.Tensor) else np.asarray(vector)
    dim = speaker_dim(model)
    if array.ndim != 1 and not (array.ndim == 2 and 1 in array.shape):
        raise VoiceVectorError(f"{label}: shape {tuple(array.shape)} is not a single vector (expected ({dim},))")
    array = array.reshape(-1)
    if array.shape[0] != dim:
        raise VoiceVectorError(f"{label}: dimension {array.shape[0]} does not match this model's speaker dimension {dim}")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise VoiceVectorError(f"{label}: contains non-numeric, NaN or infinite values")
    talker = model.talker
    return torch.as_tensor(array.astype(np.float32)).to(device=talker.device, dtype=talker.dtype)


def chat_text(text: str) -> str:
    """The assistant-turn framing qwen-tts tokenizes around the text to speak."""
    return f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n"


def tokenize(processor, text: str, device) -> torch.Tensor:
    ids = processor(text=chat_text(text), return_tensors="pt", padding=True)["input_ids"]
    return (ids.unsqueeze(0) if ids.dim() == 1 else ids).to(device)


@torch.no_grad()
def build_prompt(model, input_ids: torch.Tensor, vector: torch.Tensor, language: str = "auto",
                 non_streaming_mode: bool = False) -> Prompt:
    """Talker inputs for chat-framed token ids (1, N) and a checked (H,) vector.

    The arithmetic is grouped as in qwen-tts (same additions, same concatenations), so the prefill is
    bit-identical to the reference's and greedy decoding reproduces its codec tokens exactly.
    """
    config = model.config
    talker_config = config.talker_config
    talker = model.talker
    device = talker.device

    def codec(ids: list[int]) -> torch.Tensor:
        return talker.get_input_embeddings()(torch.tensor([ids], device=device, dtype=input_ids.dtype))

    def text(ids: torch.Tensor) -> torch.Tensor:
        return talker.text_projection(talker.get_text_embeddings()(ids))

    language_key = (language or "auto").lower()
    if language_key == "auto":
        control = [talker_config.codec_nothink_id, talker_config.codec_think_bos_id, talker_config.codec_think_eos_id]
    else:
        languages = talker_config.codec_language_id or {}
        if language_key not in languages:
            known = ", ".join(["auto"] + sorted(k for k in languages if "dialect" not in k))
            raise ValueError(f"language {language!r}: not supported by this checkpoint (known: {known})")
        control = [talker_config.codec_think_id, talker_config.codec_think_bos_id, languages[language_key],
                   talker_config.codec_think_eos_id]

    special = torch.tensor([[config.tts_bos_token_id, config.tts_eos_token_id, config.tts_pad_token_id]],
                           device=device, dtype=input_ids.dtype)
    tts_bos, tts_eos, tts_pad = text(special).chunk(3, dim=1)

    codec_rows = torch.cat([codec(control), vector.view(1, 1, -1),
                            codec([talker_config.codec_pad_id, talker_config.codec_bos_id])], dim=1)
    role = text(input_ids[:, :3])  # <|im_start|> assistant \n
    # every codec row but the last pairs with tts_pad, the last-but-one with tts_bos
    paired = torch.cat((tts_pad.expand(-1, codec_rows.shape[1] - 2, -1), tts_bos), dim=1) + codec_rows[:, :-1]
    prefill = torch.cat((role, paired), dim=1)

    body = input_ids[:, 3:-5]  # the text itself, without the chat framing
    if non_streaming_mode:
        text_rows = torch.cat((text(body), tts_eos), dim=1)
        text_rows = text_rows + codec([talker_config.codec_pad_id] * (body.shape[1] + 1))
        prefill = torch.cat([prefill, text_rows, tts_pad + codec([talker_config.codec_bos_id])], dim=1)
        trailing = tts_pad
    else:
        prefill = torch.cat([prefill, text(input_ids[:, 3:4]) + codec_rows[:, -1:]], dim=1)
        trailing = torch.cat((text(input_ids[:, 4:-5]), tts_eos), dim=1)
    return Prompt(prefill=prefill, trailing=trailing, pad=tts_pad)
