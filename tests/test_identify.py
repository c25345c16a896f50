"""Identification on real speech: enroll 8 of the 10 LibriSpeech test-other readers from half of their
utterances, diarize simulated conversations built from the other half (with the 2 readers nobody enrolled
taking part), and name the speakers (pipelines/identify.py, cluster/match.py at its measured threshold)."""

from __future__ import annotations

import json

import numpy as np
import pytest

#: the readers nobody enrolls (one man, one woman): they must come out unknown_*
NOT_ENROLLED = ["2414", "367"]
#: three conversations of about 60 s: 4, 3 and 5 participants; every enrolled reader takes part once
CONVERSATIONS = {
    "conv_a": ["1688", "3080", "2414", "1998"],
    "conv_b": ["2609", "3331", "367"],
    "conv_c": ["3005", "533", "2033", "2414", "367"],
}
CONVERSATIONS_READERS = sorted({s for speakers in CONVERSATIONS.values() for s in speakers})
CONVERSATION_S = 60.0
SAMPLE_RATE = 16000


def name_of(speaker: str) -> str:
    return f"reader_{speaker}"


def speech_segments(samples: np.ndarray, offset: float) -> list[tuple[float, float]]:
    """Speech inside one turn from frame energy (20 ms frames within 35 dB of the turn's loudest frame),
    pauses shorter than 0.3 s bridged: the reference then marks what was said, not the turn's silence."""
    frame = SAMPLE_RATE // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    voiced = np.flatnonzero(level > level.max() - 35.0)
    segments: list[list[float]] = []
    for index in voiced:
        start, end = offset + index * 0.02, offset + (index + 1) * 0.02
        if segments and start - segments[-1][1] < 0.3:
            segments[-1][1] = end
        else:
            segments.append([start, end])
    return [(a, b) for a, b in segments if b - a >= 0.1]


def simulate(uri: str, speakers: list[str], files: dict[str, list], seed: int):
    """A ~60 s conversation: turns of 2.5-7 s from each speaker's utterances in turn (never the same speaker
    twice in a row, talk time balanced), pauses of 0.2-1.2 s, one turn in 7 starting 0.3-1.2 s before the previous ends,
    levels +-4 dB. -> (16 kHz float32 samples, pyannote Annotation with the exact speech of every turn)."""
    import soundfile as sf
    from pyannote.core import Annotation, Segment

    rng = np.random.default_rng(seed)
    # each speaker's held-out speech, utterances end to end, consumed in order so no turn repeats audio
    pools = {s: np.concatenate([sf.read(f, dtype="float32")[0] for f in files[s]]) for s in speakers}
    cursor = dict.fromkeys(speakers, 0)
    spoken = dict.fromkeys(speakers, 0.0)
    turns, time, previous = [], 0.5, None
    while time < CONVERSATION_S - 3.0:
        # balanced talk time: the next turn goes to one of the two who have spoken least (not the last one)
        waiting = sorted((s for s in speakers if s != previous), key=lambda s: (spoken[s], rng.random()))
        speaker = waiting[0] if len(waiting) == 1 else waiting[rng.integers(2)]
        length = int(rng.uniform(2.5, 7.0) * SAMPLE_RATE)
        pool = pools[speaker]
        if cursor[speaker] + length > len(pool):
            cursor[speaker] = 0  # a reader out of fresh speech starts over (rare at 60 s)
        piece = pool[cursor[speaker]: cursor[speaker] + length] * 10 ** (rng.uniform(-4, 4) / 20)
        cursor[speaker] += length
        spoken[speaker] += length / SAMPLE_RATE
        turns.append((time, speaker, piece))
        end = time + len(piece) / SAMPLE_RATE
        # every 7th turn starts early (14 %): a fixed share, where a coin per turn gave 0-3 overlaps a minute
        overlapped = len(turns) % 7 == 3
        time = end - rng.uniform(0.3, 1.2) if overlapped else end + rng.uniform(0.2, 1.2)
        previous = speaker
    total = int((max(t + len(p) / SAMPLE_RATE for t, _, p in turns) + 0.5) * SAMPLE_RATE)
    audio = np.zeros(total, dtype=np.float32)
    reference = Annotation(uri=uri)
    for start, speaker, piece in turns:
        first = int(round(start * SAMPLE_RATE))
        audio[first: first + len(piece)] += piece
        for a, b in speech_segments(piece, first / SAMPLE_RATE):
            reference[Segment(a, b), len(reference)] = name_of(speaker) if speaker not in NOT_ENROLLED else speaker
    peak = np.abs(audio).max()
    if peak > 0.99:
        audio *= 0.99 / peak
    return audio, reference


@pytest.fixture(scope="module")
def readers(shared_data):
    folder = shared_data / "speakers" / "librispeech-test-other"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    files = {d.name: sorted(d.glob("*.flac")) for d in sorted(folder.iterdir()) if d.is_dir()}
    assert len(files) == 10 and all(len(f) == 10 for f in files.values())
    # enrollment and conversations never share an utterance: first half enrolls, second half talks
    return {s: f[:5] for s, f in files.items()}, {s: f[5:] for s, f in files.items()}


@pytest.fixture(scope="module")
def identified(readers, tmp_path_factory):
    """Registry of 8 enrolled readers, the 3 conversations on disk with their references, and the named
    diarization of each (Identification)."""
    import soundfile as sf
    import torch

    from cluster.registry import Registry, file_sha256
    from diarize.pipeline import Diarizer
    from pipelines.commands.enroll import EnrollError, MIN_SPEECH_S, embed_file
    from pipelines.identify import identify_result

    enroll_files, talk_files = readers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CPUs; one thread is also the fastest for these sizes
    folder = tmp_path_factory.mktemp("identify")
    diarizer = Diarizer()
    out = {"registry": folder / "voices.sqlite", "audio": {}, "reference": {}, "identification": {}}
    try:
        with Registry(out["registry"]) as registry:
            for speaker, paths in enroll_files.items():
                if speaker in NOT_ENROLLED:
                    continue
                vectors, hashes = [], []
                for path in paths:  # as `voicemap enroll` does: speech only, one vector per file
                    try:
                        vectors.append(embed_file(str(path), diarizer.encoder, min_speech=MIN_SPEECH_S).vector)
                    except EnrollError:
                        continue  # the command would refuse a file this short; a user drops it
                    hashes.append(file_sha256(path))
                assert len(vectors) >= 3, speaker
                registry.enroll(name_of(speaker), diarizer.encoder.encoder_id, np.stack(vectors), hashes)
            for seed, (uri, speakers) in enumerate(CONVERSATIONS.items()):
                audio, reference = simulate(uri, speakers, talk_files, seed)
                path = folder / f"{uri}.flac"
                sf.write(path, audio, SAMPLE_RATE)
                out["audio"][uri], out["reference"][uri] = path, reference
                out["identification"][uri] = identify_result(diarizer(path), registry)
    finally:
        torch.set_num_threads(threads)
    return out


def main_speaker_of(reference, annotation, label: str) -> str:
    """The reference speaker a hypothesis label overlaps most."""
    timeline = annotation.label_timeline(label)
    return max(reference.labels(), key=lambda s: timeline.crop(reference.label_timeline(s).support(),
                                                                 mode="intersection").duration())


def open_set(annotation, enrolled):
    from eval.metrics import open_set_labels

    return open_set_labels(annotation, enrolled)


def test_readers_nobody_enrolled_stay_unknown_and_no_name_lands_on_another_reader(identified):
    for uri, identification in identified["identification"].items():
        reference, named = identified["reference"][uri], identification.result.annotation
        labels = [s.label for s in identification.speakers]
        assert len(set(labels)) == len(labels), f"{uri}: one label for two speakers: {labels}"
        for speaker in identification.speakers:
            main = main_speaker_of(reference, named, speaker.label)
            if speaker.known:  # a name is only ever given to the reader it belongs to
                assert speaker.label == main, f"{uri}: {main}'s speech named {speaker.label} ({speaker.score:.2f})"
                assert speaker.score >= identification.threshold
            if main in NOT_ENROLLED:
                assert speaker.label.startswith("unknown_"), f"{uri}: {main} (not enrolled) named {speaker.label}"
        for reader in CONVERSATIONS[uri]:
            if reader not in NOT_ENROLLED:
                continue
            # nearly all of an unenrolled reader's speech carries unknown_* labels, not a name
            speech = reference.label_timeline(reader).support()
            under_names = sum(named.label_timeline(s.label).crop(speech, mode="intersection").duration()
                              for s in identification.speakers if s.known)
            assert under_names <= 0.1 * speech.duration(), f"{uri}: {under_names:.1f} s of {reader} named"


def test_every_enrolled_participant_is_named_with_a_confident_score(identified):
    for uri, identification in identified["identification"].items():
        labels = {s.label: s for s in identification.speakers}
        for reader in CONVERSATIONS[uri]:
            if reader in NOT_ENROLLED:
                continue
            assert name_of(reader) in labels, f"{uri}: {name_of(reader)} not found among {sorted(labels)}"
            # well above the threshold: enrollment and conversation share no utterance
            assert labels[name_of(reader)].score > 0.65


def test_identification_error_rate_on_the_conversations(identified):
    from eval.metrics import DiarizationScores, IdentificationScores

    from cluster.registry import Registry

    with Registry(identified["registry"], create=False) as registry:
        enrolled = {voice.name for voice in registry.list()}
    assert enrolled == {name_of(s) for s in CONVERSATIONS_READERS if s not in NOT_ENROLLED}
    diarization, identification = DiarizationScores(), IdentificationScores(enrolled)
    for uri, named in identified["identification"].items():
        reference = identified["reference"][uri]
        diarization.add(uri, reference, named.result.annotation)
        identification.add(uri, reference, named.result.annotation)
    der, ier = diarization.total()["der"], identification.total()["ier"]
    rows = {row["uri"]: round(100 * row["ier"], 1) for row in identification.rows}
    print(f"\nIER {100 * ier:.1f}% (per conversation {rows}), DER {100 * der:.1f}%")
    # Measured on a 2-core CPU: IER 17.3 % (conv_a 19.2, conv_b 13.4, conv_c 19.6), DER 19.2 % (collar 0,
    # overlap scored); every one of the 13 clusters was named right or left unknown rightly. All of the IER
    # is diarization error (missed speech at turn edges 17 s, false alarm 8 s, of 148 s), which naming
    # cannot repair: the 10 % target is not met by the pipeline as a whole. The bounds hold today's
    # quality with a little room: naming adds at most 2 points over the best labelling of the same
    # clusters (it is below DER here because two unknown readers both rightly count as unknown).
    assert ier - der <= 0.02
    assert ier <= 0.22


# -- command line ------------------------------------------------------------------------------------------


def test_identify_command_names_good_inputs_and_reports_each_bad_one_on_one_line(identified, tmp_path, capsys):
    import torch

    from pipelines.cli import main

    good = identified["audio"]["conv_b"]
    missing = tmp_path / "missing.wav"
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    outdir = tmp_path / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status = main(["identify", str(missing), str(good), str(broken), "-o", str(outdir),
                       "--registry", str(identified["registry"]), "-q"])
    finally:
        torch.set_num_threads(threads)
    errors = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(errors) == 2 and str(missing) in errors[0] and str(broken) in errors[1], errors
    assert sorted(p.name for p in outdir.iterdir()) == ["conv_b.json", "conv_b.rttm"]
    expected = identified["identification"]["conv_b"]  # the same pipeline in-process: the same naming
    payload = json.loads((outdir / "conv_b.json").read_text(encoding="utf-8"))
    assert set(payload["speakers"]) == {s.label for s in expected.speakers}
    for speaker in expected.speakers:
        entry = payload["speakers"][speaker.label]
        assert entry["known"] == speaker.known and entry["nearest"] == speaker.nearest
        assert entry["score"] == pytest.approx(speaker.score, abs=1e-3)
        assert entry["cluster"] == speaker.cluster
    assert payload["identification"]["threshold"] == expected.threshold
    rttm_labels = {line.split()[7] for line in (outdir / "conv_b.rttm").read_text(encoding="utf-8").splitlines()}
    assert rttm_labels == {s.label for s in expected.speakers}
    assert {"reader_2609", "reader_3331"} <= rttm_labels and any(l.startswith("unknown_") for l in rttm_labels)


def test_identify_refuses_a_registry_that_does_not_exist_without_creating_it(tmp_path, capsys):
    from pipelines.cli import main

    registry = tmp_path / "none.sqlite"
    status = main(["identify", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out"), "--registry", str(registry), "-q"])
    errors = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(errors) == 1 and str(registry) in errors[0]
    assert not registry.exists() and not (tmp_path / "out").exists()


def test_eval_with_a_registry_reports_identification_error_rate(identified, tmp_path, capsys):
    import torch

    from diarize.output import atomic_write_text, rttm_lines
    from eval.metrics import IdentificationScores
    from pipelines.cli import main

    reference = identified["reference"]["conv_b"]
    atomic_write_text(tmp_path / "conv_b.rttm", "\n".join(rttm_lines(reference, "conv_b")) + "\n")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"uri\taudio\trttm\tuem\nconv_b\t{identified['audio']['conv_b']}\tconv_b.rttm\t\n",
                        encoding="utf-8")
    registry = str(identified["registry"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # diarize and name, saving the named RTTM; then score that RTTM again with --hyp
        assert main(["eval", str(manifest), "--registry", registry, "--save-hyp", str(tmp_path / "hyp"),
                     "--json", str(tmp_path / "diarized.json"), "-q"]) == 0
        assert main(["eval", str(manifest), "--registry", registry, "--hyp", str(tmp_path / "hyp"),
                     "--json", str(tmp_path / "read.json"), "-q"]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "IER%" in printed
    enrolled = {name_of(s) for s in CONVERSATIONS_READERS if s not in NOT_ENROLLED}
    expected = IdentificationScores(enrolled).add(
        "conv_b", reference, identified["identification"]["conv_b"].result.annotation)["ier"]
    for name in ("diarized.json", "read.json"):
        scores = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        # RTTM keeps times to the millisecond: the same scores up to that rounding
        assert scores["files"][0]["ier"] == pytest.approx(expected, abs=1e-3)
        assert scores["total"]["ier"] == pytest.approx(expected, abs=1e-3)
    # without the registry's names, every reference reader would be a miss or a confusion: IER is not DER
    assert scores["total"]["ier"] < 0.5


def test_open_set_labels_map_only_unknowns_and_unenrolled_reference_speakers():
    from pyannote.core import Annotation, Segment

    from eval.metrics import IdentificationScores, open_set_labels

    reference, hypothesis = Annotation(uri="x"), Annotation(uri="x")
    reference[Segment(0, 4)] = "ada"
    reference[Segment(4, 8)] = "stranger"
    reference[Segment(8, 10)] = "grace"
    hypothesis[Segment(0, 4)] = "ada"
    hypothesis[Segment(4, 8)] = "unknown_2"
    hypothesis[Segment(8, 10)] = "ada"  # a name on the wrong person is an error, not remapped
    assert set(open_set_labels(reference, {"ada", "grace"}).labels()) == {"ada", "unknown", "grace"}
    assert set(open_set_labels(hypothesis, None).labels()) == {"ada", "unknown"}
    scores = IdentificationScores({"ada", "grace"})
    row = scores.add("x", reference, hypothesis)
    assert row["ier"] == pytest.approx(2 / 10) and row["ier_confusion"] == pytest.approx(2)
    # a stranger named as someone enrolled is a confusion too
    hypothesis[Segment(4, 8)] = "grace"
    assert scores.add("x", reference, hypothesis)["ier"] == pytest.approx(6 / 10)
    assert scores.total()["ier"] == pytest.approx(8 / 20)
