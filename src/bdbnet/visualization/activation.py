"""Activation maps of the two branches, as in Figure 1 of the BDB paper.

For each image, the map of a branch is the L2 norm over channels of the feature map the branch
pools (global branch: the layer4 output it average-pools; dropping branch: the extra
bottleneck's output it max-pools), min-max scaled to ``[0, 1]`` per image, upsampled to the
input size and overlaid on the image with a colour map. Where the global branch concentrates on
the most discriminative part, the dropping branch, trained with parts of its map erased, spreads
over more of the body.

Drawn with PIL; the colour map is matplotlib's ``jet`` when matplotlib is installed, otherwise
an equivalent piecewise-linear ramp.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from bdbnet.runtime.device import eval_mode
from bdbnet.visualization.saving import save_picture

__all__ = ["activation_maps", "colorize", "draw_activation_maps", "overlay"]

BRANCH_TITLES = {"global": "global branch", "drop": "dropping branch"}


@torch.inference_mode()
def activation_maps(model: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{branch: (B, H, W)}`` maps in ``[0, 1]`` at the input resolution ``H x W``.

    ``model`` must offer ``feature_maps(x)`` (:meth:`bdbnet.models.BDBNet.feature_maps`); it is
    run in eval mode (the mode is restored afterwards).
    """

    with eval_mode(model):
        maps = model.feature_maps(images)
    out = {}
    for name, fmap in maps.items():
        norm = fmap.float().pow(2).sum(1, keepdim=True).sqrt()
        norm = F.interpolate(norm, size=images.shape[-2:], mode="bilinear", align_corners=False)
        flat = norm.flatten(1)
        lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        flat = (flat - lo) / (hi - lo).clamp(min=1e-12)
        out[name] = flat.view(images.shape[0], *images.shape[-2:]).cpu()
    return out


def colorize(amap: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(H, W)`` values in ``[0, 1]`` -> ``(H, W, 3)`` uint8 jet colours."""
    a = np.clip(np.asarray(amap, dtype=np.float32), 0.0, 1.0)
    try:
        from matplotlib import colormaps

        rgb = colormaps["jet"](a)[..., :3]
    except ImportError:
        rgb = np.stack(
            [np.clip(1.5 - np.abs(4 * a - c), 0.0, 1.0) for c in (3.0, 2.0, 1.0)], axis=-1
        )
    return (rgb * 255).round().astype(np.uint8)


def overlay(image: Image.Image, amap: np.ndarray | torch.Tensor, alpha: float = 0.5) -> Image.Image:
    """``image`` blended with the coloured ``amap`` (resized to the image if needed)."""
    heat = Image.fromarray(colorize(amap))
    if heat.size != image.size:
        heat = heat.resize(image.size, Image.BILINEAR)
    return Image.blend(image.convert("RGB"), heat, alpha)


def _denormalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> Image.Image:
    """The network input ``(3, H, W)`` back to the picture the network sees."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    arr = ((x.cpu().float() * s + m).clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
    return Image.fromarray(arr.numpy(), "RGB")


def draw_activation_maps(
    model: torch.nn.Module,
    images: Sequence[Image.Image],
    transform: Callable[[Image.Image], torch.Tensor],
    output: str | os.PathLike[str],
    preprocess: Preprocessing | None = None,
    names: Sequence[str] | None = None,
    min_height: int = 256,
    alpha: float = 0.5,
    batch_size: int = 32,
) -> Path:
    """One row per image: the input, then each branch's activation map overlaid on it.

    ``transform`` is the checkpoint's test transform (the maps are of what the network sees);
    ``preprocess`` (the model's :class:`~bdbnet.models.preprocess.Preprocessing`) gives the
    normalisation to
    undo for display. Small inputs are enlarged to ``min_height`` pixels for legibility; the
    network sees ``batch_size`` images at a time.
    """
    if not images:
        raise ValueError("no images to draw")
    mean = preprocess.mean if preprocess is not None else IMAGENET_MEAN
    std = preprocess.std if preprocess is not None else IMAGENET_STD
    device = next(model.parameters()).device
    batch = torch.stack([transform(img.convert("RGB")) for img in images])
    chunks = [
        activation_maps(model, batch[i : i + batch_size].to(device))
        for i in range(0, len(batch), batch_size)
    ]
    maps = {name: torch.cat([c[name] for c in chunks]) for name in chunks[0]}
    branches = list(maps)
    h, w = batch.shape[-2:]
    scale = max(1.0, min_height / h)
    ch, cw = round(h * scale), round(w * scale)
    pad, title_h, caption_h, scale_w = 6, 14, 14, 64
    cols = 1 + len(branches)
    rows_h = len(images) * (ch + caption_h + pad)
    canvas = Image.new("RGB", (cols * (cw + pad) + pad + scale_w, title_h + rows_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, title in enumerate(["input"] + [BRANCH_TITLES.get(b, b) for b in branches]):
        draw.text((pad + c * (cw + pad), 2), title, fill=(0, 0, 0), font=font)
    for r in range(len(images)):
        shown = _denormalise(batch[r], mean, std).resize((cw, ch), Image.BILINEAR)
        y = title_h + r * (ch + caption_h + pad)
        canvas.paste(shown, (pad, y))
        for c, branch in enumerate(branches, start=1):
            canvas.paste(overlay(shown, maps[branch][r], alpha), (pad + c * (cw + pad), y))
        if names is not None:
            name = Path(names[r]).name
            label = name if len(name) <= 3 * cw // 7 else name[: 3 * cw // 7 - 2] + ".."
            draw.text((pad, y + ch + 1), label, fill=(0, 0, 0), font=font)
    _colour_scale(canvas, draw, font, cols * (cw + pad) + pad, title_h, min(ch, rows_h))
    return save_picture(canvas, output)


def _colour_scale(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, font: Any, x: int, y: int, height: int
) -> None:
    """A vertical bar of :func:`colorize`'s colours, high activation on top, labelled: the maps
    are normalised per image, so the scale reads relative to that image's maximum."""
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(12, axis=1)
    canvas.paste(Image.fromarray(colorize(ramp)), (x, y))
    draw.rectangle([x, y, x + 11, y + height - 1], outline=(0, 0, 0))
    draw.text((x + 15, y), "high", fill=(0, 0, 0), font=font)
    draw.text((x + 15, y + height - 11), "low", fill=(0, 0, 0), font=font)
    draw.text((x + 15, y + height // 2 - 6), "activ.", fill=(0, 0, 0), font=font)
