"""The speaker-encoder protocol every embedding backend implements.

An encoder is split in two so that a recording's expensive frame-level pass is done once and then
pooled many times (one pooling per chunk and local speaker):

- `frame_features(samples)`: (num_frames, channels) frame-level features of a waveform at the
  encoder's own `sample_rate`, `frame_rate` frames per second;
- `pool(features, weights)`: (num_segments, dimension) raw embeddings, one per row of `weights`
  (num_segments, num_frames), a non-negative frame weighting (a 0/1 mask in practice).

`embed` is the whole-utterance embedding: `pool` with an all-ones weight row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class EncoderError(RuntimeError):
    """A backend that cannot be loaded or used; the message is one line."""


class SpeakerEncoder(ABC):
    #: stable identifier of the encoder and its weights; vectors of different ids are never compared
    encoder_id: str
    #: sample rate the encoder expects; callers resample at its door
    sample_rate: int
    #: size of one embedding
    dimension: int
    #: frame-level features per second of audio
    frame_rate: float
    #: True when the raw output is meant to be L2-normalized before cosine scoring
    normalize_for_scoring: bool = True

    @abstractmethod
    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        """(num_samples,) float32 at `sample_rate` -> (num_frames, channels) float32."""

    @abstractmethod
    def pool(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(num_frames, channels), (num_segments, num_frames) -> (num_segments, dimension) raw embeddings."""

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """(num_samples,) -> (dimension,) raw embedding of the whole input."""
        features = self.frame_features(samples)
        return self.pool(features, np.ones((1, len(features)), dtype=np.float32))[0]

    def embed_masked(self, waveforms: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Batch embed with frame masks.

        waveforms: (batch, num_samples) at `sample_rate`; masks: (batch, num_mask_frames) weights spread
        evenly over each waveform (resampled to the encoder's frames). Returns (batch, dimension).
        """
        out = np.zeros((len(waveforms), self.dimension), dtype=np.float32)
        for index, (samples, mask) in enumerate(zip(waveforms, masks)):
            features = self.frame_features(samples)
            out[index] = self.pool(features, resample_weights(mask, len(features))[None])[0]
        return out


def pool_frames(network, features: np.ndarray, weights: np.ndarray, device, label: str) -> np.ndarray:
    """(num_frames, channels) frame features and (num_spans, num_frames) non-negative frame weights ->
    (num_spans, dimension) embeddings through `network.pool` (a module's masked statistics pooling)."""
    import torch

    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] != len(features):
        raise EncoderError(f"{label}: weights of shape {weights.shape} do not match {len(features)} frames")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise EncoderError(f"{label}: frame weights must be finite and non-negative")
    with torch.inference_mode():
        out = network.pool(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device),
                           torch.from_numpy(weights).to(device))
    return out.float().cpu().numpy()


def pool_rows(features, projected, weights, statistics):
    """Masked pooling over frames, row by row: features (frames, channels) and projected (frames, k) torch
    tensors, weights (segments, frames) non-negative; `statistics(x, h, w)` pools the frames a row weights
    above zero -> ((segments, 2 * channels) statistics, (segments,) bool: rows that had any frame)."""
    import torch

    stats = features.new_zeros((len(weights), 2 * features.shape[1]))
    used = torch.zeros(len(weights), dtype=torch.bool, device=features.device)
    for row, weight in enumerate(weights):
        support = torch.nonzero(weight > 0).flatten()
        if len(support) == 0:
            continue
        used[row] = True
        first, last = int(support[0]), int(support[-1]) + 1
        if last - first == len(support):  # a contiguous run: views instead of gathered copies
            x, h, w = features[first:last], projected[first:last], weight[first:last]
        else:
            x, h, w = features[support], projected[support], weight[support]
        stats[row] = statistics(x, h, w)
    return stats, used


#: variance floor of the attentive statistics pooling
STATS_EPS = 1e-12


def attentive_statistics(x, projected, weight, w_mean, w_std, context_bias, hidden_of, conv_weight, conv_bias,
                         block: int):
    """Attentive mean and std of frames x (n, C) with positive weights (n,) -> (2 C,), the pooling of ECAPA-style
    encoders: the attention sees each frame's projection `projected` (n, k) plus a context made of the weighted
    mean and std (w_mean, w_std: (k, C), context_bias (k,)), through `hidden_of` (the model's activation, in
    place) and a 1x1 convolution (conv_weight (C, k), conv_bias (C,)).

    The softmax over time runs through the frames in blocks with a running per-channel maximum (sums rescaled
    when it grows), so memory stays at one block whatever the span's length and every intermediate stays in
    cache; moments are taken around the plain weighted mean, which keeps E[d^2] - E[d]^2 free of cancellation.
    """
    import torch

    share = weight / weight.sum()
    centre = share @ x
    variance = x.new_zeros(x.shape[1])
    for start in range(0, len(x), block):
        variance += share[start:start + block] @ (x[start:start + block] - centre).square_()
    std = variance.clamp(min=STATS_EPS).sqrt()
    context = w_mean @ centre + w_std @ std + context_bias
    log_weight = None if bool((weight == 1).all()) else torch.log(weight)
    top = torch.full_like(centre, -torch.inf)
    total = torch.zeros_like(centre)
    first = torch.zeros_like(centre)
    second = torch.zeros_like(centre)
    for start in range(0, len(x), block):
        stop = start + block
        # in place where possible: at this size, allocating and writing temporaries costs more than the math
        hidden = hidden_of(projected[start:stop] + context)
        logits = torch.addmm(conv_bias, hidden, conv_weight.T)
        if log_weight is not None:
            logits += log_weight[start:stop, None]
        new_top = torch.maximum(top, logits.max(dim=0).values)
        rescale = torch.exp(top - new_top)
        top = new_top
        scores = logits.sub_(top).exp_()
        deviation = x[start:stop] - centre
        total = total * rescale + scores.sum(dim=0)
        weighted = scores.mul_(deviation)
        first = first * rescale + weighted.sum(dim=0)
        second = second * rescale + weighted.mul_(deviation).sum(dim=0)
    offset = first / total
    pooled_std = (second / total - offset.square()).clamp(min=STATS_EPS).sqrt()
    return torch.cat([centre + offset, pooled_std])


def resample_weights(weights: np.ndarray, num_frames: int) -> np.ndarray:
    """(..., n) frame weights spread over the same span -> (..., num_frames) by nearest frame centre."""
    n = weights.shape[-1]
    if n == num_frames:
        return weights.astype(np.float32, copy=False)
    centres = (np.arange(num_frames) + 0.5) * n / num_frames
    index = np.clip(centres.astype(np.int64), 0, n - 1)
    return weights[..., index].astype(np.float32, copy=False)
