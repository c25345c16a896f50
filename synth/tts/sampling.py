"""Choosing the next codec token: the reference's sampling parameters, applied in the reference's order.

qwen-tts hands its talker and code predictor to transformers' `generate()`, which turns the parameters into a
chain of logits processors. Codec tokens only match the reference if every step sees the same scores, so
this module applies the same transformations, in the same order, with the same tensor operations:

    talker:          repetition penalty -> end-of-speech barred before `min_new_tokens` -> suppressed ids
                     -> [sampling only] temperature -> top-k -> top-p -> softmax -> multinomial
    code predictor:  [sampling only] temperature -> top-k -> top-p -> softmax -> multinomial
    greedy:          argmax of the processed scores

Sampling draws from torch's global generator (or the one given), one `multinomial` per token in the same
order as the reference, so a fixed seed gives the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

#: qwen-tts's own fallbacks when neither the caller nor the checkpoint's generate_config.json says otherwise
REFERENCE_DEFAULTS = dict(
    do_sample=True, top_k=50, top_p=1.0, temperature=0.9, repetition_penalty=1.05,
    subtalker_dosample=True, subtalker_top_k=50, subtalker_top_p=1.0, subtalker_temperature=0.9,
    max_new_tokens=2048,
)


@dataclass(frozen=True)
class SamplingParams:
    """Generation settings, named as in qwen-tts (`subtalker_*` apply to the code predictor)."""

    do_sample: bool = True
    top_k: int = 50
    top_p: float = 1.0
    temperature: float = 0.9
    repetition_penalty: float = 1.05
    subtalker_dosample: bool = True
    subtalker_top_k: int = 50
    subtalker_top_p: float = 1.0
    subtalker_temperature: float = 0.9
    max_new_tokens: int = 2048
    #: the reference bars end-of-speech for the first two talker tokens
    min_new_tokens: int = 2

    @classmethod
    def merged(cls, checkpoint_defaults: dict | None = None, **overrides) -> "SamplingParams":
        """Caller's values, else the checkpoint's generate_config.json, else qwen-tts's fallbacks."""
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown sampling parameter(s): {', '.join(sorted(unknown))}")
        values = dict(REFERENCE_DEFAULTS)
        values.update({k: v for k, v in (checkpoint_defaults or {}).items() if k in names})
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["repetition_penalty"] = float(values["repetition_penalty"])
        return cls(**values)

    def reference_kwargs(self) -> dict:
        """The same settings as keyword arguments for qwen-tts's `generate()`."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "min_new_tokens"}


def _warp(scores: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """temperature -> top-k -> top-p, each skipped exactly when transformers skips it."""
    if temperature is not None and temperature != 1.0:
        scores = scores / temperature
    if top_k is not None and top_k != 0:
        k = min(max(int(top_k), 1), scores.size(-1))
        scores = scores.masked_fill(scores < torch.topk(scores, k)[0][..., -1, None], -float("inf"))
    if top_p is not None and top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False)
        remove_sorted = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
        remove_sorted[..., -1:] = False  # always keep the most likely token
        scores = scores.masked_fill(remove_sorted.scatter(1, order, remove_sorted), -float("inf"))
    return scores


def _pick(scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    if do_sample:
        return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1, generator=generator).squeeze(1)
    return torch.argmax(scores, dim=-1)


class TalkerSampler:
    """Picks first-codebook tokens; holds the per-utterance state (tokens already produced) in fixed buffers."""

    def __init__(self, params: SamplingParams, vocab_size: int, eos_id: int, device: torch.device | str = "cpu"):
        self.params = params
        self.eos_id = eos_id
        # qwen-tts suppresses the top 1024 ids of the codec vocabulary (control tokens), end-of-speech excepted
        self.suppressed = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.suppressed[vocab_size - 1024:] = True
        self.suppressed[eos_id] = False
        self.eos_mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.eos_mask[eos_id] = True
        self.seen = torch.zeros(1, vocab_size, dtype=torch.bool, device=device)
        self.produced = 0

    def reset(self) -> None:
        self.seen.zero_()
        self.produced = 0

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """logits: (1, vocab) float32 -> (1,) token id."""
        p = self.params
        scores = logits
        if p.repetition_penalty != 1.0 and self.produced:
            penalized = torch.where(scores < 0, scores * p.repetition_penalty, scores / p.repetition_penalty)
            scores = torch.where(self.seen, penalized, scores)
        if self.produced < p.min_new_tokens:
            scores = torch.where(self.eos_mask, -float("inf"), scores)
        scores = torch.where(self.suppressed, -float("inf"), scores)
        if p.do_sample:
            scores = _warp(scores, p.temperature, p.top_k, p.top_p)
        token = _pick(scores, p.do_sample, generator)
        self.seen[0, token] = True
        self.produced += 1
        return token


def pick_residual(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None = None) -> torch.Tensor:
    """One code-predictor token: logits (1, vocab) float32 -> (1,) id, with the `subtalker_*` settings."""
    scores = logits
    if params.subtalker_dosample:
        scores = _warp(scores, params.subtalker_temperature, params.subtalker_top_k, params.subtalker_top_p)
    return _pick(scores, params.subtalker_dosample, generator)
