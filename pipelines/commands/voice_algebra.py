"""`voicemap voices direction|directions|edit|mix` and `voices search --direction`: voices as vectors.

The math is in synth/algebra.py; this module reads labels, fetches vectors from the registry (or embeds
files), and stores the results. Every input is checked and every vector computed before the registry is
written, and each write is one registry call (one transaction): a failure stores nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from .common import registry_of
from pipelines.voice_embedding import EnrollError, TooLittleSpeech, embed_speech_audio, file_speech, floor2

from .enroll import (UsageError, check_encoder_options, check_min_speech, check_registry_for_writing,
                     load_encoder_or_fail)

#: files in a labels TSV may be short utterances; under a second of speech an embedding is noise, so such a
#: file is left out of the fit (and counted), as long as MIN_ITEMS_PER_CLASS of each label value remain
LABEL_MIN_SPEECH_S = 1.0
#: a binary label needs this many items per class (a numeric label one more in all): two class means and a
#: spread around them cannot come from fewer
MIN_ITEMS_PER_CLASS = 2
#: `voices read` reads files with at least this much speech by default, as the fit embeds them
READ_MIN_SPEECH_S = 1.0


def read_labels(path: str) -> tuple[str, list[tuple[str, str]]]:
    """LABELS.tsv -> ("path" | "voice", [(item, label)]). Header: `path<TAB>label` or `voice<TAB>label`.

    `path` rows are audio files (relative paths are taken from the TSV's folder); `voice` rows are names of
    enrolled voices. One kind per file, so that a name is never mistaken for a file or the other way round.
    """
    source = Path(path)
    if not source.is_file():
        raise EnrollError(f"--labels {path}: no such file")
    try:
        with open(source, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle, delimiter="\t")
                    if row and any(cell.strip() for cell in row) and not row[0].startswith("#")]
    except (OSError, UnicodeDecodeError) as error:
        raise EnrollError(f"--labels {path}: cannot read ({error})") from None
    if not rows:
        raise EnrollError(f"--labels {path}: empty")
    header = [cell.strip().lower() for cell in rows[0]]
    kinds = [kind for kind in ("path", "voice") if kind in header]
    if len(kinds) != 1 or "label" not in header:
        raise EnrollError(f"--labels {path}: the header must name a `path` or a `voice` column, and a `label` "
                          f"column (got {rows[0]})")
    kind = kinds[0]
    item_col, label_col = header.index(kind), header.index("label")
    items = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) <= max(item_col, label_col) or not row[item_col].strip() or not row[label_col].strip():
            raise EnrollError(f"--labels {path}: line {number} lacks a {kind} or a label")
        item = row[item_col].strip()
        if kind == "path" and not Path(item).is_absolute():
            item = str(source.parent / item)
        items.append((item, row[label_col].strip()))
    if not items:
        raise EnrollError(f"--labels {path}: no rows under the header")
    return kind, items


def _stored_direction(registry, name: str, encoder_id: str):
    from synth.algebra import AlgebraError, AttributeDirection

    stored = registry.get_direction(name, encoder_id)
    try:
        return AttributeDirection.from_stored(stored.vector, stored.metadata)
    except AlgebraError as error:
        raise EnrollError(f"direction {name!r}: {error}") from None


def _raw_voice(registry, name: str, encoder_id: str) -> np.ndarray:
    """(dim,) the voice's unit centroid scaled to the mean raw norm of its embeddings.

    The registry scores by cosine, so the norm does not change identification; it matters to a generator
    that takes raw vectors (the Qwen3-TTS x-vector prompt), so a derived voice keeps a realistic one.
    """
    centroid = registry.centroid(name, encoder_id).astype(np.float64)
    norms = [np.linalg.norm(e.vector) for e in registry.embeddings(name, encoder_id)]
    return centroid * float(np.mean(norms))


def _valid_name(name: str, flag: str, what: str = "voice") -> str:
    """A name given on the command line, checked before any work: UsageError (exit 2) when it cannot be one."""
    from cluster.registry import RegistryError, check_name, check_voice_name

    try:
        return check_voice_name(name) if what == "voice" else check_name(name, f"{what} name")
    except RegistryError as error:
        raise UsageError(f"{flag}: {error}") from None


def _check_new_name(registry, name: str) -> str:
    name = _valid_name(name, "--as")
    if name in registry:
        raise EnrollError(f"--as {name}: a voice of that name is already enrolled (remove it or pick another name)")
    return name


def direction(args: argparse.Namespace) -> int:
    from cluster.registry import open_registry, resolve_registry_path
    from synth.algebra import AlgebraError, classify, fit_direction, pair_direction
    from synth.speed_prior import SPEED_FACTOR, speed_pair
    from synth.voice_cues import CueError, fit_cues

    name = _valid_name(args.name, "NAME", "direction")
    if args.k is not None and args.method != "topk":
        raise UsageError(f"--k {args.k}: only with --method topk (mean and fisher use every dimension)")
    if args.along is not None and args.method == "topk":
        raise UsageError(f"--along {args.along}: only with --method mean or fisher (topk picks its own dimensions)")
    kind, items = read_labels(args.labels)
    for option, used in (("--cues", args.cues), (f"--along {args.along}", args.along is not None)):
        if used and kind != "path":
            raise EnrollError(f"{option}: needs the labelled audio itself (a `path<TAB>label` file); {args.labels} "
                              f"names enrolled voices")
    values = len({label for _, label in items})
    if args.cues and values != 2:
        raise EnrollError(f"--cues: needs a label with two values; {args.labels} has {values}")
    registry_path = resolve_registry_path(args.registry)
    check_registry_for_writing(registry_path)  # read-only or damaged: say so before the files are embedded
    encoder = load_encoder_or_fail(args.embedding, args.device)
    along = None
    if kind == "path":
        for item, _ in items:
            if not Path(item).is_file():
                raise EnrollError(f"--labels {args.labels}: {item}: no such file")
        # every file is embedded before the registry is opened for writing; a file with too little speech is
        # left out (a few short clips among hundreds must not sink the fit) and counted
        embedded, slower, faster, kept, left_out, cues = [], [], [], [], [], []
        for item, label in items:
            try:
                audio, _, _ = file_speech(item, encoder, min_speech=LABEL_MIN_SPEECH_S)
            except TooLittleSpeech as short:
                left_out.append((item, short.seconds))
                continue
            kept.append((item, label))
            embedded.append(embed_speech_audio(audio, encoder, label=item))
            if args.cues:
                cues.append(file_cues(item))
            if args.along == "speed":
                down, up = speed_pair(audio, encoder.sample_rate, encoder.embed)
                slower.append(down)
                faster.append(up)
        check_enough_left(items, kept, left_out, args.labels)
        items = kept
        vectors = np.stack(embedded)
        if args.along == "speed":
            try:
                along = pair_direction(np.stack(faster), np.stack(slower))
            except AlgebraError as error:
                raise EnrollError(f"--along speed: {error}") from None
    else:
        left_out = []
        if not registry_path.exists():
            raise EnrollError(f"--labels {args.labels}: names enrolled voices but {registry_path} does not exist")
        with registry_of(args) as registry:
            vectors = np.stack([registry.centroid(item, encoder.encoder_id) for item, _ in items])
    labels = [label for _, label in items]
    try:
        fitted = fit_direction(vectors, labels, method=args.method, k=args.k, positive=args.positive, along=along)
        training = None
        if fitted.labels is not None:
            truth = np.array([label == fitted.labels[1] for label in labels])
            training = float((classify(vectors, fitted) == truth).mean())
    except AlgebraError as error:
        raise EnrollError(f"--labels {args.labels}: {error}") from None
    metadata = {**fitted.to_metadata(), "labels_file": Path(args.labels).name, "items": kind}
    if args.cues:
        try:
            metadata["cues"] = fit_cues(np.stack(cues), labels, fitted.labels).to_metadata()
        except CueError as error:
            raise EnrollError(f"--cues: {error}") from None
    if left_out:
        metadata["left_out"] = [_shown_path(item, args.labels) for item, _ in left_out]
    if along is not None:
        metadata["along"] = f"speed x{SPEED_FACTOR:g}"
    with open_registry(registry_path, create=True) as registry:
        registry.store_direction(name, encoder.encoder_id, fitted.vector, metadata)
    what = (f"+ = {fitted.labels[1]}, - = {fitted.labels[0]}; training accuracy {training:.0%}"
            if fitted.labels else "numeric label; alpha 1 = one label unit")
    method = args.method if along is None else f"{args.method} along the x{SPEED_FACTOR:g} speed line"
    if left_out:
        print(left_out_line(left_out, len(items) + len(left_out), args.labels))
    if args.cues:
        measured = metadata["cues"]["files"]
        print(f"cues: pitch measured on {measured[0]}, formant spacing on {measured[1]} and narrow-band spacing on "
              f"{measured[2]} of {len(items)} files (read them with voices read {name} --cues)")
    print(f"stored direction {name} ({encoder.encoder_id}): {method}, {fitted.k} of {fitted.dimension} "
          f"dims, {len(items)} {kind}s; {what}; class-mean distance {fitted.scale:.3f} -> {registry_path}")
    return 0


def _shown_path(item: str, labels_file: str) -> str:
    """A labelled file as the TSV names it: relative to the TSV's folder when it lies under it."""
    try:
        return str(Path(item).relative_to(Path(labels_file).parent))
    except ValueError:
        return item


def left_out_line(left_out: list[tuple[str, float]], total: int, labels_file: str, shown: int = 3) -> str:
    """One line counting the files left out of a fit for too little speech, naming the first `shown`."""
    names = [f"{_shown_path(item, labels_file)} ({floor2(seconds)} s)" for item, seconds in left_out[:shown]]
    more = f" and {len(left_out) - shown} more" if len(left_out) > shown else ""
    return (f"left out {len(left_out)} of {total} files with under {LABEL_MIN_SPEECH_S:g} s of speech: "
            f"{', '.join(names)}{more}")


def check_enough_left(items: list[tuple[str, str]], kept: list[tuple[str, str]], left_out: list[tuple[str, float]],
                      labels_file: str) -> None:
    """EnrollError (one line) when leaving out the short files leaves too few to fit: under MIN_ITEMS_PER_CLASS
    files of a label value that two values make binary, or under MIN_ITEMS_PER_CLASS + 1 files in all."""
    if not left_out:
        return
    values = sorted({label for _, label in items})
    counts = {value: sum(label == value for _, label in kept) for value in values}
    short = [f"{value} {counts[value]}" for value in values if counts[value] < MIN_ITEMS_PER_CLASS]
    too_few = short if len(values) == 2 else ([] if len(kept) > MIN_ITEMS_PER_CLASS else [f"{len(kept)} in all"])
    if too_few:
        need = (f"at least {MIN_ITEMS_PER_CLASS} per label" if len(values) == 2
                else f"at least {MIN_ITEMS_PER_CLASS + 1}")
        raise EnrollError(f"--labels {labels_file}: too few files left to fit ({', '.join(too_few)}; {need}) after "
                          f"{left_out_line(left_out, len(items), labels_file)}")


def directions(args: argparse.Namespace) -> int:
    from cluster.registry import resolve_registry_path

    if not resolve_registry_path(args.registry).exists():
        print("no directions stored")
        return 0
    with registry_of(args) as registry:
        stored = registry.list_directions(args.encoder)
    if not stored:
        print("no directions stored")
    for d in stored:
        labels = d.metadata.get("labels")
        what = f"+ = {labels[1]}, - = {labels[0]}" if labels else "numeric"
        spread = d.metadata.get("spread")
        spread = f"spread {spread:.3f}" if spread else "no spread (stored before spreads were kept)"
        cues = "  with cues (voices read --cues)" if "cues" in d.metadata else ""
        print(f"{d.name}  {d.encoder_id}  {d.metadata.get('method')} k={d.metadata.get('k')}  {what}  {spread}{cues}")
    return 0


def edit(args: argparse.Namespace) -> int:
    from synth.algebra import AlgebraError, edit as edit_vector, read

    if not np.isfinite(args.alpha):
        raise UsageError(f"--alpha {args.alpha:g}: must be a finite number")
    _valid_name(args.as_name, "--as")
    encoder = load_encoder_or_fail(args.embedding, args.device)
    with registry_of(args) as registry:
        new = _check_new_name(registry, args.as_name)
        fitted = _stored_direction(registry, args.direction, encoder.encoder_id)
        source = _raw_voice(registry, args.voice, encoder.encoder_id)
        try:
            edited = edit_vector(source, fitted, args.alpha)
            before, after = float(read(source, fitted)[0]), float(read(edited, fitted)[0])
        except AlgebraError as error:
            raise EnrollError(f"edit {args.voice}: {error}") from None
        metadata = {"tags": ["synthetic"], "derived": {"edit": args.voice, "direction": args.direction,
                                                       "alpha": args.alpha}}
        registry.enroll(new, encoder.encoder_id, edited.astype(np.float32), [None], metadata)
    print(f"enrolled {new}: {args.voice} moved by {args.alpha:g} along {args.direction} "
          f"(reading {before:.2f} -> {after:.2f}, {encoder.encoder_id})")
    return 0


def mix(args: argparse.Namespace) -> int:
    from synth.algebra import AlgebraError, interpolate

    if not 0.0 <= args.t <= 1.0:  # NaN fails this too
        raise UsageError(f"--t {args.t:g}: must be between 0 (all {args.a}) and 1 (all {args.b})")
    _valid_name(args.as_name, "--as")
    encoder = load_encoder_or_fail(args.embedding, args.device)
    with registry_of(args) as registry:
        new = _check_new_name(registry, args.as_name)
        a = _raw_voice(registry, args.a, encoder.encoder_id)
        b = _raw_voice(registry, args.b, encoder.encoder_id)
        try:
            mixed = interpolate(a, b, args.t, method=args.method)
        except AlgebraError as error:
            raise EnrollError(f"mix {args.a} {args.b}: {error}") from None
        metadata = {"tags": ["synthetic"], "derived": {"mix": [args.a, args.b], "t": args.t, "method": args.method}}
        registry.enroll(new, encoder.encoder_id, mixed.astype(np.float32), [None], metadata)
    print(f"enrolled {new}: {args.method} mix of {args.a} and {args.b} at t = {args.t:g} ({encoder.encoder_id})")
    return 0


def search_direction(args: argparse.Namespace) -> int:
    """Enrolled voices ranked by their reading along a stored direction (highest first, or --lowest)."""
    from synth.algebra import read

    if args.k < 1:
        raise UsageError(f"--top {args.k}: must be at least 1")
    encoder = load_encoder_or_fail(args.embedding, args.device)
    with registry_of(args) as registry:
        fitted = _stored_direction(registry, args.direction, encoder.encoder_id)
        names, centroids = registry.centroids(encoder.encoder_id)
    if not names:
        raise EnrollError(f"no voices enrolled with {encoder.encoder_id}")
    readings = read(centroids, fitted)
    order = np.lexsort((np.array(names, dtype=object), readings if args.lowest else -readings))[: args.k]
    rows = []
    for index in order:
        side = None
        if fitted.threshold is not None:
            side = fitted.labels[1] if readings[index] > fitted.threshold else fitted.labels[0]
        rows.append({"name": names[index], "reading": round(float(readings[index]), 4), "class": side})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['reading']:+.3f}" + (f"  {row['class']}" if row["class"] else ""))
    if fitted.labels:
        print(f"(reading: 0 = mean {fitted.labels[0]}, 1 = mean {fitted.labels[1]} of the labelled set; "
              f"threshold {fitted.threshold:.3f})")
    return 0


def _direction_for_reading(registry, name: str, encoder_id: str):
    """The stored direction `name` of `encoder_id`; EnrollError (one line) when it is stored only for other
    encoders (its numbers mean nothing in another encoder's space) or not at all."""
    from diarize.embedding import BACKENDS

    stored = [d.encoder_id for d in registry.list_directions() if d.name == name]
    if not stored:
        raise EnrollError(f"direction {name!r}: not stored in {registry.path} (see `voicemap voices directions`)")
    if encoder_id not in stored:
        hints = sorted({backend for backend in BACKENDS for e in stored if e.startswith(backend + "-")})
        hint = f"; read with --embedding {' or '.join(hints)}" if hints else ""
        raise EnrollError(f"direction {name!r}: fitted with {', '.join(sorted(stored))}, not {encoder_id} (the "
                          f"encoder --embedding loads); a direction only reads vectors of its own encoder{hint}")
    return _stored_direction(registry, name, encoder_id)


def _reading_row(path: str, speaker: str | None, seconds: float, reading) -> dict:
    def rounded(value):
        return None if value is None else round(float(value), 4)

    return {"path": path, "speaker": speaker, "speech_seconds": round(float(seconds), 2),
            "projection": rounded(reading.projection), "reading": rounded(reading.value), "label": reading.label,
            "margin": rounded(reading.margin), "spreads": rounded(reading.spreads)}


def _reading_line(row: dict) -> str:
    where = row["path"] + (f" {row['speaker']}" if row["speaker"] else "")
    side = f"  {row['label']}" if row["label"] is not None else ""
    spreads = "" if row["spreads"] is None else f"  {row['spreads']:+.2f} spreads"
    line = (f"{where}  reading {row['reading']:+.3f}{side}{spreads}  (projection {row['projection']:+.3f}, "
            f"{row['speech_seconds']:.1f} s of speech)")
    cues = row.get("cues")
    if cues is not None:
        spacing = ("narrow spacing", cues["narrow_spacing_hz"]) if cues["narrow_band"] else ("spacing", cues["spacing_hz"])
        heard = ", ".join(f"{name} {value:.0f} Hz" if value is not None else f"{name} not measured"
                          for name, value in (("pitch", cues["pitch_hz"]), spacing))
        decided = (f"{cues['label']} {cues['spreads']:+.2f} spreads by {cues['rule']}" if cues["label"] is not None
                   else "no cue measured")
        line += f"  cues: {decided} ({heard})"
    return line


def file_cues(path: str) -> np.ndarray:
    """(3,) pitch, formant spacing and narrow-band spacing of a whole audio file (synth/voice_cues.py), measured on the decoded
    file rather than its VAD speech: pitch tracking needs the audio in one piece, and the figures in
    docs/voice-directions.md were measured so. A file that cannot be decoded is an EnrollError."""
    from diarize.audio import AudioError, load_audio
    from synth.voice_cues import CUE_SAMPLE_RATE, measure_cues

    try:
        waveform = load_audio(path, sample_rate=CUE_SAMPLE_RATE)
    except AudioError as error:
        raise EnrollError(str(error)) from None
    return measure_cues(waveform.samples, waveform.sample_rate)


def _cue_model(fitted, name: str, gate, gate_name: str | None):
    """The cue model stored with `fitted`; EnrollError (one line) when there is none, or when the gate cannot
    choose (a direction without two classes, or a line without its spread to add to the spacing)."""
    from synth.voice_cues import CueError, CueModel

    if "cues" not in fitted.metadata:
        raise EnrollError(f"direction {name!r} was fitted without --cues; fit it again with "
                          f"`voicemap voices direction {name} --labels LABELS.tsv --cues`")
    if gate is not None and gate.labels is None:
        raise EnrollError(f"--gate {gate_name}: a direction with a numeric label has no side to gate by")
    if gate is not None and fitted.spread is None:
        raise EnrollError(f"--gate {gate_name}: direction {name!r} keeps no training spread to add to the "
                          f"spacing; fit it again")
    try:
        return CueModel.from_metadata(fitted.metadata["cues"])
    except CueError as error:
        raise EnrollError(f"direction {name!r}: {error}") from None


def _cue_reading(model, cues: np.ndarray, reading, aroused: bool) -> dict:
    """One file's label by its cues: pitch + spacing, or, where the gate reads the file on its positive side
    (aroused speech, whose pitch rises), the direction's own reading + spacing; each in its spreads, summed. The
    spacing is the narrow-band one where the file has no band above 4 kHz (synth/voice_cues.py)."""
    from synth.voice_cues import pitch_and_spacing

    pitch, spacing, narrow = (float(v[0]) for v in pitch_and_spacing(model, cues))
    rule, terms = ("line + spacing", (reading.spreads, spacing)) if aroused else ("pitch + spacing", (pitch, spacing))
    measured = [float(t) for t in terms if t is not None and np.isfinite(t)]
    total = sum(measured) if measured else None

    def hertz(value):
        return None if not np.isfinite(value) else round(float(value), 1)

    return {"pitch_hz": hertz(cues[0]), "spacing_hz": hertz(cues[1]), "narrow_spacing_hz": hertz(cues[2]),
            "narrow_band": bool(narrow), "rule": rule, "spreads": None if total is None else round(total, 4),
            "label": None if total is None else model.labels[1] if total > 0 else model.labels[0]}


def read_command(args: argparse.Namespace) -> int:
    """`voices read DIRECTION AUDIO...`: each file's (or each diarized speaker's) reading along a stored direction."""
    from cluster.atomic_files import atomic_write_text
    from cluster.registry import resolve_registry_path
    from pipelines.errors import error_line
    from pipelines.outputs import OutputError, refuse_overwriting, writable_file
    from synth.algebra import AlgebraError, read_direction

    # every option is checked before the registry is opened, a model loaded or any audio read
    name = _valid_name(args.direction, "DIRECTION", "direction")
    if args.gate is not None and not args.cues:
        raise UsageError(f"--gate {args.gate}: only with --cues (it chooses which cues decide)")
    gate_name = None if args.gate is None else _valid_name(args.gate, "--gate", "direction")
    min_speech = check_min_speech(args.min_speech)
    check_encoder_options(args.embedding, args.device)
    registry_path = resolve_registry_path(args.registry)
    if args.json:
        try:
            writable_file(args.json)
            refuse_overwriting([args.json], [*args.audio, registry_path])
        except OutputError as error:
            raise UsageError(f"--json {error}") from None
    if not registry_path.exists():
        raise EnrollError(f"{registry_path}: no registry there, so no direction {name!r} to read along")
    diarizer = None
    if args.speakers:  # the default diarizer, with the encoder of --embedding; its models load here, once
        from diarize.config import DiarizationConfig, EmbeddingConfig

        from .common import loaded_diarizer

        try:
            diarizer = loaded_diarizer(DiarizationConfig(embedding=EmbeddingConfig(encoder=args.embedding),
                                                         device=args.device))
        except ValueError as error:
            raise UsageError(str(error)) from None
        encoder = diarizer.encoder
    else:
        encoder = load_encoder_or_fail(args.embedding, args.device)
    with registry_of(args) as registry:
        fitted = _direction_for_reading(registry, name, encoder.encoder_id)
        gate = None if gate_name is None else _direction_for_reading(registry, gate_name, encoder.encoder_id)
    cue_model = _cue_model(fitted, name, gate, gate_name) if args.cues else None
    rows, errors = [], []
    for path in args.audio:
        try:
            if diarizer is None:
                audio, seconds, _ = file_speech(path, encoder, min_speech=min_speech)
                found = [(None, seconds, embed_speech_audio(audio, encoder, label=path),
                          file_cues(path) if cue_model is not None else None)]
            else:
                found = _speakers_of(diarizer, path, with_cues=cue_model is not None)
            for speaker, seconds, vector, cues in found:
                reading = read_direction(fitted, vector)[0]
                rows.append(_reading_row(path, speaker, seconds, reading))
                if cue_model is not None:
                    aroused = gate is not None and read_direction(gate, vector)[0].label == gate.labels[1]
                    rows[-1]["cues"] = _cue_reading(cue_model, cues, reading, aroused)
                print(_reading_line(rows[-1]), flush=True)
        except (EnrollError, AlgebraError, OSError, ValueError, RuntimeError) as error:
            errors.append(error_line(path, error))
            print(f"voicemap voices read: {errors[-1]}", file=sys.stderr, flush=True)
    notes = _reading_notes(fitted, name)
    for note in notes:
        print(note)
    if args.json:
        record = {"direction": name, "encoder_id": encoder.encoder_id, "method": fitted.method,
                  "labels": list(fitted.labels) if fitted.labels else None, "threshold": fitted.threshold,
                  "spread": fitted.spread, "cues": None if cue_model is None else cue_model.to_metadata(),
                  "gate": gate_name, "notes": notes, "readings": rows, "errors": errors}
        atomic_write_text(args.json, json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    if errors:
        print(f"voicemap voices read: {len(errors)} of {len(args.audio)} inputs could not be read", file=sys.stderr)
        return 1
    return 0


def _speakers_of(diarizer, path: str, *, with_cues: bool = False) -> list[tuple]:
    """Diarize one recording -> [(speaker label, seconds heard alone, (dim,) raw centroid, (3,) cues or None)];
    the cues are measured on the speaker's turns heard alone, joined (speaker_cues)."""
    from diarize.audio import AudioError

    try:
        result = diarizer(path)
    except AudioError as error:
        raise EnrollError(str(error)) from None
    if not result.labels:
        raise EnrollError(f"{path}: no speaker found (no speech?)")
    cues = speaker_cues(path, result.exclusive, result.labels) if with_cues else [None] * len(result.labels)
    return [(label, float(result.exclusive.label_duration(label)), result.speaker_centroids[index], cues[index])
            for index, label in enumerate(result.labels)]


def speaker_cues(path: str, exclusive, labels: list[str]) -> list[np.ndarray]:
    """(3,) cues of each of `labels`, measured on the audio of its turns in `exclusive` (a pyannote Annotation
    of turns heard alone) joined end to end: overlapped speech would mix two voices' pitch and formants."""
    from diarize.audio import AudioError, load_audio
    from synth.voice_cues import CUE_SAMPLE_RATE, measure_cues

    try:
        waveform = load_audio(path, sample_rate=CUE_SAMPLE_RATE)
    except AudioError as error:
        raise EnrollError(str(error)) from None
    rate = waveform.sample_rate
    measured = []
    for label in labels:
        pieces = [waveform.samples[int(turn.start * rate): int(turn.end * rate)]
                  for turn in exclusive.label_timeline(label)]
        measured.append(measure_cues(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), rate))
    return measured


def _reading_notes(fitted, name: str) -> list[str]:
    """What the numbers mean, and a note for a direction stored before spreads were kept."""
    if fitted.labels:
        notes = [f"(reading: 0 = mean {fitted.labels[0]}, 1 = mean {fitted.labels[1]} of the labelled set; "
                 f"threshold {fitted.threshold:.3f}" + (f"; spread {fitted.spread:.3f}, the training items' "
                                                        f"standard deviation around their class mean)"
                                                        if fitted.spread else ")")]
    else:
        notes = [f"(numeric label: reading in label units" + (f"; spreads from the training label mean "
                                                               f"{fitted.metadata.get('label_mean', 0):.3f}, spread "
                                                               f"{fitted.spread:.3f})" if fitted.spread else ")")]
    if fitted.spread is None:
        notes.append(f"note: direction {name!r} was stored before directions kept their training spread, so the "
                     f"distance in spreads is not shown; fit it again (voices direction) to get it")
    return notes


def add_subcommands(add, add_embedding_argument) -> None:
    """Register the sub-commands through `voices`' own `add(name, action, help)` helper."""
    sub = add("direction", direction, "fit an attribute direction from labelled files or voices and store it")
    sub.add_argument("name", metavar="NAME", help="the direction's name, e.g. gender")
    sub.add_argument("--labels", required=True, metavar="LABELS.tsv",
                     help="TSV with a header: `path<TAB>label` (audio files) or `voice<TAB>label` (enrolled voices); "
                          "two label values (binary) or numbers")
    sub.add_argument("--method", choices=("mean", "topk", "fisher"), default="mean",
                     help="mean (default): difference of class means (regression slope for numbers); topk: the same "
                          "on the K dimensions most correlated with the label only; fisher: the mean difference "
                          "whitened by the items' within-class covariance (Ledoit-Wolf shrinkage), which avoids "
                          "directions where the labelled items differ for other reasons. Over 22 speakers of read "
                          "and acted speech fisher read held-out speakers' sex 2-9 points better, but its training "
                          "spread is half the held-out one, so `voices read` overstates how far readings lie from "
                          "the threshold (docs/voice-directions.md)")
    sub.add_argument("--k", type=int, default=None, metavar="K", help="dimensions kept by --method topk")
    sub.add_argument("--along", choices=("speed",), default=None,
                     help="speed: fit on a line that needs no labels, the mean move of each file's embedding when "
                          "its first 4 s are played 15 %% faster and slower (pitch and formants together, as between "
                          "the sexes); the labels then set only its sign, length and threshold. Needs a "
                          "path<TAB>label file. It helped on read speech alone (fisher along it: 9 of 10 held-out "
                          "readers) but hurt across read and acted speech (docs/voice-directions.md)")
    sub.add_argument("--positive", default=None, metavar="LABEL",
                     help="for a binary label, the value at the + end (default: 1, else the later one in sort order)")
    sub.add_argument("--cues", action="store_true",
                     help="also measure each labelled file's pitch and formant spacing (about 0.3 s of CPU a file) and "
                          "store where the two classes sit on them, for `voices read --cues`; needs a path<TAB>label "
                          "file with two label values. Pitch and spacing read sex on held-out speakers far better "
                          "than an embedding line in read speech and meetings (docs/voice-directions.md)")
    add_embedding_argument(sub)
    sub = add("directions", directions, "list stored attribute directions")
    sub.add_argument("--encoder", metavar="ENCODER_ID", default=None, help="only this encoder's")
    sub = add("read", read_command, "read audio files (or each diarized speaker) along a stored direction: "
              "reading, side of the threshold, distance from it in training spreads")
    sub.add_argument("direction", metavar="DIRECTION", help="a stored direction (voicemap voices directions)")
    sub.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files, one speaker each (or see --speakers)")
    sub.add_argument("--speakers", action="store_true",
                     help="diarize each recording (default diarizer) and read each speaker's centroid")
    sub.add_argument("--min-speech", type=float, default=READ_MIN_SPEECH_S, metavar="SECONDS",
                     help=f"refuse a file with less speech than this (default {READ_MIN_SPEECH_S:g}, as the fit); "
                          "not used with --speakers, where each speaker holds at least 1 s")
    sub.add_argument("--json", metavar="OUT", default=None, help="also write the readings to this JSON file")
    sub.add_argument("--cues", action="store_true",
                     help="also read the direction's two classes from pitch and formant spacing (a direction "
                          "fitted with --cues, e.g. sex): of the whole file, or with --speakers of each speaker's "
                          "turns heard alone; see docs/voice-directions.md")
    sub.add_argument("--gate", default=None, metavar="DIRECTION",
                     help="with --cues: a file on this stored direction's positive side (e.g. arousal, + = high) is "
                          "decided by the line and the spacing instead of the pitch, which aroused speech lifts")
    add_embedding_argument(sub)
    sub = add("edit", edit, "enroll a new voice: VOICE moved along a stored direction")
    sub.add_argument("voice", metavar="VOICE")
    sub.add_argument("--direction", required=True, metavar="NAME")
    sub.add_argument("--alpha", type=float, required=True,
                     help="strength in label units: 1 moves by the class-mean distance (binary) or one unit (numeric)")
    sub.add_argument("--as", dest="as_name", required=True, metavar="NEWVOICE")
    add_embedding_argument(sub)
    sub = add("mix", mix, "enroll a new voice between voices A and B")
    sub.add_argument("a", metavar="A")
    sub.add_argument("b", metavar="B")
    sub.add_argument("--t", type=float, required=True, help="0 gives A, 1 gives B")
    sub.add_argument("--method", choices=("slerp", "linear"), default="slerp")
    sub.add_argument("--as", dest="as_name", required=True, metavar="NEWVOICE")
    add_embedding_argument(sub)
