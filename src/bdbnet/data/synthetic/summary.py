"""What :func:`~bdbnet.data.synthetic.generate_synthetic_reid` wrote: counts per folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SplitSummary", "SyntheticSummary"]


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
    domain: int = 0  # the camera network (bdbnet.data.synthetic.domains)
    domain_description: str = ""

    @property
    def total_images(self) -> int:
        return self.train.images + self.query.images + self.gallery.images

    def __str__(self) -> str:
        domain = f" (domain {self.domain})" if self.domain else ""
        return (
            f"synthetic re-ID dataset{domain} at {self.root}: {self.total_images} images, "
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
