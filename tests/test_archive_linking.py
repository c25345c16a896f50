"""`voicemap link` and `voicemap search` on a small real archive (tests/archive_fixture.py: real CAM++ centroids of
four LibriSpeech readers recurring across eight recordings), and cluster/linking.py's rules on its vectors."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from archive_fixture import PLAN, build_archive
from pipelines.cli import main


@pytest.fixture(scope="module")
def encoder():
    from diarize.embedding import load_encoder

    return load_encoder("campplus")


@pytest.fixture(scope="module")
def archive(shared_data, encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    return build_archive(shared_data, root / "outputs", root / "audio", encoder)


def fresh_copy(archive, tmp_path: Path, names=None) -> Path:
    outdir = tmp_path / "out"
    outdir.mkdir()
    for path in sorted(archive.outdir.glob("*.json")):
        if names is None or path.stem in names:
            shutil.copy(path, outdir / path.name)
    return outdir


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.json")}


def labels_of(outdir: Path) -> dict[tuple[str, str], str]:
    """(uri, speaker) -> archive label, from the linked JSON files."""
    found = {}
    for path in sorted((outdir / "linked").glob("*.json")):
        payload = json.loads(path.read_text())
        for label, entry in payload["speakers"].items():
            found[(payload["uri"], entry["speaker"])] = label
    return found


@pytest.mark.slow
def test_link_gives_each_reader_one_label_everywhere(archive, tmp_path, capsys):
    outdir = fresh_copy(archive, tmp_path)
    before = digests(outdir)
    assert main(["link", str(outdir)]) == 0
    labels = labels_of(outdir)
    assert set(labels) == set(archive.truth)
    by_reader = defaultdict(set)
    by_label = defaultdict(set)
    for key, label in labels.items():
        by_reader[archive.truth[key]].add(label)
        by_label[label].add(archive.truth[key])
    assert all(len(found) == 1 for found in by_reader.values()), by_reader  # one label per reader
    assert all(len(found) == 1 for found in by_label.values()), by_label  # one reader per label
    assert all(label.startswith("VOICE_") for label in labels.values())
    # the inputs are read, never written
    assert {name: digest for name, digest in digests(outdir).items() if name in before} == before
    # the RTTM carries the same labels as the JSON
    rttm = (outdir / "linked" / "rec00.rttm").read_text().split("\n")
    assert {line.split()[7] for line in rttm if line} == {labels[("rec00", s)] for s in ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02")}
    table = (outdir / "voices.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["voice", "uri", "speaker", "seconds", "similarity"]
    assert len(table) == 1 + len(archive.truth)
    index = json.loads((outdir / "voices.index.json").read_text())
    assert index["encoder"] == archive.encoder_id and index["threshold"]["pairs"] == 3 * len(PLAN)
    assert np.load(outdir / "voices.index.npy").shape == (len(archive.truth), index["dimension"])


@pytest.mark.slow
def test_two_speakers_of_one_recording_are_never_one_voice(archive, encoder, shared_data, tmp_path):
    # one reader twice in one recording (two utterances): however alike, they must keep two labels
    plan = (("1688", "2414", "1688"),) + PLAN[1:]
    built = build_archive(shared_data, tmp_path / "out", tmp_path / "audio", encoder, plan=plan)
    assert main(["link", str(built.outdir), "-q"]) == 0
    labels = labels_of(built.outdir)
    rec00 = [labels[("rec00", f"SPEAKER_0{k}")] for k in range(3)]
    assert len(set(rec00)) == 3


def test_linking_again_keeps_ids_and_attaches_new_recordings(archive, tmp_path):
    first = [f"rec{k:02d}" for k in range(7)]
    outdir = fresh_copy(archive, tmp_path, names=first)
    assert main(["link", str(outdir), "-q"]) == 0
    before = labels_of(outdir)
    shutil.copy(archive.outdir / "rec07.json", outdir / "rec07.json")
    assert main(["link", str(outdir), "-q"]) == 0
    after = labels_of(outdir)
    assert {key: after[key] for key in before} == before
    # the new recording's readers all were heard before: each joins that reader's existing voice
    voice_of_reader = {archive.truth[key]: label for key, label in before.items()}
    for key in [k for k in after if k[0] == "rec07"]:
        assert after[key] == voice_of_reader[archive.truth[key]]
    index = json.loads((outdir / "voices.index.json").read_text())
    assert index["next_voice"] == 5  # four voices, no new one


def test_too_little_speech_stays_unlinked(archive, tmp_path):
    outdir = fresh_copy(archive, tmp_path)
    path = outdir / "rec03.json"
    payload = json.loads(path.read_text())
    payload["speakers"]["SPEAKER_01"]["speech_seconds"] = 1.2
    path.write_text(json.dumps(payload))
    assert main(["link", str(outdir), "-q"]) == 0
    labels = labels_of(outdir)
    assert labels[("rec03", "SPEAKER_01")] == "SPEAKER_01@rec03"
    assert sum(1 for label in labels.values() if "@" in label) == 1


def test_enrolled_names_stay_names(archive, tmp_path):
    outdir = fresh_copy(archive, tmp_path)
    reader = "2414"
    holding = [f"rec{k:02d}.json" for k, readers in enumerate(PLAN) if reader in readers][:3]
    for path in (outdir / name for name in holding):  # identify named this reader in three recordings
        payload = json.loads(path.read_text())
        for label in list(payload["speakers"]):
            if archive.truth[(payload["uri"], label)] == reader:
                entry = payload["speakers"].pop(label)
                payload["speakers"]["Ada Reader"] = {**entry, "known": True, "score": 0.8}
                for turn in payload["segments"]:
                    turn["speaker"] = "Ada Reader" if turn["speaker"] == label else turn["speaker"]
        path.write_text(json.dumps(payload))
    assert main(["link", str(outdir), "-q"]) == 0
    labels = labels_of(outdir)
    assert sum(1 for label in labels.values() if label == "Ada Reader") == 3
    assert "Ada_Reader" in (outdir / "linked" / holding[0].replace(".json", ".rttm")).read_text()  # one RTTM field
    named = [k for k, v in labels.items() if v == "Ada Reader"]
    assert all(k[1] == "Ada Reader" for k in named)


def test_bad_files_are_one_line_each_and_the_rest_links(archive, tmp_path, capsys):
    outdir = fresh_copy(archive, tmp_path)
    (outdir / "broken.json").write_text("{ not json")
    other = json.loads((outdir / "rec01.json").read_text())
    other["uri"] = "other"
    other["encoder"] = "qwen3-tts-0.6b"
    for entry in other["speakers"].values():
        entry["encoder"] = "qwen3-tts-0.6b"
    (outdir / "other.json").write_text(json.dumps(other))
    capsys.readouterr()
    assert main(["link", str(outdir), "-q"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert any("broken.json" in line and "not valid JSON" in line for line in errors)
    assert any("other.json" in line and "qwen3-tts-0.6b" in line for line in errors)
    assert (outdir / "linked" / "rec00.json").exists() and not (outdir / "linked" / "other.json").exists()


def test_missing_outdir_and_bad_options(tmp_path, capsys):
    assert main(["link", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["link", str(tmp_path), "--threshold", "3"]) == 2
    assert main(["link", str(tmp_path)]) == 2  # nothing to link
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_search_finds_the_reader_by_a_held_out_clip(archive, tmp_path, capsys):
    outdir = fresh_copy(archive, tmp_path)
    assert main(["link", str(outdir), "-q"]) == 0
    labels = labels_of(outdir)
    for reader, clip in archive.held_out.items():
        capsys.readouterr()
        assert main(["search", str(outdir), "--voice", str(clip), "--top", "3"]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 3
        uri, speaker, voice, similarity, seconds = lines[0].split("\t")
        assert archive.truth[(uri, speaker)] == reader
        assert voice == labels[(uri, speaker)]
        scores = [float(line.split("\t")[3]) for line in lines]
        assert scores == sorted(scores, reverse=True)


def test_search_refuses_an_unlinked_folder(tmp_path, capsys):
    assert main(["search", str(tmp_path), "--name", "x"]) == 2
    assert "voicemap link" in capsys.readouterr().err


def test_fixed_voices_never_merge_and_named_ones_take_nobody(archive):
    from cluster.linking import FixedVoice, link_speakers
    from pipelines.archive import output_files, read_recording

    recordings = [read_recording(p, archive.outdir) for p in output_files(archive.outdir)]
    rows = [(r, s) for r in recordings for s in r.speakers]
    vectors = np.array([s.centroid for _, s in rows])
    where = np.array([k for k, r in enumerate(recordings) for _ in r.speakers])
    seconds = np.array([s.seconds for _, s in rows])
    truth = [archive.truth[(r.uri, s.label)] for r, s in rows]
    first = [i for i, t in enumerate(truth) if t == "1688"]
    # the reader's speakers split over two fixed voices: they must stay two, however alike
    fixed = [FixedVoice(tuple(first[:2])), FixedVoice(tuple(first[2:4])), FixedVoice(tuple(first[4:5]), can_absorb=False)]
    linking = link_speakers(vectors, where, seconds, 0.3, fixed_voices=fixed)
    assert set(linking.voice[first[:2]]) == {0} and set(linking.voice[first[2:4]]) == {1}
    assert linking.voice[first[4]] == 2
    assert linking.voice[first[5]] in (0, 1)  # the reader's last speaker joins one of its open voices
    assert (linking.voice == 2).sum() == 1


def test_search_by_an_enrolled_name(archive, tmp_path, capsys):
    outdir = fresh_copy(archive, tmp_path)
    assert main(["link", str(outdir), "-q"]) == 0
    registry = tmp_path / "registry.sqlite"
    reader = "3005"
    assert main(["enroll", "Reader Three", str(archive.held_out[reader]), "--registry", str(registry)]) == 0
    capsys.readouterr()
    assert main(["search", str(outdir), "--name", "Reader Three", "--registry", str(registry), "--top", "6"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    found = [archive.truth[tuple(line.split("\t")[:2])] for line in lines]
    assert found == [reader] * 6  # the reader speaks in six recordings: all six come first
    assert main(["search", str(outdir), "--name", "Nobody", "--registry", str(registry)]) == 1
    assert "Nobody" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_link_links_the_outputs_at_the_end(shared_data, tmp_path):
    import shutil as files

    # two short real recordings through a real batch job; the linking at its end must leave the same files
    # as `voicemap link` run by hand afterwards
    audio = tmp_path / "audio"
    audio.mkdir()
    for uri in ("sample", "dev00"):
        files.copy(shared_data / "diarization" / "audio" / f"{uri}.flac", audio / f"{uri}.flac")
    outdir = tmp_path / "out"
    try:
        assert main(["batch", "diarize", str(audio), "-o", str(outdir), "--workers", "1", "--link", "-q"]) == 0
    finally:
        import ray

        ray.shutdown()
    linked = sorted(p.name for p in (outdir / "linked").iterdir())
    assert linked == ["dev00.json", "dev00.rttm", "sample.json", "sample.rttm"]
    by_batch = (outdir / "voices.tsv").read_text()
    again = tmp_path / "again"
    again.mkdir()
    for name in ("sample.json", "dev00.json"):
        files.copy(outdir / name, again / name)
    assert main(["link", str(again), "-q"]) == 0
    assert (again / "voices.tsv").read_text() == by_batch


def test_a_changed_recording_is_linked_anew_and_a_removed_one_leaves(archive, tmp_path):
    outdir = fresh_copy(archive, tmp_path)
    assert main(["link", str(outdir), "-q"]) == 0
    before = labels_of(outdir)
    # rec02 re-diarized: its speakers come back in another order; rec05 deleted
    path = outdir / "rec02.json"
    payload = json.loads(path.read_text())
    renamed = {"SPEAKER_00": "SPEAKER_02", "SPEAKER_01": "SPEAKER_00", "SPEAKER_02": "SPEAKER_01"}
    payload["speakers"] = {renamed[k]: v for k, v in payload["speakers"].items()}
    for turn in payload["segments"] + payload["exclusive_segments"]:
        turn["speaker"] = renamed[turn["speaker"]]
    path.write_text(json.dumps(payload))
    (outdir / "rec05.json").unlink()
    assert main(["link", str(outdir), "-q"]) == 0
    after = labels_of(outdir)
    assert not (outdir / "linked" / "rec05.json").exists() and not (outdir / "linked" / "rec05.rttm").exists()
    assert {k: v for k, v in before.items() if k[0] not in ("rec02", "rec05")} == \
        {k: v for k, v in after.items() if k[0] != "rec02"}
    for old, new in renamed.items():  # the same voices, now under the new labels
        assert after[("rec02", new)] == before[("rec02", old)]


def test_report_and_search_refuse_what_they_cannot_use(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert main(["report", str(tmp_path)]) == 2  # not linked
    assert main(["report", str(tmp_path), "--audio", str(tmp_path / "none")]) == 2
    assert main(["search", str(tmp_path), "--voice", "x.flac", "--top", "0"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and "voicemap link" in errors[1]


def test_a_second_link_on_the_same_folder_waits_its_turn(archive, tmp_path, capsys):
    import fcntl

    outdir = fresh_copy(archive, tmp_path)
    with open(outdir / ".voicemap-link.lock", "a+") as held:  # as a first `voicemap link` still running holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(["link", str(outdir), "-q"]) == 2
        assert "another `voicemap link`" in capsys.readouterr().err
        assert not (outdir / "voices.index.json").exists()
    assert main(["link", str(outdir), "-q"]) == 0


@pytest.mark.slow
def test_names_from_a_real_identify_run_stay_names(shared_data, tmp_path):
    # reader 533 speaks in simconv-dev's dsim000 and dsim007: enrolled, identified in both, linked
    conversations = shared_data / "simconv-dev" / "audio"
    reader = shared_data / "speakers" / "librispeech-test-other" / "533"
    registry = tmp_path / "registry.sqlite"
    outdir = tmp_path / "out"
    assert main(["enroll", "Reader 533", *map(str, sorted(reader.glob("*.flac"))[:3]), "--registry", str(registry)]) == 0
    assert main(["identify", str(conversations / "dsim000.flac"), str(conversations / "dsim007.flac"), "-o",
                 str(outdir), "--registry", str(registry), "-q"]) == 0
    named_in = {p.stem for p in outdir.glob("*.json") if "Reader 533" in json.loads(p.read_text())["speakers"]}
    assert named_in  # identify's part (it named the reader in one of the two when this was written)
    assert main(["link", str(outdir), "-q"]) == 0
    for uri in ("dsim000", "dsim007"):
        linked = json.loads((outdir / "linked" / f"{uri}.json").read_text())
        labels = set(linked["speakers"])
        assert ("Reader 533" in labels) == (uri in named_in)
        if uri in named_in:
            assert linked["speakers"]["Reader 533"] | {"kind": "name", "speaker": "Reader 533"} == \
                linked["speakers"]["Reader 533"]
            assert "Reader_533" in (outdir / "linked" / f"{uri}.rttm").read_text()
        # identify's unknown_N speakers become archive voices (or stay unlinked), never the enrolled name
        assert all(label.startswith("VOICE_") or "@" in label for label in labels - {"Reader 533"})
