"""Run logging: ``metrics.jsonl`` (one JSON object per line) and optional TensorBoard events."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Append scalars to ``<output>/metrics.jsonl`` and, if TensorBoard is installed, to
    ``<output>/tensorboard``. Lines are flushed immediately so a killed run keeps its log."""

    def __init__(self, output: str | Path, tensorboard: bool = True) -> None:
        self.output = Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.path = self.output / "metrics.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        self._tb = None
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
                self._tb = SummaryWriter(str(self.output / "tensorboard"))

    def log(self, kind: str, step: int, values: dict[str, Any], epoch: int | None = None) -> None:
        record: dict[str, Any] = {"kind": kind, "step": step, "time": round(time.time(), 3)}
        if epoch is not None:
            record["epoch"] = epoch
        plain = {k: _plain(v) for k, v in values.items()}
        record.update(plain)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in plain.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
