"""Long recordings split across workers, with the result of the single-process diarization.

Three phases, each spread over the workers, with only per-window results travelling, never the waveform
(each worker decodes just the samples it needs):

1. segmentation per piece. A recording of N samples is segmented by windows of W samples every S
   (pyannote's sliding inference: (N - W) // S + 1 full windows, plus one zero-padded window at the end
   when the last full window stops short of it). Cutting it between windows, so that piece k holds
   exactly windows [a_k, b_k) and starts at sample a_k * S, gives every window the same samples as the
   whole recording does: the pieces' segmentations concatenate into the recording's.
2. frame features and local embeddings per piece. The encoder's frame features depend on how the
   recording's speech is cut into encoder blocks (speaker_embeddings.recording_features); the driver
   derives that block grid from the whole segmentation, and each piece computes the blocks that overlap
   it, so its features, hence its pooled embeddings, are those of the single pass.
3. clustering and reconstruction once, on one worker, over the concatenated evidence.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Block:
    """One encoder pass of recording_features: samples [begin, stop) encoded, frames [skip, skip + keep) of
    its output stored at recording frame `frame`."""

    begin: int
    stop: int
    frame: int
    skip: int
    keep: int


def feature_blocks(spans: list, num_samples: int, rate: int, frame_rate: float) -> list[Block]:
    """The block grid of speaker_embeddings.recording_features over `spans`, in its order (later blocks
    overwrite the one frame they share with the previous one). Mirrors that loop line by line: a change
    there must be made here too (the batch tests compare split and whole diarizations and would fail)."""
    from diarize.speaker_embeddings import recording_features

    defaults = inspect.signature(recording_features).parameters
    block, context = defaults["block"].default, defaults["context"].default
    hop = int(round(rate / frame_rate))
    total_frames = num_samples // hop
    pad = int(context * rate)
    blocks = []
    for span_start, span_end in spans:
        first = int(span_start * rate) // hop * hop
        last = min(num_samples, int(np.ceil(span_end * rate)))
        for block_start in range(first, last, int(block * rate) // hop * hop):
            block_end = min(last, block_start + int(block * rate))
            begin = max(0, block_start - pad) // hop * hop
            stop = min(num_samples, block_end + pad)
            skip = (block_start - begin) // hop
            # len(block_features) is known only after encoding; the worker clips `keep` to it
            keep = min((block_end - block_start) // hop + 1, total_frames - block_start // hop)
            if keep > 0:
                blocks.append(Block(begin, stop, block_start // hop, skip, keep))
    return blocks


def piece_features(encoder, path: str, blocks: list[Block], first_frame: int, num_frames: int) -> np.ndarray:
    """Frame features of recording frames [first_frame, first_frame + num_frames) from the blocks that overlap
    them; zeros outside speech, as recording_features leaves them."""
    features = None
    for block in blocks:
        block_features = encoder.frame_features(read_piece(path, block.begin, block.stop))
        if features is None:
            features = np.zeros((num_frames, block_features.shape[1]), dtype=np.float32)
        keep = min(block.keep, len(block_features) - block.skip)
        low, high = max(block.frame, first_frame), min(block.frame + keep, first_frame + num_frames)
        if high > low:
            features[low - first_frame : high - first_frame] = \
                block_features[block.skip + low - block.frame : block.skip + high - block.frame]
    if features is None:
        return np.zeros((num_frames, 0), dtype=np.float32)
    return features


def num_pieces(duration: float, split_over: float, workers: int) -> int:
    """Enough pieces to keep every worker busy, and none much longer than `split_over` seconds, so that
    a worker's memory stays bounded whatever the recording's length."""
    return max(workers, math.ceil(duration / split_over))
