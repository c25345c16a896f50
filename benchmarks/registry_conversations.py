"""Open-set naming on simulated conversations: identification error, wrong names, unknown voices kept unknown.

    python benchmarks/registry_conversations.py [--speakers readers|actors] [--data ../shared/data] [-n 8]
                                                [--seed 100] [--energy-only] [--embedding campplus] [--save DIR]

Two speaker sets, each with speakers fixed before measuring that are never enrolled:
- readers: the 10 LibriSpeech test-other readers; 8 enrolled from their first 5 utterances, 367 (F) and
  2414 (M) never; conversations from their other 5 utterances, 1 or 2 unenrolled readers in each.
- actors: the 12 RAVDESS actors of speakers/ravdess-dev (acted emotional English, one studio); 9 enrolled
  from 10 utterances each (~2 s of speech per file, every third file, so several emotions), actors 10 (F),
  11 (M) and 12 (F) never; conversations from their other utterances, 1 or 2 unenrolled actors in each.
Each of the n conversations (eval/simulate.py, 3-5 speakers, ~15 % of turns overlapped, 90 s) is diarized
with the enrolled voices steering the clustering (cluster/anchoring.py), as `voicemap identify` does, and
named from the registry.

Prints per conversation and in total: DER and its parts, the identification error rate as
`voicemap eval --registry` scores it (pyannote.metrics, no label mapping; a speaker nobody enrolled is right
when called unknown_*), the wrong-name share (reference speech given an enrolled name that is not the
speaker's, over all reference speech: the error a user cannot see), and how much of the unenrolled speakers'
detected speech was called unknown.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: per set: folder under speakers/, never-enrolled speakers, how to split each speaker's files
SETS = {
    "readers": {"folder": "librispeech-test-other", "not_enrolled": ("2414", "367"),
                "enroll": lambda files: files[:5], "talk": lambda files: files[5:]},
    "actors": {"folder": "ravdess-dev", "not_enrolled": ("Actor_10", "Actor_11", "Actor_12"),
               "enroll": lambda files: files[::3][:10], "talk": lambda files: [f for f in files if f not in files[::3][:10]]},
}


def participants(rng: np.random.Generator, speakers: list[str], not_enrolled: tuple[str, ...]) -> list[str]:
    """3-5 speakers, 1 or 2 of them never enrolled."""
    enrolled = [s for s in speakers if s not in not_enrolled]
    count = int(rng.integers(3, 6))
    unknown = int(rng.integers(1, 3))
    chosen = list(rng.choice(not_enrolled, size=unknown, replace=False))
    chosen += list(rng.choice(enrolled, size=count - unknown, replace=False))
    return [str(s) for s in chosen]


def wrong_name_seconds(reference, hypothesis, enrolled: set[str], uem) -> float:
    """Reference speech that the hypothesis labels with an enrolled name other than the speaker's: the
    confusion of open-set identification when only the named turns are kept (an unknown_* turn is never a
    wrong name, and in overlapped speech a name is wrong only where no reference speaker carries it)."""
    from pyannote.metrics.identification import IdentificationErrorRate

    from eval.metrics import open_set_labels

    named = hypothesis.subset([label for label in hypothesis.labels() if label in enrolled])
    components = IdentificationErrorRate()(open_set_labels(reference, enrolled), named, uem=uem, detailed=True)
    return float(components["confusion"])


def has_speech(cache, speaker: str, path: Path) -> bool:
    """Whether the simulator finds speech in `path` (one RAVDESS file is too quiet for its detector)."""
    try:
        cache.get(speaker, path)
    except ValueError:
        return False
    return True


def enroll_vector(path: Path, encoder) -> np.ndarray | None:
    """One file's vector as `voicemap enroll` makes it (speech only); None when it holds under 0.5 s of speech."""
    from diarize.audio import load_audio
    from pipelines.voice_embedding import EnrollError, embed_speech_audio, speech_for_encoder

    waveform = load_audio(path)
    try:
        audio, _, _ = speech_for_encoder(waveform.samples, waveform.sample_rate, encoder, label=str(path),
                                         min_speech=0.5)
    except EnrollError:
        return None
    return embed_speech_audio(audio, encoder, label=str(path))


def measure(speakers: str = "readers", *, data: Path = ROOT.parent / "shared/data", n: int = 8, seed: int = 100,
            energy_only: bool = False, unsteered: bool = False, threshold: float | None = None, details: bool = False,
            save: Path | None = None, diarizer=None, log=print) -> dict:
    """Run the protocol on one speaker set -> totals: der, missed, false_alarm, confusion (shares of reference
    speech), ier, wrong_name, unknown_recall, speakers_found, speakers_true, seconds (reference speech)."""
    import soundfile as sf
    from pyannote.core import Segment, Timeline

    from cluster.registry import Registry, file_sha256
    from diarize.output import rttm_lines
    from diarize.pipeline import Diarizer
    from eval.metrics import DiarizationScores, IdentificationScores
    from eval.simulate import SimulationConfig, SourceCache, simulate_conversation
    from pipelines.identify import enrolled_voices, identify_result

    spec = SETS[speakers]
    not_enrolled = spec["not_enrolled"]
    folder = data / "speakers" / spec["folder"]
    files = {d.name: sorted(d.glob("*.flac")) for d in sorted(folder.iterdir()) if d.is_dir()}
    enroll_files = {s: spec["enroll"](f) for s, f in files.items() if s not in not_enrolled}
    config = SimulationConfig(vad_confirmed=not energy_only)
    cache = SourceCache(config)
    talk_files = {s: [path for path in spec["talk"](f) if has_speech(cache, s, path)] for s, f in files.items()}
    diarizer = diarizer or Diarizer()
    work = Path(save or tempfile.mkdtemp(prefix="voicemap-ier-"))
    work.mkdir(parents=True, exist_ok=True)
    registry_path = work / "voices.sqlite"
    registry_path.unlink(missing_ok=True)
    started = time.time()
    with Registry(registry_path) as registry:
        for speaker, paths in enroll_files.items():
            kept = [(vector, file_sha256(path)) for path in paths
                    if (vector := enroll_vector(path, diarizer.encoder)) is not None]
            registry.enroll(f"spk_{speaker}", diarizer.encoder.encoder_id, np.stack([v for v, _ in kept]),
                            [h for _, h in kept])
        enrolled = {voice.name for voice in registry.list()}
        voices = None if unsteered else enrolled_voices(registry, diarizer.encoder.encoder_id, threshold)
        log(f"{speakers}: enrolled {len(enrolled)} in {time.time() - started:.0f} s; never enrolled: "
            f"{', '.join(not_enrolled)}")

        diarization, identification = DiarizationScores(), IdentificationScores(enrolled)
        unknown_share, wrong, found = [], 0.0, []
        rng = np.random.default_rng(seed)
        for index in range(n):
            uri = f"reg{index:03d}"
            chosen = participants(rng, sorted(files), not_enrolled)
            audio, reference = simulate_conversation({s: talk_files[s] for s in chosen}, len(chosen),
                                                     seed=seed * 1000 + index, config=config, uri=uri, cache=cache)
            reference = reference.rename_labels({s: f"spk_{s}" for s in chosen if s not in not_enrolled})
            path = work / f"{uri}.flac"
            sf.write(path, audio, 16000)
            named = identify_result(diarizer(path, voices=voices), registry, threshold)
            hypothesis = named.result.annotation
            if details:
                for speaker in named.speakers:
                    turns = hypothesis.label_timeline(speaker.label)
                    truth = max(reference.labels(), key=lambda r: reference.label_timeline(r).crop(
                        turns, mode="intersection").duration(), default=None)
                    log(f"  {speaker.label:>14} {speaker.speech_seconds:5.1f}s nearest {speaker.nearest} "
                        f"cos {speaker.score if speaker.score is not None else float('nan'):.3f} "
                        f"as-norm {speaker.normalized if speaker.normalized is not None else float('nan'):.2f} "
                        f"truth {truth}")
            if save:
                (work / f"{uri}.ref.rttm").write_text("\n".join(rttm_lines(reference, uri)) + "\n", encoding="utf-8")
                (work / f"{uri}.rttm").write_text("\n".join(rttm_lines(hypothesis, uri)) + "\n", encoding="utf-8")
            uem = Timeline([Segment(0.0, len(audio) / 16000)])
            der = diarization.add(uri, reference, hypothesis, uem)
            ier = identification.add(uri, reference, hypothesis, uem)
            wrong_here = wrong_name_seconds(reference, hypothesis, enrolled, uem)
            wrong += wrong_here
            found.append((len(hypothesis.labels()), len(chosen)))
            for speaker in (s for s in chosen if s in not_enrolled):
                speech = reference.label_timeline(speaker).support()
                labelled = {label: hypothesis.label_timeline(label).crop(speech, mode="intersection").duration()
                            for label in hypothesis.labels()}
                covered = sum(labelled.values())
                unknown = sum(d for label, d in labelled.items() if str(label).startswith("unknown_"))
                unknown_share.append((unknown, covered))
            log(f"{uri}: {len(chosen)} speakers, {len(hypothesis.labels())} found; DER {100 * der['der']:.1f}% "
                f"IER {100 * ier['ier']:.1f}% wrong-name {100 * wrong_here / der['total']:.1f}%; "
                f"labels {sorted(map(str, hypothesis.labels()))}")
    total, ids = diarization.total(), identification.total()
    seconds = total["total"]
    return {
        "der": total["der"], **{key: total[key] / seconds for key in ("missed", "false_alarm", "confusion")},
        "ier": ids["ier"], "ier_confusion": ids["ier_confusion"] / ids["ier_total"],
        "ier_missed": ids["ier_missed"] / ids["ier_total"], "ier_false_alarm": ids["ier_false_alarm"] / ids["ier_total"],
        "wrong_name": wrong / seconds,
        "unknown_recall": sum(u for u, _ in unknown_share) / max(sum(c for _, c in unknown_share), 1e-9),
        "appearances": len(unknown_share), "speakers_found": sum(f for f, _ in found),
        "speakers_true": sum(t for _, t in found), "seconds": seconds, "elapsed": time.time() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speakers", choices=sorted(SETS), default="readers")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("-n", type=int, default=8, help="number of conversations")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--energy-only", action="store_true", help="references marked from frame energy alone")
    parser.add_argument("--unsteered", action="store_true",
                        help="diarize without the enrolled voices, then name (as before cluster/anchoring.py)")
    parser.add_argument("--threshold", type=float, default=None, help="naming threshold (default: the encoder's)")
    parser.add_argument("--details", action="store_true",
                        help="per speaker found: its label, nearest voice, cosine, AS-norm score and true speaker")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--embedding", default="campplus", help="speaker encoder of the diarization and the registry")
    parser.add_argument("--save", type=Path, default=None, help="also write audio, reference and named RTTMs here")
    args = parser.parse_args()

    import torch

    from diarize.config import DiarizationConfig, EmbeddingConfig
    from diarize.pipeline import Diarizer

    torch.set_num_threads(args.threads)
    diarizer = Diarizer(DiarizationConfig(embedding=EmbeddingConfig(encoder=args.embedding)))
    result = measure(args.speakers, data=args.data, n=args.n, seed=args.seed, energy_only=args.energy_only,
                     unsteered=args.unsteered, threshold=args.threshold, details=args.details, save=args.save,
                     diarizer=diarizer, log=lambda line: print(line, flush=True))
    print(f"\n{args.speakers}: {args.n} conversations, {result['seconds']:.0f} s of reference speech; references "
          f"{'energy only' if args.energy_only else 'energy and silero-vad'}")
    print(f"DER {100 * result['der']:.1f}% (missed {100 * result['missed']:.1f}, false alarm "
          f"{100 * result['false_alarm']:.1f}, confusion {100 * result['confusion']:.1f}); speakers found/true "
          f"{result['speakers_found']}/{result['speakers_true']}")
    print(f"IER {100 * result['ier']:.1f}% (confusion {100 * result['ier_confusion']:.1f}, missed "
          f"{100 * result['ier_missed']:.1f}, false alarm {100 * result['ier_false_alarm']:.1f})")
    print(f"wrong-name share {100 * result['wrong_name']:.1f}% of reference speech")
    print(f"unenrolled speakers' detected speech called unknown: {100 * result['unknown_recall']:.0f}% over "
          f"{result['appearances']} appearances")
    print(f"{result['elapsed']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
