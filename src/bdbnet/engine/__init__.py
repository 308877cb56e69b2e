"""Engine: training loop, checkpoints, evaluation driver and inference."""

from bdbnet.engine.checkpoint import atomic_save, load_checkpoint
from bdbnet.engine.evaluator import EvalReport, evaluate_model
from bdbnet.engine.features import extract_features
from bdbnet.engine.step import train_step
from bdbnet.engine.trainer import Trainer, TrainResult

__all__ = [
    "EvalReport",
    "TrainResult",
    "Trainer",
    "atomic_save",
    "evaluate_model",
    "extract_features",
    "load_checkpoint",
    "train_step",
]
