"""Build the shipped naming cohort: one voice vector per speaker of the shared AMI clips, never their audio.

    python benchmarks/build_cohort.py [--data ../shared/data] [--embedding campplus]

For every speaker of ../shared/data/diarization (AMI meeting excerpts, CC BY 4.0, and the pyannote.audio
sample call, MIT), the stretches where that speaker alone talks (reference RTTM, inside the UEM) are joined
and embedded as `voicemap enroll` embeds a file; speakers with under 2 s of such speech are left out. The
vectors go to cluster/registry/cohort/<encoder id>.json, which cluster/registry/score_norm.py reads as impostors when naming.
These speakers are used by no naming measurement (benchmarks/registry_conversations.py draws its voices from
LibriSpeech readers and RAVDESS actors), so the cohort cannot flatter those figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIN_SECONDS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--embedding", default="campplus")
    args = parser.parse_args()

    from diarize.audio import load_audio
    from diarize.embedding import load_encoder
    from cluster.atomic_files import atomic_write_text
    from eval.corpora import load_rttm, load_uem, read_manifest
    from pipelines.voice_embedding import embed_speech_audio

    encoder = load_encoder(args.embedding)
    pieces: dict[str, list[np.ndarray]] = {}
    for item in read_manifest(args.data / "diarization" / "manifest.tsv"):
        reference = load_rttm(item.rttm, item.uri)
        uem = load_uem(item.uem, item.uri) if item.uem else None
        samples = load_audio(item.audio, sample_rate=encoder.sample_rate).samples
        overlap = reference.get_overlap()
        for speaker in reference.labels():
            alone = reference.label_timeline(speaker).support().extrude(overlap)
            if uem is not None:
                alone = alone.crop(uem)
            for segment in alone:
                start, end = int(segment.start * encoder.sample_rate), int(segment.end * encoder.sample_rate)
                pieces.setdefault(str(speaker), []).append(samples[start:end])
    vectors, speakers = [], []
    for speaker, parts in sorted(pieces.items()):
        audio = np.concatenate(parts)
        if len(audio) < MIN_SECONDS * encoder.sample_rate:
            print(f"{speaker}: {len(audio) / encoder.sample_rate:.1f} s alone, left out")
            continue
        vectors.append(embed_speech_audio(audio, encoder, label=speaker))
        speakers.append(speaker)
        print(f"{speaker}: {len(audio) / encoder.sample_rate:.1f} s alone")
    record = {
        "encoder_id": encoder.encoder_id,
        "what": "one voice vector per speaker, for normalising naming scores (cluster/registry/score_norm.py)",
        "source": "the speakers of ../shared/data/diarization: AMI meeting excerpts (CC BY 4.0, via "
                  "pyannote.audio's test data, MIT) and the pyannote.audio sample call (MIT); vectors only",
        "built_by": "benchmarks/build_cohort.py",
        "speakers": len(vectors),
        "vectors": [[round(float(value), 6) for value in vector] for vector in vectors],
    }
    out = ROOT / "cluster" / "registry" / "cohort" / f"{encoder.encoder_id}.json"
    atomic_write_text(out, json.dumps(record, indent=0) + "\n")
    print(f"{len(vectors)} speakers -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
