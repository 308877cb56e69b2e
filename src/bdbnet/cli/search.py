"""``bdbnet search``: rank a gallery (image folders or a saved index) for query images."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import (
    POSITIVE,
    CLIError,
    add_command,
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
        Rank the gallery (--gallery: folders, files or a saved index) for every query image
        (--query): print rank, distance and path of the --topk nearest (with "same id" or
        "different id" when the file names carry identities) and draw the ranked lists into
        --output. A gallery given as images can be saved as an index (--save-index) for the
        next search.
        """,
        """
        bdbnet search --checkpoint last.pt --gallery gallery.safetensors \\
            --query q1.jpg q2.jpg --topk 10
        bdbnet search --checkpoint last.pt --gallery gallery/ --save-index gallery.npz \\
            --query q1.jpg
        """,
    )
    add_model_options(p)
    p.add_argument(
        "--gallery", required=True, nargs="+", help="image folders/files, or one saved index"
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
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.data.records import ImageRecord
    from bdbnet.inference import GalleryIndex, IndexMismatchError, labels_from_paths
    from bdbnet.outputs import PICTURE_FORMATS, ensure_output_file
    from bdbnet.visualization import draw_ranked_list

    if args.save_index:
        check_index_output(args.save_index)
    if args.output:
        ensure_output_file(args.output, tuple(PICTURE_FORMATS), what="--output picture")
    extractor = build_extractor(args)
    if len(args.gallery) == 1 and GalleryIndex.is_index_file(args.gallery[0]):
        index = GalleryIndex.load(args.gallery[0])
        print(f"gallery index {args.gallery[0]}: {len(index)} images")
    else:
        index = GalleryIndex.from_extraction(
            extract_paths(extractor, args.gallery, "gallery"), extractor.identity
        )
        if args.save_index:
            print(f"saved the gallery index to {index.save(args.save_index)}")
    query = extract_paths(extractor, args.query, "query")
    try:
        result = index.search(
            query.features,
            args.topk,
            identity=extractor.identity,
            backend=args.backend,
            rerank=args.rerank,
        )
    except (IndexMismatchError, ImportError) as err:
        raise CLIError(str(err)) from err
    q_labels = labels_from_paths(query.paths)
    labelled = q_labels is not None and index.pids is not None

    def record(path: str, pids, camids, i: int) -> ImageRecord:
        if pids is None:
            return ImageRecord(path, -1, 0)
        return ImageRecord(path, int(pids[i]), int(camids[i]))

    queries, ranked, distances = [], [], []
    for qi, qpath in enumerate(query.paths):
        q_rec = record(qpath, *(q_labels or (None, None)), qi)
        print(f"query {qpath}")
        row = []
        for rank, (gi, dist) in enumerate(
            zip(result.indices[qi].tolist(), result.distances[qi].tolist()), start=1
        ):
            g_rec = record(index.paths[gi], index.pids, index.camids, gi)
            mark = ""
            if labelled:
                mark = "  same id" if g_rec.pid == q_rec.pid else "  different id"
            print(f"  {rank:3d}  {dist:9.4f}  {g_rec.path}{mark}")
            row.append(g_rec)
        queries.append(q_rec)
        ranked.append(row)
        distances.append(result.distances[qi].tolist())
    if args.output and queries:
        h, w = extractor.input_size
        cell = (128, max(8, round(128 * w / h)))
        title = f"top {args.topk} of {len(index)} gallery images" + (
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
