"""Procedural synthetic pedestrians in the Market-1501 layout.

Why it exists: the real re-ID benchmarks cannot be downloaded on every machine (and not in CI), yet
the whole pipeline -- Market-1501 loader, P x K sampler, BDB training, the Market evaluation
protocol, the ranked-list pictures -- should run end to end on something that behaves like a
re-ID dataset. ``generate_synthetic_reid`` writes such a dataset in seconds.

Layout (exactly Market-1501's, so the real loader and protocol run unchanged)::

    root/bounding_box_train/0001_c3s2_004512_01.jpg   train identities 1..N
    root/query/0203_c1s5_000451_03.jpg                one image per camera per test identity
    root/bounding_box_test/0203_c4s1_010034_02.jpg    the other images of the test identities,
    root/bounding_box_test/0000_c2s3_777123_05.jpg    distractors (pid 0: other people)
    root/bounding_box_test/-1_c6s1_004001_04.jpg      junk (pid -1: background, cut or zoomed boxes)
    root/synthetic_meta.json                          parameters and counts (loaders ignore it)

Train pids are ``1..train_ids`` and test pids ``train_ids+1..train_ids+test_ids`` (disjoint).
Each identity appears in ``cameras_per_id`` cameras with ``images_per_camera`` images each; a
test identity has at least two cameras and two images per camera, so every query has a
same-camera gallery image (removed by the protocol) and a cross-camera true match.

What makes it a BDB benchmark. BDB (Dai et al., ICCV 2019) drops one horizontal stripe of the
feature map for the whole batch so that the network must also learn *local, less salient*
details. Here an identity is

* global appearance (:class:`GlobalAttributes`): upper/lower clothing colour and style, skin tone,
  body height and build, and
* local details (:class:`LocalAttributes`): shoe colour, bag (type, colour, side), a small logo on
  the shirt (shape, colour), hat (type, colour), hair (colour, length).

A share of the identities (``sibling_fraction``, 40 % by default) come in *sibling groups* of 2-3
that share every global attribute and differ only in one or two local details (the same details
for the whole group, each member with a visibly different value). A model that only looks at the
global colours cannot tell siblings apart; it has to look at the shoes, the bag or the hat.

Nuisances, as in real surveillance data: per camera brightness, colour cast, background, noise
and blur (:class:`CameraStyle`); per image pose (stride, arm swing, lean, front/back view,
left/right mirror), scale and position jitter, bounding-box misalignment that cuts the person,
and with probability ``occlusion`` an occluder (pole, car, bush or another pedestrian).

Determinism: every random draw comes from a ``numpy.random.Generator`` seeded by
``(seed, purpose, ...)`` keys, so an image only depends on the seed and on which image it is --
not on the processing order or the number of worker processes. Same seed, same bytes.

Speed: vectorised numpy on small bounding boxes (anti-aliased ellipses, capsules and
trapezoids), per-camera backgrounds and noise banks computed once, JPEG through Pillow, and a
process pool for large datasets: about 2,000 128x64 images per second on two cores
(``benchmarks/bench_synthetic.py``), so the default dataset (~5,300 images) takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "DETAILS",
    "CameraStyle",
    "GlobalAttributes",
    "IdentityAttributes",
    "LocalAttributes",
    "SplitSummary",
    "SyntheticSummary",
    "generate_synthetic_reid",
    "render_person",
    "sample_camera_styles",
    "sample_identities",
]

GENERATOR_VERSION = 1
META_FILE = "synthetic_meta.json"
SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")
_NAME_RE = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")

# Purposes mixed into the seeds, so that the streams are independent of each other.
_TAG_CAMERA, _TAG_TRAIN, _TAG_TEST, _TAG_DISTRACTOR, _TAG_JUNK = 1, 2, 3, 4, 5
_TAG_LAYOUT, _TAG_IMAGE, _TAG_NOISE, _TAG_FRAMES = 6, 7, 8, 9
# Kinds of image (part of each image's seed).
_KIND_TRAIN, _KIND_TEST, _KIND_DISTRACTOR, _KIND_JUNK = 0, 1, 2, 3

RGB = tuple[int, int, int]

# ----------------------------------------------------------------------------------------------
# Palettes
# ----------------------------------------------------------------------------------------------
_CLOTHING: tuple[RGB, ...] = (
    (22, 22, 26),
    (236, 236, 230),
    (128, 128, 132),
    (32, 42, 96),
    (186, 32, 38),
    (40, 92, 186),
    (36, 116, 54),
    (226, 196, 42),
    (232, 124, 166),
    (112, 52, 146),
    (104, 66, 36),
    (210, 188, 148),
    (234, 122, 30),
    (30, 134, 134),
    (142, 142, 78),
    (150, 192, 232),
    (122, 22, 44),
)
_SHOES: tuple[RGB, ...] = (
    (245, 245, 245),
    (18, 18, 18),
    (210, 30, 30),
    (30, 70, 210),
    (120, 70, 30),
    (240, 210, 30),
    (40, 170, 60),
    (245, 130, 20),
    (150, 150, 155),
)
_LOGO: tuple[RGB, ...] = (
    (250, 250, 250),
    (250, 220, 0),
    (230, 20, 30),
    (0, 200, 230),
    (120, 230, 40),
    (230, 40, 200),
    (250, 130, 0),
    (15, 15, 15),
)
_HAIR: tuple[RGB, ...] = (
    (24, 20, 18),
    (72, 46, 26),
    (130, 88, 46),
    (222, 192, 116),
    (170, 170, 170),
    (156, 62, 30),
)
_SKIN: tuple[RGB, ...] = (
    (246, 208, 184),
    (232, 184, 146),
    (204, 148, 104),
    (156, 104, 68),
    (98, 64, 42),
)

DETAILS: dict[str, tuple[str, ...]] = {
    "shoes": ("shoe_color",),
    "bag": ("bag", "bag_color", "bag_side"),
    "logo": ("logo", "logo_color"),
    "hat": ("hat", "hat_color"),
    "hair": ("hair_color", "hair_length"),
}
"""Local details and the :class:`LocalAttributes` fields that make each of them."""

_BAGS = ("none", "backpack", "shoulder", "handbag")
_BAG_P = (0.4, 0.25, 0.2, 0.15)
_LOGOS = ("none", "square", "circle", "diamond", "stripe")
_LOGO_P = (0.4, 0.15, 0.15, 0.15, 0.15)
_HATS = ("none", "cap", "beanie")
_HAT_P = (0.6, 0.25, 0.15)
_NONE_RGB: RGB = (0, 0, 0)


# ----------------------------------------------------------------------------------------------
# Identity attributes
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GlobalAttributes:
    """What a global descriptor sees: clothing colours and styles, skin, body shape."""

    upper_color: RGB
    upper_style: str  # "long" | "short" sleeves
    lower_color: RGB
    lower_style: str  # "trousers" | "shorts" | "skirt"
    skin: RGB
    height: float  # person height as a share of the image height (before per-image jitter)
    build: float  # width multiplier of torso and limbs


@dataclass(frozen=True)
class LocalAttributes:
    """Small, less salient details: what BDB's dropped stripes push the network to learn."""

    shoe_color: RGB
    bag: str  # "none" | "backpack" | "shoulder" | "handbag"
    bag_color: RGB
    bag_side: int  # -1 | +1 (which hand / hip)
    logo: str  # "none" | "square" | "circle" | "diamond" | "stripe"
    logo_color: RGB
    hat: str  # "none" | "cap" | "beanie"
    hat_color: RGB
    hair_color: RGB
    hair_length: str  # "short" | "long"


@dataclass(frozen=True)
class IdentityAttributes:
    """One synthetic person. Identities with the same ``group`` are siblings (same globals)."""

    group: int
    global_attrs: GlobalAttributes
    local_attrs: LocalAttributes

    def local_differences(self, other: IdentityAttributes) -> tuple[str, ...]:
        """Names of the local details (keys of :data:`DETAILS`) that visibly differ."""
        return tuple(d for d in DETAILS if not _detail_same(d, self.local_attrs, other.local_attrs))


def _far(a: RGB, b: RGB, threshold: float = 80.0) -> bool:
    return math.dist(a, b) > threshold


def _detail_same(detail: str, a: LocalAttributes, b: LocalAttributes) -> bool:
    """Whether a detail looks the same on two people (colours closer than the threshold)."""
    if detail == "shoes":
        return not _far(a.shoe_color, b.shoe_color)
    if detail == "bag":  # the side alone does not count: a mirrored view swaps it
        return a.bag == b.bag and (a.bag == "none" or not _far(a.bag_color, b.bag_color))
    if detail == "logo":
        return a.logo == b.logo and (a.logo == "none" or not _far(a.logo_color, b.logo_color))
    if detail == "hat":
        return a.hat == b.hat and (a.hat == "none" or not _far(a.hat_color, b.hat_color))
    if detail == "hair":
        return a.hair_length == b.hair_length and not _far(a.hair_color, b.hair_color)
    raise KeyError(detail)


def _jitter(rng: np.random.Generator, c: RGB, amount: int = 12) -> RGB:
    v = np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(v[0]), int(v[1]), int(v[2]))


def _pick(rng: np.random.Generator, palette: Sequence[RGB], amount: int = 12) -> RGB:
    return _jitter(rng, palette[int(rng.integers(len(palette)))], amount)


def _sample_global(rng: np.random.Generator) -> GlobalAttributes:
    upper = _pick(rng, _CLOTHING)
    lower = _pick(rng, _CLOTHING)
    while not _far(upper, lower, 60.0):  # a visible waist line
        lower = _pick(rng, _CLOTHING)
    return GlobalAttributes(
        upper_color=upper,
        upper_style=("long", "short")[int(rng.random() < 0.45)],
        lower_color=lower,
        lower_style=str(rng.choice(("trousers", "shorts", "skirt"), p=(0.65, 0.2, 0.15))),
        skin=_pick(rng, _SKIN, 8),
        height=round(float(rng.uniform(0.78, 0.9)), 4),
        build=round(float(rng.uniform(0.85, 1.15)), 4),
    )


def _sample_detail(rng: np.random.Generator, detail: str) -> dict[str, Any]:
    if detail == "shoes":
        return {"shoe_color": _pick(rng, _SHOES, 10)}
    if detail == "bag":
        bag = str(rng.choice(_BAGS, p=_BAG_P))
        color = _pick(rng, _CLOTHING)
        side = int(rng.choice((-1, 1)))
        if bag == "none":
            color, side = _NONE_RGB, 1
        return {"bag": bag, "bag_color": color, "bag_side": side}
    if detail == "logo":
        logo = str(rng.choice(_LOGOS, p=_LOGO_P))
        color = _pick(rng, _LOGO, 8)
        return {"logo": logo, "logo_color": _NONE_RGB if logo == "none" else color}
    if detail == "hat":
        hat = str(rng.choice(_HATS, p=_HAT_P))
        color = _pick(rng, _CLOTHING)
        return {"hat": hat, "hat_color": _NONE_RGB if hat == "none" else color}
    if detail == "hair":
        return {
            "hair_color": _pick(rng, _HAIR, 8),
            "hair_length": ("short", "long")[int(rng.random() < 0.4)],
        }
    raise KeyError(detail)


def _valid(g: GlobalAttributes, loc: LocalAttributes) -> bool:
    """Contrast rules so that every detail is actually visible on the person."""
    if loc.logo != "none" and not _far(loc.logo_color, g.upper_color, 110.0):
        return False
    if loc.bag != "none" and not _far(loc.bag_color, g.upper_color):
        return False
    if not _far(loc.shoe_color, g.lower_color, 60.0):
        return False
    return loc.hat == "none" or _far(loc.hat_color, loc.hair_color, 60.0)


def _sample_local(rng: np.random.Generator, g: GlobalAttributes) -> LocalAttributes:
    while True:
        values: dict[str, Any] = {}
        for d in DETAILS:
            values.update(_sample_detail(rng, d))
        loc = LocalAttributes(**values)
        if _valid(g, loc):
            return loc


def _as_rng(seed: int | Sequence[int] | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(list(seed) if isinstance(seed, Sequence) else seed)


def _sibling_group(rng: np.random.Generator, size: int, group: int) -> list[IdentityAttributes]:
    """Members sharing every global attribute and differing in the same 1-2 local details."""
    g = _sample_global(rng)
    base = _sample_local(rng, g)
    names = list(DETAILS)
    n_diff = 1 if rng.random() < 0.6 else 2
    varied = [names[i] for i in rng.choice(len(names), size=n_diff, replace=False)]
    members = [base]
    for _ in range(size - 1):
        for _attempt in range(200):
            values = asdict(base)
            for d in varied:
                values.update(_sample_detail(rng, d))
            cand = LocalAttributes(**values)
            if _valid(g, cand) and all(
                not _detail_same(d, cand, m) for m in members for d in varied
            ):
                members.append(cand)
                break
        else:  # pragma: no cover - palettes are large enough that this never happens
            raise RuntimeError("could not sample distinct sibling details")
    return [IdentityAttributes(group, g, m) for m in members]


def sample_identities(
    n: int,
    seed: int | Sequence[int] | np.random.Generator = 0,
    sibling_fraction: float = 0.4,
) -> list[IdentityAttributes]:
    """Sample ``n`` identities; about ``sibling_fraction`` of them in sibling groups of 2-3.

    Siblings share ``group`` and ``global_attrs`` exactly and differ only in the same one or two
    local details (see :meth:`IdentityAttributes.local_differences`), which is what makes the
    dataset need local features. The list is shuffled so siblings do not get consecutive pids.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= sibling_fraction <= 1.0:
        raise ValueError("sibling_fraction must be in [0, 1]")
    rng = _as_rng(seed)
    n_sib = round(sibling_fraction * n)
    people: list[IdentityAttributes] = []
    group = 0
    while n_sib >= 2:
        size = 3 if n_sib >= 3 and n_sib != 4 and rng.random() < 0.35 else 2
        people.extend(_sibling_group(rng, size, group))
        n_sib -= size
        group += 1
    while len(people) < n:
        g = _sample_global(rng)
        people.append(IdentityAttributes(group, g, _sample_local(rng, g)))
        group += 1
    order = rng.permutation(n)
    return [people[i] for i in order]


# ----------------------------------------------------------------------------------------------
# Cameras
# ----------------------------------------------------------------------------------------------
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


_BACKGROUNDS = ("street", "park", "indoor", "plaza")
_BG_BASE: dict[str, tuple[RGB, RGB, RGB]] = {
    "street": ((150, 140, 128), (110, 110, 112), (70, 70, 80)),
    "park": ((70, 120, 60), (150, 140, 110), (50, 80, 40)),
    "indoor": ((200, 196, 180), (150, 130, 110), (120, 120, 130)),
    "plaza": ((170, 165, 160), (190, 180, 165), (120, 110, 100)),
}


def sample_camera_styles(cameras: int, seed: int = 0) -> list[CameraStyle]:
    """Sample the style of each camera (deterministic in ``seed``, shared by all splits)."""
    rng = np.random.default_rng([seed, _TAG_CAMERA])
    kinds = [_BACKGROUNDS[i % len(_BACKGROUNDS)] for i in rng.permutation(max(cameras, 4))]
    styles = []
    for c in range(cameras):
        kind = kinds[c]
        cast = rng.uniform(0.82, 1.18, size=3)
        cast = cast / cast.mean()
        styles.append(
            CameraStyle(
                index=c,
                gain=round(float(rng.uniform(0.68, 1.22)), 4),
                cast=(round(float(cast[0]), 4), round(float(cast[1]), 4), round(float(cast[2]), 4)),
                background=kind,
                bg_colors=tuple(_jitter(rng, col, 30) for col in _BG_BASE[kind]),  # type: ignore[arg-type]
                noise=round(float(rng.uniform(1.5, 7.0)), 3),
                blur=bool(rng.random() < 0.35),
                back_view=round(float(rng.uniform(0.15, 0.5)), 3),
            )
        )
    return styles


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency texture in [0, 1] (bilinear upsampling of a coarse random grid)."""
    coarse = (rng.random((cells[0], cells[1])) * 255).astype(np.uint8)
    img = Image.fromarray(coarse, "L").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """In-place clip of a temporary (np.clip's Python wrapper dominates on tiny arrays)."""
    np.maximum(x, lo, out=x)
    return np.minimum(x, hi, out=x)


class _Renderer:
    """Draws people into (3, H, W) float32 canvases; precomputes what all images share.

    Channel-first because numpy then loops along image rows rather than over 3 channels,
    which halves the cost of blending the many small shapes.
    """

    def __init__(self, seed: int, cameras: int, height: int, width: int, occlusion: float):
        self.seed, self.h, self.w, self.occlusion = seed, height, width, occlusion
        self.cams = sample_camera_styles(cameras, seed)
        self.ys = np.arange(height, dtype=np.float32) + 0.5
        self.xs = np.arange(width, dtype=np.float32) + 0.5
        self.backgrounds = [self._background(s) for s in self.cams]
        nrng = np.random.default_rng([seed, _TAG_NOISE])
        noise = nrng.standard_normal((3, 2 * height, 2 * width), dtype=np.float32)
        # per-camera banks, pre-scaled and with the +0.5 of rounding folded in
        self.noise = [noise * np.float32(s.noise) + np.float32(0.5) for s in self.cams]

    # -- backgrounds ---------------------------------------------------------------------------
    def _background(self, cam: CameraStyle) -> np.ndarray:
        """A (3, H, 2W) texture; each image crops a random W-wide window of it."""
        rng = np.random.default_rng([self.seed, _TAG_CAMERA, cam.index, 1])
        h, w = self.h, 2 * self.w
        c1, c2, c3 = (np.asarray(c, np.float32) for c in cam.bg_colors)
        ys = self.ys[:, None] / h
        xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
        horizon = rng.uniform(0.5, 0.75)
        texture = _smooth_noise(rng, h, w, (6, 8))[..., None]
        ground = (ys > horizon)[..., None]
        if cam.background == "street":  # facade with windows over a paved sidewalk
            period = rng.uniform(0.2, 0.35) * self.w
            win = ((xs % period) < 0.45 * period) & ((ys * h % (0.22 * h)) < 0.11 * h)
            wall = c1 + (c3 - c1) * (0.8 * win[..., None])
            tiles = ((ys * h) % max(3.0, 0.06 * h) < 1.0)[..., None] * 18.0
            img = np.where(ground, c2 + tiles, wall)
        elif cam.background == "park":  # trees (blotchy) above a path
            leaves = _smooth_noise(rng, h, w, (10, 14))[..., None]
            trees = c1 + (c3 - c1) * leaves
            img = np.where(ground, c2 + (texture - 0.5) * 30.0, trees)
        elif cam.background == "indoor":  # lit wall, doors, floor with a gradient
            period = rng.uniform(0.5, 0.9) * self.w
            door = ((xs % period) < 0.3 * period) & (ys > horizon - 0.45)
            wall = c1 * (1.05 - 0.25 * ys[..., None]) + (c3 - c1) * (0.7 * door[..., None])
            img = np.where(ground, c2 * (0.8 + 0.3 * ys[..., None]), wall)
        else:  # plaza: large tiles in perspective
            tile = max(4.0, 0.1 * self.w)
            checker = ((xs // tile + (ys * h) // tile) % 2)[..., None]
            img = c1 + (c2 - c1) * (0.5 * checker) + (c3 - c1) * 0.5 * (ys[..., None] < 0.3)
        img = img * (0.85 + 0.3 * texture)
        return np.ascontiguousarray(np.clip(img, 0, 255).transpose(2, 0, 1), dtype=np.float32)

    # -- primitives (anti-aliased, evaluated on the shape's bounding box only) ------------------
    def _box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[int, int, int, int] | None:
        a, b = max(int(x0), 0), min(int(x1) + 2, self.w)
        c, d = max(int(y0), 0), min(int(y1) + 2, self.h)
        return None if a >= b or c >= d else (a, b, c, d)

    @staticmethod
    def _blend(
        img: np.ndarray, box: tuple[int, int, int, int], alpha: np.ndarray, color: np.ndarray
    ) -> None:
        x0, x1, y0, y1 = box
        sub = img[:, y0:y1, x0:x1]
        diff = color[:, None, None] - sub
        diff *= alpha
        sub += diff

    def capsule(
        self,
        img: np.ndarray,
        ax: float,
        ay: float,
        bx: float,
        by: float,
        r: float,
        color: np.ndarray,
        opacity: float = 1.0,
    ) -> None:
        box = self._box(min(ax, bx) - r - 1, max(ax, bx) + r, min(ay, by) - r - 1, max(ay, by) + r)
        if box is None:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        # distance to the segment in its own frame: along (s) and across (q) the axis
        ux, uy = bx - ax, by - ay
        length = math.hypot(ux, uy)
        cu, su = (ux / length, uy / length) if length > 1e-6 else (0.0, 1.0)
        dx, dy = xs - (ax + 0.5 * ux), ys - (ay + 0.5 * uy)
        s = dx * cu + dy * su
        np.abs(s, out=s)
        s -= 0.5 * length
        np.maximum(s, 0.0, out=s)
        q = dx * -su + dy * cu
        q *= q
        s *= s
        q += s
        np.sqrt(q, out=q)
        alpha = _clip(np.subtract(r + 0.5, q, out=q), 0.0, opacity)
        self._blend(img, box, alpha, color)

    def ellipse(
        self,
        img: np.ndarray,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        color: np.ndarray,
        ymax: float | None = None,
        opacity: float = 1.0,
    ) -> None:
        y1 = cy + ry if ymax is None else min(cy + ry, ymax)
        box = self._box(cx - rx - 1, cx + rx, cy - ry - 1, y1)
        if box is None or rx <= 0 or ry <= 0:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        nx, ny = (xs - cx) * (1.0 / rx), (ys - cy) * (1.0 / ry)
        d = np.sqrt(nx * nx + ny * ny)  # normalised radius; the edge blurs over ~1 px
        m = min(rx, ry)
        d *= -m
        alpha = _clip(np.add(d, m + 0.5, out=d), 0.0, opacity)
        if ymax is not None:
            alpha = alpha * _clip(ymax - ys + 0.5, 0.0, 1.0)
        self._blend(img, box, alpha, color)

    def trapezoid(
        self,
        img: np.ndarray,
        yt: float,
        yb: float,
        cxt: float,
        cxb: float,
        hwt: float,
        hwb: float,
        color: np.ndarray,
        opacity: float = 1.0,
    ) -> None:
        """Vertical trapezoid: rows yt..yb, centre and half width interpolated top to bottom."""
        box = self._box(min(cxt - hwt, cxb - hwb) - 1, max(cxt + hwt, cxb + hwb), yt - 1, yb)
        if box is None or yb <= yt:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        f = _clip((ys - yt) * (1.0 / (yb - yt)), 0.0, 1.0)
        cx, hw = cxt + (cxb - cxt) * f, hwt + (hwb - hwt) * f
        ax = xs - cx
        np.abs(ax, out=ax)
        ax = _clip(np.subtract(hw + 0.5, ax, out=ax), 0.0, opacity)
        ax *= _clip(np.minimum(ys - yt, yb - ys) + 0.5, 0.0, 1.0)
        self._blend(img, box, ax, color)

    def diamond(self, img: np.ndarray, cx: float, cy: float, r: float, color: np.ndarray) -> None:
        box = self._box(cx - r - 1, cx + r, cy - r - 1, cy + r)
        if box is None:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        alpha = _clip((r - np.abs(xs - cx) - np.abs(ys - cy)) * 0.7 + 0.5, 0.0, 1.0)
        self._blend(img, box, alpha, color)

    # -- the pedestrian ------------------------------------------------------------------------
    def person(
        self,
        img: np.ndarray,
        ident: IdentityAttributes,
        rng: np.random.Generator,
        cx: float,
        feet: float,
        h: float,
        back: bool,
    ) -> None:
        """Draw a pedestrian of height ``h`` px, feet at ``feet``, facing +x (front 3/4 view)."""
        g, loc = ident.global_attrs, ident.local_attrs
        col = {
            k: np.asarray(v, np.float32)
            for k, v in (
                ("up", g.upper_color),
                ("low", g.lower_color),
                ("skin", g.skin),
                ("shoe", loc.shoe_color),
                ("bag", loc.bag_color),
                ("logo", loc.logo_color),
                ("hat", loc.hat_color),
                ("hair", loc.hair_color),
            )
        }
        up_dark = col["up"] * 0.78
        b = g.build
        stride = float(rng.uniform(0.0, 1.0))
        front_leg = 1 if rng.random() < 0.5 else -1
        tilt = float(rng.uniform(-0.03, 0.03))
        top = feet - h

        def X(fx: float, fy: float) -> float:  # body frame -> image x
            return cx + fx * h + tilt * (fy - 1.0) * h

        def Y(fy: float) -> float:
            return top + fy * h

        facing = -1.0 if back else 1.0
        sh_hw, waist_hw, hip_hw = 0.112 * b, 0.094 * b, 0.098 * b
        leg_r, arm_r = 0.04 * b * h, 0.03 * b * h

        # shadow on the ground
        self.ellipse(
            img, X(0, 1), Y(0.985), 0.16 * h, 0.025 * h, np.zeros(3, np.float32), opacity=0.35
        )
        # a backpack seen from the front sticks out behind the shoulders
        if loc.bag == "backpack" and not back:
            self.trapezoid(
                img,
                Y(0.16),
                Y(0.44),
                X(-0.03 * facing, 0.16),
                X(-0.03 * facing, 0.44),
                (sh_hw + 0.03) * h,
                (waist_hw + 0.035) * h,
                col["bag"],
            )
        if loc.hair_length == "long" and not back:  # hair falling behind the neck
            self.trapezoid(
                img, Y(0.06), Y(0.24), X(0, 0.06), X(0, 0.24), 0.055 * h, 0.065 * h, col["hair"]
            )
        # legs: the back one first, then the front one, each with its shoe
        for leg in (-front_leg, front_leg):
            hip_x = leg * 0.045 * b
            ankle_x = leg * 0.035 * b + (stride * 0.075 if leg == front_leg else -stride * 0.06)
            ankle_y = 0.95 if leg == front_leg else 0.935
            hx, hy, ax_, ay_ = X(hip_x, 0.5), Y(0.5), X(ankle_x, ankle_y), Y(ankle_y)
            shade = 1.0 if leg == front_leg else 0.85
            if g.lower_style == "trousers":
                self.capsule(img, hx, hy, ax_, ay_, leg_r, col["low"] * shade)
            else:
                self.capsule(img, hx, hy, ax_, ay_, leg_r * 0.85, col["skin"] * shade)
                if g.lower_style == "shorts":
                    kx, ky = hx + 0.45 * (ax_ - hx), hy + 0.45 * (ay_ - hy)
                    self.capsule(img, hx, hy, kx, ky, leg_r * 1.08, col["low"] * shade)
            self.ellipse(
                img,
                ax_ + facing * 0.022 * h,
                ay_ + 0.014 * h,
                0.052 * h,
                0.026 * h,
                col["shoe"] * shade,
            )
        # hips / skirt
        if g.lower_style == "skirt":
            self.trapezoid(
                img, Y(0.47), Y(0.7), X(0, 0.47), X(0, 0.7), waist_hw * h, 0.15 * b * h, col["low"]
            )
        else:
            self.trapezoid(
                img, Y(0.47), Y(0.57), X(0, 0.47), X(0, 0.57), waist_hw * h, hip_hw * h, col["low"]
            )
        # torso, with a lighter panel on the lit side for some depth
        self.trapezoid(
            img, Y(0.14), Y(0.52), X(0, 0.14), X(0, 0.52), sh_hw * h, waist_hw * h, col["up"]
        )
        self.trapezoid(
            img,
            Y(0.17),
            Y(0.5),
            X(0.025, 0.17),
            X(0.02, 0.5),
            0.05 * b * h,
            0.04 * b * h,
            np.minimum(col["up"] * 1.12 + 8, 255),
        )
        if loc.logo != "none" and not back:
            lx, ly, r = X(0.035 * facing, 0.26), Y(0.26), 0.03 * h
            if loc.logo == "square":
                self.trapezoid(img, ly - r, ly + r, lx, lx, r, r, col["logo"])
            elif loc.logo == "circle":
                self.ellipse(img, lx, ly, r * 1.1, r * 1.1, col["logo"])
            elif loc.logo == "diamond":
                self.diamond(img, lx, ly, r * 1.35, col["logo"])
            else:  # a chest stripe across the shirt
                self.trapezoid(
                    img,
                    Y(0.25),
                    Y(0.3),
                    X(0, 0.25),
                    X(0, 0.3),
                    sh_hw * h * 0.97,
                    sh_hw * h * 0.95,
                    col["logo"],
                )
        if loc.bag == "backpack" and back:
            self.trapezoid(
                img,
                Y(0.17),
                Y(0.45),
                X(0, 0.17),
                X(0, 0.45),
                0.085 * b * h,
                0.09 * b * h,
                col["bag"],
            )
            self.trapezoid(
                img,
                Y(0.17),
                Y(0.24),
                X(0, 0.17),
                X(0, 0.24),
                0.085 * b * h,
                0.088 * b * h,
                col["bag"] * 0.75,
            )
        # arms at the sides, swinging against the legs
        swing = stride * 0.05
        for side in (-1, 1):
            sx, sy = X(side * (sh_hw - 0.022), 0.165), Y(0.165)
            hxf = side * (sh_hw + 0.012) + (-swing if side == front_leg else swing) * 0.6
            hx, hy = X(hxf, 0.49), Y(0.49)
            ex, ey = (sx + hx) / 2 + side * 0.006 * h, (sy + hy) / 2
            if g.upper_style == "long":
                self.capsule(img, sx, sy, hx, hy, arm_r, up_dark)
            else:
                self.capsule(img, ex, ey, hx, hy, arm_r * 0.85, col["skin"] * 0.92)
                self.capsule(img, sx, sy, ex, ey, arm_r * 1.1, up_dark)
            self.ellipse(img, hx, hy + 0.012 * h, arm_r * 0.9, arm_r * 1.0, col["skin"])
            if loc.bag == "handbag" and side == loc.bag_side:
                self.capsule(img, hx, hy, hx, hy + 0.04 * h, 0.006 * h, col["bag"] * 0.7)
                self.trapezoid(
                    img, hy + 0.035 * h, hy + 0.13 * h, hx, hx, 0.045 * h, 0.05 * h, col["bag"]
                )
        if loc.bag == "shoulder":
            s = loc.bag_side
            self.capsule(
                img,
                X(-s * 0.07 * b, 0.15),
                Y(0.15),
                X(s * 0.09 * b, 0.47),
                Y(0.47),
                0.011 * h,
                col["bag"] * 0.8,
            )
            self.trapezoid(
                img,
                Y(0.43),
                Y(0.56),
                X(s * 0.12 * b, 0.43),
                X(s * 0.12 * b, 0.56),
                0.05 * h,
                0.055 * h,
                col["bag"],
            )
        if loc.bag == "backpack" and not back:  # straps over the shoulders
            for side in (-1, 1):
                self.capsule(
                    img,
                    X(side * 0.065 * b, 0.15),
                    Y(0.15),
                    X(side * 0.07 * b, 0.36),
                    Y(0.36),
                    0.012 * h,
                    col["bag"] * 0.85,
                )
        # neck, head, hair, hat
        hcx, hcy, hrx, hry = X(0.004 * facing, 0.075), Y(0.075), 0.05 * h, 0.066 * h
        self.trapezoid(
            img, Y(0.11), Y(0.155), X(0, 0.11), X(0, 0.155), 0.022 * h, 0.024 * h, col["skin"] * 0.9
        )
        if back:
            self.ellipse(img, hcx, hcy, hrx, hry, col["hair"])
            if loc.hair_length == "long":
                self.trapezoid(img, hcy, Y(0.25), hcx, X(0, 0.25), hrx, 1.2 * hrx, col["hair"])
        else:
            self.ellipse(img, hcx, hcy - 0.006 * h, hrx * 1.06, hry, col["hair"])
            self.ellipse(
                img, hcx + facing * 0.006 * h, hcy + 0.012 * h, hrx * 0.88, hry * 0.8, col["skin"]
            )
            e, ey_ = max(1, round(0.01 * h)), int(hcy + 0.004 * h)
            for ex_ in (-0.016, 0.02):  # eyes: a darkened pixel block each, no shape needed
                ex0 = int(hcx + facing * ex_ * h)
                if 0 <= ey_ < self.h and 0 <= ex0 < self.w:
                    img[:, ey_ : ey_ + e, ex0 : ex0 + e] *= 0.4
        if loc.hat == "cap":
            self.ellipse(
                img, hcx, hcy - 0.01 * h, hrx * 1.1, hry * 0.95, col["hat"], ymax=hcy - 0.022 * h
            )
            self.ellipse(
                img,
                hcx + facing * 0.04 * h,
                hcy - 0.024 * h,
                0.045 * h,
                0.011 * h,
                col["hat"] * 0.8,
            )
        elif loc.hat == "beanie":
            self.ellipse(
                img, hcx, hcy - 0.012 * h, hrx * 1.12, hry * 1.02, col["hat"], ymax=hcy - 0.005 * h
            )
            self.trapezoid(
                img,
                hcy - 0.022 * h,
                hcy - 0.002 * h,
                hcx,
                hcx,
                hrx * 1.12,
                hrx * 1.12,
                col["hat"] * 0.8,
            )

    # -- scene ---------------------------------------------------------------------------------
    def _occluder(self, img: np.ndarray, rng: np.random.Generator) -> None:
        h, w = self.h, self.w
        kind = int(rng.integers(4))
        color = np.asarray(_pick(rng, _CLOTHING, 20), np.float32)
        if kind == 0:  # a pole / tree trunk / sign post
            x, hw = rng.uniform(0.1, 0.9) * w, rng.uniform(0.04, 0.09) * w
            grey = np.full(3, rng.uniform(60, 170), np.float32)
            self.trapezoid(img, -1, h + 1, x, x, hw, hw, grey)
            self.trapezoid(
                img,
                -1,
                h + 1,
                x - 0.3 * hw,
                x - 0.3 * hw,
                0.3 * hw,
                0.3 * hw,
                np.minimum(grey * 1.25, 255),
            )
        elif kind == 1:  # a car or a bench in the foreground
            yt = rng.uniform(0.6, 0.8) * h
            x0, x1 = sorted(rng.uniform(-0.3, 1.3, size=2) * w)
            x1 = max(x1, x0 + 0.5 * w)
            cxm, hw = (x0 + x1) / 2, (x1 - x0) / 2
            self.trapezoid(img, yt, h + 1, cxm, cxm, hw * 0.9, hw, color)
            self.trapezoid(
                img,
                yt + 0.02 * h,
                yt + 0.09 * h,
                cxm,
                cxm,
                hw * 0.75,
                hw * 0.8,
                np.array([160, 190, 210], np.float32),
            )
        elif kind == 2:  # a bush
            self.ellipse(
                img,
                rng.uniform(0, 1) * w,
                h * rng.uniform(0.85, 1.05),
                rng.uniform(0.3, 0.6) * w,
                rng.uniform(0.2, 0.35) * h,
                np.array([50, rng.uniform(90, 140), 45], np.float32),
            )
        else:  # another pedestrian passing at the box edge
            side = -1 if rng.random() < 0.5 else 1
            x = w / 2 + side * rng.uniform(0.45, 0.65) * w
            yt, hw = rng.uniform(0.15, 0.3) * h, rng.uniform(0.16, 0.26) * w
            self.trapezoid(img, yt, h + 1, x, x, hw, hw * 0.85, color)
            skin = np.asarray(_pick(rng, _SKIN, 8), np.float32)
            self.ellipse(img, x, yt - 0.07 * h, 0.55 * hw, 0.08 * h, skin)

    def render(
        self,
        ident: IdentityAttributes | None,
        camera: int,
        rng: np.random.Generator,
        junk: bool = False,
    ) -> np.ndarray:
        """One image (H, W, 3) uint8 of ``ident`` seen by ``camera``; ``junk`` spoils the box."""
        h, w = self.h, self.w
        cam = self.cams[camera]
        ox = int(rng.integers(0, w))
        img = self.backgrounds[camera][:, :, ox : ox + w] * np.float32(rng.uniform(0.9, 1.1))
        if rng.random() < 0.4:  # background clutter (sign, window, parked bike...)
            c = np.asarray(_pick(rng, _CLOTHING, 30), np.float32)
            x, y = rng.uniform(0, w), rng.uniform(0.05, 0.6) * h
            self.trapezoid(
                img,
                y,
                y + rng.uniform(0.08, 0.3) * h,
                x,
                x,
                rng.uniform(0.05, 0.2) * w,
                rng.uniform(0.05, 0.2) * w,
                c,
                opacity=0.7,
            )
        # person placement: scale/position jitter, sometimes a badly aligned box
        scale = rng.uniform(0.88, 1.08)
        dx = float(np.clip(rng.normal(0.0, 0.06), -0.18, 0.18)) * w
        dy = float(np.clip(rng.normal(0.0, 0.02), -0.05, 0.05)) * h
        if rng.random() < 0.12:
            if rng.random() < 0.5:
                dx += (1 if rng.random() < 0.5 else -1) * rng.uniform(0.15, 0.3) * w
            else:
                dy += (1 if rng.random() < 0.5 else -1) * rng.uniform(0.08, 0.18) * h
        back = bool(rng.random() < cam.back_view)
        mirror = bool(rng.random() < 0.5)
        occluded = bool(rng.random() < self.occlusion)
        junk_kind = int(rng.integers(3)) if junk else -1
        if junk_kind == 1:  # a sliver of a person at the box edge, or only the legs / the head
            if rng.random() < 0.5:
                dx = (1 if rng.random() < 0.5 else -1) * rng.uniform(0.45, 0.6) * w
            else:
                dy = (1 if rng.random() < 0.5 else -1) * rng.uniform(0.45, 0.6) * h
        elif junk_kind == 2:  # zoomed into a body part
            scale = rng.uniform(2.0, 3.2)
            dy = rng.uniform(0.2, 1.4) * h
            dx = rng.uniform(-0.3, 0.3) * w
        if ident is not None and junk_kind != 0:
            height = ident.global_attrs.height * scale * h
            self.person(img, ident, rng, w / 2 + dx, 0.975 * h + dy, height, back)
        if mirror:
            img = img[:, :, ::-1]
        if occluded or junk_kind == 0:
            self._occluder(img, rng)
        # camera: brightness, colour cast, softness, sensor noise
        img = img * (np.asarray(cam.cast, np.float32) * np.float32(cam.gain))[:, None, None]
        if cam.blur:
            img[:, 1:-1] = (img[:, :-2] + img[:, 2:] + 2.0 * img[:, 1:-1]) * 0.25
            img[:, :, 1:-1] = (img[:, :, :-2] + img[:, :, 2:] + 2.0 * img[:, :, 1:-1]) * 0.25
        ny, nx = int(rng.integers(0, h)), int(rng.integers(0, w))
        img += self.noise[camera][:, ny : ny + h, nx : nx + w]
        _clip(img, 0.0, 255.0)
        return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))


@lru_cache(maxsize=8)
def _renderer(seed: int, cameras: int, height: int, width: int, occlusion: float) -> _Renderer:
    return _Renderer(seed, cameras, height, width, occlusion)


def render_person(
    identity: IdentityAttributes | None,
    camera: int = 0,
    *,
    seed: int = 0,
    image_seed: int | Sequence[int] = 0,
    cameras: int = 6,
    height: int = 128,
    width: int = 64,
    occlusion: float = 0.0,
    junk: bool = False,
) -> np.ndarray:
    """Render one (height, width, 3) uint8 image of ``identity`` as seen by ``camera`` (0-based).

    For previews and figures; ``generate_synthetic_reid`` uses the same renderer. ``seed`` picks
    the camera styles (as in the dataset), ``image_seed`` the pose, jitter and occlusion.
    ``identity=None`` renders an empty scene.
    """
    if not 0 <= camera < cameras:
        raise ValueError(f"camera must be in [0, {cameras})")
    r = _renderer(seed, cameras, height, width, float(occlusion))
    return r.render(identity, camera, _as_rng(image_seed), junk=junk)


# ----------------------------------------------------------------------------------------------
# Dataset generation
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSummary:
    """Counts of one folder: images and distinct real identities (pid >= 1)."""

    images: int
    identities: int


@dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`generate_synthetic_reid` wrote; ``gallery`` counts include distractors/junk."""

    root: Path
    train: SplitSummary
    query: SplitSummary
    gallery: SplitSummary
    distractors: int
    junk: int
    cameras: int
    siblings: dict[str, int] = field(default_factory=dict)  # split -> identities in groups
    seconds: float = 0.0

    @property
    def total_images(self) -> int:
        return self.train.images + self.query.images + self.gallery.images

    def __str__(self) -> str:
        return (
            f"synthetic re-ID dataset at {self.root}: {self.total_images} images, "
            f"{self.cameras} cameras in {self.seconds:.1f} s\n"
            f"  train   {self.train.images:6d} images  {self.train.identities:4d} identities\n"
            f"  query   {self.query.images:6d} images  {self.query.identities:4d} identities\n"
            f"  gallery {self.gallery.images:6d} images  {self.gallery.identities:4d} identities"
            f" (+ {self.distractors} distractors, {self.junk} junk)"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"] = str(self.root)
        d["total_images"] = self.total_images
        return d


# A job: (folder, file name, kind, owner index, image index, camera (0-based), identity)
_Job = tuple[str, str, int, int, int, int, IdentityAttributes | None]
_WORKER: dict[str, Any] = {}


def _name(pid: int, cam: int, seq: int, frame: int, bbox: int) -> str:
    p = "-1" if pid == -1 else f"{pid:04d}"
    return f"{p}_c{cam + 1}s{seq}_{frame:06d}_{bbox:02d}.jpg"


def _render_jobs(r: _Renderer, root: str, quality: int, seed: int, jobs: Sequence[_Job]) -> int:
    for folder, name, kind, owner, index, cam, ident in jobs:
        rng = np.random.default_rng([seed, _TAG_IMAGE, kind, owner, index])
        arr = r.render(ident, cam, rng, junk=kind == _KIND_JUNK)
        Image.fromarray(arr, "RGB").save(os.path.join(root, folder, name), "JPEG", quality=quality)
    return len(jobs)


def _worker_init(cfg: dict[str, Any]) -> None:
    _WORKER.update(cfg)
    _WORKER["renderer"] = _Renderer(
        cfg["seed"], cfg["cameras"], cfg["height"], cfg["width"], cfg["occlusion"]
    )


def _worker_run(jobs: Sequence[_Job]) -> int:
    return _render_jobs(
        _WORKER["renderer"], _WORKER["root"], _WORKER["quality"], _WORKER["seed"], jobs
    )


def _plan_identity(
    seed: int,
    split_tag: int,
    index: int,
    cameras: int,
    cameras_per_id: tuple[int, int],
    images_per_camera: tuple[int, int],
    min_per_camera: int,
) -> list[tuple[int, int, int, int]]:
    """(camera, sequence, frame, bbox) of each image of one identity, cameras sorted."""
    rng = np.random.default_rng([seed, _TAG_LAYOUT, split_tag, index])
    k = int(rng.integers(cameras_per_id[0], cameras_per_id[1] + 1))
    shots = []
    for cam in sorted(int(c) for c in rng.choice(cameras, size=k, replace=False)):
        n = max(int(rng.integers(images_per_camera[0], images_per_camera[1] + 1)), min_per_camera)
        seq = int(rng.integers(1, 7))
        frame = int(rng.integers(0, 150_000))
        for _ in range(n):
            frame += int(rng.integers(5, 80))  # strictly increasing: unique names per (pid, cam)
            shots.append((cam, seq, frame, int(rng.integers(1, 9))))
    return shots


def _prepare_root(root: Path, overwrite: bool) -> None:
    """Create the folders; refuse to mix with old files unless they are ours and overwrite."""
    existing = [p for d in SPLIT_DIRS if (root / d).is_dir() for p in (root / d).iterdir()]
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{root} already holds images; pass overwrite=True to regenerate it"
            )
        if not (root / META_FILE).is_file():
            raise FileExistsError(
                f"{root} holds images but no {META_FILE}: refusing to delete a dataset that the "
                "synthetic generator did not write"
            )
        for p in existing:
            if p.is_file() and _NAME_RE.match(p.name):
                p.unlink()
    for d in SPLIT_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)


def _range(name: str, value: int | tuple[int, int], lo: int) -> tuple[int, int]:
    a, b = (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
    if a < lo or b < a:
        raise ValueError(f"{name} must be an int or a (min, max) range with {lo} <= min <= max")
    return a, b


def generate_synthetic_reid(
    root: str | os.PathLike[str],
    train_ids: int = 200,
    test_ids: int = 200,
    cameras: int = 6,
    *,
    cameras_per_id: int | tuple[int, int] = (2, 6),
    images_per_camera: int | tuple[int, int] = (2, 4),
    distractors: int | None = None,
    junk: int | None = None,
    occlusion: float = 0.3,
    sibling_fraction: float = 0.4,
    height: int = 128,
    width: int = 64,
    seed: int = 0,
    jpeg_quality: int = 90,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SyntheticSummary:
    """Write a synthetic pedestrian re-ID dataset in the Market-1501 layout under ``root``.

    Args:
        root: output folder (``bounding_box_train/``, ``query/``, ``bounding_box_test/``).
        train_ids, test_ids: number of identities per split (pids 1..N and N+1..N+M).
        cameras: number of cameras (2..9), as ``c1..cK`` in the file names.
        cameras_per_id: how many cameras see an identity (clipped to ``[2, cameras]``).
        images_per_camera: images of an identity per camera (test identities get at least 2,
            one of which becomes the query).
        distractors: pid-0 gallery images of other people (default ``2 * test_ids``).
        junk: pid-(-1) gallery images: background, cut or zoomed boxes (default ``test_ids``).
        occlusion: probability that an image has an occluder.
        sibling_fraction: share of identities in sibling groups (same globals, see module doc).
        height, width: image size (Market-1501: 128 x 64).
        seed: everything is a function of it; same seed gives byte-identical files.
        jpeg_quality: Pillow JPEG quality.
        workers: processes for rendering (``None``: all cores for large datasets, else 1).
            The output does not depend on it.
        overwrite: replace an earlier synthetic dataset at ``root`` (never other files).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`SyntheticSummary`, also written to ``root/synthetic_meta.json``.
    """
    start = time.perf_counter()
    if train_ids < 1 or test_ids < 1:
        raise ValueError("train_ids and test_ids must be >= 1")
    if not 2 <= cameras <= 9:
        raise ValueError("cameras must be in [2, 9] (one digit in Market-1501 file names)")
    if not 0.0 <= occlusion <= 1.0:
        raise ValueError("occlusion must be in [0, 1]")
    if height < 32 or width < 16:
        raise ValueError("images must be at least 32 x 16 pixels")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    cpi = _range("cameras_per_id", cameras_per_id, 1)
    cpi = (min(max(cpi[0], 2), cameras), min(max(cpi[1], 2), cameras))
    ipc = _range("images_per_camera", images_per_camera, 1)
    n_distractors = 2 * test_ids if distractors is None else int(distractors)
    n_junk = test_ids if junk is None else int(junk)
    if n_distractors < 0 or n_junk < 0:
        raise ValueError("distractors and junk must be >= 0")
    if n_distractors + n_junk > 900_000:
        raise ValueError("at most 900000 distractor + junk images (6-digit frame numbers)")

    root_path = Path(root)
    _prepare_root(root_path, overwrite)
    # Mark the folder as ours before the first image: an interrupted run can then be replaced
    # with overwrite=True, and readers see "complete": false (no params) until the end.
    marker = {"generator": "bdbnet.data.synthetic", "version": GENERATOR_VERSION, "complete": False}
    (root_path / META_FILE).write_text(json.dumps(marker, indent=2) + "\n")

    train_people = sample_identities(train_ids, [seed, _TAG_TRAIN], sibling_fraction)
    test_people = sample_identities(test_ids, [seed, _TAG_TEST], sibling_fraction)
    distractor_people = sample_identities(n_distractors, [seed, _TAG_DISTRACTOR], 0.0)
    junk_people = sample_identities(n_junk, [seed, _TAG_JUNK], 0.0)

    jobs: list[_Job] = []
    for i, person in enumerate(train_people):
        pid = i + 1
        for k, (cam, seq, frame, bb) in enumerate(
            _plan_identity(seed, _KIND_TRAIN, i, cameras, cpi, ipc, 1)
        ):
            jobs.append(
                (SPLIT_DIRS[0], _name(pid, cam, seq, frame, bb), _KIND_TRAIN, i, k, cam, person)
            )
    for i, person in enumerate(test_people):
        pid = train_ids + i + 1
        shots = _plan_identity(seed, _KIND_TEST, i, cameras, cpi, ipc, 2)
        qrng = np.random.default_rng([seed, _TAG_LAYOUT, 99, i])
        queries: set[int] = set()
        for cam in sorted({s[0] for s in shots}):
            idx = [k for k, s in enumerate(shots) if s[0] == cam]
            queries.add(idx[int(qrng.integers(len(idx)))])
        for k, (cam, seq, frame, bb) in enumerate(shots):
            folder = SPLIT_DIRS[1] if k in queries else SPLIT_DIRS[2]
            jobs.append((folder, _name(pid, cam, seq, frame, bb), _KIND_TEST, i, k, cam, person))
    frng = np.random.default_rng([seed, _TAG_FRAMES])
    frames = frng.choice(1_000_000, size=n_distractors + n_junk, replace=False)
    for kind, pid, people, offset in (
        (_KIND_DISTRACTOR, 0, distractor_people, 0),
        (_KIND_JUNK, -1, junk_people, n_distractors),
    ):
        for i, person in enumerate(people):
            cam = int(frng.integers(cameras))
            name = _name(
                pid,
                cam,
                int(frng.integers(1, 7)),
                int(frames[offset + i]),
                int(frng.integers(1, 9)),
            )
            jobs.append((SPLIT_DIRS[2], name, kind, i, 0, cam, person))

    for d in SPLIT_DIRS:  # cheap guard: Market-1501 needs unique names per folder
        names = [j[1] for j in jobs if j[0] == d]
        if len(names) != len(set(names)):  # pragma: no cover - ruled out by construction
            raise RuntimeError(f"duplicate file names in {d}")

    _render_all(
        jobs, root_path, seed, cameras, height, width, occlusion, jpeg_quality, workers, progress
    )

    def split(folder: str) -> SplitSummary:
        sel = [j for j in jobs if j[0] == folder]
        ids = {(j[2], j[3]) for j in sel if j[2] in (_KIND_TRAIN, _KIND_TEST)}
        return SplitSummary(images=len(sel), identities=len(ids))

    def n_siblings(people: list[IdentityAttributes]) -> int:
        groups: dict[int, int] = {}
        for p in people:
            groups[p.group] = groups.get(p.group, 0) + 1
        return sum(n for n in groups.values() if n > 1)

    summary = SyntheticSummary(
        root=root_path,
        train=split(SPLIT_DIRS[0]),
        query=split(SPLIT_DIRS[1]),
        gallery=split(SPLIT_DIRS[2]),
        distractors=n_distractors,
        junk=n_junk,
        cameras=cameras,
        siblings={"train": n_siblings(train_people), "test": n_siblings(test_people)},
        seconds=round(time.perf_counter() - start, 3),
    )
    params = {
        "train_ids": train_ids,
        "test_ids": test_ids,
        "cameras": cameras,
        "cameras_per_id": list(cpi),
        "images_per_camera": list(ipc),
        "distractors": n_distractors,
        "junk": n_junk,
        "occlusion": occlusion,
        "sibling_fraction": sibling_fraction,
        "height": height,
        "width": width,
        "seed": seed,
        "jpeg_quality": jpeg_quality,
    }
    counts = summary.to_dict()
    del counts["root"], counts["seconds"]  # keep the meta file itself deterministic
    meta = {
        "generator": "bdbnet.data.synthetic",
        "version": GENERATOR_VERSION,
        "complete": True,
        "layout": "market1501",
        "params": params,
        "counts": counts,
        "pids": {
            "train": [1, train_ids],
            "test": [train_ids + 1, train_ids + test_ids],
            "distractor": 0,
            "junk": -1,
        },
    }
    (root_path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return summary


def _chunks(jobs: Sequence[_Job], size: int) -> Iterable[Sequence[_Job]]:
    for i in range(0, len(jobs), size):
        yield jobs[i : i + size]


def _render_all(
    jobs: list[_Job],
    root: Path,
    seed: int,
    cameras: int,
    height: int,
    width: int,
    occlusion: float,
    quality: int,
    workers: int | None,
    progress: bool,
) -> None:
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(cores or 1, 8) if len(jobs) >= 1500 else 1
    workers = max(1, min(workers, len(jobs) // 64 or 1))
    chunks = list(_chunks(jobs, 64))
    with contextlib.ExitStack() as stack:
        if workers > 1:
            cfg = {
                "seed": seed,
                "cameras": cameras,
                "height": height,
                "width": width,
                "occlusion": occlusion,
                "root": str(root),
                "quality": quality,
            }
            # fork where available: the workers need not re-import the package (or torch).
            # The pool starts before the progress bar, whose monitor thread would make the
            # process multi-threaded at fork time.
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            pool = stack.enter_context(ctx.Pool(workers, initializer=_worker_init, initargs=(cfg,)))
            done: Iterable[int] = pool.imap_unordered(_worker_run, chunks)
        else:
            r = _Renderer(seed, cameras, height, width, occlusion)
            done = (_render_jobs(r, str(root), quality, seed, c) for c in chunks)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = stack.enter_context(tqdm(total=len(jobs), desc="synthetic images", unit="img"))
        for n in done:
            if bar is not None:
                bar.update(n)
