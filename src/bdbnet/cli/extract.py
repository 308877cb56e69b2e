"""``bdbnet extract``: features of image files and folders, saved as a gallery index."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import (
    POSITIVE,
    CLIError,
    add_command,
    add_engine_options,
    add_model_options,
    build_extractor,
    check_index_output,
    require_readable,
    warn_skipped,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "extract",
        "features of images (.npy/.npz/.safetensors + paths)",
        """
        Extract the features of image files and folders with a checkpoint's own test
        preprocessing and write them, with the image paths and the model's identity, to one
        file: a gallery index that `bdbnet search` loads. Unreadable images are skipped and
        listed. Finished chunks are kept in OUTPUT.partial/ until the index is written, so a
        killed extraction continues where it stopped when run again. An --output ending in
        .db (Milvus Lite) or an http(s):// URI (a Milvus server) adds them to a vector
        engine's collection instead: images already in it are skipped.
        """,
        """
        bdbnet extract --checkpoint last.pt gallery/ --output gallery.safetensors
        bdbnet extract --checkpoint last.pt cameras/ --output gallery.db --index-type HNSW
        """,
    )
    add_model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS", help="image files or folders")
    p.add_argument(
        "--output",
        required=True,
        help="FILE.safetensors, FILE.npz, or FILE.npy (+ FILE.paths.txt, FILE.json): a gallery "
        "index for `bdbnet search`; or FILE.db / http(s)://HOST:19530: a Milvus gallery "
        "(bdbnet[milvus])",
    )
    p.add_argument(
        "--feature-dtype",
        choices=["float32", "float16"],
        default="float32",
        help="storage of a file index's features (float16: half the memory and file)",
    )
    p.add_argument(
        "--project-dim",
        type=POSITIVE,
        metavar="K",
        help="project the features to K dimensions by a PCA fitted on the gallery (a Milvus "
        "gallery: on its first 4,096 images) and stored with it; queries are projected too: "
        "1536 / K times smaller",
    )
    add_engine_options(p, create=True)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.runtime.distributed import init_distributed, shutdown

    ctx = init_distributed(args.device)
    try:
        return extract(args, ctx)
    finally:
        shutdown(ctx)


def extract(args: argparse.Namespace, ctx: Any) -> int:
    """Fill the file index or Milvus gallery ``args.output``; under torchrun every rank
    extracts a shard and rank 0 writes (:mod:`bdbnet.inference.gallery_fill`)."""
    from bdbnet.inference import gallery_fill, list_images
    from bdbnet.runtime.distributed import on_main
    from bdbnet.vector_engines import is_engine_target

    engine = is_engine_target(args.output)
    if engine and args.feature_dtype != "float32":
        raise CLIError(
            "--feature-dtype applies to file indexes (Milvus Lite has no float16 vectors); "
            "make a Milvus gallery smaller with --project-dim K"
        )
    if not engine:
        on_main(ctx, lambda: check_index_output(args.output, args.project_dim is not None))
    paths = list_images(args.images)
    if not paths:
        raise CLIError(f"no images found in {' '.join(args.images)}")
    if ctx.distributed:
        args.device = str(ctx.device)  # cuda:LOCAL_RANK on GPUs
        args.quiet = getattr(args, "quiet", False) or not ctx.is_main
    extractor = build_extractor(args)
    fitted_on = min(len(paths), gallery_fill.CHUNK_IMAGES) if engine else len(paths)
    if args.project_dim is not None and args.project_dim >= min(
        fitted_on, extractor.feature_dim + 1
    ):
        raise CLIError(
            f"--project-dim {args.project_dim}: a PCA of {fitted_on} images of "
            f"{extractor.feature_dim}-d features has at most "
            f"{min(fitted_on - 1, extractor.feature_dim)} dimensions; give a smaller one"
        )
    if engine:
        return fill_engine(args, extractor, paths, ctx)
    return fill_file_index(args, extractor, paths, ctx)


def fill_engine(args: argparse.Namespace, extractor: Any, paths: list[str], ctx: Any) -> int:
    """Add the images a Milvus gallery does not hold yet (a new projected gallery is created
    once its PCA is fitted on the first chunk); rank 0 writes and reports."""
    import warnings

    import torch

    from bdbnet.inference import gallery_fill
    from bdbnet.inference.extractor import Extraction
    from bdbnet.inference.gallery_fill import FillReport, fill_gallery, gallery_writer

    todo, gallery = open_engine(args, extractor, paths, ctx)
    report = FillReport()
    try:
        with warnings.catch_warnings():  # unreadable files: listed once below, not warned each
            warnings.simplefilter("ignore", UserWarning)
            rest = todo
            if todo is None:  # a new projected gallery
                todo, first = paths, paths[: gallery_fill.CHUNK_IMAGES]
                report, gallery = create_projected(args, extractor, first, ctx)
                rest = paths[len(first) :]
            write = gallery_writer(gallery) if gallery is not None else None
            more = fill_gallery(extractor, rest, write, ctx)
        report.added += more.added
        report.skipped += more.skipped
        total = len(gallery) if gallery is not None else 0
    finally:
        if gallery is not None:  # the embedded engine stops: the gallery is free to open
            gallery.close()
    if not ctx.is_main:
        return 0
    warn_skipped(report.skipped)
    if todo and not report.added:  # every new file unreadable
        require_readable(Extraction(torch.zeros(0, 0), [], report.skipped), "input", args.images)
    already = len(paths) - len(todo)
    what = f"{gallery.dim}-d" + (
        f", PCA of {gallery.model_dim}-d keeping {100 * gallery.projection.kept:.1f}% of the "
        "variance"
        if gallery.projection is not None
        else ""
    )
    print(
        f"added {report.added} features ({what}) to {args.output} "
        f"(collection {args.collection}: {total} images)"
        + (f"; {already} already there" if already else "")
        + (f"; skipped {len(report.skipped)} unreadable image(s)" if report.skipped else "")
    )
    return 0


def fill_file_index(args: argparse.Namespace, extractor: Any, paths: list[str], ctx: Any) -> int:
    """Extract what the journal of ``args.output`` does not hold, then write the index (rank
    0)."""
    import warnings

    from bdbnet.inference.gallery_fill import fill_gallery

    todo, journal = open_journal(args, extractor, paths, ctx)
    write = journal.write if journal is not None else None
    with warnings.catch_warnings():  # unreadable files: listed once below, not warned each
        warnings.simplefilter("ignore", UserWarning)
        report = fill_gallery(extractor, todo, write, ctx)
    if not ctx.is_main:
        return 0
    warn_skipped(report.skipped)
    assert journal is not None
    return save_index(args, extractor, journal, paths, report)


def open_journal(args: argparse.Namespace, extractor: Any, paths: list[str], ctx: Any) -> tuple:
    """(the paths a killed run of the same output and model did not extract, the journal on
    rank 0 else None): :class:`~bdbnet.inference.extract_journal.ExtractionJournal`."""
    from bdbnet.inference.extract_journal import ExtractionJournal
    from bdbnet.runtime.distributed import on_main

    opened = []

    def todo() -> list[str]:
        journal = ExtractionJournal.open(args.output, extractor.identity)
        opened.append(journal)
        remaining = journal.todo(paths)
        if len(remaining) < len(paths):
            print(
                f"continuing the extraction kept in {journal.folder}: "
                f"{len(paths) - len(remaining)} of {len(paths)} images already done"
            )
        return remaining

    remaining = on_main(ctx, todo)
    return remaining, opened[0] if opened else None


def open_engine(args: argparse.Namespace, extractor: Any, paths: list[str], ctx: Any) -> tuple:
    """(the paths not yet in the Milvus gallery, the gallery on rank 0 else None): rank 0
    alone opens it; its refusal stops every rank."""
    from bdbnet.inference.milvus_gallery import MilvusGallery
    from bdbnet.runtime.distributed import on_main

    opened = []

    def todo() -> list[str] | None:
        try:
            if args.project_dim is not None and not MilvusGallery.exists(
                args.output, args.collection
            ):
                return None  # created once its PCA is fitted (create_projected)
            gallery = open_gallery(args, extractor, paths)
        except ImportError as err:
            raise CLIError(str(err)) from err
        opened.append(gallery)
        if args.project_dim is not None and (
            gallery.projection is None or gallery.dim != args.project_dim
        ):
            gallery.close()
            had = f"a PCA to {gallery.dim}" if gallery.projection else "no projection"
            raise CLIError(
                f"{args.output} ({args.collection}) holds {gallery.dim}-d features ({had}): "
                f"add to it without --project-dim {args.project_dim}, or use another "
                "--collection"
            )
        done = gallery.indexed_paths()
        return [p for p in paths if p not in done]

    remaining = on_main(ctx, todo)
    return remaining, opened[0] if opened else None


def open_gallery(
    args: argparse.Namespace, extractor: Any, paths: list[str], projection: Any = None
) -> Any:
    """``args.output``'s Milvus gallery, created for ``extractor``'s model if new (labelled
    when ``paths`` carry Market-1501 identities; holding ``projection`` when given)."""
    from bdbnet.inference import labels_from_paths
    from bdbnet.inference.milvus_gallery import MilvusGallery

    return MilvusGallery.open(
        args.output,
        extractor.identity,
        create=True,
        labelled=labels_from_paths(paths) is not None,
        index_type=args.index_type,
        collection=args.collection,
        projection=projection,
    )


def create_projected(args: argparse.Namespace, extractor: Any, first: list[str], ctx: Any) -> tuple:
    """Extract ``first`` (every rank its share), fit the PCA on it, create the Milvus gallery
    holding it and add ``first`` to it (rank 0): (the report, the gallery on rank 0 else
    None)."""
    import torch

    from bdbnet.inference.gallery_fill import fill_gallery, gallery_writer
    from bdbnet.inference.projection import Projection
    from bdbnet.runtime.distributed import on_main

    chunks: list = []
    report = fill_gallery(extractor, first, chunks.append, ctx)
    created = []

    def create() -> None:
        rows = sum(len(c.paths) for c in chunks)
        if rows <= args.project_dim:
            raise CLIError(
                f"--project-dim {args.project_dim}: only {rows} of the first {len(first)} "
                "images could be read to fit the PCA; give a smaller one"
            )
        features = torch.cat([c.features for c in chunks])
        gallery = open_gallery(args, extractor, first, Projection.fit(features, args.project_dim))
        created.append(gallery)
        try:
            write = gallery_writer(gallery)
            for chunk in chunks:
                write(chunk)
        except BaseException:
            gallery.close()
            raise

    on_main(ctx, create)
    return report, created[0] if created else None


def save_index(
    args: argparse.Namespace, extractor: Any, journal: Any, paths: list[str], report: Any
) -> int:
    """Write the journal's features as one file index in image order (rank 0), then remove
    the journal; a failed write keeps it, so the next run only writes."""
    import torch

    from bdbnet.inference import GalleryIndex
    from bdbnet.inference.extractor import Extraction

    kept = journal.extraction(paths, extractor.feature_dim)
    noted = {p for p, _ in kept.skipped}
    skipped = kept.skipped + [s for s in report.skipped if s[0] not in noted]
    extraction = Extraction(kept.features, kept.paths, skipped)
    require_readable(extraction, "input", args.images)
    index = GalleryIndex.from_extraction(extraction, extractor.identity)
    index = index.compact(getattr(torch, args.feature_dtype), args.project_dim)
    try:
        path = index.save(args.output)
    except ImportError as err:
        raise CLIError(str(err)) from err
    journal.remove()
    what = f"{index.dim}-d" + (
        f", PCA of {index.model_dim}-d keeping {100 * index.projection.kept:.1f}% of the variance"
        if index.projection is not None
        else ""
    )
    what += ", float16" if index.features.dtype == torch.float16 else ""
    print(
        f"wrote {len(index)} features ({what}) to {path}"
        + (f"; skipped {len(index.skipped)} unreadable image(s)" if index.skipped else "")
    )
    return 0
