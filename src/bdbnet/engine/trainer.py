"""Training: a small step function and a Trainer that adds epochs, evaluation, logging,
checkpoints and resumption around it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bdbnet.config import Config
from bdbnet.data.recipes import preprocessing_info
from bdbnet.data.records import DatasetSplits
from bdbnet.engine import builders
from bdbnet.engine.checkpoint import FORMAT, VERSION, atomic_save, load_checkpoint
from bdbnet.engine.evaluator import EvalReport, evaluate_model
from bdbnet.engine.metrics_log import MetricsLogger
from bdbnet.engine.runtime import (
    autocast,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from bdbnet.losses import BDBLoss, LossBreakdown


def train_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    criterion: BDBLoss,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    amp: str = "none",
) -> LossBreakdown:
    """One optimisation step. Pure in (model, batch, loss, optimiser), so it can be compiled,
    wrapped in DDP or driven by a different data pipeline without touching the Trainer."""
    optimizer.zero_grad(set_to_none=True)
    with autocast(images.device, amp):
        output = model(images)
        loss = criterion(output, labels)
    if scaler is not None:
        scaler.scale(loss.total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.total.backward()
        optimizer.step()
    return loss


@dataclass
class EpochStats:
    epoch: int
    loss: dict[str, float]
    images_per_second: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns: per-epoch stats and every evaluation."""

    epochs: list[EpochStats] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    # The newest evaluation of this process, with its features (not stored in checkpoints).
    last_report: EvalReport | None = None


class Trainer:
    """Train BDB on ``splits`` with ``cfg``, writing everything to ``output``.

    Files in ``output``: ``config.yaml``, ``metrics.jsonl``, ``tensorboard/``, ``last.pt``
    (written atomically every ``train.checkpoint_every`` epochs and at the end) and
    ``epoch_N.pt`` for the epochs in ``train.keep_checkpoints``.

    Example:
        >>> splits = build_dataset("synthetic", "data/synthetic")  # doctest: +SKIP
        >>> trainer = Trainer(cfg, splits, "runs/demo")  # doctest: +SKIP
        >>> result = trainer.fit()  # doctest: +SKIP
    """

    def __init__(
        self,
        cfg: Config,
        splits: DatasetSplits,
        output: str | Path,
        resume: bool = False,
    ) -> None:
        self.cfg = cfg
        self.splits = splits
        self.output = Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(cfg.train.device)
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        self.num_classes = splits.num_train_pids
        self.model = builders.build_model(cfg, self.num_classes).to(self.device)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = builders.build_criterion(cfg)
        self.optimizer = builders.build_optimizer(self.model, cfg)
        self.scheduler = builders.build_lr_scheduler(self.optimizer, cfg)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.train.amp == "fp16" else None
        self.loader = builders.build_train_loader(splits, cfg)
        self.start_epoch = 0
        self.result = TrainResult()
        if resume:
            self.resume()
        (self.output / "config.yaml").write_text(cfg.to_yaml())

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.output / "last.pt"

    def state_dict(self, epoch: int) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "model_kwargs": builders.model_kwargs(self.cfg),
            "num_classes": self.num_classes,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "preprocess": preprocessing_info(self.cfg.data),
            "dataset": self.splits.name,
            "evaluations": self.result.evaluations,
        }

    def save(self, epoch: int) -> Path:
        state = self.state_dict(epoch)
        path = atomic_save(state, self.checkpoint_path)
        if epoch in self.cfg.train.keep_checkpoints:
            atomic_save(state, self.output / f"epoch_{epoch}.pt")
        return path

    def resume(self) -> bool:
        """Continue from ``last.pt`` if present; returns whether a checkpoint was loaded."""
        if not self.checkpoint_path.is_file():
            return False
        state = load_checkpoint(self.checkpoint_path)
        if state["num_classes"] != self.num_classes:
            raise RuntimeError(
                f"{self.checkpoint_path} was trained with {state['num_classes']} identities, "
                f"the dataset has {self.num_classes}: wrong --output or --root?"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"])
        self.result.evaluations = list(state.get("evaluations", []))
        return True

    # ------------------------------------------------------------------ loops
    def train_one_epoch(self, epoch: int, logger: MetricsLogger) -> EpochStats:
        """Train epoch ``epoch`` (0-based index)."""
        cfg = self.cfg
        self.model.train()
        self.loader.batch_sampler.set_epoch(epoch)
        self.loader.generator.manual_seed(cfg.train.seed * 1_000_003 + epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        steps = len(self.loader)
        totals: dict[str, torch.Tensor] = {}
        seen, start = 0, time.perf_counter()
        bar = tqdm(
            self.loader,
            total=steps,
            desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
            disable=not cfg.train.progress,
            leave=False,
        )
        for i, (images, labels, _, _) in enumerate(bar):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            if cfg.train.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            loss = train_step(
                self.model,
                images,
                labels,
                self.criterion,
                self.optimizer,
                self.scaler,
                cfg.train.amp,
            )
            for k, v in loss.terms.items():
                totals[k] = totals.get(k, 0) + v
            seen += images.shape[0]
            if (i + 1) % cfg.train.log_every == 0 or i + 1 == steps:
                values = loss.as_floats()
                rate = seen / (time.perf_counter() - start)
                bar.set_postfix(loss=f"{values['total']:.3f}", lr=f"{lr:.1e}", img_s=f"{rate:.0f}")
                logger.log("train", epoch * steps + i + 1, {**values, "lr": lr}, epoch=epoch + 1)
        seconds = time.perf_counter() - start
        self.scheduler.step()
        mean = {k: float(v) / max(steps, 1) for k, v in totals.items()}
        return EpochStats(epoch + 1, mean, seen / max(seconds, 1e-9), lr, seconds)

    def evaluate(self) -> EvalReport:
        return evaluate_model(
            self.model, self.splits, self.cfg, self.device, self.cfg.train.progress
        )

    def should_evaluate(self, epoch: int) -> bool:
        every, last = self.cfg.train.eval_every, self.cfg.optim.epochs
        return epoch == last or (every > 0 and epoch % every == 0)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        with MetricsLogger(self.output, tensorboard=cfg.train.tensorboard) as logger:
            for index in range(self.start_epoch, cfg.optim.epochs):
                epoch = index + 1
                stats = self.train_one_epoch(index, logger)
                self.result.epochs.append(stats)
                logger.log(
                    "epoch",
                    epoch,
                    {
                        **stats.loss,
                        "lr": stats.lr,
                        "images_per_second": stats.images_per_second,
                        "seconds": stats.seconds,
                    },
                    epoch=epoch,
                )
                if self.should_evaluate(epoch) and self.splits.query:
                    report = self.result.last_report = self.evaluate()
                    record = {"epoch": epoch, **report.metrics}
                    self.result.evaluations.append(record)
                    logger.log("eval", epoch, report.metrics, epoch=epoch)
                    if cfg.train.progress:
                        tqdm.write(f"epoch {epoch}: {report.summary()}")
                if epoch % max(cfg.train.checkpoint_every, 1) == 0 or epoch == cfg.optim.epochs:
                    self.result.checkpoint = self.save(epoch)
        return self.result
