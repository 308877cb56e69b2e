"""What happens around the training loop, one concern per module: logging, checkpoints,
evaluation and best-model keeping. Every callback runs on every rank (some take part in
collectives); only rank 0 writes files."""

from bdbnet.engine.callbacks.base import Callback
from bdbnet.engine.callbacks.best import KeepBest
from bdbnet.engine.callbacks.checkpointing import Checkpointing
from bdbnet.engine.callbacks.evaluation import Evaluation
from bdbnet.engine.callbacks.lock import RunLockRelease
from bdbnet.engine.callbacks.logging import MetricsLogging
from bdbnet.engine.callbacks.progress import EpochLine

__all__ = [
    "Callback",
    "Checkpointing",
    "EpochLine",
    "Evaluation",
    "KeepBest",
    "MetricsLogging",
    "RunLockRelease",
]
