"""Export a Qwen3-TTS speaker encoder to ONNX for browser and edge runtimes, and check it with onnxruntime.

The graph takes log-mel frames, not audio: input `mel` (batch, frames, 128) float32, output `embedding`
(batch, enc_dim) float32, raw (not L2-normalized); batch and frames are dynamic (frames >= the encoder's
minimum). The STFT front end stays outside because ONNX's STFT support differs between runtimes; its exact
settings are written into the model's metadata (`voicemap.*` keys) so that a runtime can reproduce it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import EncoderError
from .qwen3 import F_MAX, F_MIN, HOP_LENGTH, LOG_FLOOR, MAGNITUDE_EPS, N_FFT, N_MELS, SAMPLE_RATE, Qwen3Encoder
from .qwen3_weights import quiet

OPSET = 18
#: what the check accepts: max |onnx - torch| relative to the largest |torch| component
DEFAULT_TOLERANCE = 1e-4


@dataclass
class ExportReport:
    path: str
    encoder_id: str
    dimension: int
    seconds: float
    #: per checked input: (number of mel frames, max abs difference, max abs torch value)
    checks: list[tuple[int, float, float]] = field(default_factory=list)

    @property
    def max_relative_error(self) -> float:
        return max((diff / max(scale, 1e-12) for _, diff, scale in self.checks), default=float("nan"))


def metadata(encoder: Qwen3Encoder) -> dict[str, str]:
    """What a runtime needs to feed the graph: the front end's settings and the meaning of the output."""
    return {
        "voicemap.encoder_id": encoder.encoder_id,
        "voicemap.dimension": str(encoder.dimension),
        "voicemap.output": "raw speaker embedding, not L2-normalized; normalize before cosine scoring",
        "voicemap.input": "log-mel frames (batch, frames, 128) float32",
        "voicemap.front_end": (
            f"mono waveform at {SAMPLE_RATE} Hz, reflect-padded by {(N_FFT - HOP_LENGTH) // 2} samples each side; "
            f"STFT n_fft={N_FFT} hop={HOP_LENGTH} periodic Hann window of {N_FFT}, not centered; "
            f"magnitude sqrt(re^2 + im^2 + {MAGNITUDE_EPS:g}); {N_MELS} Slaney-scale mel filters with Slaney "
            f"normalization, {F_MIN:g}-{F_MAX:g} Hz; log(max(mel, {LOG_FLOOR:g}))"
        ),
        "voicemap.sample_rate": str(SAMPLE_RATE),
        "voicemap.min_frames": str(encoder.network.min_frames),
    }


def _check_signal(seconds: float, seed: int) -> np.ndarray:
    """Deterministic speech-like test signal (noise under a syllable-rate envelope) when no audio is given."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    tone = np.sin(2 * np.pi * (140 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
    return (0.1 * envelope * (tone + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


def export_onnx(encoder: Qwen3Encoder, path: str | os.PathLike, *, check_audio: list[np.ndarray] | None = None,
                tolerance: float = DEFAULT_TOLERANCE, opset: int = OPSET) -> ExportReport:
    """Write `encoder` to `path` as ONNX, then run it with onnxruntime on two inputs of different lengths
    (`check_audio`, 24 kHz waveforms, or built-in test signals of 3 s and 7.3 s) and compare with torch.

    Raises EncoderError when the export fails or the check differs by more than `tolerance` (relative).
    """
    quiet()
    import onnx
    import torch

    if not isinstance(encoder, Qwen3Encoder):
        raise EncoderError(f"{getattr(encoder, 'encoder_id', encoder)}: not a Qwen3-TTS encoder; "
                           "only the Qwen3 encoders can be exported to ONNX")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    network = encoder.network.eval()
    min_frames = network.min_frames
    signals = check_audio if check_audio is not None else [_check_signal(3.0, 0), _check_signal(7.3, 1)]
    mels = [encoder.mel(signal) for signal in signals]
    if any(mel.shape[1] < min_frames for mel in mels):
        raise EncoderError(f"{target}: check audio shorter than {min_frames * HOP_LENGTH / SAMPLE_RATE:.3f} s")
    started = time.perf_counter()
    frames = torch.export.Dim("frames", min=min_frames)
    batch = torch.export.Dim("batch", min=1)
    try:
        # a batch of two as the example: torch.export fixes any axis whose example size is 1
        example = torch.cat([mels[0], mels[0]])
        program = torch.onnx.export(network, (example,), input_names=["mel"], output_names=["embedding"],
                                    dynamic_shapes={"mel": {0: batch, 1: frames}}, dynamo=True,
                                    opset_version=opset, verbose=False)
        program.save(str(target))
    except Exception as error:
        raise EncoderError(f"{target}: ONNX export failed ({str(error).splitlines()[0][:200]})") from error
    model = onnx.load(str(target))
    for key, value in metadata(encoder).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(target))
    report = ExportReport(str(target), encoder.encoder_id, encoder.dimension, time.perf_counter() - started)
    report.checks = check_onnx(target, network, mels)
    if report.max_relative_error > tolerance:
        raise EncoderError(f"{target}: onnxruntime output differs from torch by "
                           f"{report.max_relative_error:.2e} (relative), above {tolerance:.0e}")
    return report


def check_onnx(path: str | os.PathLike, network, mels) -> list[tuple[int, float, float]]:
    """Run the ONNX model and the torch network on each mel (1, frames, 128); (frames, max diff, max |torch|)."""
    quiet()
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    results = []
    for mel in mels:
        with torch.inference_mode():
            expected = network(mel).float().cpu().numpy()
        got = session.run(["embedding"], {"mel": mel.float().cpu().numpy()})[0]
        if got.shape != expected.shape:
            raise EncoderError(f"{path}: onnxruntime output shape {got.shape}, expected {expected.shape}")
        results.append((int(mel.shape[1]), float(np.abs(got - expected).max()), float(np.abs(expected).max())))
    return results
