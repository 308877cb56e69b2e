"""``bdbnet visualize``: activation maps of both branches over images (the paper's Figure 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bdbnet.cli.support import POSITIVE, CLIError, add_command, add_model_options, build_extractor


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "visualize",
        "activation maps of both branches (paper's Figure 1)",
        """
        Draw, for every image, the input and the activation maps of the global branch and of
        the feature-dropping branch (colour scale: low to high activation) into
        DIR/activation_maps.png.
        """,
        """
        bdbnet visualize --checkpoint last.pt q1.jpg q2.jpg --output pictures/
        """,
    )
    add_model_options(p, batches=False)
    p.add_argument("--batch-size", type=POSITIVE, default=32, help="images per forward pass")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS", help="image files or folders")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for activation_maps.png")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.data.images import UnreadableImageError, read_image
    from bdbnet.inference import list_images
    from bdbnet.outputs import ensure_output_dir
    from bdbnet.visualization import draw_activation_maps

    ensure_output_dir(args.output)
    extractor = build_extractor(args)
    if extractor.model is None:
        raise CLIError(
            f"activation maps read the network's feature maps: {args.checkpoint} is an exported "
            f"{extractor.runtime.info.runtime} graph; pass the PyTorch checkpoint it came from"
        )
    images, names = [], []
    for path in list_images(args.images):
        try:
            images.append(read_image(path))
            names.append(path)
        except UnreadableImageError as err:
            print(f"warning: skipped {err}", file=sys.stderr)
    if not images:
        raise CLIError("no readable images")
    out = draw_activation_maps(
        extractor.model,
        images,
        extractor.transform,
        Path(args.output) / "activation_maps.png",
        preprocess=extractor.spec,
        names=names,
        batch_size=args.batch_size,
    )
    print(f"wrote {out} ({len(images)} image(s): input, global branch, dropping branch)")
    return 0
