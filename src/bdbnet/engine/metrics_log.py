"""Run logging: ``metrics.jsonl`` (one JSON object per line) and optional TensorBoard events."""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

from bdbnet.files import atomic_write


class MetricsLogger:
    """Append scalars to ``<output>/metrics.jsonl`` and, if TensorBoard is installed, to
    ``<output>/tensorboard``. Lines are flushed immediately so a killed run keeps its log.

    A log that cannot be written (a full disk) does not stop training: the first failure of each
    sink is one warning naming the file and the step, and that sink is dropped (checkpoints go
    on and say for themselves whether they were written; ``--resume`` rewrites the log from the
    last checkpoint).

    Lines are strict JSON: a NaN or infinite value is written as ``null`` (and left out of
    TensorBoard). TensorBoard's x axis is the global training step for every kind of scalar;
    ``purge_step`` (a resumed run's first step) hides what an interrupted run logged after it.
    """

    def __init__(
        self, output: str | Path, tensorboard: bool = True, purge_step: int | None = None
    ) -> None:
        self.output = Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.path = self.output / "metrics.jsonl"
        self._file: Any = self.path.open("a", encoding="utf-8")
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                warnings.warn(
                    "TensorBoard is not installed (pip install 'bdbnet[tensorboard]'); "
                    "logging to metrics.jsonl only",
                    stacklevel=2,
                )
            else:
                self._tb = SummaryWriter(str(self.output / "tensorboard"), purge_step=purge_step)

    def log(
        self,
        kind: str,
        step: int,
        values: dict[str, Any],
        epoch: int | None = None,
        global_step: int | None = None,
        group: str | None = None,
    ) -> None:
        """One line ``{"kind", "step", "time", "epoch"?, **values}``; TensorBoard scalars at
        ``global_step`` (default ``step``), tagged ``kind/key`` or ``kind/group/key`` (one
        curve per evaluation target)."""
        record: dict[str, Any] = {"kind": kind, "step": step, "time": round(time.time(), 3)}
        if epoch is not None:
            record["epoch"] = epoch
        plain = {k: _plain(v) for k, v in values.items()}
        record.update({k: _finite_or_none(v) for k, v in plain.items()})
        if self._file is not None:
            try:
                self._file.write(json.dumps(record, allow_nan=False) + "\n")
                self._file.flush()
            except OSError as err:
                self._file = self._drop(self._file, self.path, err, step)
        if self._tb is not None:
            x = step if global_step is None else global_step
            try:
                for key, value in plain.items():
                    if isinstance(value, int | float) and math.isfinite(value):
                        tag = f"{kind}/{group}/{key}" if group else f"{kind}/{key}"
                        self._tb.add_scalar(tag, value, x)
            except OSError as err:
                self._tb = self._drop(self._tb, self.output / "tensorboard", err, step)

    @staticmethod
    def _drop(sink: Any, path: Path, err: OSError, step: int) -> None:
        """Warn once that ``sink`` failed and close it quietly: the caller forgets it."""
        warnings.warn(
            f"{path}: cannot write ({err.strerror or err}); training goes on without it from "
            f"step {step} (free space; --resume rewrites the log from the last checkpoint)",
            stacklevel=3,
        )
        with contextlib.suppress(OSError):
            sink.close()

    def close(self) -> None:
        for sink in (self._file, self._tb):
            if sink is not None:
                with contextlib.suppress(OSError):  # warned about already
                    sink.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: write ``null`` instead (also inside lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def truncate_metrics(path: str | Path, epoch: int) -> None:
    """Drop the lines of epochs after ``epoch`` (what a killed run logged past its last
    checkpoint, which the resumed run logs again), and a torn last line; atomically."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("epoch", 0) <= epoch:
            kept.append(line + "\n")
    text = "".join(kept).encode("utf-8")
    atomic_write(path, lambda f: f.write(text))


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``metrics.jsonl`` file (ignoring a truncated last line from a killed run)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
