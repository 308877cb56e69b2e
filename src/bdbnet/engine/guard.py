"""The non-finite guard: a step whose loss or gradient is NaN or infinite never updates the
weights, the run stops there with a message that says where and which term, and a checkpoint of
non-finite weights is never written over a good one."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from bdbnet.errors import TrainingError
from bdbnet.files import atomic_save
from bdbnet.losses import LossBreakdown
from bdbnet.runtime.distributed import DistContext


class NonFiniteError(TrainingError):
    """Raised by :func:`check_finite`; the trainer adds the epoch and iteration."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def check_finite(
    loss: LossBreakdown,
    parameters: Iterable[torch.nn.Parameter],
    ctx: DistContext | None = None,
    gradients: bool = True,
) -> None:
    """Raise :class:`NonFiniteError` if the loss (or, with ``gradients``, the gradient norm)
    is not finite on any rank. One host synchronisation per call; collective under DDP, so all
    ranks stop at the same step."""
    ok = torch.isfinite(loss.total.detach())
    norm = None
    if gradients:
        grads = [p.grad for p in parameters if p.grad is not None]
        if grads:
            norm = torch.nn.utils.get_total_norm(grads)
            ok = ok & torch.isfinite(norm)
    flag = ok.to(torch.int32).reshape(1)
    if ctx is not None and ctx.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    if bool(flag.item()):
        return
    bad = [f"{k} = {float(v)}" for k, v in loss.terms.items() if not torch.isfinite(v)]
    if bad:
        raise NonFiniteError("non-finite loss: " + ", ".join(bad))
    if norm is not None and not torch.isfinite(norm):
        raise NonFiniteError(f"non-finite gradient (total norm {float(norm)}) with a finite loss")
    raise NonFiniteError("non-finite loss or gradient on another process")


def non_finite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state`` that hold a NaN or an infinity."""
    return [
        name
        for name, value in state.items()
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()
    ]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """:func:`~bdbnet.files.atomic_save` of a training checkpoint, refused if any weight is NaN
    or infinite (the previous, good checkpoint stays in place)."""
    bad = non_finite_tensors(state["model"])
    if bad:
        raise TrainingError(
            f"refused to write {path}: {len(bad)} of {len(state['model'])} model tensors are "
            f"not finite (first: {bad[0]}); the previous checkpoint is kept"
        )
    return atomic_save(state, path)
