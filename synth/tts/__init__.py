"""The Qwen3-TTS generation core: speech from any speaker vector, with our own cached decoding loop.

    from synth.tts import Synthesizer
    tts = Synthesizer.load("Qwen/Qwen3-TTS-12Hz-0.6B-Base")      # or a local checkpoint folder
    wav, sr = tts.synthesize("Hello.", vector)                    # vector: (tts.speaker_dim,) array
    for chunk in tts.stream("Hello.", vector): play(chunk.audio)  # audio as codec frames arrive

Heavy imports (qwen-tts, transformers) happen on first use, not at import.
"""

from __future__ import annotations

from .loading import TTSModelError, checkpoint_folder, load_tts, read_base_config
from .prompt import VoiceVectorError
from .sampling import SamplingParams

__all__ = [
    "AudioChunk", "SamplingParams", "Synthesizer", "TTSModelError", "VoiceVectorError",
    "checkpoint_folder", "load_tts", "read_base_config",
]


def __getattr__(name):
    if name == "Synthesizer":
        from .synthesizer import Synthesizer

        return Synthesizer
    if name == "AudioChunk":
        from .stream import AudioChunk

        return AudioChunk
    raise AttributeError(name)
