"""Options and helpers shared by the sub-commands that diarize."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager


def add_diarization_options(parser, threshold_alias: bool = True) -> None:
    """The diarization options. The clustering cut is --cluster-threshold; `threshold_alias` also accepts the
    older --threshold for it, which commands that name speakers leave to --naming-threshold."""
    group = parser.add_argument_group("diarization")
    group.add_argument("--num-speakers", type=int, help="exact number of speakers, when known")
    group.add_argument("--min-speakers", type=int, default=1, help="at least this many speakers")
    group.add_argument("--max-speakers", type=int, help="at most this many speakers")
    group.add_argument("--embedding", default="campplus",
                       help="speaker encoder: campplus, ecapa, qwen3-0.6b, qwen3-1.7b, BACKEND:PATH, or a weights path")
    group.add_argument("--segmentation", help="segmentation weights (folder, file or hub id); default: bundled segmentation-3.0")
    group.add_argument("--step", type=float, default=None,
                       help="step between 10 s segmentation windows, in seconds (default: chosen from the duration)")
    group.add_argument("--clustering", default="auto", choices=["auto", "ahc", "spectral", "hdbscan"],
                       help="clustering method; auto: AHC below 100 local-speaker embeddings, spectral (eigengap "
                       "speaker count) from there on")
    group.add_argument("--cluster-threshold", *(["--threshold"] if threshold_alias else []), dest="cluster_threshold",
                       type=float, metavar="C",
                       help="clustering cut: the cosine similarity between speaker embeddings below which two "
                       "clusters stay apart, between -1 and 1; higher gives more speakers (default: per encoder, "
                       "0.72 for campplus)")
    group.add_argument("--no-second-look", dest="second_look", action="store_false", default=argparse.SUPPRESS,
                       help="skip re-deciding each turn (0.5-8 s, cut at pauses of 0.2 s or more and where the voice "
                            "changes) by its own pooled embedding; about 10 %% faster, more turns given to a "
                            "neighbour")
    group.add_argument("--no-new-voices", dest="new_voices", action="store_false", default=argparse.SUPPRESS,
                       help="keep the speaker count the clustering found; by default turns (1 s or more) whose "
                            "voice is close to no speaker found, adding up to 2 s of one voice, become a new "
                            "speaker (a voice heard too briefly to form a cluster); never with --num-speakers")
    group.add_argument("--no-recount", dest="recount", action="store_false", default=argparse.SUPPRESS,
                       help="keep the speakers the window clustering found; by default, in recordings with 20 or "
                            "more turns, the turns' own embeddings are clustered too and replace them when they "
                            "tell the turns apart better (fast turn-taking, where 10 s windows blend voices), "
                            "and two speakers are merged when that tells the turns apart better still (one "
                            "voice split by its emotions); never with --num-speakers")
    group.add_argument("--keep-edges", dest="trim_edges", action="store_false", default=argparse.SUPPRESS,
                       help="keep the turn edges the segmentation drew; by default up to 0.1 s of near-silent "
                            "frames is dropped from the start and end of each turn, and up to 0.5 s of voice that "
                            "nobody holds next to a turn (a soft onset, a trailing syllable) is added to it")
    group.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-file summary")


def add_naming_options(parser) -> None:
    """--registry and the open-set --naming-threshold (or --threshold) of the commands that name speakers."""
    parser.add_argument("--registry", metavar="PATH", default=None,
                        help="registry file (default: $VOICEMAP_REGISTRY, else registry.sqlite in the user data folder)")
    parser.add_argument("--naming-threshold", "--threshold", dest="naming_threshold", type=float, default=None, metavar="T",
                        help="open-set cosine threshold for naming (default: the measured one of the encoder, "
                        "see cluster/registry/match.py)")


def check_naming_options(args) -> None:
    """ValueError for a naming threshold that is not a cosine (NaN, or outside [-1, 1])."""
    import math

    value = getattr(args, "naming_threshold", None)
    if value is not None and not (math.isfinite(value) and -1 <= value <= 1):
        raise ValueError(f"--naming-threshold {value:g}: the naming threshold is a cosine similarity, between -1 and 1")


def config_from_args(args):
    """The DiarizationConfig of the options, every one checked before any audio is read or model loaded:
    ValueError with one line naming the option (commands exit 2 on it)."""
    from diarize.embedding import EncoderError, check_encoder_spec
    from diarize.models import ModelNotFoundError, check_device, check_model_spec
    from diarize.config import (ClusteringConfig, DiarizationConfig, EdgesConfig, EmbeddingConfig, SecondLookConfig,
                                SegmentationConfig)

    config = DiarizationConfig(
        segmentation=SegmentationConfig(weights=args.segmentation, step=args.step),
        embedding=EmbeddingConfig(encoder=args.embedding),
        clustering=ClusteringConfig(method=args.clustering, threshold=args.cluster_threshold,
                                    num_speakers=args.num_speakers, min_speakers=args.min_speakers,
                                    max_speakers=args.max_speakers),
        second_look=SecondLookConfig(enabled=getattr(args, "second_look", True),
                                     new_voices=getattr(args, "new_voices", True),
                                     recount=getattr(args, "recount", True)),
        edges=EdgesConfig(enabled=getattr(args, "trim_edges", True)),
        device=args.device,
    )
    try:
        check_device(config.device)
        check_encoder_spec(config.embedding.encoder)
        check_model_spec(config.segmentation.weights, "--segmentation")
    except (EncoderError, ModelNotFoundError) as error:
        raise ValueError(str(error).splitlines()[0]) from None
    return config


def loaded_diarizer(config):
    """A Diarizer whose models are loaded now, so that weights that exist but do not load are one error, up
    front, rather than one per input; ValueError with one line otherwise."""
    from diarize.embedding import EncoderError
    from diarize.models import ModelNotFoundError
    from diarize.pipeline import Diarizer

    diarizer = Diarizer(config)
    try:
        diarizer.segmenter.model
    except (ModelNotFoundError, OSError, RuntimeError, ValueError, KeyError) as error:
        raise ValueError(f"--segmentation {config.segmentation.weights or 'default'}: {str(error).splitlines()[0]}") from None
    try:
        diarizer.encoder
    except (EncoderError, ModelNotFoundError, OSError, RuntimeError, ValueError, KeyError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        encoder = config.embedding.encoder
        raise ValueError(message if str(encoder) in message else f"--embedding {encoder}: {message}") from None
    return diarizer


def speaker_count_note(result, config) -> str | None:
    """A note when fewer speakers were found than --num-speakers or --min-speakers asked for (a short recording
    offers at most three local speakers per window, and speakers must speak to be found)."""
    counts = config.clustering
    wanted = counts.num_speakers or (counts.min_speakers if counts.min_speakers > 1 else None)
    if wanted is None or len(result.labels) >= wanted:
        return None
    flag = "--num-speakers" if counts.num_speakers else "--min-speakers"
    return (f"note: {result.uri}: {len(result.labels)} speaker(s) found, fewer than {flag} {wanted}: "
            f"the {result.duration:.0f} s recording does not hold that many distinct voices")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default once: not when its help already says what the default is, nor when it is None."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, argparse.SUPPRESS, False) or action.option_strings == []:
            return text
        return super()._get_help_string(action)


def registry_of(args: argparse.Namespace):
    """The existing registry that the command's --registry names (or the default one)."""
    from cluster.registry import Registry

    return Registry(args.registry)


def fail_line(path, error: BaseException) -> str:
    """One line for a failed input: the file and the cause, with no traceback."""
    from pipelines.errors import error_line

    return f"voicemap: {error_line(path, error)}"


@contextmanager
def progress(items, quiet: bool, **options):
    """A tqdm bar on stderr over `items`, silent when quiet or when stderr is not a terminal."""
    from tqdm import tqdm

    bar = tqdm(items, disable=quiet or None, file=sys.stderr, **options)
    try:
        yield bar
    finally:
        bar.close()


#: share of a file's work each stage takes, for the per-file bar (embeddings dominate), so it moves evenly
_STAGE_SPAN = {"segmentation": (0.0, 0.3), "embeddings": (0.3, 0.9), "clustering": (0.9, 0.93),
               "second look": (0.93, 0.96), "recount": (0.96, 0.99), "edges": (0.99, 1.0), "relabel": (1.0, 1.0)}


@contextmanager
def file_progress(name: str, quiet: bool):
    """A second, transient bar for the stages of one long file; yields a Diarizer hook (or None when quiet)."""
    from tqdm import tqdm

    if quiet:
        yield None
        return
    bar = tqdm(total=100, desc=name[:30], unit="%", position=1, leave=False, disable=None, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def hook(stage: str, fraction: float) -> None:
        start, end = _STAGE_SPAN.get(stage, (0.0, 1.0))
        bar.n = int(100 * (start + (end - start) * fraction))
        bar.set_postfix_str(stage, refresh=True)

    try:
        yield hook
    finally:
        bar.close()
