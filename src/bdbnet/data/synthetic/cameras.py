"""Per-camera nuisances of the synthetic dataset: styles and the background each camera sees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from bdbnet.data.synthetic.attributes import RGB, jitter
from bdbnet.data.synthetic.domains import get_domain
from bdbnet.data.synthetic.seeds import TAG_CAMERA, domain_keys

__all__ = ["CameraStyle", "camera_background", "sample_camera_styles"]


@dataclass(frozen=True)
class CameraStyle:
    """Per-camera nuisances: the cross-camera appearance gap re-ID has to bridge."""

    index: int  # 0-based (camera c{index+1} in file names)
    gain: float  # overall brightness
    cast: tuple[float, float, float]  # per-channel colour multipliers
    background: str  # "street" | "park" | "indoor" | "plaza"
    bg_colors: tuple[RGB, RGB, RGB]
    noise: float  # Gaussian noise sigma in grey levels
    blur: bool  # a soft, low-resolution camera
    back_view: float  # probability of seeing people from behind


_BG_BASE: dict[str, tuple[RGB, RGB, RGB]] = {
    "street": ((150, 140, 128), (110, 110, 112), (70, 70, 80)),
    "park": ((70, 120, 60), (150, 140, 110), (50, 80, 40)),
    "indoor": ((200, 196, 180), (150, 130, 110), (120, 120, 130)),
    "plaza": ((170, 165, 160), (190, 180, 165), (120, 110, 100)),
}


def sample_camera_styles(cameras: int, seed: int = 0, domain: int = 0) -> list[CameraStyle]:
    """Sample the style of each camera (deterministic in ``seed``, shared by all splits).

    ``domain`` (:mod:`~bdbnet.data.synthetic.domains`) sets the scenes, the ranges of gain, cast
    and back-view probability, and the network's colour bias; domain 0 is the original network.
    """
    d = get_domain(domain)
    rng = np.random.default_rng(domain_keys([seed, TAG_CAMERA], domain))
    scenes = d.scenes
    kinds = [scenes[i % len(scenes)] for i in rng.permutation(max(cameras, len(scenes)))]
    bias = np.asarray(d.cast_bias, dtype=np.float64)
    styles = []
    for c in range(cameras):
        kind = kinds[c]
        cast = rng.uniform(d.cast_spread[0], d.cast_spread[1], size=3)
        cast = cast / cast.mean() * bias  # domain 0: a bias of ones (exact, same values)
        styles.append(
            CameraStyle(
                index=c,
                gain=round(float(rng.uniform(d.gain[0], d.gain[1])), 4),
                cast=(round(float(cast[0]), 4), round(float(cast[1]), 4), round(float(cast[2]), 4)),
                background=kind,
                bg_colors=tuple(jitter(rng, col, 30) for col in _BG_BASE[kind]),  # type: ignore[arg-type]
                noise=round(float(rng.uniform(1.5, 7.0)), 3),
                blur=bool(rng.random() < 0.35),
                back_view=round(float(rng.uniform(d.back_view[0], d.back_view[1])), 3),
            )
        )
    return styles


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency texture in [0, 1] (bilinear upsampling of a coarse random grid)."""
    coarse = (rng.random((cells[0], cells[1])) * 255).astype(np.uint8)
    img = Image.fromarray(coarse, "L").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def camera_background(
    cam: CameraStyle, seed: int, height: int, width: int, domain: int = 0
) -> np.ndarray:
    """A (3, H, 2W) texture of ``cam``'s scene; each image crops a random W-wide window."""
    rng = np.random.default_rng(domain_keys([seed, TAG_CAMERA, cam.index, 1], domain))
    h, w = height, 2 * width
    c1, c2, c3 = (np.asarray(c, np.float32) for c in cam.bg_colors)
    ys = (np.arange(height, dtype=np.float32) + 0.5)[:, None] / h
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
    horizon = rng.uniform(0.5, 0.75)
    texture = _smooth_noise(rng, h, w, (6, 8))[..., None]
    ground = (ys > horizon)[..., None]
    if cam.background == "street":  # facade with windows over a paved sidewalk
        period = rng.uniform(0.2, 0.35) * width
        win = ((xs % period) < 0.45 * period) & ((ys * h % (0.22 * h)) < 0.11 * h)
        wall = c1 + (c3 - c1) * (0.8 * win[..., None])
        tiles = ((ys * h) % max(3.0, 0.06 * h) < 1.0)[..., None] * 18.0
        img = np.where(ground, c2 + tiles, wall)
    elif cam.background == "park":  # trees (blotchy) above a path
        leaves = _smooth_noise(rng, h, w, (10, 14))[..., None]
        trees = c1 + (c3 - c1) * leaves
        img = np.where(ground, c2 + (texture - 0.5) * 30.0, trees)
    elif cam.background == "indoor":  # lit wall, doors, floor with a gradient
        period = rng.uniform(0.5, 0.9) * width
        door = ((xs % period) < 0.3 * period) & (ys > horizon - 0.45)
        wall = c1 * (1.05 - 0.25 * ys[..., None]) + (c3 - c1) * (0.7 * door[..., None])
        img = np.where(ground, c2 * (0.8 + 0.3 * ys[..., None]), wall)
    else:  # plaza: large tiles in perspective
        tile = max(4.0, 0.1 * width)
        checker = ((xs // tile + (ys * h) // tile) % 2)[..., None]
        img = c1 + (c2 - c1) * (0.5 * checker) + (c3 - c1) * 0.5 * (ys[..., None] < 0.3)
    img = img * (0.85 + 0.3 * texture)
    return np.ascontiguousarray(np.clip(img, 0, 255).transpose(2, 0, 1), dtype=np.float32)
