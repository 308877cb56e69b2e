"""``bdbnet search``: rank a gallery (image folders or a saved index) for query images."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bdbnet.cli.support import (
    POSITIVE,
    CLIError,
    add_command,
    add_engine_options,
    add_model_options,
    build_extractor,
    check_index_output,
    extract_paths,
    hidden_alias,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "search",
        "rank a gallery (folder or saved index) for queries",
        """
        Rank the gallery (--gallery: folders, files, a saved index, or a Milvus gallery: a
        .db file or an http(s):// server) for every query image (--query): print rank,
        distance and path of the --topk nearest (with "same id" or "different id" when the
        file names carry identities), draw the ranked lists into --output and write them as
        JSON (--json). --where keeps the gallery items it matches, e.g. "camid in [0, 2] and
        pid != 5" (fields pid, camid; on a Milvus gallery also time and source). A gallery
        given as images can be saved as an index (--save-index) for the next search.
        """,
        """
        bdbnet search --checkpoint last.pt --gallery gallery.safetensors \\
            --query q1.jpg q2.jpg --topk 10
        bdbnet search --checkpoint last.pt --gallery gallery/ --save-index gallery.npz \\
            --query q1.jpg
        bdbnet search --checkpoint last.pt --gallery gallery.db --query q1.jpg \\
            --where "camid in [0, 2]" --json ranked.json
        """,
    )
    add_model_options(p)
    p.add_argument(
        "--gallery",
        required=True,
        nargs="+",
        help="image folders/files, one saved index, or a Milvus gallery (FILE.db, http(s)://)",
    )
    p.add_argument("--query", required=True, nargs="+", help="query images or folders")
    p.add_argument("--topk", type=POSITIVE, default=10, help="gallery images listed per query")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    p.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "faiss"],
        help="exact chunked search in torch or a faiss flat index (bdbnet[faiss])",
    )
    p.add_argument(
        "--save-index", default=None, help="save the gallery index built from images here"
    )
    p.add_argument(
        "--output",
        default="ranked_list.png",
        metavar="FILE",
        help="the ranked-list picture ('' for none)",
    )
    hidden_alias(p, "--picture", "output")
    p.add_argument(
        "--where", default=None, help='keep the gallery items it matches, e.g. "camid != 2"'
    )
    p.add_argument("--json", default=None, metavar="FILE", help="write the ranked lists as JSON")
    add_engine_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.data.records import ImageRecord
    from bdbnet.files import atomic_write
    from bdbnet.inference import IndexMismatchError, labels_from_paths, parse_where
    from bdbnet.outputs import PICTURE_FORMATS, ensure_output_file
    from bdbnet.visualization import draw_ranked_list

    where = parse_where(args.where) if args.where else None
    if args.save_index:
        check_index_output(args.save_index)
    if args.output:
        ensure_output_file(args.output, tuple(PICTURE_FORMATS), what="--output picture")
    if args.json:
        ensure_output_file(args.json, (".json",), what="--json file")
    extractor = build_extractor(args)
    gallery = open_search_gallery(args, extractor)
    query = extract_paths(extractor, args.query, "query")
    try:
        hits = gallery.search_hits(
            query.features,
            args.topk,
            identity=extractor.identity,
            where=where,
            **search_options(args, gallery),
        )
    except (IndexMismatchError, ImportError) as err:
        raise CLIError(str(err)) from err
    q_labels = labels_from_paths(query.paths)
    labelled = q_labels is not None and any(h.pid is not None for row in hits for h in row)

    queries, ranked, distances = [], [], []
    for qi, qpath in enumerate(query.paths):
        pid, cam = (int(q_labels[0][qi]), int(q_labels[1][qi])) if q_labels else (-1, 0)
        print(f"query {qpath}")
        for hit in hits[qi]:
            mark = ""
            if labelled:
                mark = "  same id" if hit.pid == pid else "  different id"
            print(f"  {hit.rank:3d}  {hit.distance:9.4f}  {hit.path}{mark}")
        queries.append(ImageRecord(qpath, pid, cam))
        ranked.append(
            [ImageRecord(h.path, -1 if h.pid is None else h.pid, h.camid or 0) for h in hits[qi]]
        )
        distances.append([h.distance for h in hits[qi]])
    if args.json:
        payload = {
            "gallery": args.gallery[0] if len(args.gallery) == 1 else args.gallery,
            "where": args.where,
            "queries": list(query.paths),
            "results": [[h.to_dict() for h in row] for row in hits],
        }
        atomic_write(args.json, lambda f: f.write(json.dumps(payload, indent=1).encode()))
        print(f"wrote {args.json}")
    if args.output and queries:
        h, w = extractor.input_size
        cell = (128, max(8, round(128 * w / h)))
        title = f"top {args.topk} of {len(gallery)} gallery images" + (
            " (re-ranked)" if args.rerank else ""
        )
        path = draw_ranked_list(
            queries,
            ranked,
            args.output,
            cell=cell,
            show_labels=labelled,
            distances=distances,
            title=title,
        )
        print(f"wrote {path}")
    return 0


def open_search_gallery(args: argparse.Namespace, extractor: Any) -> Any:
    """The gallery named by --gallery: a Milvus gallery, a saved index, or images indexed now."""
    from bdbnet.inference import GalleryIndex, open_gallery
    from bdbnet.vector_engines import is_engine_target

    if len(args.gallery) == 1 and is_engine_target(args.gallery[0]):
        if args.rerank or args.save_index or args.backend != "torch":
            raise CLIError(
                "a Milvus gallery is searched by the engine: --rerank, --backend and "
                "--save-index apply to file indexes and images only"
            )
        try:
            gallery = open_gallery(args.gallery[0], collection=args.collection)
        except ImportError as err:
            raise CLIError(str(err)) from err
        print(f"Milvus gallery {args.gallery[0]} ({args.collection}): {len(gallery)} images")
        return gallery
    if len(args.gallery) == 1 and GalleryIndex.is_index_file(args.gallery[0]):
        index = GalleryIndex.load(args.gallery[0])
        print(f"gallery index {args.gallery[0]}: {len(index)} images")
        return index
    index = GalleryIndex.from_extraction(
        extract_paths(extractor, args.gallery, "gallery"), extractor.identity
    )
    if args.save_index:
        print(f"saved the gallery index to {index.save(args.save_index)}")
    return index


def search_options(args: argparse.Namespace, gallery: Any) -> dict[str, Any]:
    """The search options a file index takes (a Milvus gallery is searched by the engine)."""
    from bdbnet.inference import GalleryIndex

    if isinstance(gallery, GalleryIndex):
        return {"backend": args.backend, "rerank": args.rerank}
    return {}
