"""Plain records shared by every dataset: what an image is (path, identity, camera)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset.

    ``pid`` is the identity (or class) label; ``camid`` the 0-based camera index. For training
    splits ``pid`` is relabelled to ``0..N-1``; for query/gallery it is kept as in the files so
    that distractors (0) and junk (-1) keep their meaning for the evaluation protocol.
    """

    path: str
    pid: int
    camid: int = 0
    source: str = ""  # the dataset it came from, when training on several (data.sources)


@dataclass(frozen=True)
class SplitStats:
    """Image and identity counts of one split, as printed by ``bdbnet datasets``."""

    images: int
    identities: int
    cameras: int

    @classmethod
    def of(cls, records: Sequence[ImageRecord]) -> SplitStats:
        return cls(
            images=len(records),
            identities=len({r.pid for r in records}),
            cameras=len({r.camid for r in records}),
        )


@dataclass(repr=False)
class DatasetSplits:
    """The three splits every benchmark reduces to (train / query / gallery)."""

    name: str
    root: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    task: str = "reid"  # "reid" (CMC/mAP with camera filtering) or "retrieval" (Recall@K)
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        """Counts, not the records: a benchmark has tens of thousands of them."""
        counts = ", ".join(
            f"{split}={s.images} images/{s.identities} ids" for split, s in self.stats().items()
        )
        return f"DatasetSplits({self.name!r}, root={self.root!r}, {counts}, task={self.task!r})"

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    def stats(self) -> dict[str, SplitStats]:
        return {
            "train": SplitStats.of(self.train),
            "query": SplitStats.of(self.query),
            "gallery": SplitStats.of(self.gallery),
        }


def relabel(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Map the identities of a training split to ``0..N-1`` (sorted by original pid).

    Classifier heads need contiguous labels; sorting keeps the mapping reproducible.
    """
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [replace(r, pid=mapping[r.pid]) for r in records]
