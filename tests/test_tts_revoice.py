"""Re-voicing from a transcript (`voicemap anonymize --method tts`): real speech, real diarization, real CAM++,
and a small random-weight Qwen3-TTS checkpoint in the real layout (no real TTS weights on these machines).

The input is the shared 30 s two-party call (diarization/sample), resampled to 22.05 kHz in a temporary
folder so the native-rate path is exercised; the transcript's times follow its reference turns, its words
are made up (a random-weight TTS says nothing intelligible anyway).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("qwen_tts")

from synth.anonymize.transcripts import TranscriptError, check_within, parse_json, parse_stm, read_transcript  # noqa: E402

NATIVE_RATE = 22050
SEED = 3
#: (start, end, speaker in the transcript's own labels, text); inside the reference turns of the sample call
SEGMENTS = [
    (8.4, 9.8, "caller", "Hello, how are you?"),
    (11.0, 13.0, "caller", "I am calling about my order."),
    (15.0, 17.0, "agent", "Yes, I can help with that."),
    (19.0, 21.0, "caller", "It has not arrived yet."),
    (22.0, 24.0, "agent", "Let me look it up for you."),
]


def write_json_transcript(path, segments=SEGMENTS):
    path.write_text(json.dumps({"segments": [{"start": s, "end": e, "speaker": who, "text": text}
                                             for s, e, who, text in segments]}))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from synth.tts.random_model import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("qwen3tts") / "tiny-base", "tiny", seed=0)


@pytest.fixture(scope="module")
def recording(shared_data, tmp_path_factory):
    import soxr

    source = shared_data / "diarization" / "audio" / "sample.flac"
    if not source.is_file():
        pytest.skip(f"{source} not found (shared two-party call used as real speech)")
    samples, rate = sf.read(source, dtype="float32")
    path = tmp_path_factory.mktemp("revoice") / "sample.wav"  # temporary, never inside the repository
    sf.write(path, soxr.resample(samples, rate, NATIVE_RATE), NATIVE_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def revoiced(checkpoint, recording):
    torch.set_num_threads(1)
    from diarize.pipeline import Diarizer
    from synth.tts import Synthesizer
    from synth.anonymize.revoice import revoice_file

    transcript = write_json_transcript(recording.parent / "sample.json")
    out = recording.parent / "out" / "revoiced.wav"
    result = revoice_file(recording, out, transcript, model=checkpoint, synthesizer=Synthesizer.load(checkpoint),
                          seed=SEED, diarizer=Diarizer())
    return {"input": recording, "output": out, "result": result}


# -- the re-voiced recording ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_output_has_the_input_rate_and_exact_length(revoiced):
    source, output = sf.info(str(revoiced["input"])), sf.info(str(revoiced["output"]))
    assert output.samplerate == source.samplerate == NATIVE_RATE
    assert output.frames == source.frames


@pytest.mark.slow
def test_segments_hold_synthesized_speech_and_everything_else_is_silent(revoiced):
    samples, rate = sf.read(revoiced["output"], dtype="float32")
    inside = np.zeros(len(samples), dtype=bool)
    for start, end, _, _ in SEGMENTS:
        region = samples[int(round(start * rate)):int(round(end * rate))]
        assert np.sqrt(np.mean(region ** 2)) > 1e-3, f"segment {start}-{end} is silent"
        # speech all along the segment, not only at its start: the stretch keeps the turn's timing
        last_quarter = region[3 * len(region) // 4:]
        assert np.abs(last_quarter).max() > 1e-3
        inside[int(round(start * rate)):int(round(end * rate))] = True
    assert not np.any(samples[~inside]), "original sound leaked outside the transcript segments"


@pytest.mark.slow
def test_each_diarized_speaker_keeps_one_pseudo_vector_and_speakers_differ(revoiced, checkpoint):
    from synth.anonymize.pseudo_voices import draw_vectors
    from synth.anonymize.revoice import overlap_seconds

    result = revoiced["result"]
    annotation = result.annotation
    by_label: dict[str, list[np.ndarray]] = {}
    for placed in result.segments:
        # the voice is the diarized speaker that overlaps the segment most, whatever the transcript's label says
        best = max(annotation.labels(), key=lambda label: overlap_seconds(annotation, label, placed.start, placed.end))
        assert placed.speaker == best
        by_label.setdefault(placed.speaker, []).append(placed.vector)
    assert len(by_label) >= 2 and any(len(vectors) >= 2 for vectors in by_label.values())
    for label, vectors in by_label.items():
        assert all(np.array_equal(vector, result.vectors[label]) for vector in vectors)
        assert np.linalg.norm(vectors[0]) == pytest.approx(result.vector_norm, rel=1e-5)
    first, second = (result.vectors[label] for label in sorted(by_label)[:2])
    assert abs(float(first @ second)) < 1e-5 * result.vector_norm ** 2  # orthogonal: clearly different voices
    # drawn from the seed alone (and the calibration norm), so the sidecar's parameters reproduce them
    redrawn = draw_vectors(result.vectors, SEED, first.shape[0], result.vector_norm)
    assert all(np.array_equal(redrawn[label], result.vectors[label]) for label in result.vectors)


@pytest.mark.slow
def test_sidecar_holds_drawn_parameters_and_no_embedding(revoiced):
    sidecar = json.loads(revoiced["output"].with_suffix(".json").read_text())
    result = revoiced["result"]
    assert sidecar["method"] == "tts" and sidecar["seed"] == SEED and sidecar["sample_rate"] == NATIVE_RATE
    assert sorted(sidecar["speakers"]) == sorted(result.vectors)
    for entry in sidecar["speakers"].values():
        assert set(entry) == {"seed", "voice_index", "of_voices", "vector_norm", "segments", "speech_seconds"}
        assert all(isinstance(value, (int, float)) for value in entry.values())
    assert [(s["start"], s["end"]) for s in sidecar["segments"]] == [(s, e) for s, e, _, _ in SEGMENTS]

    def numeric_lists(node):
        if isinstance(node, dict):
            return sum((numeric_lists(value) for value in node.values()), [])
        if isinstance(node, list):
            return [node] if any(isinstance(item, (int, float)) for item in node) else \
                sum((numeric_lists(item) for item in node), [])
        return []

    assert numeric_lists(sidecar) == []  # no vector of any kind, pseudo or original
    text = json.dumps(sidecar)
    assert "embedding" not in text and "centroid" not in text and "Hello" not in text  # nor the words said


# -- fitting ----------------------------------------------------------------------------------------------------

def test_fitting_stretches_within_limits_then_pads_or_trims():
    from synth.tts.fitting import MAX_STRETCH, fit_to_length

    rate = 24000
    tone = np.sin(2 * np.pi * 200 * np.arange(rate) / rate)  # 1 s
    stretched = fit_to_length(tone, int(1.5 * rate), rate)  # within the limit: fills the whole segment
    assert stretched.shape == (int(1.5 * rate),) and np.abs(stretched[-int(0.1 * rate):-int(0.02 * rate)]).max() > 0.5
    short = fit_to_length(tone, int(3 * rate), rate)  # would need 3x: stretched 2x, then silence
    assert short.shape == (3 * rate,) and not np.any(short[int(MAX_STRETCH * rate) + 1:])
    long = fit_to_length(np.tile(tone, 5), rate, rate)  # 5 s into 1 s: squeezed 2x, then cut with a fade
    assert long.shape == (rate,) and abs(long[-1]) < 1e-3 and np.abs(long[rate // 2:rate // 2 + 480]).max() > 0.5


# -- transcripts ------------------------------------------------------------------------------------------------

def test_stm_lines_comments_labels_and_ignored_regions():
    stm = (";; comment line\n"
           "call 1 spk_a 1.0 2.5 <o,f0,male> hello there\n"
           "call 1 inter_segment_gap 2.5 3.0 ignore_time_segment_in_scoring\n"
           "call 1 spk_b 3.0 4.0 <o,f0,female>\n"
           "call A spk_b 4.0 5.5 fine thanks\n")
    segments = parse_stm(stm, "t.stm")
    assert [(s.start, s.end, s.speaker, s.text) for s in segments] == [
        (1.0, 2.5, "spk_a", "hello there"), (4.0, 5.5, "spk_b", "fine thanks")]
    two_files = "a 1 x 0 1 one\nb 1 y 0 1 two\n"
    assert [s.text for s in parse_stm(two_files, "t.stm", recording="b")] == ["two"]
    with pytest.raises(TranscriptError, match="none named 'c'"):
        parse_stm(two_files, "t.stm", recording="c")


@pytest.mark.parametrize("line, cause", [
    ("call 1 spk 1.0", "4 fields"),
    ("call 1 spk one 2.0 hi", "not numbers"),
    ("call 1 spk 2.0 1.0 hi", "not after start"),
    ("call 1 spk -1 1.0 hi", "negative"),
    ("call 1 spk 0 1.0 <o,f0 hi", "not closed"),
])
def test_malformed_stm_line_is_a_one_line_error_with_file_and_line(line, cause):
    with pytest.raises(TranscriptError) as caught:
        parse_stm(f";; header\n{line}\n", "talk.stm")
    message = str(caught.value)
    assert message.startswith("talk.stm:2:") and cause in message and "\n" not in message


def test_json_transcript_forms_and_errors(tmp_path):
    listed = parse_json(json.dumps([{"start": 0, "end": 1.5, "text": " hi "}, {"start": 2, "end": 3, "text": ""}]),
                        "t.json")
    assert [(s.start, s.end, s.text, s.speaker) for s in listed] == [(0.0, 1.5, "hi", "")]
    for document, cause in [("{not json", "not valid JSON"), ('{"turns": []}', "expected a list"),
                            ('[{"start": 0, "end": 1}]', "segment 0: missing text"),
                            ('[{"start": 0, "end": 1, "text": 5}]', "text is not a string"),
                            ('[{"start": 1, "end": 1, "text": "a"}]', "not after start")]:
        with pytest.raises(TranscriptError) as caught:
            parse_json(document, "t.json")
        assert str(caught.value).startswith("t.json") and cause in str(caught.value) and "\n" not in str(caught.value)
    # the format follows the suffix, else the content
    sniffed = tmp_path / "transcript.txt"
    sniffed.write_text('{"segments": [{"start": 2, "end": 3, "text": "b"}, {"start": 0, "end": 1, "text": "a"}]}')
    assert [s.text for s in read_transcript(sniffed)] == ["a", "b"]  # sorted by start
    empty = tmp_path / "empty.stm"
    empty.write_text(";; nothing\nx 1 gap 0 1 ignore_time_segment_in_scoring\n")
    with pytest.raises(TranscriptError, match="empty.stm: transcript is empty"):
        read_transcript(empty)
    with pytest.raises(TranscriptError, match="ends after the audio"):
        check_within(read_transcript(sniffed), 2.5, str(sniffed))


# -- the command line -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_exit_codes_and_nothing_half_written(checkpoint, recording, tmp_path, capsys):
    from pipelines.cli import main

    out = tmp_path / "cli" / "out.wav"
    base = ["anonymize", str(recording), "-o", str(out), "--quiet", "--seed", "1"]
    good = write_json_transcript(tmp_path / "good.json", SEGMENTS[2:3])

    def error_of(argv, code):
        assert main(argv) == code
        error = capsys.readouterr().err.strip()
        assert error and "\n" not in error
        return error

    assert "needs --transcript" in error_of(base + ["--method", "tts", "--tts", str(checkpoint)], 2)
    assert "only used by --method tts" in error_of(base + ["--transcript", str(good)], 2)
    assert "no Qwen3-TTS checkpoint given" in error_of(base + ["--method", "tts", "--transcript", str(good)], 2)
    assert "not found" in error_of(base + ["--method", "tts", "--transcript", str(good), "--tts",
                                           str(tmp_path / "no-weights")], 2)
    tts = ["--method", "tts", "--tts", str(checkpoint), "--transcript"]
    empty = tmp_path / "empty.json"
    empty.write_text('{"segments": []}')
    assert f"{empty}: transcript is empty" in error_of(base + tts + [str(empty)], 1)
    beyond = write_json_transcript(tmp_path / "beyond.json", [(29.0, 31.5, "x", "too late")])
    assert str(beyond) in error_of(base + tts + [str(beyond)], 1)
    malformed = tmp_path / "bad.stm"
    malformed.write_text("sample 1 spk 1.0 oops hello\n")
    assert f"{malformed}:1:" in error_of(base + tts + [str(malformed)], 1)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no output, sidecar or temporary file

    stm = tmp_path / "good.stm"
    stm.write_text("sample 1 agent 15.0 17.0 <o,f0,female> Yes, I can help with that.\n")
    assert main(base + tts + [str(stm)]) == 0
    samples, rate = sf.read(out, dtype="float32")
    assert rate == NATIVE_RATE and len(samples) == sf.info(str(recording)).frames
    assert np.any(samples[15 * rate:17 * rate]) and not np.any(samples[:15 * rate]) and not np.any(samples[17 * rate:])
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.json", "out.wav"]
