"""The BDB objective: a metric loss on every branch's embedding plus a classification loss on
every branch's logits, summed as in the official code.

The two losses are modules given to :class:`BDBLoss` (defaults: the soft-margin batch-hard
triplet and label-smoothed cross entropy), so another metric loss drops in without a subclass.
The model's output is typed by what is used of it (:class:`BranchOutputs`), so this package
does not depend on :mod:`bdbnet.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from bdbnet.losses.cross_entropy import LabelSmoothingCrossEntropy
from bdbnet.losses.triplet import BatchHardTripletLoss


class BranchOutputs(Protocol):
    """A training forward's output: per-branch embeddings and logits, keyed by branch name
    (:class:`bdbnet.models.BDBTrainOutput` is one)."""

    @property
    def features(self) -> Mapping[str, torch.Tensor]: ...

    @property
    def logits(self) -> Mapping[str, torch.Tensor]: ...


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

    ``triplet`` (``(embeddings, labels) -> loss``) and ``softmax`` (``(logits, labels) ->
    loss``) are the loss modules; left out, they are the paper's: batch-hard triplet with
    ``triplet_margin`` (None: soft margin) and cross entropy with ``label_smoothing``. The term
    names stay ``BRANCH/triplet`` and ``BRANCH/softmax`` whatever the modules.

    Example:
        >>> from types import SimpleNamespace
        >>> criterion = BDBLoss()
        >>> feats, logits = {"g": torch.randn(4, 8)}, {"g": torch.randn(4, 3)}
        >>> out = SimpleNamespace(features=feats, logits=logits)
        >>> sorted(criterion(out, torch.tensor([0, 0, 1, 1])).terms)
        ['g/softmax', 'g/triplet', 'total']
        >>> hinge = BDBLoss(triplet=BatchHardTripletLoss(margin=0.3))
    """

    def __init__(
        self,
        triplet_margin: float | None = None,
        label_smoothing: float = 0.1,
        triplet_weight: float = 1.0,
        softmax_weight: float = 1.0,
        *,
        triplet: nn.Module | None = None,
        softmax: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.triplet = triplet if triplet is not None else BatchHardTripletLoss(triplet_margin)
        self.softmax = (
            softmax if softmax is not None else LabelSmoothingCrossEntropy(label_smoothing)
        )
        self.triplet_weight = triplet_weight
        self.softmax_weight = softmax_weight

    def forward(self, output: BranchOutputs, labels: torch.Tensor) -> LossBreakdown:
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
