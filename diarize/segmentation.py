"""Local speaker activity: pyannote segmentation-3.0 over sliding windows, powerset decoded, overlap aware."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Segmentation:
    """Binary activity of up to `num_local` local speakers inside each sliding window.

    activity: (num_chunks, num_frames, num_local) in {0, 1}; local speaker k of chunk c is unrelated
    to local speaker k of another chunk. Chunk c covers [c * step, c * step + duration) seconds;
    frame f of a chunk is centred at `frame_start + f * frame_step` seconds from the chunk's start.
    """

    activity: np.ndarray
    duration: float
    step: float
    frame_step: float
    frame_duration: float
    frame_start: float

    @property
    def num_chunks(self) -> int:
        return self.activity.shape[0]

    def chunk_start(self, chunk: int) -> float:
        return chunk * self.step


def default_step(duration: float) -> float:
    """Window step for a recording of `duration` seconds.

    Short recordings get a dense step: many chunks, hence many embeddings to cluster, at little cost (a 1 s
    step beat 5 s on the shared 90 s conversations, docs/diarization-experiments.md); long ones a 50 %
    overlap, which keeps segmentation cheap, and have chunks enough to cluster anyway.
    """
    if duration < 180:
        return 1.0
    return 2.5 if duration < 480 else 5.0


class Segmenter:
    """Runs segmentation-3.0 over a waveform. Weights load on first use, inside the calling process."""

    def __init__(self, weights: str | None = None, batch_size: int = 16, device: str = "cpu"):
        self.weights = weights
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._inference: dict[float, object] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None
        state["_inference"] = {}
        return state

    @property
    def model(self):
        if self._model is None:
            from .models import SEGMENTATION_DEFAULT, ModelNotFoundError, resolve
            from .privacy import quiet_dependencies

            quiet_dependencies()  # before pyannote.audio is imported: its telemetry starts at import
            from pyannote.audio import Model

            path = resolve(self.weights, SEGMENTATION_DEFAULT)
            # the bundled copy is a folder with config.yaml + pytorch_model.bin
            model = Model.from_pretrained(str(path.parent if path.name == "pytorch_model.bin" else path))
            if model is None:
                raise ModelNotFoundError(f"{path}: not a pyannote segmentation checkpoint")
            self._model = model
        return self._model

    @property
    def duration(self) -> float:
        return float(self.model.specifications.duration)

    def inference(self, step: float):
        if step not in self._inference:
            duration = self.duration  # loads the model, and with it quiets pyannote.audio's telemetry first
            import torch
            from pyannote.audio import Inference

            if not 0 < step <= duration:
                raise ValueError(f"segmentation step must be in (0, {duration:g}] seconds, got {step:g}")
            self._inference[step] = Inference(
                self.model, window="sliding", duration=duration, step=step, skip_aggregation=True,
                batch_size=self.batch_size, device=torch.device(self.device),
            )
        return self._inference[step]

    def __call__(self, samples: np.ndarray, sample_rate: int = 16000, step: float | None = None,
                 hook=None) -> Segmentation:
        """(num_samples,) float32 at 16 kHz -> Segmentation; `step` None picks `default_step`.

        `hook(fraction)` is called as batches of windows finish.
        """
        import torch

        step = default_step(len(samples) / sample_rate) if step is None else float(step)
        inference = self.inference(step)
        waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
        duration = self.duration
        if len(samples) < duration * sample_rate:
            # a recording shorter than one window: pad it so it is seen once, whole
            waveform = torch.nn.functional.pad(waveform, (0, int(duration * sample_rate) - len(samples)))
        report = None if hook is None else (lambda completed, total, **_: hook(min(1.0, completed / max(total, 1))))
        output = inference({"waveform": waveform, "sample_rate": sample_rate}, hook=report)
        frames = self.model.receptive_field
        return Segmentation(
            activity=np.asarray(output.data, dtype=np.float32),
            duration=duration,
            step=step,
            frame_step=float(frames.step),
            frame_duration=float(frames.duration),
            frame_start=float(frames.start + frames.duration / 2),
        )
