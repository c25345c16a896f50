"""Identification error rate by the registry issue's protocol, on conversations simulated here.

    python benchmarks/registry_conversations.py [--data ../shared/data] [-n 12] [--seed 100]
                                                [--energy-only] [--save DIR]

The 10 LibriSpeech test-other readers: 8 are enrolled (as `voicemap enroll` does, speech only, one vector
per file) from their first 5 utterances; 2 (one woman, one man, fixed before measuring) are never enrolled.
Each of the n conversations (eval/simulate.py, 3-5 speakers, ~15 % of turns overlapped, 90 s) is built
from the second 5 utterances only, with 1 or 2 of the unenrolled readers taking part. Every conversation
is diarized with the enrolled voices steering the clustering (cluster/anchoring.py), as `voicemap identify`
does, and named from the registry at the encoder's measured threshold.

Prints DER and its parts, and the identification error rate as `voicemap eval --registry` scores it
(pyannote.metrics IdentificationErrorRate, no label mapping; a reader nobody enrolled is right when called
unknown_*), per conversation and in total, plus how each unenrolled reader's speech was labelled.
--energy-only draws the references with simconv-dev's energy-only speech marking (eval/simulate.py).
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

#: never enrolled: 367 (F) and 2414 (M) per SPEAKERS.TXT; the same pair the identification tests use
NOT_ENROLLED = ("2414", "367")


def participants(rng: np.random.Generator, readers: list[str]) -> list[str]:
    """3-5 readers, 1 or 2 of them from NOT_ENROLLED."""
    enrolled = [r for r in readers if r not in NOT_ENROLLED]
    count = int(rng.integers(3, 6))
    unknown = int(rng.integers(1, 3))
    chosen = list(rng.choice(NOT_ENROLLED, size=unknown, replace=False))
    chosen += list(rng.choice(enrolled, size=count - unknown, replace=False))
    return [str(r) for r in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("-n", type=int, default=12, help="number of conversations")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--energy-only", action="store_true", help="references marked from frame energy alone")
    parser.add_argument("--unsteered", action="store_true",
                        help="diarize without the enrolled voices, then name (as before cluster/anchoring.py)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", type=Path, default=None, help="also write audio, reference and named RTTMs here")
    args = parser.parse_args()

    import soundfile as sf
    import torch

    from cluster.registry import Registry, file_sha256
    from diarize.output import rttm_lines
    from diarize.pipeline import Diarizer
    from eval.metrics import DiarizationScores, IdentificationScores
    from eval.simulate import SimulationConfig, SourceCache, simulate_conversation
    from pipelines.commands.enroll import MIN_SPEECH_S, EnrollError, embed_file
    from pipelines.identify import enrolled_voices, identify_result

    torch.set_num_threads(args.threads)
    folder = args.data / "speakers/librispeech-test-other"
    files = {d.name: sorted(d.glob("*.flac")) for d in sorted(folder.iterdir()) if d.is_dir()}
    enroll_files = {s: f[:5] for s, f in files.items() if s not in NOT_ENROLLED}
    talk_files = {s: f[5:] for s, f in files.items()}
    config = SimulationConfig(vad_confirmed=not args.energy_only)
    cache = SourceCache(config)
    diarizer = Diarizer()
    work = Path(args.save or tempfile.mkdtemp(prefix="voicemap-ier-"))
    work.mkdir(parents=True, exist_ok=True)
    registry_path = work / "voices.sqlite"
    registry_path.unlink(missing_ok=True)
    started = time.time()
    with Registry(registry_path) as registry:
        for speaker, paths in enroll_files.items():
            vectors, hashes = [], []
            for path in paths:
                try:
                    vectors.append(embed_file(str(path), diarizer.encoder, min_speech=MIN_SPEECH_S).vector)
                except EnrollError:
                    continue  # `voicemap enroll` refuses a file this short
                hashes.append(file_sha256(path))
            registry.enroll(f"reader_{speaker}", diarizer.encoder.encoder_id, np.stack(vectors), hashes)
        enrolled = {voice.name for voice in registry.list()}
        voices = None if args.unsteered else enrolled_voices(registry, diarizer.encoder.encoder_id)
        print(f"enrolled {len(enrolled)} readers in {time.time() - started:.0f} s; not enrolled: {NOT_ENROLLED}")

        diarization, identification = DiarizationScores(), IdentificationScores(enrolled)
        unknown_share = []
        rng = np.random.default_rng(args.seed)
        for index in range(args.n):
            uri = f"reg{index:03d}"
            speakers = participants(rng, sorted(files))
            audio, reference = simulate_conversation({s: talk_files[s] for s in speakers}, len(speakers),
                                                     seed=args.seed * 1000 + index, config=config, uri=uri,
                                                     cache=cache)
            reference = reference.rename_labels({s: f"reader_{s}" for s in speakers if s not in NOT_ENROLLED})
            path = work / f"{uri}.flac"
            sf.write(path, audio, 16000)
            named = identify_result(diarizer(path, voices=voices), registry)
            hypothesis = named.result.annotation
            if args.save:
                (work / f"{uri}.ref.rttm").write_text("\n".join(rttm_lines(reference, uri)) + "\n", encoding="utf-8")
                (work / f"{uri}.rttm").write_text("\n".join(rttm_lines(hypothesis, uri)) + "\n", encoding="utf-8")
            der = diarization.add(uri, reference, hypothesis)
            ier = identification.add(uri, reference, hypothesis)
            for reader in (s for s in speakers if s in NOT_ENROLLED):
                speech = reference.label_timeline(reader).support()
                labelled = {label: hypothesis.label_timeline(label).crop(speech, mode="intersection").duration()
                            for label in hypothesis.labels()}
                covered = sum(labelled.values())
                unknown = sum(d for label, d in labelled.items() if str(label).startswith("unknown_"))
                unknown_share.append(unknown / covered if covered else 1.0)
            print(f"{uri}: {len(speakers)} speakers {sorted(speakers)}; DER {100 * der['der']:.1f}% "
                  f"IER {100 * ier['ier']:.1f}%; labels {sorted(map(str, hypothesis.labels()))}")
    total, ids = diarization.total(), identification.total()
    parts = {key: 100 * total[key] / total["total"] for key in ("missed", "false_alarm", "confusion")}
    print(f"\n{args.n} conversations, {total['total']:.0f} s of reference speech; references "
          f"{'energy only' if args.energy_only else 'energy and silero-vad'}")
    print(f"DER {100 * total['der']:.1f}% (missed {parts['missed']:.1f}, false alarm {parts['false_alarm']:.1f}, "
          f"confusion {parts['confusion']:.1f})")
    print(f"IER {100 * ids['ier']:.1f}% (confusion {100 * ids['ier_confusion'] / ids['ier_total']:.1f}, missed "
          f"{100 * ids['ier_missed'] / ids['ier_total']:.1f}, false alarm {100 * ids['ier_false_alarm'] / ids['ier_total']:.1f})")
    print(f"unenrolled readers' detected speech labelled unknown_*: median {100 * np.median(unknown_share):.0f}%, "
          f"lowest {100 * min(unknown_share):.0f}% over {len(unknown_share)} appearances")
    print(f"{time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
