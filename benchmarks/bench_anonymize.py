"""Anonymization figures: privacy (CAM++ attacker EER) and utility (DER against the original's diarization).

    python benchmarks/bench_anonymize.py                  # 5 conversations of 60 s, all methods
    python benchmarks/bench_anonymize.py -n 2 --duration 30 --methods mcadams

Conversations are simulated from the shared LibriSpeech test-other readers (eval.simulate), so every
speaker turn is known exactly. For each method, each conversation is anonymized the way
`voicemap anonymize` does it (pseudo-voices assigned to the labels of the original's diarization), then:

- ignorant attacker: enrollment = 3 original recordings of every reader, kept out of the conversations;
  trials = every (reader, anonymized turn) pair, target when the reader spoke the turn;
- lazy-informed attacker: the same, with each reader's enrollment anonymized by the same method but a
  pseudo-voice of its own drawn from another seed (the attacker knows the method, not the draw);
- utility: DER of the anonymized recording's diarization against the original's diarization (pyannote
  metrics, no collar); speech timing error: the detection error rate (missed + false alarm speech, speakers
  ignored) between the same two; and whether the output length equals the input length in samples. DER against the
  exact reference is shown too: the `none` row is the original's, so the cost of anonymizing is the gap
  (the original's own diarization errors, e.g. a reader split in two and given two pseudo-voices, count
  against "DER vs original" without being the transform's fault).

A turn is scored on its single-voice speech only (double talk with another reader is cut out) and kept
when that is at least 1.5 s. Enrollment is the mean of a reader's unit embeddings over 3 recordings (8 s
each at most). The `none` row is the attacker on unprocessed turns: how strong the attacker is.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SPEAKERS = REPO.parent / "shared" / "data" / "speakers" / "librispeech-test-other"
RATE = 16000


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def clean_turns(turns, reference):
    """(speaker, [(start, end) samples]) per turn: its speech minus everybody else's, if >= 1.5 s."""
    from pyannote.core import Segment, Timeline

    out = []
    for turn in turns:
        own = Timeline([Segment(s / RATE, e / RATE) for s, e in turn.regions]).support()
        others = reference.subset([label for label in reference.labels() if label != turn.speaker]).get_timeline().support()
        kept = own.extrude(others)
        spans = [(int(seg.start * RATE), int(seg.end * RATE)) for seg in kept if seg.duration > 0.05]
        if sum(e - s for s, e in spans) >= 1.5 * RATE:
            out.append((turn.speaker, spans))
    return out


def eer(enrollment: dict[str, np.ndarray], turns: list[tuple[str, np.ndarray]]) -> float:
    from eval.verification import error_rates

    readers = sorted(enrollment)
    scores, targets = [], []
    for speaker, embedding in turns:
        for reader in readers:
            scores.append(float(enrollment[reader] @ unit(embedding)))
            targets.append(reader == speaker)
    return error_rates(np.array(scores), np.array(targets))[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5, help="conversations")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per conversation")
    parser.add_argument("--speakers", type=int, default=3, help="readers per conversation")
    parser.add_argument("--methods", default="mcadams,pitch,combined,strong,warp,spread")
    parser.add_argument("--seed", type=int, default=0, help="seed of the conversations and of the pseudo-voices; "
                        "tune on another seed (a dev set) than the one reported")
    parser.add_argument("--cache", type=Path, help="folder keeping the originals' diarizations and the original "
                        "enrollment and turn embeddings between runs (they do not depend on the method)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per conversation: speakers found "
                        "in the original and the anonymized recording, DER, and DER with the original's count forced")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from diarize.audio import load_audio
    from diarize.pipeline import Diarizer
    from pyannote.metrics.detection import DetectionErrorRate

    from eval.metrics import DiarizationScores
    from eval.simulate import SimulationConfig, SourceCache, _children, plan_conversation, render, speakers_from_folder
    from synth.anonymize.recording import anonymize_samples, draw_pseudo_voices
    from synth.anonymize.voice_transforms import median_f0, transform

    methods = [m for m in args.methods.split(",") if m]
    readers = speakers_from_folder(SPEAKERS)
    # the first 3 recordings of every reader are its enrollment, kept out of the conversations
    enrollment_paths = {reader: sorted(paths)[:3] for reader, paths in readers.items()}
    pool = {reader: sorted(paths)[3:] for reader, paths in readers.items()}
    config = SimulationConfig(target_duration=args.duration)
    cache = SourceCache(config)
    diarizer = Diarizer()
    encoder = diarizer.encoder  # CAM++: the attacker is the encoder the diarization uses

    conversations = []
    for index, child in enumerate(_children(args.seed, args.n)):
        plan_seed, noise_seed = _children(child, 2)
        turns = plan_conversation(pool, args.speakers, seed=plan_seed, config=config, cache=cache)
        samples, reference = render(turns, config=config, cache=cache, uri=f"anon{index}", seed=noise_seed)
        conversations.append((samples, reference, clean_turns(turns, reference)))

    enrollment_audio = {}
    for reader, paths in enrollment_paths.items():
        enrollment_audio[reader] = [load_audio(p).samples[: 8 * RATE] for p in paths]

    def enroll(transform_reader=None) -> dict[str, np.ndarray]:
        out = {}
        for reader, pieces in enrollment_audio.items():
            if transform_reader is not None:
                pieces = transform_reader(reader, pieces)
            out[reader] = unit(np.mean([unit(encoder.embed(np.asarray(p, dtype=np.float32))) for p in pieces], axis=0))
        return out

    started = time.perf_counter()

    def method_independent():
        originals = [diarizer(load_waveform(samples, f"anon{i}")).annotation
                     for i, (samples, _, _) in enumerate(conversations)]
        base_turns = [(speaker, encoder.embed(np.concatenate([samples[s:e] for s, e in spans]).astype(np.float32)))
                      for samples, _, turns in conversations for speaker, spans in turns]
        return originals, enroll(), base_turns

    # keyed by the audio itself too: a change to the simulation must not reuse another set's diarizations
    digest = hashlib.sha1(b"".join(np.asarray(samples, np.float32).tobytes() for samples, _, _ in conversations))
    key = f"n{args.n}-d{args.duration:g}-k{args.speakers}-seed{args.seed}-{digest.hexdigest()[:12]}"
    originals, enrolled, base_turns = cached(args.cache, key, method_independent)
    print(f"{args.n} simulated conversations x {args.duration:.0f} s, {args.speakers} LibriSpeech test-other readers "
          f"each; {len(base_turns)} scored turns x {len(enrolled)} enrolled readers; attacker CAM++; "
          f"{platform.machine()}, torch threads 1", flush=True)
    print(f"{'method':<10} {'ignorant EER':>13} {'lazy-informed EER':>18} {'DER vs original':>16} "
          f"{'speech timing err':>18} {'DER vs reference':>17} {'same length':>12} {'anonymize+diarize RTF':>22}",
          flush=True)
    original_scores = DiarizationScores()
    for (_, reference, _), original in zip(conversations, originals):
        original_scores.add(reference.uri, reference, original)
    show("none", eer(enrolled, base_turns), float("nan"), 0.0, 0.0, original_scores.total()["der"], True, 0.0)
    for method in methods:
        clock = time.perf_counter()
        scores, against_reference, timing = DiarizationScores(), DiarizationScores(), DetectionErrorRate()
        turn_embeddings, same_length, audio_seconds = [], True, 0.0
        for index, ((samples, reference, turns), original) in enumerate(zip(conversations, originals)):
            result = anonymize_samples(samples, RATE, original, seed=args.seed + index, method=method)
            same_length &= len(result.samples) == len(samples)
            audio_seconds += len(samples) / RATE
            # diarized exactly as `voicemap diarize` would diarize the output file: the second look and the
            # edge trimming need the audio, as they had it for the original
            waveform = load_waveform(result.samples, f"anon{index}")
            encoder_samples = diarizer.encoder_samples(waveform)
            evidence = diarizer.evidence(waveform, encoder_samples=encoder_samples)
            again = diarizer.reconstruct(evidence, *diarizer.cluster(evidence), len(samples) / RATE, f"anon{index}",
                                         encoder_samples)
            row = scores.add(f"anon{index}", original, again.annotation)
            against_reference.add(f"anon{index}", reference, again.annotation)
            timing(original, again.annotation)
            if args.verbose:
                forced = forced_count(diarizer, evidence, len(original.labels()), len(samples) / RATE, f"anon{index}",
                                      encoder_samples)
                print(f"  {method} anon{index}: speakers {len(original.labels())} -> {len(again.labels)}, "
                      f"DER {100 * row['der']:.1f} % (confusion {100 * row['confusion'] / row['total']:.1f} %), "
                      f"with the original's count forced {100 * DiarizationScores().add('', original, forced)['der']:.1f} %",
                      flush=True)
            for speaker, spans in turns:
                piece = np.concatenate([result.samples[s:e] for s, e in spans])
                turn_embeddings.append((speaker, encoder.embed(piece.astype(np.float32))))
        elapsed = time.perf_counter() - clock

        def lazy(reader, pieces, method=method):
            # the attacker's own draw: same method, another seed, one pseudo-voice per reader
            voice = draw_pseudo_voices([reader], 10_000 + args.seed + sorted(pool).index(reader), method)[reader]
            f0 = median_f0(np.concatenate(pieces), RATE) if method != "mcadams" else None
            return [transform(p, RATE, voice, method, source_f0=f0) for p in pieces]

        ignorant = eer(enrolled, turn_embeddings)
        informed = eer(enroll(lazy), turn_embeddings)
        show(method, ignorant, informed, scores.total()["der"], abs(timing), against_reference.total()["der"],
             same_length, elapsed / audio_seconds)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)

    return 0


def cached(folder: Path | None, key: str, compute):
    """compute(), or what it returned on the last run with the same key (a pickle under `folder`)."""
    import pickle

    if folder is None:
        return compute()
    path = folder / f"bench_anonymize-{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    value = compute()
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def forced_count(diarizer, evidence, num_speakers: int, duration: float, uri: str, samples=None):
    """The anonymized recording's diarization from the same evidence, clustered into `num_speakers`: if the
    DER falls to near the timing error, the count (merge or split) was the problem, not the segmentation."""
    from dataclasses import replace

    from diarize.pipeline import Diarizer

    forced = Diarizer(replace(diarizer.config, clustering=replace(diarizer.config.clustering, num_speakers=num_speakers)))
    forced.segmenter, forced._encoder = diarizer.segmenter, diarizer.encoder
    return forced.reconstruct(evidence, *forced.cluster(evidence), duration, uri, samples).annotation


def show(method, ignorant, informed, der, timing, der_reference, same, rtf) -> None:
    informed_text = "-" if np.isnan(informed) else f"{100 * informed:.1f} %"
    print(f"{method:<10} {100 * ignorant:>11.1f} % {informed_text:>18} {100 * der:>14.1f} % {100 * timing:>16.1f} % "
          f"{100 * der_reference:>15.1f} % {str(same):>12} {rtf:>22.2f}", flush=True)


def load_waveform(samples: np.ndarray, uri: str):
    from diarize.audio import Waveform

    return Waveform(np.asarray(samples, dtype=np.float32), RATE, uri)


if __name__ == "__main__":
    sys.exit(main())
