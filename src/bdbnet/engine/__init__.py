"""Engine: training loop, checkpoints, evaluation driver and inference."""

from bdbnet.engine.checkpoint import atomic_save, load_checkpoint
from bdbnet.engine.evaluator import EvalReport, evaluate_model
from bdbnet.engine.features import extract_features
from bdbnet.engine.trainer import Trainer, TrainResult, train_step

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
