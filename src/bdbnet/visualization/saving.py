"""Pictures written like every other output: the format from the suffix (checked first), the
bytes through :func:`bdbnet.files.atomic_write` (a full disk is a one-line
:class:`~bdbnet.errors.OutputError`, and no half-written picture is left behind)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from bdbnet.errors import OutputError
from bdbnet.files import atomic_write
from bdbnet.outputs import PICTURE_FORMATS

__all__ = ["picture_format", "save_figure", "save_picture"]


def picture_format(output: str | os.PathLike[str]) -> str:
    """The format a picture path asks for (``PNG``, ``JPEG``), or an
    :class:`~bdbnet.errors.OutputError` naming the path and the suffixes there are."""
    suffix = Path(output).suffix.lower()
    if suffix not in PICTURE_FORMATS:
        raise OutputError(
            f"picture {output} must end in {', '.join(PICTURE_FORMATS)} (the suffix chooses "
            "the format)"
        )
    return PICTURE_FORMATS[suffix]


def save_picture(canvas: Image.Image, output: str | os.PathLike[str]) -> Path:
    """Write a PIL picture; returns ``output``."""
    kind = picture_format(output)
    image = canvas.convert("RGB") if kind == "JPEG" else canvas
    return atomic_write(output, lambda f: image.save(f, format=kind))


def save_figure(fig: Any, output: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write a matplotlib figure; returns ``output``."""
    kind = picture_format(output).lower()
    return atomic_write(output, lambda f: fig.savefig(f, format=kind, dpi=dpi))
