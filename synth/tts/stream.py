"""Streaming: codec frames become audio as they arrive, with the 12 Hz codec decoder run incrementally.

The codec decoder (codes -> 24 kHz waveform, 1920 samples per frame) is causal end to end: causal
convolutions, transposed convolutions trimmed on the right, and a sliding-window (72 frames) transformer.
Re-decoding a window of past frames for every chunk would need hundreds of frames of context to be exact
(eight attention layers each look 72 frames back). Instead we keep the decoder's state between chunks:

- causal convolution: the last (kernel - 1) * dilation input samples, prepended to the next chunk;
- transposed convolution (kernel 2r, stride r): the r output samples that the next input still adds to;
- transformer: its key/value cache (transformers' sliding-window DynamicCache) and position counter.

Each frame's audio is therefore final as soon as the frame is decoded, and the concatenated chunks equal a
one-shot decode of all frames up to float rounding (the same sums, grouped differently at chunk edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


class StreamingCodecDecoder:
    """Incremental decoding with qwen-tts's `Qwen3TTSTokenizerV2Decoder` weights: push frames, get their audio."""

    def __init__(self, decoder):
        self.decoder = decoder  # Qwen3TTSTokenizerV2Decoder (speech_tokenizer.model.decoder)
        self.samples_per_frame = int(decoder.total_upsample)
        self.reset()

    def reset(self) -> None:
        from transformers.cache_utils import DynamicCache

        self._conv_state: dict[int, torch.Tensor] = {}
        self._carry: dict[int, torch.Tensor] = {}
        self._cache = DynamicCache(config=self.decoder.pre_transformer.config)
        self._frames = 0

    # -- stateful versions of the decoder's two convolution kinds ------------------------------------------

    def _conv(self, module, x: torch.Tensor) -> torch.Tensor:
        """Qwen3TTSTokenizerV2CausalConvNet (stride 1): left context comes from the previous chunk."""
        history = module.padding
        if history:
            state = self._conv_state.get(id(module))
            if state is None:  # the one-shot decoder pads the start of the stream with zeros
                state = x.new_zeros(x.shape[0], x.shape[1], history)
            x = torch.cat((state, x), dim=-1)
            self._conv_state[id(module)] = x[..., -history:]
        return module.conv(x)

    def _transposed(self, module, x: torch.Tensor) -> torch.Tensor:
        """Qwen3TTSTokenizerV2CausalTransConvNet: keep the overlap tail until the next chunk adds to it."""
        conv = module.conv
        stride = conv.stride[0]
        raw = F.conv_transpose1d(x, conv.weight, None, stride=stride)
        overlap = raw.shape[-1] - x.shape[-1] * stride
        carry = self._carry.get(id(module))
        if carry is not None:
            raw = torch.cat((raw[..., :overlap] + carry, raw[..., overlap:]), dim=-1)
        if overlap:
            self._carry[id(module)] = raw[..., -overlap:]
            raw = raw[..., :-overlap]
        return raw + conv.bias.view(1, -1, 1) if conv.bias is not None else raw

    # -- the decoder's blocks, in its order ------------------------------------------------------------------

    def _convnext(self, block, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self._conv(block.dwconv, x).permute(0, 2, 1)
        x = block.pwconv2(block.act(block.pwconv1(block.norm(x))))
        return residual + (block.gamma * x).permute(0, 2, 1)

    def _residual_unit(self, unit, x: torch.Tensor) -> torch.Tensor:
        y = self._conv(unit.conv1, unit.act1(x))
        return x + self._conv(unit.conv2, unit.act2(y))

    def _decoder_block(self, block, x: torch.Tensor) -> torch.Tensor:
        snake, upsample, *units = block.block
        x = self._transposed(upsample, snake(x))
        for unit in units:
            x = self._residual_unit(unit, x)
        return x

    @torch.no_grad()
    def push(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (frames, 16) long for the next frames -> (frames * samples_per_frame,) float waveform."""
        decoder = self.decoder
        codes = codes.to(next(decoder.parameters()).device).clamp(min=0)
        hidden = decoder.quantizer.decode(codes.t().unsqueeze(0))  # per frame: codebook sums and 1x1 convs
        hidden = self._conv(decoder.pre_conv, hidden).transpose(1, 2)
        count = hidden.shape[1]
        positions = torch.arange(self._frames, self._frames + count, device=hidden.device)
        hidden = decoder.pre_transformer(inputs_embeds=hidden, past_key_values=self._cache, use_cache=True,
                                         cache_position=positions).last_hidden_state
        self._frames += count
        hidden = hidden.permute(0, 2, 1)
        for transposed, convnext in decoder.upsample:
            hidden = self._convnext(convnext, self._transposed(transposed, hidden))
        first, *blocks, snake, last = decoder.decoder
        hidden = self._conv(first, hidden)
        for block in blocks:
            hidden = self._decoder_block(block, hidden)
        wav = self._conv(last, snake(hidden))
        return wav.clamp(min=-1, max=1)[0, 0]


@dataclass
class AudioChunk:
    """Audio for newly finished frames. codes: (n, 16); audio: float32 samples at sample_rate; index from 0."""

    index: int
    codes: torch.Tensor
    audio: np.ndarray
    sample_rate: int
    final: bool = False


def chunk_audio(frames, decoder: StreamingCodecDecoder, sample_rate: int, *, first_chunk_frames: int = 2,
                chunk_frames: int = 8):
    """Group a frame iterator into AudioChunks: the first after `first_chunk_frames` frames (low latency),
    then every `chunk_frames` (fewer, larger decoder calls); the last chunk holds whatever remains."""
    if first_chunk_frames < 1 or chunk_frames < 1:
        raise ValueError("first_chunk_frames and chunk_frames must be at least 1")
    decoder.reset()
    pending: list[torch.Tensor] = []
    index = 0
    target = first_chunk_frames

    def emit(final: bool) -> AudioChunk:
        codes = torch.stack(pending)
        audio = decoder.push(codes).float().cpu().numpy()
        return AudioChunk(index=index, codes=codes, audio=audio, sample_rate=sample_rate, final=final)

    for frame in frames:
        pending.append(frame)
        if len(pending) >= target:
            yield emit(False)
            pending, index, target = [], index + 1, chunk_frames
    if pending:
        yield emit(True)
    elif index:
        yield AudioChunk(index=index, codes=torch.zeros(0, 16, dtype=torch.long),
                         audio=np.zeros(0, dtype=np.float32), sample_rate=sample_rate, final=True)
