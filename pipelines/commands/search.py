"""`voicemap search OUTDIR --voice CLIP | --name NAME`: where in a linked archive a voice speaks."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import HelpFormatter

#: a query clip needs at least this much speech: CAM++ embeddings of shorter speech scatter (see enroll.py)
MIN_QUERY_SPEECH_S = 1.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find the recordings where a voice speaks, in an archive linked by `voicemap link`",
        description="Rank every speaker of every recording in a linked archive (OUTDIR, after `voicemap link "
        "OUTDIR`) by cosine similarity to a voice: the speech of an audio clip (--voice, embedded with the "
        "archive's encoder) or an enrolled voice of the registry (--name). Prints one line per speaker, best "
        "first, tab-separated: uri, speaker (its label in the recording), voice (its archive label), "
        "similarity, seconds of speech. No audio of the archive is read.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("outdir", metavar="OUTDIR", help="a folder linked by `voicemap link`")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--voice", metavar="CLIP", help="audio file of the voice to look for (1 s of speech or more)")
    query.add_argument("--name", metavar="NAME", help="an enrolled voice of the registry")
    parser.add_argument("--top", type=int, default=10, metavar="K", help="how many speakers to list")
    parser.add_argument("--registry", metavar="PATH", default=None,
                        help="registry for --name (default: $VOICEMAP_REGISTRY, else registry.sqlite in the user data folder)")
    parser.add_argument("--embedding", metavar="E", default="campplus",
                        help="encoder for --voice; it must be the archive's (default campplus)")
    parser.add_argument("--device", default="cpu", help="torch device for the encoder (default cpu)")
    parser.set_defaults(func=run)


def query_from_clip(path: str, embedding: str, device: str, encoder_id: str):
    """(dim,) raw vector of the speech in `path`; ValueError with one line when it cannot be had."""
    from pipelines.commands.enroll import load_encoder_or_fail
    from pipelines.voice_embedding import EnrollError, embed_file

    if not Path(path).expanduser().is_file():
        raise ValueError(f"{path}: no such file")
    encoder = load_encoder_or_fail(embedding, device)
    if encoder.encoder_id != encoder_id:
        raise ValueError(f"--embedding {embedding} gives {encoder.encoder_id} vectors, but the archive holds "
                         f"{encoder_id} ones; pass the archive's encoder")
    try:
        return embed_file(str(path), encoder, min_speech=MIN_QUERY_SPEECH_S).vector
    except EnrollError as error:
        raise ValueError(str(error)) from None


def query_from_registry(name: str, registry_path, encoder_id: str):
    from cluster.registry import Registry, RegistryError

    try:
        with Registry(registry_path, create=False) as registry:
            names, vectors = registry.centroids(encoder_id)
            where = registry.path
    except RegistryError as error:
        raise ValueError(str(error).splitlines()[0]) from None
    if name not in names:
        raise ValueError(f"--name {name}: no {encoder_id} voice of that name in {where}")
    return vectors[names.index(name)]


def run(args) -> int:
    from pipelines.archive_index import ArchiveIndexError, read_index
    from pipelines.archive_search import nearest_rows

    if args.top < 1:
        print(f"voicemap search: --top {args.top}: must be 1 or more", file=sys.stderr)
        return 2
    outdir = Path(args.outdir).expanduser()
    if not outdir.is_dir():
        print(f"voicemap search: {outdir}: no such folder", file=sys.stderr)
        return 2
    try:
        index = read_index(outdir)
    except ArchiveIndexError as error:
        print(f"voicemap search: {error}", file=sys.stderr)
        return 2
    if index is None:
        print(f"voicemap search: {outdir}: not linked yet (run `voicemap link {args.outdir}` first)", file=sys.stderr)
        return 2
    try:
        if args.voice:
            query = query_from_clip(args.voice, args.embedding, args.device, index.encoder)
        else:
            query = query_from_registry(args.name, args.registry, index.encoder)
        if len(query) != index.dimension:
            raise ValueError(f"query of dimension {len(query)}, but the archive's vectors have {index.dimension}")
        rows, scores = nearest_rows(index.vectors, query, args.top)
    except ValueError as error:
        print(f"voicemap search: {error}", file=sys.stderr)
        return 1
    for row, score in zip(rows, scores):
        entry = index.rows[int(row)]
        print(f"{entry.uri}\t{entry.speaker}\t{entry.label}\t{score:.3f}\t{entry.seconds:.1f}")
    return 0
