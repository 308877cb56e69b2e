"""The training step: a small function of (network, batch, loss, optimiser).

Everything around it (epochs, logging, checkpoints, evaluation) lives in the trainer and its
callbacks, so the step can be compiled, wrapped in DDP or fed by another data pipeline without
touching them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bdbnet.engine.guard import check_finite
from bdbnet.losses import LossBreakdown
from bdbnet.models.contract import TrainOutput
from bdbnet.runtime.distributed import DistContext, all_gather_rows
from bdbnet.runtime.precision import autocast

Gather = Callable[[TrainOutput, torch.Tensor], tuple[TrainOutput, torch.Tensor]]


def global_batch_gather(ctx: DistContext) -> Gather:
    """``train.loss_scope=global``: every rank's features and logits (with gradients) and
    labels, so the batch-hard triplet loss mines the whole P x K batch, as the official
    DataParallel run did over the 128 features it gathered on GPU 0."""

    def gather(output: TrainOutput, labels: torch.Tensor):
        gathered = output.map(lambda v: all_gather_rows(v.float(), ctx, grad=True))
        return gathered, all_gather_rows(labels, ctx)

    return gather


def train_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    criterion: Callable[[TrainOutput, torch.Tensor], LossBreakdown],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    amp: str = "none",
    gather: Gather | None = None,
    guard: bool = True,
    ctx: DistContext | None = None,
) -> LossBreakdown:
    """One optimisation step; returns the loss terms (detached tensors, no host sync).

    ``gather`` widens the batch the loss sees (:func:`global_batch_gather`); ``guard`` checks
    loss and gradients before the update (:func:`~bdbnet.engine.guard.check_finite`), so a
    non-finite step raises and leaves the weights as they were.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(images.device, amp):
        output = model(images)
        if gather is not None:
            output, labels = gather(output, labels)
        loss = criterion(output, labels)
    if scaler is not None:
        scaler.scale(loss.total).backward()
        if guard:  # the scaler skips steps with infinite fp16 gradients by design
            check_finite(loss, (), ctx, gradients=False)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.total.backward()
        if guard:
            check_finite(loss, (p for g in optimizer.param_groups for p in g["params"]), ctx)
        optimizer.step()
    return loss
