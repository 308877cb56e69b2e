"""Batch-hard triplet loss (Hermans et al., 2017), soft margin by default as in BDB."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def euclidean_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances of the rows of ``x`` (clamped at 1e-12 before the square
    root, as the official code, so the gradient at zero distance stays finite)."""
    sq = x.pow(2).sum(dim=1, keepdim=True)
    d2 = sq + sq.t() - 2.0 * (x @ x.t())
    return d2.clamp(min=1e-12).sqrt()


def hardest_pairs(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each anchor: the largest positive distance and the smallest negative distance.

    A batch of a single identity has no negatives: refused with a ValueError when the labels
    are on the CPU (the check would cost a device synchronisation, and a graph break under
    ``torch.compile``, on every step; the P x K sampler never draws such a batch)."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    checkable = labels.device.type == "cpu" and not torch.compiler.is_compiling()
    if checkable and not bool((~same).any(dim=1).all()):
        raise ValueError("batch-hard triplet loss needs at least two identities in the batch")
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    return hardest_pos, hardest_neg


class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss.

    ``margin=None`` (default) uses the soft margin ``log(1 + exp(d_ap - d_an))``; a float uses
    the hinge ``max(0, d_ap - d_an + margin)``. Both averaged over anchors.

    Example:
        >>> loss = BatchHardTripletLoss()
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
        >>> # anchors 0 and 3: d_ap = 1, d_an = 3; anchors 1 and 2: d_ap = 1, d_an = 2
        >>> round(loss(x, torch.tensor([0, 0, 1, 1])).item(), 4)
        0.2201
    """

    def __init__(self, margin: float | None = None) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = euclidean_distances(features.float())
        d_ap, d_an = hardest_pairs(dist, labels)
        if self.margin is None:
            return F.softplus(d_ap - d_an).mean()
        return F.relu(d_ap - d_an + self.margin).mean()
