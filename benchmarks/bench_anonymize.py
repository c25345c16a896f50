"""Anonymization figures: privacy (attacker EER, CAM++ and others) and utility (DER against the original's diarization).

    python benchmarks/bench_anonymize.py                  # 5 conversations of 60 s, all methods
    python benchmarks/bench_anonymize.py -n 2 --duration 30 --methods mcadams --attackers campplus,ecapa

Conversations are simulated from a folder of single-speaker recordings (`<dir>/<speaker>/<recording>`, by
default the shared LibriSpeech test-other readers; eval.simulate), so every speaker turn is known exactly.
For each method, each conversation is anonymized the way `voicemap anonymize` does it (pseudo-voices
assigned to the labels of the original's diarization), then:

- ignorant attacker: enrollment = the first `--enroll-files` (3) original recordings of every reader in
  sorted name order, kept out of the conversations; trials = every (reader, anonymized turn) pair, target
  when the reader spoke the turn;
- lazy-informed attacker: the same, with each reader's enrollment anonymized by the same method but a
  pseudo-voice of its own drawn from another seed (the attacker knows the method, not the draw);
- utility: DER of the anonymized recording's diarization against the original's diarization (pyannote
  metrics, no collar); speech timing error: the detection error rate (missed + false alarm speech, speakers
  ignored) between the same two; and whether the output length equals the input length in samples. DER against the
  exact reference is shown too: the `none` row is the original's, so the cost of anonymizing is the gap
  (the original's own diarization errors, e.g. a reader split in two and given two pseudo-voices, count
  against "DER vs original" without being the transform's fault).

A turn is scored on its single-voice speech only (double talk with another reader is cut out) and kept
when that is at least 1.5 s. Enrollment is the mean of a reader's unit embeddings over its enrollment
recordings (8 s each at most). The `none` row is the attacker on unprocessed turns: how strong the attacker is.

Attackers (`--attackers campplus,ecapa`): each encoder gets its own ignorant and lazy-informed EER columns,
scored on the same turns and enrollment audio. The diarization (and so the labels the pseudo-voices are dealt
to, and both DER columns) is always the default CAM++ pipeline, as `voicemap anonymize` runs it.

RAVDESS actors (`speakers/ravdess-dev`, 2 sentences x 8 emotions, ~3.5 s files with ~1.4 s of speech):
3 files would enroll an actor on ~4 s of speech, so the reported runs use `--enroll-files 6`: in sorted
order those are the neutral and calm recordings (one actor, who lacks a calm one, gets a happy one), and
the conversations are drawn from the other six emotions, so the attack is across emotions as well. A
single turn then holds at most ~1.4 s of speech, under the 1.5 s a trial needs, so those runs also use
`--join-seconds 2.5`: an actor's turns within a conversation are joined, in the order spoken, into trials
of at least 2.5 s (median 2.8 s, against a median 3.2 s for the readers' single turns).

    python benchmarks/bench_anonymize.py --speakers-dir ../shared/data/speakers/ravdess-dev --enroll-files 6 \
        --join-seconds 2.5 --attackers campplus,ecapa
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


def clean_turns(turns, reference, join_seconds: float = 0.0, min_seconds: float = 1.5):
    """(speaker, [(start, end) samples]) per trial: a turn's speech minus everybody else's, if >= `min_seconds`.

    With `join_seconds`, a speaker's turns are joined in the order spoken until they hold that much speech, and
    each join is one trial (a last, shorter one is kept if it reaches `min_seconds`): for sources whose single
    recordings are shorter than a useful trial."""
    from pyannote.core import Segment, Timeline

    out, pending = [], {}
    for turn in turns:
        own = Timeline([Segment(s / RATE, e / RATE) for s, e in turn.regions]).support()
        others = reference.subset([label for label in reference.labels() if label != turn.speaker]).get_timeline().support()
        kept = own.extrude(others)
        spans = [(int(seg.start * RATE), int(seg.end * RATE)) for seg in kept if seg.duration > 0.05]
        if join_seconds > 0:
            spans = pending.pop(turn.speaker, []) + spans
            if sum(e - s for s, e in spans) < join_seconds * RATE:
                pending[turn.speaker] = spans
                continue
        if sum(e - s for s, e in spans) >= min_seconds * RATE:
            out.append((turn.speaker, spans))
    for speaker, spans in pending.items():
        if sum(e - s for s, e in spans) >= min_seconds * RATE:
            out.append((speaker, spans))
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
    parser.add_argument("--speakers-dir", type=Path, default=SPEAKERS, help="folder of <speaker>/<recording> "
                        "audio the conversations and enrollments come from (default: the LibriSpeech test-other "
                        "readers)")
    parser.add_argument("--enroll-files", type=int, default=3, help="recordings per speaker (the first in sorted "
                        "order) kept out of the conversations as its enrollment")
    parser.add_argument("--join-seconds", type=float, default=0.0, help="join each speaker's turns in a "
                        "conversation into trials of at least this much single-voice speech (0: one trial per turn)")
    parser.add_argument("--attackers", default="campplus", help="comma-separated speaker encoders "
                        "(diarize.embedding.load_encoder names) that attack; each gets its own EER columns")
    parser.add_argument("--methods", default="mcadams,pitch,combined,strong,warp,spread")
    parser.add_argument("--seed", type=int, default=0, help="seed of the conversations and of the pseudo-voices; "
                        "tune on another seed (a dev set) than the one reported")
    parser.add_argument("--cache", type=Path, help="folder keeping the originals' diarizations and the original "
                        "enrollment and turn embeddings between runs (they do not depend on the method)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per conversation: speakers found "
                        "in the original and the anonymized recording, DER, and DER with the original's count forced")
    args = parser.parse_args(argv)
    attacker_names = [a for a in args.attackers.split(",") if a]
    if not attacker_names:
        parser.error("--attackers: name at least one encoder")
    if args.enroll_files < 1:
        parser.error("--enroll-files must be at least 1")

    import torch

    torch.set_num_threads(1)
    from diarize.audio import load_audio
    from diarize.embedding import load_encoder
    from diarize.pipeline import Diarizer
    from pyannote.metrics.detection import DetectionErrorRate

    from eval.metrics import DiarizationScores
    from eval.simulate import SimulationConfig, SourceCache, child_seeds, plan_conversation, render, speakers_from_folder
    from synth.anonymize.recording import anonymize_samples, draw_pseudo_voices
    from synth.anonymize.voice_transforms import median_f0, transform

    methods = [m for m in args.methods.split(",") if m]
    readers = speakers_from_folder(args.speakers_dir)
    # the first recordings of every reader are its enrollment, kept out of the conversations
    enrollment_paths = {reader: sorted(paths)[: args.enroll_files] for reader, paths in readers.items()}
    pool = {reader: sorted(paths)[args.enroll_files:] for reader, paths in readers.items()}
    pool = {reader: paths for reader, paths in pool.items() if paths}
    config = SimulationConfig(target_duration=args.duration)
    cache = SourceCache(config)
    diarizer = Diarizer()
    encoder = diarizer.encoder  # CAM++: the encoder the diarization uses, and the default attacker

    def attacker_encoder(name):
        # the diarizer's own instance when it is the same model: loaded once, and the same weights for certain
        return encoder if load_name(encoder) == name else load_encoder(name)

    attackers = {name: attacker_encoder(name) for name in attacker_names}

    conversations = []
    for index, child in enumerate(child_seeds(args.seed, args.n)):
        plan_seed, noise_seed = child_seeds(child, 2)
        turns = plan_conversation(pool, args.speakers, seed=plan_seed, config=config, cache=cache)
        samples, reference = render(turns, config=config, cache=cache, uri=f"anon{index}", seed=noise_seed)
        conversations.append((samples, reference, clean_turns(turns, reference, args.join_seconds)))

    enrollment_audio = {}
    for reader, paths in enrollment_paths.items():
        enrollment_audio[reader] = [load_audio(p).samples[: 8 * RATE] for p in paths]

    def enroll(transform_reader=None, encoders=None) -> dict[str, dict[str, np.ndarray]] | dict[str, np.ndarray]:
        """{reader: enrollment} for the diarizer's encoder, or {attacker: {reader: enrollment}} given
        `encoders`; a transform is applied once and its output shared by every encoder."""
        out = {name: {} for name in (encoders or {"": encoder})}
        for reader, pieces in enrollment_audio.items():
            if transform_reader is not None:
                pieces = transform_reader(reader, pieces)
            for name, model in (encoders or {"": encoder}).items():
                out[name][reader] = unit(np.mean([unit(model.embed(np.asarray(p, dtype=np.float32))) for p in pieces],
                                                  axis=0))
        return out if encoders else out[""]

    started = time.perf_counter()

    def method_independent():
        originals = [diarizer(load_waveform(samples, f"anon{i}")).annotation
                     for i, (samples, _, _) in enumerate(conversations)]
        base_turns = [(speaker, encoder.embed(np.concatenate([samples[s:e] for s, e in spans]).astype(np.float32)))
                      for samples, _, turns in conversations for speaker, spans in turns]
        return originals, enroll(), base_turns

    # keyed by the audio itself too: a change to the simulation must not reuse another set's diarizations, and
    # by the enrollment recordings, which the conversations' audio does not pin down
    digest = hashlib.sha1(b"".join(np.asarray(samples, np.float32).tobytes() for samples, _, _ in conversations))
    for reader in sorted(enrollment_paths):
        digest.update("\n".join(f"{reader}/{p.name}" for p in enrollment_paths[reader]).encode())
    key = (f"n{args.n}-d{args.duration:g}-k{args.speakers}-seed{args.seed}-{digest.hexdigest()[:12]}"
           + (f"-join{args.join_seconds:g}" if args.join_seconds > 0 else ""))
    originals, enrolled_campplus, base_campplus = cached(args.cache, key, method_independent)

    def attacker_independent(name):
        model = attackers[name]
        if model is encoder:
            return enrolled_campplus, base_campplus
        return (enroll(encoders={name: model})[name],
                [(speaker, model.embed(np.concatenate([samples[s:e] for s, e in spans]).astype(np.float32)))
                 for samples, _, turns in conversations for speaker, spans in turns])

    enrolled, base_turns = {}, {}
    for name in attackers:
        enrolled[name], base_turns[name] = cached(args.cache, f"{key}-attacker-{attackers[name].encoder_id}",
                                                  lambda name=name: attacker_independent(name))
    trial_seconds = [sum(e - s for s, e in spans) / RATE for _, _, turns in conversations for _, spans in turns]
    print(f"{args.n} simulated conversations x {args.duration:.0f} s, {args.speakers} speakers of "
          f"{args.speakers_dir.name} each ({len(pool)} in the pool, {args.enroll_files} recordings each enrolled); "
          f"{len(trial_seconds)} scored {'joined turns' if args.join_seconds > 0 else 'turns'} (median "
          f"{np.median(trial_seconds):.2f} s of speech) x {len(enrolled_campplus)} enrolled speakers; attackers "
          f"{', '.join(attackers)}; {platform.machine()}, torch threads 1", flush=True)
    print(f"{'method':<10} " + " ".join(f"{name + ' ignorant':>17} {name + ' lazy':>13}" for name in attackers)
          + f" {'DER vs original':>16} {'speech timing err':>18} {'DER vs reference':>17} {'same length':>12} "
          f"{'anonymize+diarize RTF':>22}", flush=True)
    original_scores = DiarizationScores()
    for (_, reference, _), original in zip(conversations, originals):
        original_scores.add(reference.uri, reference, original)
    show("none", [(eer(enrolled[name], base_turns[name]), float("nan")) for name in attackers], 0.0, 0.0,
         original_scores.total()["der"], True, 0.0)
    for method in methods:
        clock = time.perf_counter()
        scores, against_reference, timing = DiarizationScores(), DiarizationScores(), DetectionErrorRate()
        turn_audio, same_length, audio_seconds = [], True, 0.0
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
                turn_audio.append((speaker, np.concatenate([result.samples[s:e] for s, e in spans]).astype(np.float32)))
        # the attackers' embeddings are not part of anonymizing, so they stay out of the RTF
        elapsed = time.perf_counter() - clock

        def lazy(reader, pieces, method=method):
            # the attacker's own draw: same method, another seed, one pseudo-voice per reader
            voice = draw_pseudo_voices([reader], 10_000 + args.seed + sorted(readers).index(reader), method)[reader]
            f0 = median_f0(np.concatenate(pieces), RATE) if method != "mcadams" else None
            return [transform(p, RATE, voice, method, source_f0=f0) for p in pieces]

        informed_enrollment = enroll(lazy, encoders=attackers)
        rates = []
        for name, model in attackers.items():
            turn_embeddings = [(speaker, model.embed(piece)) for speaker, piece in turn_audio]
            rates.append((eer(enrolled[name], turn_embeddings), eer(informed_enrollment[name], turn_embeddings)))
        show(method, rates, scores.total()["der"], abs(timing), against_reference.total()["der"],
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


def load_name(encoder) -> str:
    """The load_encoder name of a loaded encoder's default weights (its id up to the first dash)."""
    return encoder.encoder_id.split("-", 1)[0]


def show(method, rates, der, timing, der_reference, same, rtf) -> None:
    """rates: (ignorant EER, lazy-informed EER) per attacker; NaN lazy-informed prints as "-"."""
    columns = []
    for ignorant, informed in rates:
        informed_text = "-" if np.isnan(informed) else f"{100 * informed:.1f} %"
        columns.append(f"{100 * ignorant:>15.1f} % {informed_text:>13}")
    print(f"{method:<10} {' '.join(columns)} {100 * der:>14.1f} % {100 * timing:>16.1f} % "
          f"{100 * der_reference:>15.1f} % {str(same):>12} {rtf:>22.2f}", flush=True)


def load_waveform(samples: np.ndarray, uri: str):
    from diarize.audio import Waveform

    return Waveform(np.asarray(samples, dtype=np.float32), RATE, uri)


if __name__ == "__main__":
    sys.exit(main())
