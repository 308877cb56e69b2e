"""The BDB objective: triplet + softmax loss on every branch, summed as in the official code."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bdbnet.losses.cross_entropy import LabelSmoothingCrossEntropy
from bdbnet.losses.triplet import BatchHardTripletLoss
from bdbnet.models.bdb import BDBTrainOutput


@dataclass
class LossBreakdown:
    """The total loss plus each term, detached, for logging.

    Terms stay tensors so a training step never waits for the device; call :meth:`as_floats`
    only when a value is actually logged.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]

    def as_floats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.terms.items()}


class BDBLoss(nn.Module):
    """Sum over branches of ``triplet_weight * triplet + softmax_weight * softmax``.

    Example:
        >>> criterion = BDBLoss()
        >>> out = BDBTrainOutput({"g": torch.randn(4, 8)}, {"g": torch.randn(4, 3)})
        >>> sorted(criterion(out, torch.tensor([0, 0, 1, 1])).terms)
        ['g/softmax', 'g/triplet', 'total']
    """

    def __init__(
        self,
        triplet_margin: float | None = None,
        label_smoothing: float = 0.1,
        triplet_weight: float = 1.0,
        softmax_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.triplet = BatchHardTripletLoss(triplet_margin)
        self.softmax = LabelSmoothingCrossEntropy(label_smoothing)
        self.triplet_weight = triplet_weight
        self.softmax_weight = softmax_weight

    def forward(self, output: BDBTrainOutput, labels: torch.Tensor) -> LossBreakdown:
        terms: dict[str, torch.Tensor] = {}
        if self.triplet_weight:
            for name, feat in output.features.items():
                terms[f"{name}/triplet"] = self.triplet_weight * self.triplet(feat, labels)
        if self.softmax_weight:
            for name, logits in output.logits.items():
                terms[f"{name}/softmax"] = self.softmax_weight * self.softmax(logits, labels)
        if not terms:
            raise ValueError("BDBLoss has no active term (both weights are zero or no branches)")
        total = torch.stack(list(terms.values())).sum()
        logged = {k: v.detach() for k, v in terms.items()}
        logged["total"] = total.detach()
        return LossBreakdown(total=total, terms=logged)
