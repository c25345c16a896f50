"""Our decoding loop for the Qwen3-TTS talker and code predictor, frame by frame, with pre-allocated caches.

One codec frame = 16 tokens. The talker (a 28-layer decoder for the 0.6B) predicts the first codebook from
the text and everything spoken so far; the code predictor (a small 5-layer decoder) then predicts codebooks
2..16 one after another from the talker's last hidden state. qwen-tts drives both through transformers'
`generate()`, which re-creates a cache, logits processors and stopping criteria for every one of the
15-token code-predictor runs, and grows its caches by concatenation. This loop instead:

- allocates each model's key/value buffers once per utterance (`StaticKV`) and writes in place;
- precomputes the rotary tables once;
- calls qwen-tts's own decoder layers directly (same weights, same kernels), with attention over exactly
  the filled part of the cache, so every step computes what the reference computes, bit for bit (unless
  `compact` weights are given: then the same float32 products are summed in another order, see compact.py);
- yields each frame as soon as its 16 tokens exist, which is what streaming needs.

Shapes follow the reference on purpose (the prompt in one pass, the code predictor's two-position start,
heads applied to every position the reference applies them to), because a matrix product over a different
number of rows may round differently and flip a near-tie in greedy decoding.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch

from .compact import CompactLinears
from .prompt import Prompt
from .sampling import SamplingParams, TalkerSampler, pick_residual


class StaticKV:
    """Key/value buffers for every layer of one decoder, allocated once; the `Cache` subset attention uses.

    qwen-tts's attention layers call `update(key, value, layer_idx, cache_kwargs)` and attend over what it
    returns. We write the new positions in place and return views over the filled prefix, so no step
    allocates or copies the cache, and attention reduces over exactly the positions the reference sees.
    """

    def __init__(self, layers: int, kv_heads: int, head_dim: int, capacity: int, dtype, device):
        shape = (layers, 1, kv_heads, capacity, head_dim)
        # empty, not zeros: only written positions are ever read, and a large untouched CPU buffer costs no
        # physical memory until written (capacity covers max_new_tokens, often thousands of frames)
        self.keys = torch.empty(shape, dtype=dtype, device=device)
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.capacity = capacity
        self.start = 0  # first position written by the current forward pass
        self.length = 0

    def fits(self, layers: int, kv_heads: int, head_dim: int, capacity: int, dtype, device) -> bool:
        return (self.keys.shape[0] == layers and self.keys.shape[2] == kv_heads and self.keys.shape[4] == head_dim
                and self.capacity >= capacity and self.keys.dtype == dtype and self.keys.device == torch.device(device))

    def begin(self, start: int, count: int) -> None:
        if start + count > self.capacity:
            raise RuntimeError(f"KV cache overflow: {start + count} positions > capacity {self.capacity}")
        self.start = start
        self.length = start + count

    def update(self, key_states, value_states, layer_idx, cache_kwargs=None):
        end = self.start + key_states.shape[-2]
        self.keys[layer_idx, :, :, self.start:end].copy_(key_states)
        self.values[layer_idx, :, :, self.start:end].copy_(value_states)
        return self.keys[layer_idx, :, :, :end], self.values[layer_idx, :, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length


def _kv_shape(config) -> tuple[int, int, int]:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers, config.num_key_value_heads, head_dim


class _Stack:
    """One decoder (talker or code predictor): its layers, final norm, rotary table and cache."""

    def __init__(self, model, rotary_positions: int):
        self.model = model  # Qwen3TTSTalkerModel or Qwen3TTSTalkerCodePredictorModel
        self.config = model.config
        self.multimodal = self.model.rotary_emb.__class__.__name__ == "Qwen3TTSTalkerRotaryEmbedding"
        self.cache: StaticKV | None = None
        self.cos = self.sin = None
        self.positions = torch.zeros(0, dtype=torch.long)
        self._ensure_rotary(rotary_positions)
        self.eager = (self.config._attn_implementation or "eager") == "eager"
        self.calls = list(self.model.layers)  # what forward() runs per layer: the modules, or compiled wrappers

    def compile(self) -> None:
        """Regional compilation: one compiled wrapper per decoder layer (the modules themselves stay untouched,
        so qwen-tts's own generate() on the same model keeps running eagerly)."""
        self.calls = [torch.compile(layer, dynamic=True) for layer in self.model.layers]

    def _ensure_rotary(self, count: int) -> None:
        if self.positions.numel() >= count:
            return
        weight = next(self.model.parameters())
        positions = torch.arange(count, device=weight.device)
        probe = torch.zeros(1, dtype=weight.dtype, device=weight.device)
        # the rotary module maps positions to cos/sin elementwise, so a table sliced per step holds the very
        # values a per-step call would produce
        if self.multimodal:  # talker: M-RoPE with three identical position rows for pure text/codec input
            self.cos, self.sin = self.model.rotary_emb(probe, positions.view(1, 1, -1).expand(3, 1, -1))
        else:
            self.cos, self.sin = self.model.rotary_emb(probe, positions.view(1, -1))
        self.positions = positions

    def reserve(self, capacity: int) -> None:
        weight = next(self.model.parameters())
        shape = _kv_shape(self.config)
        self._ensure_rotary(capacity)
        if self.cache is None or not self.cache.fits(*shape, capacity, weight.dtype, weight.device):
            self.cache = StaticKV(*shape, capacity, weight.dtype, weight.device)

    def _mask(self, start: int, count: int, like: torch.Tensor):
        """None where attention needs none: one new position (it sees the whole filled cache), or a fresh
        multi-position pass under sdpa/flash (their causal flag). Otherwise an additive causal mask, as
        transformers builds it for eager attention (sdpa's causal flag would misalign after `start` > 0)."""
        if count == 1 or (start == 0 and not self.eager):
            return None
        total = start + count
        rows = torch.arange(start, total, device=like.device).view(-1, 1)
        cols = torch.arange(total, device=like.device).view(1, -1)
        mask = torch.zeros(count, total, dtype=like.dtype, device=like.device)
        return mask.masked_fill(cols > rows, torch.finfo(like.dtype).min).view(1, 1, count, total)

    def forward(self, hidden: torch.Tensor, start: int) -> torch.Tensor:
        """Run positions [start, start + n) of (1, n, H) inputs through every layer; returns the normed output."""
        count = hidden.shape[1]
        self.cache.begin(start, count)
        cache_position = self.positions[start:start + count]
        if self.multimodal:
            cos, sin = self.cos[:, :, start:start + count], self.sin[:, :, start:start + count]
        else:
            cos, sin = self.cos[:, start:start + count], self.sin[:, start:start + count]
        mask = self._mask(start, count, hidden)
        position_ids = cache_position.view(1, -1)
        for layer in self.calls:
            hidden = layer(hidden, attention_mask=mask, position_ids=position_ids, past_key_values=self.cache,
                           use_cache=True, cache_position=cache_position, position_embeddings=(cos, sin))[0]
        return self.model.norm(hidden)


@dataclass
class DecodeStats:
    frames: int = 0
    stopped_by_eos: bool = False


class FrameDecoder:
    """Generates codec frames for a prompt with our cached loop; reusable across utterances.

    `frames(prompt, params)` yields one (16,) long tensor per frame as soon as it is complete.
    `compact`: bfloat16 copies of the talker's weights to multiply with (synth/tts/compact.py), or None.
    """

    def __init__(self, model, compact: CompactLinears | None = None):
        self.model = model  # Qwen3TTSForConditionalGeneration
        self.compact = compact
        self.talker = model.talker
        self.predictor = model.talker.code_predictor
        self.groups = int(model.config.talker_config.num_code_groups)
        self.talker_stack = _Stack(self.talker.model, 256)
        self.predictor_stack = _Stack(self.predictor.model, self.groups + 1)
        self.predictor_stack.reserve(self.groups + 1)
        self.stats = DecodeStats()
        hidden = self.talker.config.hidden_size
        weight = next(self.talker.parameters())
        # per-frame scratch buffers, reused for every frame
        self._frame_embeds = torch.zeros(1, self.groups, hidden, dtype=weight.dtype, device=weight.device)

    def compile(self) -> None:
        self.talker_stack.compile()
        self.predictor_stack.compile()

    def _weights(self):
        """Where the compact weights apply: around each computation, never across a `yield`, so code the
        consumer runs between frames (qwen-tts's generate() on the same model, say) sees the plain layers."""
        return self.compact.active() if self.compact is not None else contextlib.nullcontext()

    @torch.no_grad()
    def _residuals(self, past_hidden: torch.Tensor, first_embed: torch.Tensor, codes: torch.Tensor,
                   params: SamplingParams, generator) -> None:
        """Codebooks 2..16 of one frame into codes[1:], and their embeddings into the frame scratch buffer."""
        predictor = self.predictor
        embeddings = predictor.model.codec_embedding
        stack = self.predictor_stack
        hidden = stack.forward(predictor.small_to_mtp_projection(torch.cat((past_hidden, first_embed), dim=1)), 0)
        logits = predictor.lm_head[0](hidden)  # both positions, as the reference's prefill does
        for step in range(1, self.groups):
            token = pick_residual(logits[:, -1, :].float(), params, generator)
            codes[step] = token[0]
            embed = embeddings[step - 1](token.view(1, 1))
            self._frame_embeds[:, step] = embed[:, 0]
            if step == self.groups - 1:
                break
            hidden = stack.forward(predictor.small_to_mtp_projection(embed), step + 1)
            logits = predictor.lm_head[step](hidden)

    @torch.no_grad()
    def frames(self, prompt: Prompt, params: SamplingParams, generator: torch.Generator | None = None
               ) -> Iterator[torch.Tensor]:
        config = self.model.config.talker_config
        talker = self.talker
        eos = int(config.codec_eos_token_id)
        sampler = TalkerSampler(params, int(config.vocab_size), eos, device=prompt.prefill.device)
        prompt_length = prompt.prefill.shape[1]
        self.talker_stack.reserve(prompt_length + params.max_new_tokens)
        self.stats = DecodeStats()
        trailing_length = prompt.trailing.shape[1]

        with self._weights():
            hidden = self.talker_stack.forward(prompt.prefill, 0)
            logits = talker.codec_head(hidden)  # every prompt position, as the reference computes it
        position = prompt_length
        for step in range(params.max_new_tokens):
            token = sampler(logits[:, -1, :].float(), generator)
            if int(token) == eos:
                self.stats.stopped_by_eos = True
                return
            if step == params.max_new_tokens - 1:
                # the reference stops here too: its last first-codebook token never gets the other 15
                return
            codes = torch.empty(self.groups, dtype=torch.long, device=token.device)
            codes[0] = token[0]
            first_embed = talker.get_input_embeddings()(token.view(1, 1))
            self._frame_embeds[:, 0] = first_embed[:, 0]
            with self._weights():
                self._residuals(hidden[:, -1:, :], first_embed, codes, params, generator)
            self.stats.frames += 1
            yield codes

            step_input = self._frame_embeds.sum(1, keepdim=True)
            if step < trailing_length:
                step_input = step_input + prompt.trailing[:, step].unsqueeze(1)
            else:
                step_input = step_input + prompt.pad
            with self._weights():
                hidden = self.talker_stack.forward(step_input, position)
                logits = talker.codec_head(hidden)
            position += 1
