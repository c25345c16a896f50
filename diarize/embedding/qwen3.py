"""The Qwen3-TTS speaker encoder (ECAPA-TDNN without batch norm) as a voicemap embedding backend.

This is the x-vector the Qwen3-TTS generator consumes as its voice prompt, so the numbers must be the ones
qwen-tts computes: the network here has qwen-tts's `Qwen3TTSSpeakerEncoder` parameter names and layer order
(checkpoints load unchanged), and the front end is its `mel_spectrogram` at the settings
`extract_speaker_embedding` uses (24 kHz, n_fft 1024, hop 256, 128 Slaney mels up to 12 kHz, log with a
1e-5 floor). The tests check both against qwen-tts itself. It is written out rather than imported because
importing qwen-tts takes seconds, pulls in transformers and prints to stdout, which a CLI whose stdout is
data cannot afford, and because the diarizer needs the network split at the pooling layer.

Split for the diarizer (see base.py): `frame_features` runs everything up to the multi-layer feature
aggregation once per recording, (frames at 93.75 Hz, 1536 channels); `pool` applies the encoder's own
attentive statistics pooling and final layer to any weighting of those frames. With a 0/1 mask, pooling
sees exactly the selected frames: the global context fed to the attention (mean and standard deviation)
is taken over them and the attention's softmax is restricted to them, as qwen-tts's masked pooling layer
does for padded batches. Non-binary weights enter the statistics as weights and the softmax as
`log(weight)`, which reduces to the mask for 0/1. Note that the squeeze-excitation gates inside the
frame-level network average over the whole input given to `frame_features`; that is the price of
computing frames once per recording (`embed_masked` computes them per window instead).

Output is raw: not L2-normalized (norm about 10 with the real weights), because the generator consumes it
raw; `normalize_for_scoring` tells scorers to normalize before cosine similarity.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import STATS_EPS, EncoderError, SpeakerEncoder, attentive_statistics, pool_frames, pool_rows
from .qwen3_weights import HUB_CHECKPOINTS, EncoderCheckpoint, EncoderConfig, cached_snapshot, locate, read_checkpoint

SAMPLE_RATE = 24000
N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 128
F_MIN = 0.0
F_MAX = 12000.0
LOG_FLOOR = 1e-5  # qwen-tts's dynamic range compression clamps magnitudes here before the log
MAGNITUDE_EPS = 1e-9  # added under the square root of the STFT power, as qwen-tts does


# ---------------------------------------------------------------------------------------------- front end

def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / logstep, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on Slaney's mel scale with Slaney area normalization."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges)
    distance = edges[:, None] - fft_hz[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # each filter has unit area in Hz
    return filters.astype(np.float32)


class LogMel(nn.Module):
    """(batch, num_samples) waveform at 24 kHz -> (batch, num_samples // 256, 128) log-mel frames.

    The signal is reflect-padded by (n_fft - hop) / 2 on each side and framed without centering, so frame
    i covers samples [256 i - 384, 256 i + 640): exactly one frame per 256 samples.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("filters", torch.from_numpy(mel_filterbank()), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        pad = (N_FFT - HOP_LENGTH) // 2
        padded = F.pad(samples[:, None], (pad, pad), mode="reflect")[:, 0]
        spectrum = torch.stft(padded, N_FFT, hop_length=HOP_LENGTH, win_length=N_FFT, window=self.window,
                              center=False, normalized=False, onesided=True, return_complex=True)
        magnitude = torch.sqrt(spectrum.real.square() + spectrum.imag.square() + MAGNITUDE_EPS)
        mel = torch.matmul(self.filters, magnitude)
        return torch.log(torch.clamp(mel, min=LOG_FLOOR)).transpose(1, 2)


# ------------------------------------------------------------------------------------------------ network
# Module and attribute names mirror qwen-tts's so that `speaker_encoder.*` tensors map onto them unchanged.

class _TimeDelay(nn.Module):
    """Dilated 1-d convolution with reflect 'same' padding, then ReLU (a TDNN layer without batch norm)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        if kernel_size == 1:
            # No padding needed; a reflect-mode conv would still copy its whole input through F.pad.
            self.conv = nn.Conv1d(in_channels, out_channels, 1)
        else:
            self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding="same",
                                  padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class _Res2Net(nn.Module):
    """Channels split in `scale` groups; group i > 0 is convolved after adding group i - 1's output."""

    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int):
        super().__init__()
        width = channels // scale
        self.scale = scale
        self.blocks = nn.ModuleList(_TimeDelay(width, width, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.chunk(self.scale, dim=1)
        outputs = [groups[0]]
        previous = None
        for index, block in enumerate(self.blocks, start=1):
            previous = block(groups[index] if previous is None else groups[index] + previous)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, bottleneck, 1)
        self.conv2 = nn.Conv1d(bottleneck, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.conv2(torch.relu(self.conv1(x.mean(dim=2, keepdim=True)))))
        return x * gate


class _SERes2NetBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, scale: int, se_channels: int, kernel_size: int,
                 dilation: int):
        super().__init__()
        self.tdnn1 = _TimeDelay(in_channels, channels, 1, 1)
        self.res2net_block = _Res2Net(channels, scale, kernel_size, dilation)
        self.tdnn2 = _TimeDelay(channels, channels, 1, 1)
        self.se_block = _SqueezeExcite(channels, se_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x))))


class _AttentivePooling(nn.Module):
    """Holds the attention's parameters (`tdnn` over [frames; mean; std], then `conv`); the pooling
    itself is in `Qwen3SpeakerNetwork`, which needs it both batched and masked."""

    def __init__(self, channels: int, attention_channels: int):
        super().__init__()
        self.tdnn = _TimeDelay(channels * 3, attention_channels, 1, 1)
        self.conv = nn.Conv1d(attention_channels, channels, 1)


class Qwen3SpeakerNetwork(nn.Module):
    """ECAPA-TDNN of Qwen3-TTS: (batch, frames, 128) log-mel -> (batch, enc_dim) raw embedding."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        channels, kernels, dilations = config.enc_channels, config.enc_kernel_sizes, config.enc_dilations
        if not len(channels) == len(kernels) == len(dilations) >= 3:
            raise EncoderError(f"encoder config: channels, kernel sizes and dilations must have one entry per layer "
                               f"(got {len(channels)}, {len(kernels)}, {len(dilations)})")
        self.config = config
        self.blocks = nn.ModuleList([_TimeDelay(config.mel_dim, channels[0], kernels[0], dilations[0])])
        for index in range(1, len(channels) - 1):
            self.blocks.append(_SERes2NetBlock(channels[index - 1], channels[index], config.enc_res2net_scale,
                                               config.enc_se_channels, kernels[index], dilations[index]))
        self.mfa = _TimeDelay(channels[-1], channels[-1], kernels[-1], dilations[-1])
        self.asp = _AttentivePooling(channels[-1], config.enc_attention_channels)
        self.fc = nn.Conv1d(channels[-1] * 2, config.enc_dim, 1)

    @property
    def min_frames(self) -> int:
        """Fewest frames the reflect padding of the widest convolution accepts."""
        c = self.config
        return 1 + max(d * (k - 1) // 2 for k, d in zip(c.enc_kernel_sizes, c.enc_dilations))

    def frames(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mel_dim) -> (batch, channels, frames): the features attentive pooling sees."""
        hidden = mel.transpose(1, 2)
        layers = []
        for block in self.blocks:
            hidden = block(hidden)
            layers.append(hidden)
        return self.mfa(torch.cat(layers[1:], dim=1))

    def _attention_weights(self):
        """The first attention layer split by input part: frames, global mean, global std (each (att, C))."""
        weight = self.asp.tdnn.conv.weight[..., 0]
        return weight.chunk(3, dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Whole-input embedding, batched: every frame of every row counts."""
        x = self.frames(mel)
        mean = x.mean(dim=2, keepdim=True)
        std = (x - mean).square().mean(dim=2, keepdim=True).clamp(min=STATS_EPS).sqrt()
        w_frames, w_mean, w_std = self._attention_weights()
        # [x; mean; std] through one 1x1 conv equals the sum of three products; the mean and std parts
        # are constant over time, so they are computed once instead of on tiled copies.
        hidden = (torch.einsum("ac,bct->bat", w_frames, x) + torch.einsum("ac,bct->bat", w_mean, mean)
                  + torch.einsum("ac,bct->bat", w_std, std) + self.asp.tdnn.conv.bias[None, :, None])
        logits = self.asp.conv(torch.tanh(torch.relu(hidden)))
        attention = torch.softmax(logits, dim=2)
        pooled_mean = (attention * x).sum(dim=2)
        pooled_std = (attention * (x - pooled_mean[..., None]).square()).sum(dim=2).clamp(min=STATS_EPS).sqrt()
        return self.fc(torch.cat([pooled_mean, pooled_std], dim=1)[..., None])[..., 0]

    def pool(self, features: torch.Tensor, weights: torch.Tensor, block: int = 512) -> torch.Tensor:
        """(frames, channels), (segments, frames) non-negative -> (segments, enc_dim).

        Each row pools only the frames it weights above zero; a row of zeros gives a zero vector.
        """
        w_frames, _, _ = self._attention_weights()
        projected = features @ w_frames.T  # shared by every segment; the diarizer's segments overlap
        stats, used = pool_rows(features, projected, weights, lambda x, h, w: self._pooled_statistics(x, h, w, block))
        out = stats @ self.fc.weight[..., 0].T + self.fc.bias
        return out * used[:, None].to(out.dtype)

    def _pooled_statistics(self, x: torch.Tensor, projected: torch.Tensor, weight: torch.Tensor,
                           block: int) -> torch.Tensor:
        """Attentive mean and std of frames x (n, C) with positive weights (n,) -> (2 C,)
        (base.attentive_statistics; this attention is relu, tanh); the tests hold it to qwen-tts's direct
        computation."""
        _, w_mean, w_std = self._attention_weights()
        return attentive_statistics(x, projected, weight, w_mean, w_std, self.asp.tdnn.conv.bias,
                                    lambda pre: pre.relu_().tanh_(), self.asp.conv.weight[..., 0],
                                    self.asp.conv.bias, block)


# ---------------------------------------------------------------------------------------------- backend

class Qwen3Encoder(SpeakerEncoder):
    """A Qwen3-TTS speaker encoder with loaded weights. Build it with `from_name`, `from_weights` or
    `from_checkpoint`; `encoder_id` carries the embedding size and a fingerprint of the weights, so the
    same weights read from any layout give comparable vectors and different weights never do."""

    sample_rate = SAMPLE_RATE
    frame_rate = SAMPLE_RATE / HOP_LENGTH
    normalize_for_scoring = True

    def __init__(self, checkpoint: EncoderCheckpoint, *, device: str = "cpu", name: str | None = None):
        if checkpoint.config.sample_rate != SAMPLE_RATE or checkpoint.config.mel_dim != N_MELS:
            raise EncoderError(f"{checkpoint.source}: encoder expects {checkpoint.config.sample_rate} Hz and "
                               f"{checkpoint.config.mel_dim} mels; only 24000 Hz with 128 mels is supported")
        self.config = checkpoint.config
        self.dimension = checkpoint.config.enc_dim
        self.source = checkpoint.source
        self.layout = checkpoint.layout
        self.name = name or checkpoint.source
        self.encoder_id = f"qwen3-tts-{self.dimension}d-{checkpoint.fingerprint()}"
        self.device = device
        # A reloadable path keeps pickles small for worker processes; in-memory weights travel as they are.
        self._reload_from = checkpoint.source if os.path.exists(checkpoint.source) else None
        self._state = None if self._reload_from else checkpoint.state_dict
        self._network = self._build(checkpoint.state_dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(cls, checkpoint: EncoderCheckpoint, *, device: str = "cpu") -> "Qwen3Encoder":
        return cls(checkpoint, device=device)

    @classmethod
    def from_weights(cls, spec: str | os.PathLike, *, device: str = "cpu") -> "Qwen3Encoder":
        """From a Base checkpoint folder, a standalone encoder folder, a .safetensors file, or a hub id."""
        return cls(read_checkpoint(locate(spec)), device=device, name=str(spec))

    @classmethod
    def from_name(cls, size: str, *, weights: str | os.PathLike | None = None, device: str = "cpu",
                  cache_dir: str | os.PathLike | None = None) -> "Qwen3Encoder":
        """`size` '0.6b' or '1.7b'. Without `weights`, the matching Base checkpoint is taken from the
        Hugging Face cache only (never downloaded); with `weights`, from that path or hub id."""
        key = str(size).lower()
        if key not in HUB_CHECKPOINTS:
            raise EncoderError(f"qwen3-{size}: unknown size; use one of {', '.join(HUB_CHECKPOINTS)}")
        repo_id, expected = HUB_CHECKPOINTS[key]
        if weights is None:
            folder = cached_snapshot(repo_id, cache_dir=cache_dir, label=f"qwen3-{key}")
        else:
            folder = locate(weights)
        encoder = cls(read_checkpoint(folder), device=device, name=f"qwen3-{key}")
        if encoder.dimension != expected:
            raise EncoderError(f"qwen3-{key}: weights at {encoder.source} give {encoder.dimension}-d embeddings, "
                               f"not the {expected}-d of the {key} checkpoints")
        return encoder

    def _build(self, state: dict) -> Qwen3SpeakerNetwork:
        network = Qwen3SpeakerNetwork(self.config)
        expected = network.state_dict()
        for key, tensor in state.items():
            if key not in expected:
                raise EncoderError(f"{self.source}: unexpected speaker-encoder tensor {key!r}")
            if tuple(tensor.shape) != tuple(expected[key].shape):
                raise EncoderError(f"{self.source}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                                   f"expected {tuple(expected[key].shape)}")
        missing = sorted(set(expected) - set(state))
        if missing:
            raise EncoderError(f"{self.source}: speaker-encoder tensor {missing[0]!r} is missing")
        network.load_state_dict(state)
        self.log_mel = LogMel().to(self.device)
        return network.eval().to(self.device)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_network"] = None
        state["log_mel"] = None
        return state

    @property
    def network(self) -> Qwen3SpeakerNetwork:
        if self._network is None:
            weights = read_checkpoint(self._reload_from).state_dict if self._reload_from else self._state
            self._network = self._build(weights)
        return self._network

    @property
    def min_samples(self) -> int:
        return self.network.min_frames * HOP_LENGTH

    # ------------------------------------------------------------------ protocol
    def mel(self, samples: np.ndarray) -> torch.Tensor:
        """(num_samples,) at 24 kHz -> (1, num_samples // 256, 128) log-mel on the encoder's device."""
        waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None].to(self.device)
        self.network  # noqa: B018 - makes sure the front end exists after unpickling
        return self.log_mel(waveform)

    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise EncoderError(f"qwen3 encoder: expected a 1-d waveform, got shape {samples.shape}")
        channels = self.config.enc_channels[-1]
        if len(samples) < self.min_samples:
            return np.zeros((0, channels), dtype=np.float32)
        with torch.inference_mode():
            frames = self.network.frames(self.mel(samples))
        return frames[0].T.contiguous().float().cpu().numpy()

    def pool(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return pool_frames(self.network, features, weights, self.device, "qwen3 encoder")

    def embed(self, samples: np.ndarray) -> np.ndarray:
        if len(samples) < self.min_samples:
            raise EncoderError(f"{self.name}: input of {len(samples) / SAMPLE_RATE:.3f} s is shorter than the "
                               f"encoder's minimum of {self.min_samples / SAMPLE_RATE:.3f} s")
        return super().embed(samples)
