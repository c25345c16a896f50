"""What shapes a diarization, grouped by stage: segmentation, embedding, clustering, the second look, edges.

Every group is a small frozen dataclass, so a whole configuration pickles to a worker. A stage that can be
left out has an `enabled` flag. Units: seconds for durations, cosine similarity between unit embeddings for
every similarity and cut. Values are checked when a group is made, so a bad option fails before any audio is
read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from cluster.clustering import AUTO_SPECTRAL_FROM, SPLIT_VOICE_COSINE, SpeakerBounds
from cluster.clustering import METHODS as CLUSTERING_METHODS

from .embedding import DEFAULT_ENCODER
from .second_look import MAX_NEW_VOICES

#: window steps allowed, in seconds: below a quarter second neighbouring 10 s windows differ by a few frames
#: while the work grows as 1/step (a 1 ms step never finishes); above the 10 s window, audio goes unseen
MIN_STEP, MAX_STEP = 0.25, 10.0


def _non_negative(group: str, **values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{group}.{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class SegmentationConfig:
    """weights: folder, file or hub id of a pyannote segmentation model; None: the bundled segmentation-3.0.
    step: seconds between 10 s windows; None: chosen from the duration (diarize.segmentation.default_step)."""

    weights: str | None = None
    step: float | None = None

    def __post_init__(self):
        if self.step is not None and not (math.isfinite(self.step) and MIN_STEP <= self.step <= MAX_STEP):
            raise ValueError(f"--step {self.step:g}: must be between {MIN_STEP:g} and {MAX_STEP:g} seconds")


@dataclass(frozen=True)
class EmbeddingConfig:
    """encoder: backend name, BACKEND:PATH, weights path or hub id (diarize.embedding.load_encoder).
    min_seconds: local speakers with less speech in a window are not clustered (their embedding scatters);
    they are still assigned to the speakers found."""

    encoder: str = DEFAULT_ENCODER
    min_seconds: float = 0.5

    def __post_init__(self):
        _non_negative("embedding", min_seconds=self.min_seconds)


@dataclass(frozen=True)
class ClusteringConfig:
    """method: auto (AHC below `spectral_from` local-speaker embeddings, spectral from there on: the eigengap
    needs a few dozen points per speaker), ahc, spectral or hdbscan. threshold: AHC's cut, a cosine between unit embeddings in (-1, 1): clusters
    whose centroids are farther apart than two unit vectors at this cosine are not merged, so higher gives more
    speakers; None: the encoder's (diarize.pipeline.CLUSTER_THRESHOLDS). num_speakers / min_speakers / max_speakers:
    what the user knows of the count. min_cluster_size: AHC clusters with fewer embeddings join the nearest.
    min_speaker_seconds: a cluster must hold this much single-voice speech to stand as a speaker; less is
    usually two voices mixed or a fragment seen through overlap (docs/diarization-experiments.md).
    split_voice_cosine: two spectral clusters whose mean directions are this close are one voice split in two
    (distinct readers reached 0.80 through a telephone band, split readers sat at 0.88-0.93)."""

    method: str = "auto"
    threshold: float | None = None
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int | None = None
    min_cluster_size: int = 3
    min_speaker_seconds: float = 1.0
    spectral_from: int = AUTO_SPECTRAL_FROM
    split_voice_cosine: float = SPLIT_VOICE_COSINE

    def __post_init__(self):
        if self.method not in CLUSTERING_METHODS:
            raise ValueError(f"--clustering {self.method}: use one of {', '.join(CLUSTERING_METHODS)}")
        if self.threshold is not None and not (math.isfinite(self.threshold) and -1 < self.threshold < 1):
            # at cosine 1 nothing is joined, at -1 everything is
            raise ValueError(f"--cluster-threshold {self.threshold:g}: the clustering cut is a cosine similarity, "
                             "strictly between -1 and 1")
        _non_negative("clustering", min_speaker_seconds=self.min_speaker_seconds, spectral_from=self.spectral_from)
        if not (math.isfinite(self.split_voice_cosine) and -1 <= self.split_voice_cosine <= 1):
            raise ValueError(f"clustering.split_voice_cosine {self.split_voice_cosine}: a cosine, between -1 and 1")
        self.bounds  # the speaker-count options

    @property
    def bounds(self) -> SpeakerBounds:
        return SpeakerBounds(self.num_speakers, self.min_speakers, self.max_speakers)

    def room_for(self, found: int, cap: int | None = None) -> int | None:
        """How many speakers a later step may add to the `found` ones: none with a given count, else up to
        `max_speakers` and `cap`; None when neither bounds it."""
        if self.num_speakers is not None:
            return 0
        limits = [limit for limit in (cap, None if self.max_speakers is None else self.max_speakers - found)
                  if limit is not None]
        return max(min(limits), 0) if limits else None


@dataclass(frozen=True)
class SecondLookConfig:
    """After clustering, each single-voice run of `run_seconds` (shortest, longest) is re-decided by its own
    pooled embedding (diarize/second_look.py). Runs are first cut at near-silent pauses of `pause_seconds` or more
    (None: not cut; 0.2 s is the shortest gap between two speakers' turns) and where the voice changes
    (diarize/voice_changes.py): at a cut whose sides, each `change_min_side_seconds` or more (None: not cut
    there), are nearer to two different speakers by `change_margin` of cosine. Runs up to 8 s, because longer
    ones are decided well by the segmentation's votes.

    New voices (`new_voices`): runs of `new_voice_run_seconds` or more whose voice is under `new_voice_cosine`
    to every speaker, adding up to `new_voice_seconds` of one voice, become a speaker the clustering missed
    (heard too briefly to form a cluster), at most `max_new_voices` of them; never with a given speaker count,
    never past max_speakers.

    Recount (`recount`): with `recount_min_runs` runs or more, the runs' own embeddings are clustered too and,
    when they separate the runs better than the speakers found, become the speakers and the recording is
    reconstructed from them; then speakers are merged, a pair at a time, while merging raises that same
    separation (cluster/run_recount.py); never with a given speaker count.
    Under about 20 runs (a 30 s clip) the eigengap of so few points says little.

    Enrolled runs (`enrolled_runs`): only when enrolled voices are given (named diarization), the runs of a
    speaker that pool to another enrolled voice under the naming rule move to that voice's speaker, a new one
    when no speaker is that voice (diarize/enrolled_runs.py)."""

    enabled: bool = True
    run_seconds: tuple[float, float] = (0.5, 8.0)
    pause_seconds: float | None = 0.2
    change_min_side_seconds: float | None = 1.0
    change_margin: float = 0.1
    new_voices: bool = True
    new_voice_cosine: float = 0.45
    new_voice_run_seconds: float = 1.0
    new_voice_seconds: float = 2.0
    max_new_voices: int = MAX_NEW_VOICES
    recount: bool = True
    recount_min_runs: int = 20
    enrolled_runs: bool = True

    def __post_init__(self):
        shortest, longest = self.run_seconds
        _non_negative("second_look", shortest=shortest, longest=longest, change_margin=self.change_margin,
                      new_voice_run_seconds=self.new_voice_run_seconds, new_voice_seconds=self.new_voice_seconds,
                      max_new_voices=self.max_new_voices, recount_min_runs=self.recount_min_runs)
        if shortest > longest:
            raise ValueError(f"second_look.run_seconds {self.run_seconds}: the shortest is above the longest")
        if not (math.isfinite(self.new_voice_cosine) and -1 <= self.new_voice_cosine <= 1):
            raise ValueError(f"second_look.new_voice_cosine {self.new_voice_cosine}: a cosine, between -1 and 1")


@dataclass(frozen=True)
class EdgesConfig:
    """Near-silent frames at the ends of each turn, up to `trim_seconds`, are dropped, and frames of voice
    that nobody holds next to a turn, up to `extend_seconds` on each side, join it (diarize/edges.py): a
    tenth of a second is about the segmentation's slack on each side; half a second recovers a soft onset or
    a trailing syllable without bridging to another turn. Near-silent: under `quiet_share` of the way from
    the recording's noise floor to the speaker's loudest, in dB; the second look's pause cuts use the same
    measure."""

    enabled: bool = True
    trim_seconds: float = 0.1
    extend_seconds: float = 0.5
    quiet_share: float = 0.1

    def __post_init__(self):
        _non_negative("edges", trim_seconds=self.trim_seconds, extend_seconds=self.extend_seconds,
                      quiet_share=self.quiet_share)


@dataclass(frozen=True)
class DiarizationConfig:
    """Everything that shapes a diarization, a group per stage; `device` runs both models (cpu, cuda...)."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    second_look: SecondLookConfig = field(default_factory=SecondLookConfig)
    edges: EdgesConfig = field(default_factory=EdgesConfig)
    device: str = "cpu"


def flat_settings(config: DiarizationConfig) -> dict:
    """{"clustering.method": "auto", ..., "device": "cpu"}: every setting by its dotted name, for a batch job's
    state, which compares settings by name across runs (names it does not know on both sides are skipped)."""
    flat = {}
    for group, values in asdict(config).items():
        if isinstance(values, dict):
            flat.update({f"{group}.{name}": value for name, value in values.items()})
        else:
            flat[group] = values
    return flat
