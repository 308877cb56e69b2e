"""``bdbnet extract``: features of image files and folders, saved as a gallery index."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import (
    CLIError,
    add_command,
    add_engine_options,
    add_model_options,
    build_extractor,
    check_index_output,
    extract_paths,
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
        listed. An --output ending in .db (Milvus Lite) or an http(s):// URI (a Milvus server)
        adds them to a vector engine's collection instead: images already in it are skipped,
        so an interrupted extraction continues where it stopped.
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
    add_engine_options(p, create=True)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.inference import GalleryIndex
    from bdbnet.vector_engines import is_engine_target

    if is_engine_target(args.output):
        return extract_to_engine(args)
    check_index_output(args.output)
    extractor = build_extractor(args)
    extraction = extract_paths(extractor, args.images)
    index = GalleryIndex.from_extraction(extraction, extractor.identity)
    try:
        path = index.save(args.output)
    except ImportError as err:
        raise CLIError(str(err)) from err
    print(
        f"wrote {len(index)} features ({index.dim}-d) to {path}"
        + (f"; skipped {len(index.skipped)} unreadable image(s)" if index.skipped else "")
    )
    return 0


def extract_to_engine(args: argparse.Namespace) -> int:
    """Add the images not yet in the Milvus gallery ``args.output`` to it."""
    from bdbnet.inference import labels_from_paths, list_images
    from bdbnet.inference.milvus_gallery import MilvusGallery

    paths = list_images(args.images)
    if not paths:
        raise CLIError(f"no images found in {' '.join(args.images)}")
    extractor = build_extractor(args)
    try:
        gallery = MilvusGallery.open(
            args.output,
            extractor.identity,
            create=True,
            labelled=labels_from_paths(paths) is not None,
            index_type=args.index_type,
            collection=args.collection,
        )
    except ImportError as err:
        raise CLIError(str(err)) from err
    done = gallery.indexed_paths()
    todo = [p for p in paths if p not in done]
    if todo:
        extraction = extract_paths(extractor, todo)
        labels = labels_from_paths(extraction.paths) if gallery.labelled else None
        gallery.add(
            extraction.features,
            extraction.paths,
            pids=labels[0].tolist() if labels else None,
            camids=labels[1].tolist() if labels else None,
        )
        skipped = len(extraction.skipped)
    else:
        skipped = 0
    print(
        f"added {len(todo) - skipped} features ({gallery.dim}-d) to {args.output} "
        f"(collection {args.collection}: {len(gallery)} images)"
        + (f"; {len(paths) - len(todo)} already there" if len(todo) < len(paths) else "")
        + (f"; skipped {skipped} unreadable image(s)" if skipped else "")
    )
    return 0
