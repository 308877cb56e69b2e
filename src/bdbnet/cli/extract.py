"""``bdbnet extract``: features of image files and folders, saved as a gallery index."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import (
    CLIError,
    add_command,
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
        listed.
        """,
        """
        bdbnet extract --checkpoint last.pt gallery/ --output gallery.safetensors
        """,
    )
    add_model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS", help="image files or folders")
    p.add_argument(
        "--output",
        required=True,
        help="FILE.safetensors, FILE.npz, or FILE.npy (+ FILE.paths.txt, FILE.json); "
        "a gallery index for `bdbnet search`",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.inference import GalleryIndex

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
