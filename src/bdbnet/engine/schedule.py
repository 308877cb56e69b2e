"""The official BDB learning-rate schedule: linear-step warm-up, then step decay.

With the defaults (peak 1e-3, warm-up 50 epochs in steps of 5, milestones 200/300, gamma 0.1)
epoch ``e`` (1-based) trains at 1e-4 * (e // 5 + 1) for e < 50, 1e-3 until 199, 1e-4 until 299
and 1e-5 after, exactly the official ``adjust_lr``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class WarmupStepFactor:
    """Multiplier of the peak lr for a 0-based epoch index (picklable, for LambdaLR)."""

    warmup_epochs: int = 50
    warmup_step: int = 5
    milestones: Sequence[int] = (200, 300)
    gamma: float = 0.1

    def __call__(self, epoch_index: int) -> float:
        epoch = epoch_index + 1  # the official schedule is written for 1-based epochs
        if epoch < self.warmup_epochs:
            return (epoch // self.warmup_step + 1) / (self.warmup_epochs // self.warmup_step)
        return self.gamma ** bisect.bisect_right(sorted(self.milestones), epoch)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    warmup_epochs: int = 50,
    warmup_step: int = 5,
    milestones: Sequence[int] = (200, 300),
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-epoch ``LambdaLR`` (call ``step()`` once per epoch) with the official shape."""
    factor = WarmupStepFactor(warmup_epochs, warmup_step, tuple(milestones), gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
