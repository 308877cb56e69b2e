"""The training loop: epochs of :func:`~bdbnet.engine.step.train_step` over a batch source,
with callbacks around it. It receives its parts; :meth:`Trainer.from_config` builds them for
the command line from the pieces :mod:`bdbnet.engine.builders` makes."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bdbnet.config import Config
from bdbnet.data.pipelines.source import BatchSource
from bdbnet.data.records import DatasetSplits
from bdbnet.data.sources import EvalTarget
from bdbnet.engine.builders import build_trainer_parts
from bdbnet.engine.callbacks import Callback, Evaluation
from bdbnet.engine.guard import NonFiniteError
from bdbnet.engine.replicas import ReplicaForward, drop_plan_seed
from bdbnet.engine.results import EpochStats, TrainResult
from bdbnet.engine.step import global_batch_gather, train_step
from bdbnet.errors import TrainingError
from bdbnet.evaluation.report import EvalReport
from bdbnet.runtime.distributed import DistContext, all_gather_objects, mean_over_ranks
from bdbnet.runtime.seeding import rng_state, set_rng_state
from bdbnet.runtime.stall import timeout_error


class Trainer:
    """Train ``model`` for ``epochs`` epochs of ``batches``, calling ``callbacks`` around.

    Args:
        model: The bare model (checkpoints hold its state dict, never a wrapper's).
        criterion: ``(output, labels) -> LossBreakdown``, e.g. :class:`~bdbnet.losses.BDBLoss`.
        optimizer, scheduler: The scheduler steps once per epoch.
        batches: A :class:`~bdbnet.data.pipelines.pil.BatchSource` (this rank's share).
        epochs: Total epochs of the run.
        ctx: This process's rank, world size and device (:func:`init_distributed`).
        amp: ``none | bf16 | fp16 | auto`` autocast; ``scaler`` for fp16.
        replicas: Chunks each process forwards separately (``train.replicas``).
        loss_scope: ``global`` (the loss sees the whole global batch) or ``local``.
        seed: Seeds the drop rectangles of each step when there are several chunks.
        callbacks: :class:`~bdbnet.engine.callbacks.Callback` objects, called in order.
        log_every: Steps between ``on_log_step`` calls.

    Example:
        >>> trainer = Trainer.from_config(cfg, splits, "runs/demo")  # doctest: +SKIP
        >>> result = trainer.fit()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Any,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        batches: BatchSource,
        epochs: int,
        ctx: DistContext | None = None,
        amp: str = "none",
        scaler: torch.amp.GradScaler | None = None,
        channels_last: bool = False,
        replicas: int = 1,
        loss_scope: str = "global",
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
        log_every: int = 10,
        progress: bool = True,
        compile: bool = False,
    ) -> None:
        self.ctx = ctx or DistContext(device=next(model.parameters()).device)
        self.model = model
        self.criterion = criterion
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.batches = batches
        self.epochs = epochs
        self.amp = amp
        self.scaler = scaler
        self.channels_last = channels_last
        self.seed = seed
        self.callbacks = list(callbacks)
        self.log_every = max(log_every, 1)
        self.progress = progress and self.ctx.is_main
        world = self.ctx.world_size
        self.replica_forward = ReplicaForward(
            model, replicas, self.ctx.rank * replicas, world * replicas
        )
        self.network: torch.nn.Module = self.replica_forward
        if self.ctx.distributed:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.network = torch.nn.parallel.DistributedDataParallel(
                self.replica_forward, device_ids=ids
            )
        if compile:  # train.compile: the model's graph, fused by inductor (its first steps compile)
            self.network = torch.compile(self.network)
        self.gather = global_batch_gather(self.ctx) if loss_scope == "global" else None
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimisation steps
        self.evaluations: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.result = TrainResult()
        self.evaluator: Evaluation | None = None

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        splits: DatasetSplits,
        output: str | Path,
        resume: bool = False,
        ctx: DistContext | None = None,
        overwrite: bool = False,
        targets: list[EvalTarget] | None = None,
    ) -> Trainer:
        """Build model, loss, optimiser, schedule, batches and callbacks from ``cfg``, writing
        to ``output``; with ``resume``, continue from ``output/last.pt`` if it exists.
        ``targets``: the test splits to evaluate (default: ``eval.targets``, else the
        training dataset's own)."""
        parts = build_trainer_parts(
            cfg, splits, output, resume=resume, ctx=ctx, overwrite=overwrite, targets=targets
        )
        trainer = cls(**parts.arguments)
        trainer.evaluator = parts.evaluation
        if parts.resume_state is not None:
            trainer.load_state_dict(parts.resume_state)
        parts.write_config()
        return trainer

    # ------------------------------------------------------------------ state
    def emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def state_dict(self) -> dict[str, Any]:
        """The training state (collective under DDP: every rank's RNG state is gathered)."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "batches": self.batches.state_dict(),
            "rng": rng_state(),
            "rng_by_rank": all_gather_objects(rng_state(), self.ctx),
            "world_size": self.ctx.world_size,
            "evaluations": list(self.evaluations),
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.batches.load_state_dict(state.get("batches") or {})
        by_rank = state.get("rng_by_rank") or [state["rng"]]
        set_rng_state(by_rank[self.ctx.rank] if len(by_rank) == self.ctx.world_size else by_rank[0])
        saved = int(state.get("world_size") or len(by_rank))
        if saved != self.ctx.world_size and self.ctx.is_main:
            warnings.warn(
                f"resuming a run of {saved} process(es) with {self.ctx.world_size}: from here "
                "each process gets another share of every batch and another random stream, so "
                "the run does not continue as it would have; resume with "
                f"{saved} process(es) to continue it exactly",
                stacklevel=2,
            )
        self.epoch = int(state["epoch"])
        self.result.checkpoint_epoch = self.epoch  # what --resume read: the last good one
        self.step = int(state.get("step", 0))
        self.evaluations = list(state.get("evaluations", []))
        self.best = state.get("best")

    @property
    def start_epoch(self) -> int:
        """The epochs a resumed run had completed (0 for a fresh run), before :meth:`fit`."""
        return self.epoch

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    def evaluate(self) -> EvalReport:
        """Evaluate the current model with the run's evaluation callback."""
        if self.evaluator is None:
            raise RuntimeError("this trainer has no Evaluation callback")
        return self.evaluator.evaluate(self)

    # ------------------------------------------------------------------ loop
    def train_one_epoch(self) -> EpochStats:
        """Train epoch ``self.epoch + 1``."""
        self.network.train()
        self.batches.set_epoch(self.epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        steps = len(self.batches)
        totals: dict[str, torch.Tensor] = {}
        seen, start = 0, time.perf_counter()
        bar = tqdm(
            self.batches,
            total=steps,
            desc=f"epoch {self.epoch + 1}/{self.epochs}",
            disable=not self.progress,
            leave=False,
        )
        for i, (images, labels) in enumerate(bar):
            images = images.to(self.ctx.device, non_blocking=True)
            labels = labels.to(self.ctx.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            self.replica_forward.plan_step(drop_plan_seed(self.seed, self.step))
            try:
                loss = train_step(
                    self.network,
                    images,
                    labels,
                    self.criterion,
                    self.optimizer,
                    self.scaler,
                    self.amp,
                    gather=self.gather,
                    ctx=self.ctx,
                )
            except NonFiniteError as err:
                saved = self.result.checkpoint_epoch
                kept = (
                    f"the last good checkpoint (epoch {saved}) is kept"
                    if saved
                    else "no checkpoint was written yet"
                )
                raise TrainingError(
                    f"{err.what} at epoch {self.epoch + 1}, iteration {i + 1} of {steps} "
                    f"(step {self.step + 1}); the weights were not updated and {kept}: lower "
                    "optim.lr or check the data"
                ) from None
            self.step += 1
            if self.ctx.watch is not None:
                self.ctx.watch.beat(self.step)
            for k, v in loss.terms.items():
                totals[k] = totals.get(k, 0) + v
            seen += images.shape[0] * self.ctx.world_size
            if (i + 1) % self.log_every == 0 or i + 1 == steps:
                values = {k: float(v) for k, v in mean_over_ranks(loss.terms, self.ctx).items()}
                rate = seen / (time.perf_counter() - start)
                bar.set_postfix(loss=f"{values['total']:.3f}", lr=f"{lr:.1e}", img_s=f"{rate:.0f}")
                self.emit("on_log_step", self.step, {**values, "lr": lr})
        seconds = time.perf_counter() - start
        self.scheduler.step()
        self.epoch += 1
        mean = mean_over_ranks({k: v / max(steps, 1) for k, v in totals.items()}, self.ctx)
        return EpochStats(
            self.epoch,
            {k: float(v) for k, v in mean.items()},
            seen / max(seconds, 1e-9),
            lr,
            seconds,
        )

    def fit(self) -> TrainResult:
        """Train the remaining epochs; returns every epoch's stats and evaluation.

        Under torchrun, a collective that waits longer than the process group's timeout raises
        :class:`~bdbnet.errors.TrainingError` naming the rank that held the group up.
        """
        if self.ctx.watch is not None:
            self.ctx.watch.beat(self.step)
        try:
            self.emit("on_fit_start")
            while self.epoch < self.epochs:
                stats = self.train_one_epoch()
                self.result.epochs.append(stats)
                self.emit("on_epoch_end", stats)
        except RuntimeError as err:
            stalled = timeout_error(err, self.ctx.watch)
            if stalled is None:
                raise
            raise stalled from err
        finally:
            self.emit("on_fit_end")
        self.result.evaluations = list(self.evaluations)
        self.result.best = self.best
        return self.result
