"""One table over every domain we can measure here: diarization on the shared sets and on sets simulated in
other conditions, and open-set naming on registry conversations of read and of acted emotional speech.

    python benchmarks/bench_domains.py [--data ../shared/data] [--embedding campplus] [--sets a,b,...]
                                       [--cache DIR] [--json OUT]

Sets (every one scored with the same default settings, collar 0, overlap scored):
- ami: ../shared/data/diarization (13 clips of AMI meetings and a call, 30 s)
- simconv-dev: 8 simulated conversations of read speech, 3-5 speakers (shared)
- simconv-emo-dev: 8 simulated conversations of acted emotional speech, 3-5 actors (shared)
- telephone: 8 conversations of the readers through a 300-3400 Hz channel with white noise at 20 dB SNR
- many: 6 conversations of 6-8 readers
- pairs / pairs-actors: 6 conversations of 2 readers / of 2 RAVDESS actors (interviews, calls)
- short-turns-actors: 16 conversations of 3-5 RAVDESS actors, one utterance (about 1.5 s) per turn
- registry-readers / registry-actors: benchmarks/registry_conversations.py (8 conversations each; names from
  a registry, 1-2 speakers in each never enrolled)
The simulated sets are written once to --cache (default: a folder in the system's temporary directory) and
reused, so runs with other settings or encoders score the same audio.

Prints per set: DER with its parts, speakers found / true, and for the registry sets IER, the wrong-name share
(speech given an enrolled name that is not the speaker's) and unknown recall (never-enrolled speakers' speech
called unknown_*). The speed line gives the seconds of diarization per minute of audio over all sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: simulated sets: (speaker folder, n, seed, min and max speakers, SimulationConfig options)
SIMULATED = {
    "telephone": ("librispeech-test-other", 8, 300, 3, 5, {"telephone": True, "noise_snr_db": 20.0}),
    "many": ("librispeech-test-other", 6, 400, 6, 8, {}),
    "pairs": ("librispeech-test-other", 6, 500, 2, 2, {}),
    "pairs-actors": ("ravdess-dev", 6, 600, 2, 2, {}),
    # one RAVDESS utterance per turn (about 1.5 s of speech): fast turn-taking of varied voices, the regime of
    # the held-back emotional sets; energy-marked reference, as silero-vad misses whole files of one actor
    "short-turns-actors": ("ravdess-dev", 16, 23, 3, 5, {"vad_confirmed": False}),
}
SHARED = {"ami": "diarization", "simconv-dev": "simconv-dev", "simconv-emo-dev": "simconv-emo-dev"}
REGISTRY = {"registry-readers": "readers", "registry-actors": "actors"}
ALL = [*SHARED, *SIMULATED, *REGISTRY]


def manifest_of(name: str, data: Path, cache: Path) -> Path:
    if name in SHARED:
        return data / SHARED[name] / "manifest.tsv"
    from eval.simulate import SimulationConfig, write_simulated_set

    folder, n, seed, low, high, options = SIMULATED[name]
    out = cache / name
    if not (out / "manifest.tsv").exists():
        write_simulated_set(out, data / "speakers" / folder, n, seed, min_speakers=low, max_speakers=high,
                            config=SimulationConfig(**options), prefix=name[:3])
    return out / "manifest.tsv"


def diarization_scores(manifest: Path, diarizer) -> dict:
    """DER and parts over a manifest, speakers found / true, audio seconds and diarization seconds."""
    from eval.corpora import load_rttm, load_uem, read_manifest
    from eval.metrics import DiarizationScores

    scores = DiarizationScores()
    audio_seconds = compute = 0.0
    for item in read_manifest(manifest):
        reference = load_rttm(item.rttm, item.uri)
        uem = load_uem(item.uem, item.uri) if item.uem else None
        started = time.perf_counter()
        result = diarizer(item.audio)
        compute += time.perf_counter() - started
        audio_seconds += result.duration
        hypothesis = result.annotation.rename_labels()
        hypothesis.uri = item.uri
        scores.add(item.uri, reference, hypothesis, uem)
    total = scores.total()
    seconds = total["total"] or 1.0
    return {"der": total["der"], **{key: total[key] / seconds for key in ("missed", "false_alarm", "confusion")},
            "speakers_found": total["hypothesis_speakers"], "speakers_true": total["reference_speakers"],
            "audio_seconds": audio_seconds, "compute_seconds": compute}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--embedding", default="campplus")
    parser.add_argument("--sets", default=",".join(ALL), help=f"comma-separated, from: {', '.join(ALL)}")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "voicemap-domain-sets")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.sets.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ALL]
    if unknown:
        parser.error(f"unknown set(s): {', '.join(unknown)}")

    import torch

    from diarize.config import DiarizationConfig, EmbeddingConfig
    from diarize.pipeline import Diarizer
    from registry_conversations import measure

    torch.set_num_threads(args.threads)
    diarizer = Diarizer(DiarizationConfig(embedding=EmbeddingConfig(encoder=args.embedding)))
    rows = {}
    for name in chosen:
        started = time.time()
        if name in REGISTRY:
            rows[name] = measure(REGISTRY[name], data=args.data, diarizer=diarizer, log=lambda line: None)
        else:
            rows[name] = diarization_scores(manifest_of(name, args.data, args.cache), diarizer)
        print(f"{name}: done in {time.time() - started:.0f} s", file=sys.stderr, flush=True)

    header = (f"{'set':<18} {'DER%':>6} {'miss':>5} {'FA':>5} {'conf':>5} {'found/true':>10} "
              f"{'IER%':>6} {'wrong%':>6} {'unk%':>5}")
    print(f"\nencoder {diarizer.encoder.encoder_id}\n{header}\n{'-' * len(header)}")
    for name, row in rows.items():
        registry = name in REGISTRY
        print(f"{name:<18} {100 * row['der']:>6.1f} {100 * row['missed']:>5.1f} {100 * row['false_alarm']:>5.1f} "
              f"{100 * row['confusion']:>5.1f} {row['speakers_found']:>5}/{row['speakers_true']:<4} "
              + (f"{100 * row['ier']:>6.1f} {100 * row['wrong_name']:>6.1f} {100 * row['unknown_recall']:>5.0f}"
                 if registry else f"{'-':>6} {'-':>6} {'-':>5}"))
    timed = [row for row in rows.values() if "compute_seconds" in row]
    if timed:
        audio = sum(row["audio_seconds"] for row in timed)
        compute = sum(row["compute_seconds"] for row in timed)
        print(f"\nspeed: {60 * compute / audio:.2f} s of diarization per minute of audio (RTF {compute / audio:.3f}) "
              f"over {audio / 60:.1f} min, models loaded")
    if args.json:
        args.json.write_text(json.dumps({"encoder": diarizer.encoder.encoder_id, "sets": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
