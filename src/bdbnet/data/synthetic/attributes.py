"""Identity attributes of the synthetic pedestrians: global appearance, local details, siblings.

A share of the identities come in *sibling groups* that share every global attribute and differ
only in one or two local details (see the package docstring, :mod:`bdbnet.data.synthetic`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bdbnet.data.synthetic.seeds import as_rng

__all__ = [
    "CLOTHING",
    "DETAILS",
    "RGB",
    "SKIN",
    "GlobalAttributes",
    "IdentityAttributes",
    "LocalAttributes",
    "jitter",
    "pick",
    "sample_identities",
]

RGB = tuple[int, int, int]

# ----------------------------------------------------------------------------------------------
# Palettes
# ----------------------------------------------------------------------------------------------
CLOTHING: tuple[RGB, ...] = (
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
SKIN: tuple[RGB, ...] = (
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


def jitter(rng: np.random.Generator, c: RGB, amount: int = 12) -> RGB:
    """``c`` with each channel moved by up to ``amount`` grey levels (clipped to 0..255)."""
    v = np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(v[0]), int(v[1]), int(v[2]))


def pick(rng: np.random.Generator, palette: Sequence[RGB], amount: int = 12) -> RGB:
    """A random colour of ``palette``, jittered (:func:`jitter`)."""
    return jitter(rng, palette[int(rng.integers(len(palette)))], amount)


def _sample_global(rng: np.random.Generator) -> GlobalAttributes:
    upper = pick(rng, CLOTHING)
    lower = pick(rng, CLOTHING)
    while not _far(upper, lower, 60.0):  # a visible waist line
        lower = pick(rng, CLOTHING)
    return GlobalAttributes(
        upper_color=upper,
        upper_style=("long", "short")[int(rng.random() < 0.45)],
        lower_color=lower,
        lower_style=str(rng.choice(("trousers", "shorts", "skirt"), p=(0.65, 0.2, 0.15))),
        skin=pick(rng, SKIN, 8),
        height=round(float(rng.uniform(0.78, 0.9)), 4),
        build=round(float(rng.uniform(0.85, 1.15)), 4),
    )


def _sample_detail(rng: np.random.Generator, detail: str) -> dict[str, Any]:
    if detail == "shoes":
        return {"shoe_color": pick(rng, _SHOES, 10)}
    if detail == "bag":
        bag = str(rng.choice(_BAGS, p=_BAG_P))
        color = pick(rng, CLOTHING)
        side = int(rng.choice((-1, 1)))
        if bag == "none":
            color, side = _NONE_RGB, 1
        return {"bag": bag, "bag_color": color, "bag_side": side}
    if detail == "logo":
        logo = str(rng.choice(_LOGOS, p=_LOGO_P))
        color = pick(rng, _LOGO, 8)
        return {"logo": logo, "logo_color": _NONE_RGB if logo == "none" else color}
    if detail == "hat":
        hat = str(rng.choice(_HATS, p=_HAT_P))
        color = pick(rng, CLOTHING)
        return {"hat": hat, "hat_color": _NONE_RGB if hat == "none" else color}
    if detail == "hair":
        return {
            "hair_color": pick(rng, _HAIR, 8),
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
    rng = as_rng(seed)
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
