"""Label-smoothed cross entropy (Szegedy et al., 2016), epsilon 0.1 as in BDB."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabelSmoothingCrossEntropy(nn.Module):
    """Cross entropy against ``(1 - eps) * one_hot + eps / num_classes``.

    Computed by ``F.cross_entropy(..., label_smoothing=eps)`` (the same target distribution as
    the official ``CrossEntropyLabelSmooth``), in float32 so bf16/fp16 logits lose nothing.

    Example:
        >>> loss = LabelSmoothingCrossEntropy(epsilon=0.1)
        >>> round(loss(torch.zeros(1, 4), torch.tensor([2])).item(), 4)  # uniform logits: log 4
        1.3863
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.epsilon)
