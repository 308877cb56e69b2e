"""Synthetic domains: camera networks that differ from each other in stated, controlled ways.

Why: re-ID models trained on one camera network lose much of their accuracy on another
(Market-1501 -> DukeMTMC-reID is the classic case): other scenes, light, colour rendition, image
quality and viewpoints. With several synthetic domains that gap becomes measurable here -- train
on domain 0, test on domain 1, train on both -- while everything else (the task, the identities'
attribute distribution, the Market-1501 layout, the protocol) stays the same. Each shift is data
in a :class:`Domain`, so a result can name exactly what changed.

The table :data:`DOMAINS`:

==  =============================  ==========  ==================  ==========  =====  =========
N   scenes                         gain        colour cast         spread      scale  back view
==  =============================  ==========  ==================  ==========  =====  =========
0   street, park, indoor, plaza    0.68-1.22   (1, 1, 1)           0.82-1.18   1      0.15-0.5
1   indoor, plaza                  0.40-0.70   (1.15, 1, 0.82)     0.90-1.10   0.5    0.55-0.85
2   street, park                   1.20-1.50   (0.88, 1, 1.15)     0.90-1.10   0.75   0.0-0.2
==  =============================  ==========  ==================  ==========  =====  =========

* **scenes**: the backgrounds the cameras look at (spread evenly over the cameras).
* **gain**: each camera's brightness is drawn uniformly from this range. Domain 1's scenes are
  brighter and domain 2's darker than domain 0's mix, so the ranges lie well apart: on tiny
  datasets of seeds 0-7 the mean grey level of domain 1's train images was 20-48 below domain
  0's, domain 2's 7-55 above it.
* **colour cast**: a per-channel (R, G, B) bias of the whole network, multiplied on top of each
  camera's random cast; the random cast draws each channel from **spread** (then normalised to
  mean 1), so a narrower spread makes the network's cast more uniform.
* **scale**: images are rendered at ``scale * H x scale * W`` and resized up to ``H x W`` with
  Pillow's bilinear filter -- a low-resolution camera network (soft edges, less fine detail).
* **back view**: each camera's probability of seeing people from behind is drawn from this range.

Domain 0 is the generator as it always was (same seed, same bytes as before domains existed). The
other domains also draw other people: their identities, layouts and images come from random
streams keyed by the domain (:func:`~bdbnet.data.synthetic.seeds.domain_keys`), so a domain-0 and
a domain-1 dataset with the same seed show different people, as real cross-domain benchmarks do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DOMAINS", "SCENES", "Domain", "domain_help", "get_domain"]

SCENES = ("street", "park", "indoor", "plaza")


@dataclass(frozen=True)
class Domain:
    """One synthetic camera network: what it shows, in which light, how sharply, from where."""

    index: int
    description: str  # one line, for people
    scenes: tuple[str, ...]  # subset of SCENES, in this order
    gain: tuple[float, float]  # range of each camera's brightness
    cast_bias: tuple[float, float, float]  # (R, G, B) multipliers of the whole network
    cast_spread: tuple[float, float]  # range of each channel of a camera's random cast
    resolution: float  # rendered at resolution * (H, W), resized up to (H, W)
    back_view: tuple[float, float]  # range of each camera's probability of a back view

    def __post_init__(self) -> None:
        if not self.scenes or any(s not in SCENES for s in self.scenes):
            raise ValueError(f"scenes must be a non-empty subset of {SCENES}")
        for name in ("gain", "cast_spread", "back_view"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi:
                raise ValueError(f"{name} must be a range (lo, hi) with 0 <= lo <= hi")
        if self.back_view[1] > 1.0:
            raise ValueError("back_view must lie in [0, 1]")
        if len(self.cast_bias) != 3 or min(self.cast_bias) <= 0:
            raise ValueError("cast_bias must be three positive multipliers")
        if not 0.0 < self.resolution <= 1.0:
            raise ValueError("resolution must be in (0, 1]")

    def render_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) this domain's cameras render at before resizing to the output."""
        if self.resolution == 1.0:
            return height, width
        return max(1, round(self.resolution * height)), max(1, round(self.resolution * width))

    def to_dict(self) -> dict[str, Any]:
        """The domain as JSON-friendly data (recorded in ``synthetic_meta.json``)."""
        return {
            "index": self.index,
            "description": self.description,
            "scenes": list(self.scenes),
            "gain": list(self.gain),
            "cast_bias": list(self.cast_bias),
            "cast_spread": list(self.cast_spread),
            "resolution": self.resolution,
            "back_view": list(self.back_view),
        }


DOMAINS: dict[int, Domain] = {
    d.index: d
    for d in (
        Domain(
            index=0,
            description="mixed street/park/indoor/plaza network, varied light, neutral colours, "
            "full resolution, people mostly seen from the front",
            scenes=SCENES,
            gain=(0.68, 1.22),
            cast_bias=(1.0, 1.0, 1.0),
            cast_spread=(0.82, 1.18),
            resolution=1.0,
            back_view=(0.15, 0.5),
        ),
        Domain(
            index=1,
            description="dim indoor network (indoor, plaza), warm cast, half resolution, "
            "people mostly seen from behind",
            scenes=("indoor", "plaza"),
            gain=(0.4, 0.7),
            cast_bias=(1.15, 1.0, 0.82),
            cast_spread=(0.9, 1.1),
            resolution=0.5,
            back_view=(0.55, 0.85),
        ),
        Domain(
            index=2,
            description="bright outdoor network (street, park), cold cast, 3/4 resolution, "
            "people almost always seen from the front",
            scenes=("street", "park"),
            gain=(1.2, 1.5),
            cast_bias=(0.88, 1.0, 1.15),
            cast_spread=(0.9, 1.1),
            resolution=0.75,
            back_view=(0.0, 0.2),
        ),
    )
}


def get_domain(domain: int) -> Domain:
    """The :class:`Domain` numbered ``domain``; a ValueError names the known ones."""
    if isinstance(domain, bool) or domain not in DOMAINS:
        known = ", ".join(str(n) for n in DOMAINS)
        raise ValueError(f"unknown synthetic domain {domain!r}; the known domains are {known}")
    return DOMAINS[domain]


def domain_help() -> str:
    """One line per domain, ``N: description`` (for ``bdbnet synth --help``)."""
    return "; ".join(f"{d.index}: {d.description}" for d in DOMAINS.values())
