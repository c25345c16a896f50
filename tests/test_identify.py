"""Identification on real speech: enroll 8 of the 10 LibriSpeech test-other readers from half of their
utterances, diarize simulated conversations built from the other half (with the 2 readers nobody enrolled
taking part), and name the speakers (pipelines/identify.py, cluster/registry/match.py at its measured threshold)."""

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


def simulate(uri: str, speakers: list[str], files: dict[str, list], seed: int):
    """A ~60 s conversation of exactly `speakers` (eval/simulate.py: turns cut at pauses, ~15 % of turns over
    the previous one, +-4 dB), references relabelled with the enrolled names. -> (samples, Annotation)."""
    from eval.simulate import SimulationConfig, simulate_conversation

    # energy-only references: the conversations the figures in this file were measured on (the simulator's
    # default since then also asks silero-vad, which changes the draw)
    config = SimulationConfig(target_duration=CONVERSATION_S, vad_confirmed=False)
    audio, reference = simulate_conversation({s: files[s] for s in speakers}, len(speakers), seed, config, uri=uri)
    assert set(reference.labels()) == set(speakers)
    return audio, reference.rename_labels({s: name_of(s) for s in speakers if s not in NOT_ENROLLED})


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
    from pipelines.commands.enroll import MIN_SPEECH_S
    from pipelines.voice_embedding import EnrollError, embed_file
    from pipelines.identify import enrolled_voices, identify_result

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
            voices = enrolled_voices(registry, diarizer.encoder.encoder_id)  # as `voicemap identify` steers
            for seed, (uri, speakers) in enumerate(CONVERSATIONS.items()):
                audio, reference = simulate(uri, speakers, talk_files, seed)
                path = folder / f"{uri}.flac"
                sf.write(path, audio, SAMPLE_RATE)
                out["audio"][uri], out["reference"][uri] = path, reference
                out["identification"][uri] = identify_result(diarizer(path, voices=voices), registry)
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


@pytest.mark.slow
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
            # an unenrolled reader is reported: most of their labelled speech carries unknown_* labels (the
            # rest is diarization's boundary and overlap error: measured 0.7 s of 2414's 3.7 s in conv_c)
            speech = reference.label_timeline(reader).support()
            under = {known: sum(named.label_timeline(s.label).crop(speech, mode="intersection").duration()
                                for s in identification.speakers if s.known == known) for known in (True, False)}
            assert under[False] >= 0.7 * (under[False] + under[True]), f"{uri}: {reader}: {under}"


@pytest.mark.slow
def test_every_enrolled_participant_with_a_cluster_of_its_own_is_named(identified):
    named_readers = 0
    for uri, identification in identified["identification"].items():
        reference, named = identified["reference"][uri], identification.result.annotation
        # the largest cluster each reader is the main speaker of; a reader whom diarization merged into
        # another reader's cluster has none, and no naming can recover them (that is DER's confusion)
        largest: dict[str, object] = {}
        for speaker in identification.speakers:
            main = main_speaker_of(reference, named, speaker.label)
            if main not in largest or speaker.speech_seconds > largest[main].speech_seconds:
                largest[main] = speaker
        for reader in CONVERSATIONS[uri]:
            if reader in NOT_ENROLLED or name_of(reader) not in largest:
                continue
            speaker = largest[name_of(reader)]
            assert speaker.label == name_of(reader), f"{uri}: {name_of(reader)}'s cluster called {speaker.label}"
            # well above the threshold: enrollment and conversation share no utterance
            assert speaker.score > 0.65
            named_readers += 1
    # measured: 7 of the 8 enrolled participants; diarization merged 1998 into 3080's cluster in conv_a
    assert named_readers >= 7


@pytest.mark.slow
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
    # Measured on a 2-core CPU (collar 0, overlap scored): IER 11.3 % (conv_a 10.3, conv_b 10.5, conv_c 13.4),
    # DER 13.1 %, with the runs cut where the voice changes and the noise floor free of digital silence;
    # 16.2 % before those, 28.3 % before the steering and the second look (conv_a's clustering had merged
    # readers 3080 and 1998). IER can sit below DER because two unenrolled readers sharing one unknown label
    # is no identification error. These three short conversations are not the benchmark (docs/registry.md,
    # Measured IER: benchmarks/registry_conversations.py). The bounds hold today's quality with a little
    # room: naming adds at most 2 points over the best labelling of the same clusters, and IER stays <= 14 %.
    assert ier - der <= 0.02
    assert ier <= 0.14


# -- command line ------------------------------------------------------------------------------------------


@pytest.mark.slow
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


@pytest.mark.slow
def test_eval_with_a_registry_reports_identification_error_rate(identified, tmp_path, capsys):
    import torch

    from cluster.atomic_files import atomic_write_text
    from diarize.output import rttm_lines
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


def test_a_short_fragment_does_not_outbid_the_long_cluster_of_the_same_voice():
    from cluster.registry.match import MatchError, assign_scores

    # Scores seen on a real conversation (conv_a with eval/simulate.py seed 0): diarization merged two
    # readers into one 40 s cluster, nearer to its main reader A, and left a 1.3 s fragment of A.
    similarity = np.array([[0.678, 0.537],   # 40.2 s: A, B
                           [0.706, 0.277]])  # 1.3 s fragment of A
    unweighted = assign_scores(similarity, ["A", "B"], 0.472)
    assert unweighted.labels == ["B", "A"]  # summed margins: the fragment takes A, the 40 s cluster gets B
    weighted = assign_scores(similarity, ["A", "B"], 0.472, weights=np.array([40.2, 1.3]))
    assert weighted.labels == ["A", "unknown_1"] and weighted.nearest == ["A", "A"]
    assert weighted.scores[1] == pytest.approx(0.706)  # an unknown reports its nearest voice's score
    with pytest.raises(MatchError):
        assign_scores(similarity, ["A", "B"], 0.472, weights=np.array([1.0, -1.0]))


def test_identify_threshold_names_and_cluster_threshold_cuts_the_clustering():
    from pipelines.cli import build_parser
    from pipelines.commands.common import config_from_args

    args = build_parser().parse_args(["identify", "a.wav", "-o", "out", "--threshold", "0.5",
                                      "--cluster-threshold", "0.8"])
    assert args.naming_threshold == 0.5 and config_from_args(args).clustering.threshold == 0.8
    args = build_parser().parse_args(["identify", "a.wav", "-o", "out", "--naming-threshold", "0.4"])
    assert args.naming_threshold == 0.4 and config_from_args(args).clustering.threshold is None
    args = build_parser().parse_args(["diarize", "a.wav", "--threshold", "0.7"])  # the older name of the cut
    assert config_from_args(args).clustering.threshold == 0.7
    args = build_parser().parse_args(["diarize", "a.wav", "--cluster-threshold", "0.6"])
    assert config_from_args(args).clustering.threshold == 0.6
