"""The one image reader of bdbnet: every file the package opens goes through :func:`read_image`.

Why one reader: training, evaluation, extraction, search and the pictures must see the same
pixels for the same file, and a bad file must fail the same way everywhere -- an
:class:`~bdbnet.errors.ImageError` naming the file, never a decoder exception from deep inside a
data-loader worker.

Conversion to 8-bit RGB (:func:`to_rgb`), mode by mode:

* ``I;16*`` (16-bit PNG/TIFF) and ``I`` (how PIL holds 16-bit samples): scaled from
  ``[0, 65535]`` to ``[0, 255]`` (``round(v * 255 / 65535)``), never clipped at 255;
* ``F`` (32-bit float): taken in ``[0, 1]`` when every sample is, otherwise in ``[0, 255]``;
* ``RGBA``, ``LA``, ``PA``, ``P`` with transparency, premultiplied modes: composited over black
  (the colour stored under a transparent pixel is meaningless); opaque pixels are unchanged;
* everything else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ...): PIL's
  conversion.

EXIF orientation is not applied, as in the official code (its datasets are already upright).

Size limit: images over ``max_pixels`` pixels (a decompression bomb, or simply too large) are
refused from the header alone, before decoding. The default is PIL's own hard limit
(``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 Mpx); the environment variable
``BDBNET_MAX_IMAGE_PIXELS`` (an integer, ``0`` for no limit) or the ``max_pixels`` argument
changes it.

Uploads (``bdbnet serve``) go through the same reader: :func:`read_image` also takes an open
binary file, named by ``name`` in its messages, and an image over the limit raises the subclass
:class:`ImageTooLargeError`, so a server can answer it differently from a corrupt file.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from typing import BinaryIO

import numpy as np
from PIL import Image

from bdbnet.errors import ImageError

__all__ = [
    "ImageTooLargeError",
    "UnreadableImageError",
    "max_image_pixels",
    "read_image",
    "to_rgb",
]

ENV_MAX_PIXELS = "BDBNET_MAX_IMAGE_PIXELS"

# What decoders raise on broken files (PIL plugins use SyntaxError and struct/zlib errors too).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # when a warnings filter turns it into an error
)
_PIL_LIMIT_LOCK = threading.Lock()


class UnreadableImageError(ImageError):
    """An image file could not be opened or decoded (corrupt, truncated, not an image, too
    large)."""


class ImageTooLargeError(UnreadableImageError):
    """An image has more pixels than the limit in force (refused from its header, undecoded);
    ``pixels`` is -1 when the decoder did not say."""

    def __init__(self, message: str, pixels: int, limit: int) -> None:
        super().__init__(message)
        self.pixels = pixels
        self.limit = limit


def max_image_pixels() -> int | None:
    """The pixel limit in force: ``$BDBNET_MAX_IMAGE_PIXELS`` (``0``: none) or PIL's hard
    limit."""
    raw = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ImageError(
                f"{ENV_MAX_PIXELS}={raw!r} is not an integer (a pixel count, or 0 for no limit)"
            ) from None
        return value if value > 0 else None
    pil = Image.MAX_IMAGE_PIXELS
    return None if pil is None else 2 * int(pil)


def _open(path: str | BinaryIO, limit: int | None) -> Image.Image:
    """``Image.open`` (header only) with PIL's own bomb check lifted only when our limit is
    above it, so that our limit is the one that decides."""
    pil = Image.MAX_IMAGE_PIXELS
    if pil is not None and (limit is None or limit > 2 * pil):
        with _PIL_LIMIT_LOCK:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    return Image.open(path)


def read_image(
    path: str | os.PathLike[str] | BinaryIO,
    max_pixels: int | str | None = "default",
    name: str | None = None,
) -> Image.Image:
    """Decode ``path`` into an 8-bit RGB PIL image (see the module documentation).

    Args:
        path: The image file, or an open binary file (for example an upload in memory).
        max_pixels: Refuse images with more pixels; ``"default"``: :func:`max_image_pixels`;
            ``None``: no limit.
        name: What the messages call the image (default: the path, or ``<stream>``).

    Raises:
        UnreadableImageError: (an :class:`~bdbnet.errors.ImageError`) naming the file, when it
            is missing, not an image, corrupt, truncated or over the pixel limit (then the
            subclass :class:`ImageTooLargeError`).
    """
    source: str | BinaryIO = path if hasattr(path, "read") else str(path)  # type: ignore[assignment]
    label = name or (source if isinstance(source, str) else "<stream>")
    limit = max_image_pixels() if max_pixels == "default" else max_pixels
    try:
        with _open(source, limit) as img:  # type: ignore[arg-type]
            width, height = img.size
            if limit is not None and width * height > limit:
                raise ImageTooLargeError(
                    f"cannot read image {label}: {width}x{height} = {width * height} pixels is "
                    f"over the limit of {limit} (a decompression bomb?); raise the limit with "
                    f"{ENV_MAX_PIXELS}=N if the file is genuine",
                    width * height,
                    limit,
                )
            img.load()
            return to_rgb(img)
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError as err:  # PIL's own limit, below ours
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = int(found.group(1)) if found else -1
        raise ImageTooLargeError(f"cannot read image {label}: {err}", pixels, limit or 0) from err
    except _DECODE_ERRORS as err:
        reason = str(err) or type(err).__name__
        raise UnreadableImageError(f"cannot read image {label}: {reason}") from err


def _scale_to_uint8(arr: np.ndarray, top: float) -> np.ndarray:
    scaled = np.clip(arr.astype(np.float64), 0.0, top) * (255.0 / top)
    return np.rint(scaled).astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``img`` with every PIL mode converted as the module documentation
    says (16-bit scaled, transparency composited over black)."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode.startswith("I;16") or mode == "I":
        grey = _scale_to_uint8(np.asarray(img), 65535.0)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        top = 1.0 if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0 else 255.0
        return Image.fromarray(_scale_to_uint8(np.nan_to_num(arr), top), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB")
