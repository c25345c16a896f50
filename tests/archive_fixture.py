"""A small real archive for the linking, search and report tests: voicemap outputs whose centroids are real
CAM++ embeddings of real LibriSpeech readers, and (on request) the recordings' audio.

Each recording puts 2-3 readers one after the other, each reading one utterance of their own that no other
recording uses, so that a reader's centroid differs from recording to recording as it does in an archive.
The JSON is diarize's layout (uri, duration, encoder, segments, exclusive_segments, speakers with centroid and
speech_seconds); the speakers are named SPEAKER_00... in each recording, in order of appearance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

READERS = ("1688", "2414", "3005", "367")
#: recording -> readers, in order: every three of the four, twice, so that every reader recurs in six
#: recordings and seven recordings already hold the 20 within-recording pairs linking measures its threshold on
PLAN = (("1688", "2414", "3005"), ("2414", "367", "1688"), ("3005", "1688", "367"), ("367", "2414", "3005"),
        ("2414", "3005", "1688"), ("1688", "367", "2414"), ("367", "3005", "1688"), ("3005", "2414", "367"))
GAP = 0.7  # seconds of silence between two readers


@dataclass
class Archive:
    outdir: Path
    audio: Path
    truth: dict[tuple[str, str], str]  # (uri, SPEAKER_xx) -> reader
    held_out: dict[str, Path]  # reader -> an utterance no recording uses
    encoder_id: str


def build_archive(shared_data: Path, outdir: Path, audio_dir: Path, encoder, plan=PLAN, write_audio: bool = False,
                  prefix: str = "rec") -> Archive:
    import soundfile as sf

    from diarize.audio import load_audio

    speakers_dir = shared_data / "speakers" / "librispeech-test-other"
    files = {reader: sorted((speakers_dir / reader).glob("*.flac")) for reader in READERS}
    used = {reader: 0 for reader in READERS}
    truth = {}
    outdir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    for number, readers in enumerate(plan):
        uri = f"{prefix}{number:02d}"
        pieces, segments, speakers = [], [], {}
        cursor = 0.5
        pieces.append(np.zeros(int(0.5 * 16000), np.float32))
        for position, reader in enumerate(readers):
            path = files[reader][used[reader]]
            used[reader] += 1
            samples = load_audio(path).samples
            label = f"SPEAKER_{position:02d}"
            seconds = len(samples) / 16000
            vector = encoder.embed(samples)
            segments.append({"start": round(cursor, 3), "end": round(cursor + seconds, 3), "speaker": label})
            speakers[label] = {"speech_seconds": round(seconds, 3), "encoder": encoder.encoder_id,
                               "centroid": [round(float(v), 6) for v in vector]}
            truth[(uri, label)] = reader
            pieces.extend([samples, np.zeros(int(GAP * 16000), np.float32)])
            cursor += seconds + GAP
        duration = sum(len(p) for p in pieces) / 16000
        payload = {"uri": uri, "duration": round(duration, 3), "encoder": encoder.encoder_id, "segments": segments,
                   "exclusive_segments": segments, "speakers": speakers}
        (outdir / f"{uri}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        if write_audio:
            sf.write(audio_dir / f"{uri}.flac", np.concatenate(pieces), 16000, subtype="PCM_16")
    held_out = {reader: files[reader][-1] for reader in READERS}
    assert all(used[reader] < len(files[reader]) for reader in READERS), "plan uses the held-out utterances"
    return Archive(outdir, audio_dir, truth, held_out, encoder.encoder_id)
