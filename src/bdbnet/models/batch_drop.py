"""Batch DropBlock: zero the *same* rectangle of every feature map in a batch.

Dropping one region for the whole batch (rather than one per sample, as DropBlock does) removes
the most discriminative part from every image of a step at once, so the metric loss has to be
satisfied by the remaining, less salient parts; this is the paper's key idea (Dai et al., 2019).
"""

from __future__ import annotations

from typing import Literal

import torch

from bdbnet.models.contract import PlannedLayer, StepPlan

DropMode = Literal["batch", "sample", "none"]


#: The rectangles of one training step split into chunks (the contract's :class:`StepPlan`).
DropPlan = StepPlan


def block_size(height: int, width: int, height_ratio: float, width_ratio: float) -> tuple[int, int]:
    """Rectangle size for a ``height x width`` map; rounded like the official code (Python
    ``round``) and clamped to the map."""
    return (
        min(height, max(0, round(height_ratio * height))),
        min(width, max(0, round(width_ratio * width))),
    )


class BatchDropBlock(PlannedLayer):
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

    def make_mask(
        self, batch: int, height: int, width: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """A ``(B or 1, 1, H, W)`` float mask with zeros in the dropped rectangle(s), on
        ``device`` (default: the CPU).

        Positions come from the CPU generator (or the plan), so GPU training draws the same ones
        and never synchronises on a device tensor; the mask is built from them by tensor
        comparisons, with no Python number taken from a tensor (``torch.compile`` traces it
        without graph breaks).
        """
        rh, rw = block_size(height, width, self.height_ratio, self.width_ratio)
        n = batch if self.mode == "sample" else 1
        if rh == 0 or rw == 0:
            return torch.ones(n, 1, height, width, device=device)
        if self.plan is not None and self.mode == "batch":
            u = self.plan.uniform[self.plan.index]
            span = torch.tensor([height - rh + 1, width - rw + 1])
            corners = (u * span).floor().long().minimum(span - 1).view(1, 2)
        else:
            tops = torch.randint(0, height - rh + 1, (n,))
            lefts = torch.randint(0, width - rw + 1, (n,))
            corners = torch.stack([tops, lefts], dim=1)
        corners = corners.to(device, non_blocking=True).view(n, 2, 1, 1)
        top, left = corners[:, :1], corners[:, 1:]  # (n, 1, 1, 1) each
        rows = torch.arange(height, device=device).view(1, 1, height, 1)
        cols = torch.arange(width, device=device).view(1, 1, 1, width)
        inside = (rows >= top) & (rows < top + rh) & (cols >= left) & (cols < left + rw)
        return (~inside).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.mode == "none":
            return x
        mask = self.make_mask(x.shape[0], x.shape[-2], x.shape[-1], x.device)
        return x * mask.to(dtype=x.dtype)
