"""Batch DropBlock: zero the *same* rectangle of every feature map in a batch.

Dropping one region for the whole batch (rather than one per sample, as DropBlock does) removes
the most discriminative part from every image of a step at once, so the metric loss has to be
satisfied by the remaining, less salient parts; this is the paper's key idea (Dai et al., 2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

DropMode = Literal["batch", "sample", "none"]


@dataclass
class DropPlan:
    """The rectangles of one training step when its batch is forwarded in several chunks
    (replicas, processes): ``chunks`` positions are drawn from a generator seeded by ``seed``
    and chunk ``index`` uses the ``index``-th, so any layout of the same chunks (W processes x
    R replicas) drops the same rectangles. ``nn.DataParallel`` drew one rectangle per replica
    too, from each GPU's generator."""

    seed: int
    chunks: int
    index: int = 0


def block_size(height: int, width: int, height_ratio: float, width_ratio: float) -> tuple[int, int]:
    """Rectangle size for a ``height x width`` map; rounded like the official code (Python
    ``round``) and clamped to the map."""
    return (
        min(height, max(0, round(height_ratio * height))),
        min(width, max(0, round(width_ratio * width))),
    )


class BatchDropBlock(nn.Module):
    """Drop a ``height_ratio x width_ratio`` rectangle of the feature map during training.

    Args:
        height_ratio: Rectangle height as a fraction of the map height (re-ID: 0.3).
        width_ratio: Rectangle width as a fraction of the map width (re-ID: 1.0, i.e. a stripe).
        mode: ``"batch"`` (one rectangle for the whole batch, the paper's method), ``"sample"``
            (an independent rectangle per sample, the DropBlock-style ablation) or ``"none"``.

    The position is drawn uniformly with torch's default generator, so ``torch.manual_seed``
    makes runs reproducible; with a :class:`DropPlan` in ``plan`` (set by the engine when a
    step's batch is split into chunks) it comes from the plan instead. In eval mode the layer is
    the identity.

    Example:
        >>> drop = BatchDropBlock(0.5, 1.0).train()
        >>> y = drop(torch.ones(2, 3, 4, 2))
        >>> int((y[0, 0] == 0).sum()), bool((y[0] == y[1]).all())
        (4, True)
    """

    def __init__(
        self, height_ratio: float = 0.3, width_ratio: float = 1.0, mode: DropMode = "batch"
    ):
        super().__init__()
        if not (0.0 <= height_ratio <= 1.0 and 0.0 <= width_ratio <= 1.0):
            raise ValueError(f"drop ratios must be in [0, 1], got {height_ratio} x {width_ratio}")
        if mode not in ("batch", "sample", "none"):
            raise ValueError(f"mode must be 'batch', 'sample' or 'none', got {mode!r}")
        self.height_ratio = height_ratio
        self.width_ratio = width_ratio
        self.mode = mode
        self.plan: DropPlan | None = None

    def extra_repr(self) -> str:
        return f"height_ratio={self.height_ratio}, width_ratio={self.width_ratio}, mode={self.mode}"

    def make_mask(self, batch: int, height: int, width: int) -> torch.Tensor:
        """A ``(B or 1, 1, H, W)`` float mask with zeros in the dropped rectangle(s), on the CPU.

        Positions come from the CPU generator so GPU training draws the same ones and never
        synchronises on a device tensor.
        """
        rh, rw = block_size(height, width, self.height_ratio, self.width_ratio)
        n = batch if self.mode == "sample" else 1
        mask = torch.ones(n, 1, height, width)
        if rh == 0 or rw == 0:
            return mask
        if self.plan is not None and self.mode == "batch":
            gen = torch.Generator().manual_seed(self.plan.seed)
            tops = torch.randint(0, height - rh + 1, (self.plan.chunks,), generator=gen)
            lefts = torch.randint(0, width - rw + 1, (self.plan.chunks,), generator=gen)
            tops, lefts = [int(tops[self.plan.index])], [int(lefts[self.plan.index])]
        else:
            tops = torch.randint(0, height - rh + 1, (n,)).tolist()
            lefts = torch.randint(0, width - rw + 1, (n,)).tolist()
        for i, (top, left) in enumerate(zip(tops, lefts)):
            mask[i, :, top : top + rh, left : left + rw] = 0
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.mode == "none":
            return x
        mask = self.make_mask(x.shape[0], x.shape[-2], x.shape[-1])
        return x * mask.to(device=x.device, dtype=x.dtype, non_blocking=True)
