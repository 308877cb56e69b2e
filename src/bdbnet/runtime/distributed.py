"""Process groups for ``torchrun``: who this process is, and the few collectives the engine uses.

``torchrun --nproc-per-node N -m bdbnet train ...`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`init_distributed` joins them into one group
(nccl on GPUs, gloo on CPUs), one device per process. Without those variables everything here
degrades to the single-process case, so the engine has one code path.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from bdbnet.errors import BDBNetError
from bdbnet.runtime.device import resolve_device
from bdbnet.runtime.stall import StallWatch

T = TypeVar("T")
DEFAULT_TIMEOUT = 1800.0  # seconds: torch's own default for gloo (train.dist_timeout)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    watch: StallWatch | None = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def torchrun_restart_count() -> int:
    """How often torchrun's elastic agent has restarted this worker group (0: first start)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def init_distributed(device: str = "auto", timeout: float = DEFAULT_TIMEOUT) -> DistContext:
    """Join the torchrun process group if there is one; pick this process's device.

    On GPUs each process takes ``cuda:LOCAL_RANK`` and nccl; on CPUs gloo. A collective waits
    at most ``timeout`` seconds for the other ranks, and a :class:`StallWatch` names the rank
    that holds the group up (see :mod:`bdbnet.runtime.stall`). Calling it twice is harmless
    (the existing group is reused).
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistContext(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        # The elastic agent keeps one store across restarts of the group: without a prefix per
        # restart, the new processes read the old ones' addresses and never connect.
        store, rank, world_size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"bdbnet/restart_{torchrun_restart_count()}", store)
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        wait = datetime.timedelta(seconds=timeout)
        dist.init_process_group(
            backend, store=store, rank=rank, world_size=world_size, timeout=wait
        )
        global _watch
        _watch = StallWatch(store, rank, world_size, timeout).start()
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, chosen, _watch)


_watch: StallWatch | None = None  # the group's watch: one per process, like the group


def shutdown(ctx: DistContext) -> None:
    global _watch
    if _watch is not None:
        _watch.stop()
        _watch = None
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sends each rank the gradient of its own rows,
    summed over the ranks (every rank computes the same global loss, and DDP then averages
    the parameter gradients: the product is the single-process gradient)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rows, ctx.rank = tensor.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def all_gather_rows(tensor: torch.Tensor, ctx: DistContext, grad: bool = False) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` (same shape on all ranks) in rank order."""
    if not ctx.distributed:
        return tensor
    if grad:
        return _GatherWithGrad.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def shard_range(total: int, ctx: DistContext, block: int = 1) -> range:
    """The contiguous slice of ``range(total)`` that this rank handles: whole blocks of
    ``block`` items (the last one may be short), balanced over the ranks to +-1 block.

    With ``block`` = the extraction batch size every rank forwards exactly the batches a single
    process would, so distributed features are bit-identical to single-process ones.
    """
    blocks = -(-total // max(block, 1))
    base, extra = divmod(blocks, ctx.world_size)
    first = ctx.rank * base + min(ctx.rank, extra)
    count = base + (ctx.rank < extra)
    return range(min(first * block, total), min((first + count) * block, total))


def gather_shards(
    local: torch.Tensor, total: int, ctx: DistContext, block: int = 1
) -> torch.Tensor:
    """Reassemble rows computed per :func:`shard_range` into dataset order, on every rank.

    Shards differ in length, so each is padded to the largest before the all-gather and the
    padding is cut afterwards: row ``i`` of the result is item ``i`` of the dataset, whatever
    the number of ranks (not the rank-local order).
    """
    if not ctx.distributed:
        return local
    ranks = [DistContext(r, ctx.world_size) for r in range(ctx.world_size)]
    lengths = [len(shard_range(total, rank, block)) for rank in ranks]
    padded = local.new_zeros((max(lengths), *local.shape[1:]))
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, lengths)])


def sync_buffers(model: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics). DDP broadcasts them at
    the start of each training forward only, so after a step the other ranks still hold the
    statistics of their own chunk: evaluating with those would mix models."""
    if not ctx.distributed:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: dict[str, torch.Tensor], ctx: DistContext) -> dict[str, torch.Tensor]:
    """Average scalar tensors over ranks (for logging a ``local`` loss)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float() for k in keys])
    dist.all_reduce(stacked)
    stacked /= ctx.world_size
    return dict(zip(keys, stacked.unbind()))


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def on_main(ctx: DistContext, check: Callable[[], T]) -> T:
    """Run ``check`` on rank 0 only (opening every image once, not once per process) and
    raise its user error (:class:`~bdbnet.errors.BDBNetError`) on every rank, so all processes
    stop together; otherwise every rank gets its (picklable) value."""
    problem = value = None
    if ctx.is_main:
        try:
            value = check()
        except BDBNetError as err:
            problem = err
    problem, value = broadcast_object((problem, value), ctx)
    if problem is not None:
        raise problem
    return value  # type: ignore[return-value]
