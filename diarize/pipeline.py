"""One recording -> who spoke when: segmentation -> embeddings -> clustering -> reconstruction."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cluster.anchoring import EnrolledVoices, anchored_centroids
from cluster.clustering import METHODS as CLUSTERING_METHODS
from cluster.clustering import (SpeakerBounds, assign_local_speakers, centroids_of, cluster_embeddings,
                                fold_unsupported_clusters)
from cluster.vectors import unit_vectors

from .audio import AudioInput, Waveform, load_audio
from .edges import frame_levels, split_at_pauses, trim_silent_edges
from .embedding import DEFAULT_ENCODER, load_encoder
from .reconstruct import (binarize_by_count, chunk_frame_offsets, exclusive_of, global_activity,
                          num_recording_frames, overlap_add, single_voice_seconds, speaker_count, to_annotation)
from .resegment import MAX_NEW_VOICES, resegment
from .segmentation import Segmentation, Segmenter
from .speaker_embeddings import (FrameStore, covered_seconds, local_speaker_embeddings, pool_frame_spans, pool_spans,
                                 speech_spans)
from .voice_changes import WINDOW_SECONDS, split_at_voice_changes

#: AHC cut (Euclidean distance between unit vectors, i.e. sqrt(2 - 2 cos)) per encoder. For CAM++ it was
#: swept over 0.5-1.1 on the 13 shared AMI/call clips and the 8 simulated LibriSpeech conversations
#: together; 0.75 (cosine 0.72) was best or near-best on both, where each set alone preferred 0.7 / 0.8.
#: ECAPA's was not swept: its cosine cut sits where CAM++'s sits between the mean impostor and mean target
#: cosines of the LibriSpeech readers' whole utterances (benchmarks/bench_encoders.py --verification, docs/encoders.md).
#: the clustering cut per encoder: Euclidean distance between unit embeddings (cosine 1 - d^2 / 2) at which AHC
#: stops merging; lower gives more speakers (docs/diarization-experiments.md, docs/encoders.md)
CLUSTER_THRESHOLDS = {"campplus-common-advanced": 0.75, "ecapa-voxceleb": 0.84}
FALLBACK_CLUSTER_THRESHOLD = 0.75
#: encoders whose spectral clustering compares embeddings as given rather than recording-centred
#: (cluster.clustering.recording_centered): centring helps CAM++ but splits ECAPA's acted voices, whose
#: emotions already lie far apart (docs/domains.md, "Counting when a voice varies")
UNCENTERED_ENCODERS = frozenset({"ecapa-voxceleb"})
#: window steps allowed, in seconds: below a quarter second neighbouring 10 s windows differ by a few frames
#: while the work grows as 1/step (a 1 ms step never finishes); above the 10 s window, audio goes unseen
MIN_STEP, MAX_STEP = 0.25, 10.0


@dataclass(frozen=True)
class DiarizationConfig:
    """Everything that shapes a diarization; small and picklable so it can travel to a worker."""

    segmentation: str | None = None
    embedding: str = DEFAULT_ENCODER
    step: float | None = None  # None: chosen from the duration (segmentation.default_step)
    clustering: str = "auto"  # AHC on short recordings, spectral on longer ones (cluster.clustering)
    cluster_threshold: float | None = None  # None: CLUSTER_THRESHOLDS of the encoder
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int | None = None
    min_embedding_seconds: float = 0.5
    min_cluster_size: int = 3
    #: a cluster must hold this much single-voice speech to stand as a speaker (else it joins the nearest): less
    #: is usually two voices mixed or a fragment seen through overlap (docs/diarization-experiments.md)
    min_speaker_seconds: float = 1.0
    #: single-voice runs of this many seconds (min, max) are re-decided by their own embedding
    #: (diarize/resegment.py); None: off. Runs are first cut at near-silent pauses of at least
    #: `resegment_pause_seconds` (None: not cut), so two voices that the votes joined across a pause are
    #: looked at apart; only runs whose speaker won its frames by a mean vote margin under `resegment_margin`
    #: are looked at (None: every run). Up to 8 s, because longer runs are already decided well by the votes;
    #: 0.2 s pauses, the shortest gap between two speakers' turns (docs/diarization-experiments.md)
    resegment_seconds: tuple[float, float] | None = (0.5, 8.0)
    resegment_margin: float | None = None
    resegment_pause_seconds: float | None = 0.2
    #: before the second look, runs are also cut where the voice changes (diarize/voice_changes.py): at the
    #: cut whose sides, each at least this many seconds, are nearest to two different speakers by at least
    #: `change_margin` of cosine; None: not cut there
    change_min_side_seconds: float | None = 1.0
    change_margin: float = 0.1
    #: in the second look, runs of at least `new_voice_run_seconds` whose own voice is under `new_voice_cosine`
    #: to every speaker, and that add up to `new_voice_seconds` of one voice, become a new speaker: the
    #: clustering missed a voice heard only briefly (diarize/resegment.py, `unmatched_runs`). None: off; never
    #: with `num_speakers` given, and never past `max_speakers`
    new_voice_cosine: float | None = 0.45
    new_voice_run_seconds: float = 1.0
    new_voice_seconds: float = 2.0
    #: near-silent frames at the ends of each turn, up to this many seconds, are dropped (diarize/edges.py);
    #: near-silent: under `edge_trim_share` of the way from the recording's noise floor to the speaker's
    #: loudest. None: off. A tenth of a second is about one segmentation frame of slack on each side
    #: (docs/diarization-experiments.md)
    edge_trim_seconds: float | None = 0.1
    edge_trim_share: float = 0.1
    device: str = "cpu"

    def __post_init__(self):
        """Refuse values that cannot mean anything, so that a bad option fails before any audio is read."""
        if self.step is not None:
            if not math.isfinite(self.step) or not MIN_STEP <= self.step <= MAX_STEP:
                raise ValueError(f"--step {self.step:g}: must be between {MIN_STEP:g} and {MAX_STEP:g} seconds")
        if self.cluster_threshold is not None and not (math.isfinite(self.cluster_threshold) and 0 < self.cluster_threshold < 2):
            # a distance between unit vectors: 0 joins nothing, 2 joins everything
            raise ValueError(f"--cluster-threshold {self.cluster_threshold:g}: the clustering cut is a distance between unit "
                             "vectors, strictly between 0 and 2")
        if self.clustering not in CLUSTERING_METHODS:
            raise ValueError(f"--clustering {self.clustering}: use one of {', '.join(CLUSTERING_METHODS)}")
        for name in ("min_embedding_seconds", "min_speaker_seconds", "change_margin", "new_voice_run_seconds",
                     "new_voice_seconds", "edge_trim_share"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        self.bounds  # the speaker-count options

    @property
    def bounds(self) -> SpeakerBounds:
        return SpeakerBounds(self.num_speakers, self.min_speakers, self.max_speakers)


@dataclass
class DiarizationResult:
    """annotation: overlapping speech as a pyannote.core.Annotation; exclusive: one speaker at a time.
    speaker_centroids: (num_speakers, dimension) raw mean embedding per label, in `labels` order."""

    uri: str
    duration: float
    annotation: object
    exclusive: object
    labels: list[str]
    speaker_centroids: np.ndarray
    encoder_id: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class ChunkEvidence:
    """What the per-chunk stages produce, before any clustering; chunks of one recording computed
    apart (on different workers) can be concatenated and clustered once."""

    segmentation: Segmentation
    embeddings: np.ndarray  # (num_chunks, num_local, dimension) raw, NaN where silent
    seconds: np.ndarray  # (num_chunks, num_local)
    #: (num_encoder_frames, channels) float16 encoder frame features of the whole recording, kept from the
    #: embedding pass for the second look (or anything sliceable like it, e.g. a batch job's joined pieces);
    #: None past KEEP_FRAMES_SECONDS: the second look then computes the frames again, a block at a time
    frames: np.ndarray | None = None


#: recordings up to this long keep their encoder frames from the embedding pass for the second look
#: (float16, ~180 MB an hour); longer ones have the frames the second look needs computed again, a block at a
#: time, so memory stays flat with length at the price of a second encoder pass
KEEP_FRAMES_SECONDS = 7200.0

#: progress callback: (stage name, fraction of that stage done)
Hook = Callable[[str, float], None]


class Diarizer:
    """Holds the loaded models; `__call__` diarizes one input. Models load on first use."""

    def __init__(self, config: DiarizationConfig = DiarizationConfig()):
        self.config = config
        self.segmenter = Segmenter(config.segmentation, device=config.device)
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = load_encoder(self.config.embedding, device=self.config.device)
        return self._encoder

    def evidence(self, waveform: Waveform, hook: Hook | None = None,
                 encoder_samples: np.ndarray | None = None) -> ChunkEvidence:
        """Segmentation and local-speaker embeddings of a 16 kHz waveform; `encoder_samples`, the same
        recording at the encoder's rate when the caller already has it."""
        segmentation = self.segmenter(waveform.samples, waveform.sample_rate, step=self.config.step,
                                      hook=None if hook is None else (lambda done: hook("segmentation", done)))
        encoder = self.encoder
        samples = self.encoder_samples(waveform) if encoder_samples is None else encoder_samples
        spans = speech_spans(segmentation, waveform.duration)
        keep = None
        if self.config.resegment_seconds is not None and waveform.duration <= KEEP_FRAMES_SECONDS:
            keep = FrameStore(encoder, len(samples))
        local = local_speaker_embeddings(encoder, samples, segmentation, spans, keep=keep,
                                         hook=None if hook is None else (lambda done: hook("embeddings", done)))
        return ChunkEvidence(segmentation, local.embeddings, local.seconds, None if keep is None else keep.array)

    def cluster_threshold(self) -> float:
        if self.config.cluster_threshold is not None:
            return self.config.cluster_threshold
        return CLUSTER_THRESHOLDS.get(self.encoder.encoder_id, FALLBACK_CLUSTER_THRESHOLD)

    def cluster(self, evidence: ChunkEvidence, voices: EnrolledVoices | None = None) -> tuple[np.ndarray, np.ndarray]:
        """-> (num_chunks, num_local) global speaker per local speaker (-1 if none), (num_speakers, d) raw centroids.

        voices: enrolled voices of this encoder, when a registry names the result; they steer the
        assignment of local speakers (cluster/anchoring.py) and may split a cluster that holds two of them.
        """
        config = self.config
        raw = evidence.embeddings
        active = ~np.isnan(raw[..., 0])
        if not active.any():
            return np.full(active.shape, -1, dtype=np.int64), np.zeros((0, raw.shape[-1]), dtype=np.float32)
        unit = unit_vectors(np.nan_to_num(raw))
        reliable = active & (evidence.seconds >= config.min_embedding_seconds)
        if not reliable.any():
            # all speech is short: cluster what there is rather than return nothing
            reliable = active
        labels = cluster_embeddings(unit[reliable], config.clustering, self.cluster_threshold(), config.bounds,
                                    config.min_cluster_size,
                                    centered=self.encoder.encoder_id not in UNCENTERED_ENCODERS)
        if config.num_speakers is None and config.min_speaker_seconds > 0:
            chunk_index, local_index = np.nonzero(reliable)
            seconds = single_voice_seconds(evidence.segmentation, chunk_index, local_index, labels)
            labels = fold_unsupported_clusters(unit[reliable], labels, seconds >= config.min_speaker_seconds,
                                               keep_at_least=config.min_speakers)
        centroids = unit_vectors(centroids_of(unit[reliable], labels))
        if voices is not None and len(voices):
            bound = config.num_speakers or config.max_speakers
            centroids = anchored_centroids(centroids, unit[reliable], voices, min_members=config.min_cluster_size,
                                           max_speakers=None if bound is None else max(bound, len(centroids)))
            local_labels, centroids = self._settle(evidence, unit, active, centroids)
        else:
            local_labels = assign_local_speakers(unit, active, centroids)
        raw_centroids = np.stack([
            raw[local_labels == k].mean(axis=0) if (local_labels == k).any() else np.zeros(raw.shape[-1])
            for k in range(len(centroids))
        ]).astype(np.float32)
        return local_labels, raw_centroids

    def _settle(self, evidence: ChunkEvidence, unit: np.ndarray, active: np.ndarray, centroids: np.ndarray,
                rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Assign local speakers to `centroids`, dropping candidates left with under min_speaker_seconds of
        single-voice speech and assigning again, until none is dropped (or `rounds` passes).
        -> (num_chunks, num_local) labels, (num_kept, d) the centroids they index."""
        keep_at_least = max(self.config.min_speakers, 1)
        for _ in range(rounds):
            local_labels = assign_local_speakers(unit, active, centroids)
            chunk_index, local_index = np.nonzero(local_labels >= 0)
            members = local_labels[chunk_index, local_index]
            seconds = np.zeros(len(centroids))
            if len(members):
                found = single_voice_seconds(evidence.segmentation, chunk_index, local_index, members)
                seconds[: len(found)] = found
            supported = seconds >= self.config.min_speaker_seconds
            if supported.all() or supported.sum() < keep_at_least or self.config.num_speakers is not None:
                return local_labels, centroids
            centroids = centroids[supported]
        return assign_local_speakers(unit, active, centroids), centroids

    def reconstruct(self, evidence: ChunkEvidence, local_labels: np.ndarray, centroids: np.ndarray,
                    duration: float, uri: str, samples: np.ndarray | None = None) -> DiarizationResult:
        """samples: the recording at the encoder's rate, for the second look at short turns (`resegment`) and
        the trimming of near-silent turn edges (`trim_silent_edges`)."""
        segmentation = evidence.segmentation
        num_frames = num_recording_frames(segmentation, duration)
        num_speakers = len(centroids)
        chunks = global_activity(segmentation, local_labels, num_speakers)
        scores = overlap_add(chunks, chunk_frame_offsets(segmentation), num_frames)
        count = speaker_count(segmentation, num_frames)
        active = binarize_by_count(scores, count)
        step = segmentation.frame_step
        levels = None
        if samples is not None and (self.config.resegment_seconds is not None or self.config.edge_trim_seconds):
            levels = frame_levels(samples, self.encoder.sample_rate, segmentation.frame_start - step / 2, step,
                                  num_frames)
        if samples is not None and self.config.resegment_seconds is not None:
            active, centroids = self._resegment(active, scores, centroids, evidence.frames, samples, segmentation,
                                                levels, duration)
            if active.shape[1] > scores.shape[1]:
                # a new voice has no votes of its own: where it speaks, it holds the votes its frames had
                new = active[:, scores.shape[1]:]
                scores = np.hstack([scores, new * scores.max(axis=1, keepdims=True)])
        if samples is not None and self.config.edge_trim_seconds:
            active = trim_silent_edges(active, levels, int(round(self.config.edge_trim_seconds / step)),
                                       self.config.edge_trim_share)
        # speakers that never win a frame are dropped, and the rest renamed in order of first speech
        spoken = np.flatnonzero(active.any(axis=0))
        first_frame = [np.flatnonzero(active[:, k])[0] for k in spoken]
        order = spoken[np.argsort(first_frame)]
        active, scores, centroids = active[:, order], scores[:, order], centroids[order]
        labels = [f"SPEAKER_{index:02d}" for index in range(len(order))]
        annotation = to_annotation(active, labels, segmentation, duration, uri)
        exclusive = to_annotation(exclusive_of(active, scores), labels, segmentation, duration, uri)
        return DiarizationResult(uri, duration, annotation, exclusive, labels, centroids, self.encoder.encoder_id)

    def _resegment(self, active: np.ndarray, scores: np.ndarray, centroids: np.ndarray, frames: np.ndarray | None,
                   samples: np.ndarray, segmentation: Segmentation, levels: np.ndarray,
                   duration: float) -> tuple[np.ndarray, np.ndarray]:
        """-> the new activity and centroids (a speaker is appended for each new voice found).

        frames: the recording's encoder frame features (ChunkEvidence.frames); None: the runs are pooled from
        frames computed again from `samples`, block by block (`pool_spans`), with the same result."""
        encoder = self.encoder
        step = segmentation.frame_step
        origin = segmentation.frame_start - step / 2
        shortest, longest = self.config.resegment_seconds

        encoder_frames = int(len(samples) * encoder.frame_rate // encoder.sample_rate)

        def frame_span(first: int, stop: int) -> tuple[int, int]:
            # recording frames -> encoder frames, inside the recording (its last segmentation frame can end
            # past the last whole encoder frame)
            start = min(max(0, int(round((origin + first * step) * encoder.frame_rate))), encoder_frames - 1)
            end = min(int(round((origin + stop * step) * encoder.frame_rate)), encoder_frames)
            return start, max(start + 1, end)

        def embed_all(spans: list[tuple[int, int]]) -> np.ndarray:
            # Pooled from the frames the embedding pass computed, whose receptive field reaches into the
            # neighbours' audio: on simconv-dev this gave 13.26 % DER against 13.23 % for encoding each run's
            # audio alone, without a second encoder pass (which doubled the time of a diarization)
            if frames is None:  # computed again, only over the stretches these spans cover
                return pool_spans(encoder, samples, covered_seconds(spans, encoder.frame_rate), spans)
            return pool_frame_spans(encoder, frames, spans)

        exclusive = exclusive_of(active, scores)
        if self.config.resegment_pause_seconds:
            exclusive = split_at_pauses(exclusive, levels, int(round(self.config.resegment_pause_seconds / step)),
                                        self.config.edge_trim_share)
        if self.config.change_min_side_seconds:
            exclusive = split_at_voice_changes(
                exclusive, centroids, lambda spans: embed_all([frame_span(first, stop) for first, stop in spans]),
                min_side=int(round(self.config.change_min_side_seconds / step)), margin=self.config.change_margin,
                levels=levels, window=int(round(WINDOW_SECONDS / step)))
        new_voice, room = None, MAX_NEW_VOICES
        if self.config.max_speakers is not None:
            room = min(room, self.config.max_speakers - len(centroids))
        if self.config.new_voice_cosine is not None and self.config.num_speakers is None and room > 0:
            new_voice = (self.config.new_voice_cosine, int(round(self.config.new_voice_run_seconds / step)),
                         int(round(self.config.new_voice_seconds / step)))
        return resegment(active, exclusive, centroids, frame_span, None,
                         min_frames=int(np.ceil(shortest / step)), max_frames=int(longest / step), scores=scores,
                         max_margin=self.config.resegment_margin, embed_all=embed_all, new_voice=new_voice,
                         max_new_voices=room)

    def encoder_samples(self, waveform: Waveform) -> np.ndarray:
        """The recording at the encoder's sample rate."""
        if self.encoder.sample_rate == waveform.sample_rate:
            return waveform.samples
        import soxr

        return soxr.resample(waveform.samples, waveform.sample_rate, self.encoder.sample_rate).astype(np.float32)

    def __call__(self, source: AudioInput | Waveform, hook: Hook | None = None,
                 voices: EnrolledVoices | None = None) -> DiarizationResult:
        """Diarize one input; `voices` (enrolled voices of this encoder) steer the clustering, see `cluster`."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        waveform = source if isinstance(source, Waveform) else load_audio(source)
        timings["decode"] = time.perf_counter() - clock
        clock = time.perf_counter()
        encoder_samples = self.encoder_samples(waveform)  # once: the embeddings and the second look share it
        evidence = self.evidence(waveform, hook, encoder_samples)
        timings["segmentation+embeddings"] = time.perf_counter() - clock
        clock = time.perf_counter()
        local_labels, centroids = self.cluster(evidence, voices)
        result = self.reconstruct(evidence, local_labels, centroids, waveform.duration, waveform.uri, encoder_samples)
        timings["clustering+reconstruction"] = time.perf_counter() - clock
        result.timings = timings
        return result
