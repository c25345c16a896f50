"""Intelligibility of anonymized speech: how much a speech recognizer's transcript changes.

    pip install -e ".[bench]"                            # pocketsphinx 5, its English model inside the wheel
    python benchmarks/bench_intelligibility.py           # 30 utterances x 9 conditions, about 30 minutes

No reference transcripts ship with the shared LibriSpeech readers, so the recognizer's transcript of the
original utterance is the reference. Every condition's transcript is compared with it (word error rate,
corpus level: errors over all reference words). What is measured is the damage the transform does to what a
recognizer hears, not the recognizer's own accuracy. The recognizer is pocketsphinx's English model (CMU
Sphinx, a small HMM recognizer, offline): the figures say how this recognizer copes, not how a listener or a
modern recognizer would; the controls show how far apart those can be.

Conditions (each utterance is one single-speaker recording, transformed whole at 16 kHz):
- two controls that people understand without effort, to show how fragile the recognizer is: the
  telephone band (300-3400 Hz, 8th-order Butterworth band-pass) and white noise at 20 dB SNR (seeded);
- each anonymization method, with the pseudo-voice `voicemap anonymize` would draw for a one-speaker
  recording (seed = --seed + utterance index), pitch moved from the utterance's own median;
- the one fixed setting of `bench_pitch_privacy.py` that hid the readers from CAM++ (ignorant EER >= 35 %):
  pitch -6 semitones, formants x1.3.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SPEAKERS = REPO.parent / "shared" / "data" / "speakers" / "librispeech-test-other"
RATE = 16000


def recognizer():
    """A pocketsphinx decoder with the English model of its wheel; one line and exit 2 when it is missing."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        print("bench_intelligibility: needs pocketsphinx (pip install -e \".[bench]\")", file=sys.stderr)
        sys.exit(2)
    decoder = Decoder(samprate=RATE, loglevel="ERROR")

    def transcribe(samples: np.ndarray) -> str:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    return transcribe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SPEAKERS, help="folder of <speaker>/<utterance>.flac")
    parser.add_argument("--per-reader", type=int, default=3, help="utterances per reader")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pseudo-voices (utterance i: seed + i)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods (default: all; \"\" for the controls and the fixed setting only)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"bench_intelligibility: {args.data}: no such folder", file=sys.stderr)
        return 2
    transcribe = recognizer()

    from scipy.signal import butter, sosfiltfilt

    from diarize.audio import load_audio
    from eval.word_errors import corpus_word_errors, words
    from synth.anonymize.recording import draw_pseudo_voices
    from synth.anonymize.voice_transforms import METHODS, lpc_warp, median_f0, transform

    methods = list(METHODS) if args.methods is None else [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        print(f"bench_intelligibility: unknown method(s) {', '.join(unknown)} (choose from {', '.join(METHODS)})",
              file=sys.stderr)
        return 2
    paths = [path for reader in sorted(p for p in args.data.iterdir() if p.is_dir())
             for path in sorted(reader.glob("*.flac"))[3: 3 + args.per_reader]]  # the first 3 enroll elsewhere
    utterances = [load_audio(path).samples.astype(np.float64) for path in paths]
    seconds = sum(len(x) for x in utterances) / RATE
    print(f"{len(paths)} utterances of {len({p.parent.name for p in paths})} readers, {seconds:.0f} s; "
          f"recognizer pocketsphinx (en-us); {platform.machine()}", flush=True)

    def method_condition(method: str):
        def apply(x: np.ndarray, index: int) -> np.ndarray:
            voice = draw_pseudo_voices(["speaker"], args.seed + index, method)["speaker"]
            f0 = median_f0(x, RATE) if method != "mcadams" else None
            return transform(x, RATE, voice, method, source_f0=f0)
        return apply

    band = butter(8, (300.0, 3400.0), btype="bandpass", fs=RATE, output="sos")

    def noisy(x: np.ndarray, index: int) -> np.ndarray:
        noise = np.random.default_rng([args.seed, index]).standard_normal(len(x))
        return x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10.0 ** (20.0 / 10.0))

    conditions = {"telephone band 300-3400 Hz": lambda x, index: sosfiltfilt(band, x),
                  "white noise, 20 dB SNR": noisy}
    conditions.update({method: method_condition(method) for method in methods})
    conditions["-6 st, formants x1.3"] = lambda x, index: lpc_warp(x, RATE, formant_scale=1.3,
                                                                    pitch_ratio=2.0 ** (-6.0 / 12.0))

    started = time.perf_counter()
    references = [transcribe(x) for x in utterances]
    reference_words = sum(len(words(r)) for r in references)
    print(f"original transcripts: {reference_words} words ({time.perf_counter() - started:.0f} s to decode)\n", flush=True)
    print("| condition | WER against the original's transcript | substitutions / deletions / insertions | "
          "utterances unchanged |")
    print("|---|---|---|---|")
    for name, apply in conditions.items():
        hypotheses = [transcribe(apply(x, index)) for index, x in enumerate(utterances)]
        errors = corpus_word_errors(zip(references, hypotheses))
        unchanged = sum(r == h for r, h in zip(references, hypotheses))
        print(f"| {name} | {errors.rate:.1%} | {errors.substitutions} / {errors.deletions} / {errors.insertions} | "
              f"{unchanged} of {len(utterances)} |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
