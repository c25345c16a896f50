"""Speech from any speaker vector: one object that owns a loaded Base checkpoint and our decoding loop."""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import torch

from .compact import CompactLinears
from .decode import FrameDecoder
from .loading import load_tts
from .prompt import Prompt, build_prompt, check_vector, speaker_dim, tokenize
from .reference import reference_codes
from .sampling import SamplingParams
from .stream import AudioChunk, StreamingCodecDecoder, chunk_audio


class Synthesizer:
    """Text + speaker vector -> codec frames -> 24 kHz speech, with qwen-tts's weights and our cached loop.

    One generation at a time per Synthesizer: the decoding loop's caches are reused from one utterance to the
    next (use one Synthesizer per worker thread).

    `compile=True` runs each decoder layer of our loop through `torch.compile` (regional compilation, dynamic
    shapes because the attended cache grows by one position per step). It is off by default: on a 2-core CPU its
    gain per frame was within run-to-run noise for minutes of compilation on a cold cache (docs/tts.md,
    benchmarks/bench_tts.py --compile), and compiled kernels may round differently, so bit-exact parity with
    the reference is promised only without it.

    `compact_weights=True` (the default) keeps a bfloat16 copy of every talker weight that is a bfloat16 value
    held in float32 (a Qwen checkpoint loaded as float32 on a CPU) and multiplies decoding steps with it:
    the same float32 products at half the bytes read, summed in another order (synth/tts/compact.py). It
    changes nothing where no weight qualifies. `False` keeps the loop bit-exact with the reference everywhere.
    With `compile=True` the compiled layers keep the float32 weights (the kernel is opaque to the compiler).
    """

    def __init__(self, tts, *, compile: bool = False, compact_weights: bool = True):
        self.tts = tts  # qwen_tts.Qwen3TTSModel: model, processor, generate_defaults
        self.model = tts.model
        compact = CompactLinears.of(self.model.talker) if compact_weights and not compile else None
        self.decoder = FrameDecoder(self.model, compact)
        if compile:
            self.decoder.compile()

    @classmethod
    def load(cls, spec: str | os.PathLike, *, device: str = "cpu", dtype: torch.dtype | None = None,
             compile: bool = False, compact_weights: bool = True) -> "Synthesizer":
        return cls(load_tts(spec, device=device, dtype=dtype), compile=compile, compact_weights=compact_weights)

    @property
    def compact(self) -> CompactLinears | None:
        """The bfloat16 weight copies the loop multiplies with, or None where it reads the float32 weights."""
        return self.decoder.compact

    # -- facts about the checkpoint ---------------------------------------------------------------------------

    @property
    def speaker_dim(self) -> int:
        return speaker_dim(self.model)

    @property
    def sample_rate(self) -> int:
        return int(self.model.speech_tokenizer.get_output_sample_rate())

    @property
    def samples_per_frame(self) -> int:
        return int(self.model.speech_tokenizer.get_decode_upsample_rate())

    def params(self, **overrides) -> SamplingParams:
        """Sampling settings: overrides, else the checkpoint's generate_config.json, else qwen-tts's defaults."""
        return SamplingParams.merged(self.tts.generate_defaults, **overrides)

    def prompt(self, text: str, vector, *, language: str = "auto", non_streaming_mode: bool = False,
               label: str = "speaker vector") -> Prompt:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text: empty, nothing to say")
        checked = check_vector(vector, self.model, label)
        ids = tokenize(self.tts.processor, text, self.model.talker.device)
        return build_prompt(self.model, ids, checked, language, non_streaming_mode)

    # -- generation ----------------------------------------------------------------------------------------------

    def frames(self, text: str, vector, *, language: str = "auto", non_streaming_mode: bool = False,
               generator: torch.Generator | None = None, **sampling) -> Iterator[torch.Tensor]:
        """(16,) codec frames, each as soon as it is complete."""
        prompt = self.prompt(text, vector, language=language, non_streaming_mode=non_streaming_mode)
        return self.decoder.frames(prompt, self.params(**sampling), generator)

    def codes(self, text: str, vector, **options) -> torch.Tensor:
        """(frames, 16) codec tokens for the whole utterance."""
        frames = list(self.frames(text, vector, **options))
        if not frames:
            return torch.zeros(0, self.model.config.talker_config.num_code_groups, dtype=torch.long)
        return torch.stack(frames)

    def reference_codes(self, text: str, vector, *, language: str = "auto", non_streaming_mode: bool = False,
                        **sampling) -> torch.Tensor:
        """The same request through qwen-tts's own generate(): the yardstick for parity and speed."""
        checked = check_vector(vector, self.model)
        return reference_codes(self.tts, text, checked, self.params(**sampling), language=language,
                               non_streaming_mode=non_streaming_mode)

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """(frames, 16) codes -> float32 waveform with qwen-tts's one-shot codec decode."""
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        wavs, _ = self.model.speech_tokenizer.decode([{"audio_codes": codes}])
        return wavs[0].astype(np.float32, copy=False)

    def synthesize(self, text: str, vector, **options) -> tuple[np.ndarray, int]:
        """Waveform (float32, mono) and its sample rate."""
        return self.decode(self.codes(text, vector, **options)), self.sample_rate

    def stream(self, text: str, vector, *, first_chunk_frames: int = 2, chunk_frames: int = 8,
               **options) -> Iterator[AudioChunk]:
        """AudioChunks as frames arrive; concatenated, they equal `synthesize` up to float rounding."""
        frames = self.frames(text, vector, **options)  # validates inputs before the first chunk is awaited
        codec = StreamingCodecDecoder(self.model.speech_tokenizer.model.decoder)  # state only; weights shared
        return chunk_audio(frames, codec, self.sample_rate, first_chunk_frames=first_chunk_frames,
                           chunk_frames=chunk_frames)
