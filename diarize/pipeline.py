"""One recording -> who spoke when: segmentation -> embeddings -> clustering -> reconstruction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cluster.anchoring import EnrolledVoices, anchored_centroids
from cluster.clustering import assign_local_speakers, centroids_of, cluster_embeddings, fold_unsupported_clusters
from cluster.run_recount import merged_by_silhouette, recount_from_runs
from cluster.vectors import unit_distance, unit_vectors

from .audio import AudioInput, Waveform, load_audio
from .config import DiarizationConfig
from .edges import extend_voiced_edges, frame_levels, split_at_pauses, trim_silent_edges
from .embedding import load_encoder
from .enrolled_runs import move_enrolled_runs
from .reconstruct import (binarize_by_count, chunk_frame_offsets, exclusive_of, global_activity,
                          num_recording_frames, overlap_add, single_voice_seconds, speaker_count, to_annotation)
from .second_look import RunVoices, merge_speakers, redecide_runs, run_centroids, with_new_speaker_votes
from .segmentation import Segmentation, Segmenter
from .speaker_embeddings import (FrameStore, covered_seconds, local_speaker_embeddings, pool_frame_spans, pool_spans,
                                 speech_spans)
from .voice_changes import WINDOW_SECONDS, split_at_voice_changes

#: the clustering cut per encoder, a cosine similarity between unit embeddings: AHC stops merging two clusters
#: whose centroids are farther apart than two unit vectors at this cosine (distance sqrt(2 - 2 cos)); higher
#: gives more speakers. CAM++'s, 0.71875 (distance 0.75), was best or near-best over a sweep on the 13 shared
#: AMI/call clips and the 8 simulated LibriSpeech conversations together; ECAPA's, 0.6472 (distance 0.84), was
#: not swept but placed where CAM++'s sits between the readers' mean impostor and target cosines
#: (docs/diarization-experiments.md, docs/encoders.md)
CLUSTER_THRESHOLDS = {"campplus-common-advanced": 0.71875, "ecapa-voxceleb": 0.6472}
FALLBACK_CLUSTER_THRESHOLD = 0.71875
#: encoders whose spectral clustering compares embeddings as given rather than recording-centred
#: (cluster.clustering.recording_centered): centring helps CAM++ but splits ECAPA's acted voices, whose
#: emotions already lie far apart (docs/domains.md, "Counting when a voice varies")
UNCENTERED_ENCODERS = frozenset({"ecapa-voxceleb"})
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


def steers(voices: EnrolledVoices | None) -> bool:
    """Whether enrolled voices are given to steer the clustering (cluster/anchoring.py)."""
    return voices is not None and len(voices) > 0


def raw_centroids(raw: np.ndarray, local_labels: np.ndarray, count: int) -> np.ndarray:
    """(num_chunks, num_local, d) raw embeddings, (num_chunks, num_local) labels -> (count, d) float32 mean raw
    embedding of each speaker's local speakers (zeros for a speaker given none)."""
    return np.stack([
        raw[local_labels == k].mean(axis=0) if (local_labels == k).any() else np.zeros(raw.shape[-1])
        for k in range(count)
    ]).astype(np.float32)


class Diarizer:
    """Holds the loaded models; `__call__` diarizes one input. Models load on first use."""

    def __init__(self, config: DiarizationConfig = DiarizationConfig()):
        self.config = config
        self.segmenter = Segmenter(config.segmentation.weights, device=config.device)
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = load_encoder(self.config.embedding.encoder, device=self.config.device)
        return self._encoder

    def evidence(self, waveform: Waveform, hook: Hook | None = None,
                 encoder_samples: np.ndarray | None = None) -> ChunkEvidence:
        """Segmentation and local-speaker embeddings of a 16 kHz waveform; `encoder_samples`, the same
        recording at the encoder's rate when the caller already has it."""
        segmentation = self.segmenter(waveform.samples, waveform.sample_rate, step=self.config.segmentation.step,
                                      hook=None if hook is None else (lambda done: hook("segmentation", done)))
        encoder = self.encoder
        samples = self.encoder_samples(waveform) if encoder_samples is None else encoder_samples
        spans = speech_spans(segmentation, waveform.duration)
        keep = None
        if self.config.second_look.enabled and waveform.duration <= KEEP_FRAMES_SECONDS:
            keep = FrameStore(encoder, len(samples))
        local = local_speaker_embeddings(encoder, samples, segmentation, spans, keep=keep,
                                         hook=None if hook is None else (lambda done: hook("embeddings", done)))
        return ChunkEvidence(segmentation, local.embeddings, local.seconds, None if keep is None else keep.array)

    def cluster_threshold(self) -> float:
        """The clustering cut as a cosine: the configured one, else the encoder's."""
        if self.config.clustering.threshold is not None:
            return self.config.clustering.threshold
        return CLUSTER_THRESHOLDS.get(self.encoder.encoder_id, FALLBACK_CLUSTER_THRESHOLD)

    def cut_distance(self) -> float:
        """The clustering cut as the Euclidean distance between unit vectors that AHC's linkage compares."""
        return unit_distance(self.cluster_threshold())

    def cluster(self, evidence: ChunkEvidence, voices: EnrolledVoices | None = None) -> tuple[np.ndarray, np.ndarray]:
        """-> (num_chunks, num_local) global speaker per local speaker (-1 if none), (num_speakers, d) raw centroids.

        voices: enrolled voices of this encoder, when a registry names the result; they steer the
        assignment of local speakers (cluster/anchoring.py) and may split a cluster that holds two of them.
        """
        config = self.config.clustering
        raw = evidence.embeddings
        active = ~np.isnan(raw[..., 0])
        if not active.any():
            return np.full(active.shape, -1, dtype=np.int64), np.zeros((0, raw.shape[-1]), dtype=np.float32)
        unit = unit_vectors(np.nan_to_num(raw))
        reliable = active & (evidence.seconds >= self.config.embedding.min_seconds)
        if not reliable.any():
            # all speech is short: cluster what there is rather than return nothing
            reliable = active
        labels = cluster_embeddings(unit[reliable], config.method, self.cut_distance(), config.bounds,
                                    config.min_cluster_size,
                                    centered=self.encoder.encoder_id not in UNCENTERED_ENCODERS,
                                    spectral_from=config.spectral_from, split_voice_cosine=config.split_voice_cosine)
        if config.num_speakers is None and config.min_speaker_seconds > 0:
            chunk_index, local_index = np.nonzero(reliable)
            seconds = single_voice_seconds(evidence.segmentation, chunk_index, local_index, labels)
            labels = fold_unsupported_clusters(unit[reliable], labels, seconds >= config.min_speaker_seconds,
                                               keep_at_least=config.min_speakers)
        centroids = unit_vectors(centroids_of(unit[reliable], labels))
        if steers(voices):
            bound = config.num_speakers or config.max_speakers
            centroids = anchored_centroids(centroids, unit[reliable], voices, min_members=config.min_cluster_size,
                                           max_speakers=None if bound is None else max(bound, len(centroids)))
            local_labels, centroids = self._settle(evidence, unit, active, centroids)
        else:
            local_labels = assign_local_speakers(unit, active, centroids)
        return local_labels, raw_centroids(raw, local_labels, len(centroids))

    def _settle(self, evidence: ChunkEvidence, unit: np.ndarray, active: np.ndarray, centroids: np.ndarray,
                rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Assign local speakers to `centroids`, dropping candidates left with under min_speaker_seconds of
        single-voice speech and assigning again, until none is dropped (or `rounds` passes).
        -> (num_chunks, num_local) labels, (num_kept, d) the centroids they index."""
        config = self.config.clustering
        keep_at_least = max(config.min_speakers, 1)
        for _ in range(rounds):
            local_labels = assign_local_speakers(unit, active, centroids)
            chunk_index, local_index = np.nonzero(local_labels >= 0)
            members = local_labels[chunk_index, local_index]
            seconds = np.zeros(len(centroids))
            if len(members):
                found = single_voice_seconds(evidence.segmentation, chunk_index, local_index, members)
                seconds[: len(found)] = found
            supported = seconds >= config.min_speaker_seconds
            if supported.all() or supported.sum() < keep_at_least or config.num_speakers is not None:
                return local_labels, centroids
            centroids = centroids[supported]
        return assign_local_speakers(unit, active, centroids), centroids

    def reconstruct(self, evidence: ChunkEvidence, local_labels: np.ndarray, centroids: np.ndarray,
                    duration: float, uri: str, samples: np.ndarray | None = None,
                    hook: Hook | None = None, voices: EnrolledVoices | None = None) -> DiarizationResult:
        """From clustered local speakers to the result, in named steps: activity -> second look -> recount ->
        edges -> relabel, each reported to `hook` as it starts. samples: the recording at the encoder's rate,
        which the second look and the edge trimming read (without it, both are skipped). The recount
        (SecondLookConfig.recount) also runs where enrolled voices steered the clustering: its run clusters
        replace the speakers only where they separate the runs better, speakers whose merge separates them
        better still are merged, and naming follows the speakers.
        voices: the enrolled voices the result will be named from; runs a speaker holds of another enrolled
        voice then move to that voice's speaker (SecondLookConfig.enrolled_runs, diarize/enrolled_runs.py).
        The result's centroids come from the speakers' runs where they have enough (`run_centroids`)."""
        report = hook or (lambda stage, done: None)
        segmentation = evidence.segmentation
        step = segmentation.frame_step
        levels = None
        if samples is not None and (self.config.second_look.enabled or self.config.edges.enabled):
            levels = frame_levels(samples, self.encoder.sample_rate, segmentation.frame_start - step / 2, step,
                                  num_recording_frames(segmentation, duration))
        active, scores, centroids, runs = self._second_looked_activity(evidence, local_labels, centroids, duration,
                                                                       samples, levels, report)
        look = self.config.second_look
        if runs is not None and look.recount and self.config.clustering.num_speakers is None:
            report("recount", 0.0)
            counted = recount_from_runs(runs.embeddings, runs.speakers, look.recount_min_runs,
                                        self.config.clustering.bounds)
            if counted is not None:
                local_labels, centroids = self._assigned(evidence, counted)
                # the second look again, on the recounted speakers: still the recount stage to a progress bar
                active, scores, centroids, runs = self._second_looked_activity(
                    evidence, local_labels, centroids, duration, samples, levels,
                    lambda stage, done: report("recount", done))
            merged = merged_by_silhouette(runs.embeddings, runs.speakers, look.recount_min_runs,
                                          self.config.clustering.min_speakers)
            active, scores, runs = merge_speakers(active, scores, runs, merged)
        if runs is not None and look.enrolled_runs and steers(voices):
            room = self.config.clustering.room_for(len(centroids))
            active, scores, centroids, runs = move_enrolled_runs(active, scores, centroids, runs, voices,
                                                                 self.encoder.encoder_id, room)
        if runs is not None:
            centroids = run_centroids(centroids, runs)
        if samples is not None and self.config.edges.enabled:
            report("edges", 0.0)
            edges = self.config.edges
            active = trim_silent_edges(active, levels, int(round(edges.trim_seconds / step)), edges.quiet_share)
            active = extend_voiced_edges(active, levels, int(round(edges.extend_seconds / step)), edges.quiet_share)
        report("relabel", 0.0)
        return self._relabel(active, scores, centroids, segmentation, duration, uri)

    def _second_looked_activity(self, evidence: ChunkEvidence, local_labels: np.ndarray, centroids: np.ndarray,
                                duration: float, samples: np.ndarray | None, levels: np.ndarray | None, report: Hook):
        """Activity from the local speakers' votes, then the second look (when samples are given):
        -> (num_frames, num_speakers) activity, its votes, (num_speakers, d) centroids, RunVoices or None."""
        active, scores = self._activity(evidence.segmentation, local_labels, len(centroids), duration)
        runs = None
        if samples is not None and self.config.second_look.enabled:
            report("second look", 0.0)
            active, scores, centroids, runs = self._second_look(active, scores, centroids, evidence.frames, samples,
                                                                evidence.segmentation, levels)
        return active, scores, centroids, runs

    def _assigned(self, evidence: ChunkEvidence, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local speakers given to the nearest of (k, d) `centroids`, speakers given none dropped:
        -> (num_chunks, num_local) labels, (k', d) raw centroids of their members."""
        raw = evidence.embeddings
        active = ~np.isnan(raw[..., 0])
        local_labels = assign_local_speakers(unit_vectors(np.nan_to_num(raw)), active, centroids)
        kept = [k for k in range(len(centroids)) if (local_labels == k).any()]
        index = np.full(len(centroids) + 1, -1)
        index[kept] = np.arange(len(kept))
        local_labels = index[local_labels]  # -1 (no speaker) indexes the last entry, which stays -1
        return local_labels, raw_centroids(raw, local_labels, len(kept))

    def _activity(self, segmentation: Segmentation, local_labels: np.ndarray, num_speakers: int,
                  duration: float) -> tuple[np.ndarray, np.ndarray]:
        """Each chunk's local speakers voted onto the recording's frames: -> (num_frames, num_speakers) bool
        activity, as many speakers per frame as the segmentation counts, and the float votes behind it."""
        num_frames = num_recording_frames(segmentation, duration)
        chunks = global_activity(segmentation, local_labels, num_speakers)
        scores = overlap_add(chunks, chunk_frame_offsets(segmentation), num_frames)
        return binarize_by_count(scores, speaker_count(segmentation, num_frames)), scores

    def _second_look(self, active: np.ndarray, scores: np.ndarray, centroids: np.ndarray, frames: np.ndarray | None,
                     samples: np.ndarray, segmentation: Segmentation,
                     levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, RunVoices | None]:
        """`_redecide_runs`, with votes made up for any new voice: -> activity, votes, centroids, the runs."""
        active, centroids, runs = self._redecide_runs(active, scores, centroids, frames, samples, segmentation,
                                                      levels)
        return active, with_new_speaker_votes(active, scores), centroids, runs

    def _relabel(self, active: np.ndarray, scores: np.ndarray, centroids: np.ndarray, segmentation: Segmentation,
                 duration: float, uri: str) -> DiarizationResult:
        """Speakers that never win a frame are dropped, and the rest named SPEAKER_00... in order of first
        speech."""
        spoken = np.flatnonzero(active.any(axis=0))
        first_frame = [np.flatnonzero(active[:, k])[0] for k in spoken]
        order = spoken[np.argsort(first_frame)]
        active, scores, centroids = active[:, order], scores[:, order], centroids[order]
        labels = [f"SPEAKER_{index:02d}" for index in range(len(order))]
        annotation = to_annotation(active, labels, segmentation, duration, uri)
        exclusive = to_annotation(exclusive_of(active, scores), labels, segmentation, duration, uri)
        return DiarizationResult(uri, duration, annotation, exclusive, labels, centroids, self.encoder.encoder_id)

    def _redecide_runs(self, active: np.ndarray, scores: np.ndarray, centroids: np.ndarray, frames: np.ndarray | None,
                   samples: np.ndarray, segmentation: Segmentation,
                   levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, RunVoices | None]:
        """-> the new activity and centroids (a speaker is appended for each new voice found), and the runs.

        frames: the recording's encoder frame features (ChunkEvidence.frames); None: the runs are pooled from
        frames computed again from `samples`, block by block (`pool_spans`), with the same result."""
        encoder = self.encoder
        step = segmentation.frame_step
        origin = segmentation.frame_start - step / 2
        look = self.config.second_look
        shortest, longest = look.run_seconds

        encoder_frames = int(len(samples) * encoder.frame_rate // encoder.sample_rate)

        def frame_span(first: int, stop: int) -> tuple[int, int]:
            # recording frames -> encoder frames, inside the recording (its last segmentation frame can end
            # past the last whole encoder frame)
            start = min(max(0, int(round((origin + first * step) * encoder.frame_rate))), encoder_frames - 1)
            end = min(int(round((origin + stop * step) * encoder.frame_rate)), encoder_frames)
            return start, max(start + 1, end)

        def embed_all(spans: list[tuple[int, int]]) -> np.ndarray:
            # Pooled from the frames the embedding pass computed, whose receptive field reaches into the
            # neighbours' audio: as accurate as encoding each run's audio alone, without the second encoder
            # pass that doubled a diarization's time (docs/benchmarks.md)
            if frames is None:  # computed again, only over the stretches these spans cover
                return pool_spans(encoder, samples, covered_seconds(spans, encoder.frame_rate), spans)
            return pool_frame_spans(encoder, frames, spans)

        exclusive = exclusive_of(active, scores)
        if look.pause_seconds:
            exclusive = split_at_pauses(exclusive, levels, int(round(look.pause_seconds / step)),
                                        self.config.edges.quiet_share)
        if look.change_min_side_seconds:
            exclusive = split_at_voice_changes(
                exclusive, centroids, lambda spans: embed_all([frame_span(first, stop) for first, stop in spans]),
                min_side=int(round(look.change_min_side_seconds / step)), margin=look.change_margin,
                levels=levels, window=int(round(WINDOW_SECONDS / step)))
        new_voice, room = None, self.config.clustering.room_for(len(centroids), look.max_new_voices)
        if look.new_voices and room > 0:
            new_voice = (look.new_voice_cosine, int(round(look.new_voice_run_seconds / step)),
                         int(round(look.new_voice_seconds / step)))
        return redecide_runs(active, exclusive, centroids, frame_span, embed_all,
                             min_frames=int(np.ceil(shortest / step)), max_frames=int(longest / step),
                             new_voice=new_voice, max_new_voices=room, return_runs=True)

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
        if hook is not None:
            hook("clustering", 0.0)
        local_labels, centroids = self.cluster(evidence, voices)
        result = self.reconstruct(evidence, local_labels, centroids, waveform.duration, waveform.uri, encoder_samples,
                                  hook, voices)
        timings["clustering+reconstruction"] = time.perf_counter() - clock
        result.timings = timings
        return result
