"""What runs inside a batch worker (a Ray actor): one Diarizer, so models load once per worker, and the
calls the driver makes on it: a whole file, or the phases of a long one (batch_long.py). Only results
travel back (segments, per-window arrays, one centroid per speaker), never audio.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from .errors import error_line

if TYPE_CHECKING:
    from diarize.config import DiarizationConfig


def peak_memory_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class DiarizeWorker:
    """Runs inside a Ray actor: holds one Diarizer, so models load once per worker, not per file."""

    def __init__(self, config: DiarizationConfig, threads: int):
        from diarize.privacy import quiet_dependencies

        quiet_dependencies()  # the worker imports pyannote/onnxruntime itself; a cluster node may lack our env
        import torch

        # each actor owns `threads` CPUs; more torch threads than that would fight the other actors
        torch.set_num_threads(threads)
        from diarize.pipeline import Diarizer

        self.diarizer = Diarizer(config)

    def ready(self) -> dict:
        """Load the models now, so a missing model stops the job once instead of failing every file."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "encoder": self.diarizer.encoder.encoder_id,
                "window": self.diarizer.segmenter.duration, "encoder_rate": self.diarizer.encoder.sample_rate,
                "frame_rate": self.diarizer.encoder.frame_rate}

    def process(self, path: str, uri: str, voices=None) -> dict:
        """Diarize one whole file; `voices` (cluster.anchoring.EnrolledVoices) steer it for `batch identify`."""
        from diarize.audio import Waveform, load_audio

        start = time.perf_counter()
        try:
            waveform = load_audio(path)
            if waveform.uri != uri:
                waveform = Waveform(waveform.samples, waveform.sample_rate, uri)
            decoded = time.perf_counter()
            result = self.diarizer(waveform, voices=voices)
            del waveform  # results travel back, never audio
        except Exception as error:  # any failure is this file's, recorded, and the worker goes on
            return {"ok": False, "error": error_line(path, error)}
        finished = time.perf_counter()
        return {
            "ok": True,
            # the result (segments and one centroid per speaker: kilobytes) travels; the driver names and writes it
            "result": result,
            "duration": result.duration,
            "speakers": len(result.labels),
            "timings": {"decode": round(decoded - start, 3), "diarize": round(finished - decoded, 3),
                        "total": round(finished - start, 3), "worker_peak_mb": peak_memory_mb()},
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        }


    def segment_piece(self, path: str, start: int, end: int | None, step: float) -> dict:
        """Phase 1 of a long recording (batch_long.py): segmentation of samples [start, end), at the whole
        recording's step (not one chosen from the piece's length)."""
        from .batch_long import SAMPLE_RATE, read_piece

        clock = time.perf_counter()
        try:
            segmentation = self.diarizer.segmenter(read_piece(path, start, end), SAMPLE_RATE, step=step)
        except Exception as error:
            return {"ok": False, "error": error_line(path, error)}
        return {"ok": True, "segmentation": segmentation, "seconds": time.perf_counter() - clock,
                "peak_mb": peak_memory_mb()}

    def embed_piece(self, path: str, num_samples: int, segmentation, spans: list, first_chunk: int,
                    stop_chunk: int) -> dict:
        """Phase 2: local embeddings of chunks [first_chunk, stop_chunk), from the whole segmentation's spans."""
        from diarize.pipeline import KEEP_FRAMES_SECONDS

        from .batch_long import SAMPLE_RATE, PieceFrames, piece_local_embeddings

        clock = time.perf_counter()
        keep = None  # the same rule as Diarizer.evidence: past 2 h the second look streams its frames instead
        if self.diarizer.config.second_look.enabled and num_samples / SAMPLE_RATE <= KEEP_FRAMES_SECONDS:
            keep = PieceFrames()
        try:
            local = piece_local_embeddings(self.diarizer.encoder, path, num_samples, segmentation, spans,
                                           first_chunk, stop_chunk, keep=keep)
        except Exception as error:
            return {"ok": False, "error": error_line(path, error)}
        return {"ok": True, "local": local, "frames": None if keep is None else keep.blocks,
                "seconds": time.perf_counter() - clock, "peak_mb": peak_memory_mb()}

    def finish(self, path: str, uri: str, duration: float, segmentation, local_pieces: list, piece_seconds: float,
               piece_peak_mb: float = 0.0, voices=None, frame_pieces: list | None = None) -> dict:
        """Phase 3: cluster the recording once, as Diarizer.__call__ does after its evidence step; the audio
        is read again for the second look at short turns (diarize/second_look.py), which pools from the
        pieces' frame blocks (`frame_pieces`, joined) or, without them, from frames computed again."""
        from diarize.audio import load_audio

        from .batch_long import JoinedFrames, evidence_of

        clock = time.perf_counter()
        try:
            evidence = evidence_of(segmentation, local_pieces)
            local_labels, centroids = self.diarizer.cluster(evidence, voices)
            samples = self.diarizer.encoder_samples(load_audio(path)) if self.diarizer.config.second_look.enabled else None
            if samples is not None and frame_pieces and all(blocks is not None for blocks in frame_pieces):
                encoder = self.diarizer.encoder
                evidence.frames = JoinedFrames(frame_pieces,
                                               int(len(samples) * encoder.frame_rate // encoder.sample_rate))
            result = self.diarizer.reconstruct(evidence, local_labels, centroids, duration, uri, samples,
                                               voices=voices)
            del samples
        except Exception as error:
            return {"ok": False, "error": error_line(uri, error)}
        cluster = time.perf_counter() - clock
        return {"ok": True, "result": result, "duration": result.duration, "speakers": len(result.labels),
                "timings": {"pieces": len(local_pieces), "pieces_total": round(piece_seconds, 3),
                            "cluster": round(cluster, 3), "total": round(piece_seconds + cluster, 3),
                            "worker_peak_mb": max(piece_peak_mb, peak_memory_mb())},
                "worker": f"{socket.gethostname()}:{os.getpid()}"}
