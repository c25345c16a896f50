"""Long recordings split across workers, with the result of the single-process diarization.

Three phases, each spread over the workers, with only per-window results travelling, never the waveform
(each worker decodes just the samples it needs):

1. segmentation per piece. A recording of N samples is segmented by windows of W samples every S
   (pyannote's sliding inference: (N - W) // S + 1 full windows, plus one zero-padded window at the end
   when the last full window stops short of it). Cutting it between windows, so that piece k holds
   exactly windows [a_k, b_k) and starts at sample a_k * S, gives every window the same samples as the
   whole recording does: the pieces' segmentations concatenate into the recording's.
2. frame features and local embeddings per piece. The encoder's frame features depend on how the
   recording's speech is cut into encoder blocks, which follows the speech spans of the whole
   segmentation. Each piece runs the library's own block loop over those spans on a LazyRecording that
   decodes only blocks overlapping the piece (PieceEncoder skips the rest), so its features, hence its
   pooled embeddings, are those of the single pass, and no block grid is copied here.
3. clustering and reconstruction once, on one worker, over the concatenated evidence.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def window_count(num_samples: int, window: int, step: int) -> tuple[int, bool]:
    """-> (number of windows, whether the last one is zero-padded), as pyannote's sliding Inference makes them."""
    if num_samples <= window:
        return 1, num_samples < window
    full = (num_samples - window) // step + 1
    padded = (num_samples - window) % step > 0
    return full + int(padded), padded


def split_plan(num_samples: int, window: int, step: int, pieces: int) -> list[tuple[int, int | None]]:
    """Cut a recording into at most `pieces` runs of whole windows -> [(first sample, end sample or None
    for "to the end")]. Every piece but the last ends with a full window, so none of them is padded; the
    last one reads to the end and gets the padded window, if any, exactly as the whole recording does."""
    count, padded = window_count(num_samples, window, step)
    full = count - int(padded)
    if full <= 1 or pieces <= 1:
        return [(0, None)]
    # window boundaries between pieces; the last piece always keeps at least one full window
    bounds = sorted(set(int(round(value)) for value in np.linspace(0, full, pieces + 1)))
    plan = []
    for first, last in zip(bounds[:-1], bounds[1:]):
        if last == full:
            plan.append((first * step, None))
        else:
            plan.append((first * step, (last - 1) * step + window))
    return plan


def probe(path: Path) -> tuple[int, int] | None:
    """(native frames, native rate) read from the header, or None for formats soundfile cannot seek in
    (those are diarized whole, by one worker)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # not a soundfile format (m4a, ...), or unreadable: the whole-file path reports it
        return None
    if info.frames <= 0 or info.samplerate <= 0:
        return None
    return info.frames, info.samplerate


def read_piece(path: str, start: int, end: int | None) -> np.ndarray:
    """Samples [start, end) of the 16 kHz mono version of `path`, decoding only that part of the file.

    At 16 kHz the samples are exactly those load_audio gives; at another rate the piece is resampled
    alone, which differs from the whole-file resampling only within a few samples of the cut."""
    import soundfile as sf

    with sf.SoundFile(path) as handle:
        rate = handle.samplerate
        first = int(round(start * rate / SAMPLE_RATE))
        frames = -1 if end is None else int(round(end * rate / SAMPLE_RATE)) - first
        handle.seek(first)
        block = handle.read(frames, dtype="float32", always_2d=True)
    mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
    if rate != SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32)
        if end is not None:
            mono = mono[: end - start]
    return np.ascontiguousarray(mono)


def concatenate_segmentations(pieces: list):
    """The pieces' Segmentation (consecutive windows) -> the recording's."""
    return dataclasses.replace(pieces[0], activity=np.concatenate([piece.activity for piece in pieces], axis=0))


def evidence_of(segmentation, local_pieces: list):
    """ChunkEvidence from the recording's segmentation and the pieces' LocalEmbeddings: every per-chunk array
    joined along chunks. Fields are matched by name, so that evidence gaining a per-chunk array of the local
    embeddings needs no change here."""
    from diarize.pipeline import ChunkEvidence

    wanted = {field.name for field in dataclasses.fields(ChunkEvidence)}
    joined = {field.name: np.concatenate([getattr(piece, field.name) for piece in local_pieces], axis=0)
              for field in dataclasses.fields(local_pieces[0]) if field.name in wanted}
    return ChunkEvidence(segmentation=segmentation, **joined)


class _Elsewhere(np.ndarray):
    """Samples of the recording away from this worker's piece: never read, never encoded."""


class LazyRecording:
    """Stands in for the recording's 16 kHz samples inside the library's own encoder-block loop: len() is
    the recording's, and a slice that overlaps samples [start, stop) is read from the file, exactly as
    load_audio decodes it; any other slice comes back as placeholder zeros that PieceEncoder skips. So this
    worker encodes the very blocks the single pass encodes around its piece, and no others."""

    def __init__(self, path: str, num_samples: int, start: int, stop: int):
        self.path, self.num_samples, self.start, self.stop = path, num_samples, start, stop

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: slice) -> np.ndarray:
        begin, stop, step = index.indices(self.num_samples)
        if step != 1:
            raise IndexError("LazyRecording supports contiguous slices only")
        if stop <= self.start or begin >= self.stop:
            return np.zeros(max(0, stop - begin), dtype=np.float32).view(_Elsewhere)
        return read_piece(self.path, begin, stop)


class PieceEncoder:
    """The worker's encoder, except that blocks outside the piece (_Elsewhere samples) are not encoded:
    they get zero frames of the right width, which only ever land outside the piece's chunks."""

    def __init__(self, encoder):
        self._encoder = encoder
        hop = int(round(encoder.sample_rate / encoder.frame_rate))
        self._hop = hop
        # the feature width, from one second of silence (needed before any real block may come)
        self._channels = encoder.frame_features(np.zeros(encoder.sample_rate, dtype=np.float32)).shape[1]

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        if isinstance(samples, _Elsewhere):
            return np.zeros((len(samples) // self._hop, self._channels), dtype=np.float32)
        return self._encoder.frame_features(samples)


class PieceFrames:
    """The encoder frame blocks a piece computed from its own audio, in float16 as Diarizer.evidence keeps
    them; the placeholder blocks of other pieces' audio (all zeros, see PieceEncoder) are not kept."""

    def __init__(self):
        self.blocks: list[tuple[int, np.ndarray]] = []  # (first encoder frame, (n, channels) float16)

    def put(self, first: int, features: np.ndarray) -> None:
        if features.size and np.any(features):
            self.blocks.append((first, features.astype(np.float16)))


class JoinedFrames:
    """The pieces' blocks (PieceFrames.blocks each) read as the (num_frames, channels) float16 array a single
    pass keeps, without copying them into one: `frames[start:end]` assembles those rows. Every block is the
    one the single pass computes, so where two pieces both computed a block they agree."""

    def __init__(self, frame_pieces: list, num_frames: int):
        self.blocks = sorted((block for piece in frame_pieces for block in piece), key=lambda block: block[0])
        self.num_frames = num_frames
        self.channels = self.blocks[0][1].shape[1] if self.blocks else 0

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.num_frames)
        out = np.zeros((max(stop - start, 0), self.channels), dtype=np.float16)
        for first, block in self.blocks:
            lo, hi = max(start, first), min(stop, first + len(block))
            if hi > lo:
                out[lo - start:hi - start] = block[lo - first:hi - first]
        return out


def piece_local_embeddings(encoder, path: str, num_samples: int, segmentation, spans: list, first_chunk: int,
                           stop_chunk: int, keep: PieceFrames | None = None):
    """LocalEmbeddings of chunks [first_chunk, stop_chunk) of the recording, as Diarizer.evidence computes
    them over the whole recording (same spans, same encoder blocks), decoding only the audio they need.

    segmentation: the whole recording's. Other chunks are silenced in a copy, so they are not pooled.
    keep: collects the frame blocks this piece computed (for the second look, see PieceFrames).
    """
    from diarize import speaker_embeddings

    activity = np.zeros_like(segmentation.activity)
    activity[first_chunk:stop_chunk] = segmentation.activity[first_chunk:stop_chunk]
    masked = dataclasses.replace(segmentation, activity=activity)
    start = int(round(first_chunk * segmentation.step * SAMPLE_RATE))
    stop = int(round(((stop_chunk - 1) * segmentation.step + segmentation.duration) * SAMPLE_RATE))
    recording = LazyRecording(path, num_samples, start, stop)
    proxy = PieceEncoder(encoder)
    local = speaker_embeddings.local_speaker_embeddings(proxy, recording, masked, spans, keep=keep)
    return dataclasses.replace(local, **{
        field.name: getattr(local, field.name)[first_chunk:stop_chunk] for field in dataclasses.fields(local)})


def chunk_ranges(plan: list, step_samples: int, num_chunks: int) -> list[tuple[int, int]]:
    """The window (chunk) indices each piece of `plan` holds."""
    firsts = [start // step_samples for start, _ in plan]
    return list(zip(firsts, firsts[1:] + [num_chunks]))


def num_pieces(duration: float, split_over: float, workers: int) -> int:
    """Enough pieces to keep every worker busy, and none much longer than `split_over` seconds, so that
    a worker's memory stays bounded whatever the recording's length."""
    return max(workers, math.ceil(duration / split_over))
