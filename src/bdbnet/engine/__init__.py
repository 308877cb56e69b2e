"""Engine: training only -- the step, the loop, its callbacks and the builders that assemble a
run from a config. Device, precision and process groups live in :mod:`bdbnet.runtime`, model
loading in :mod:`bdbnet.models.loading`, feature extraction and evaluation of a model in
:mod:`bdbnet.inference`."""

from bdbnet.engine.results import EpochStats, TrainResult
from bdbnet.engine.step import train_step
from bdbnet.engine.trainer import Trainer

# Moved out of the engine; still importable from here for code written against earlier releases.
from bdbnet.evaluation.report import EvalReport
from bdbnet.files import atomic_save
from bdbnet.inference.dataset_eval import evaluate_model
from bdbnet.inference.embed import extract_features
from bdbnet.models.loading import load_checkpoint

__all__ = [
    "EpochStats",
    "EvalReport",
    "TrainResult",
    "Trainer",
    "atomic_save",
    "evaluate_model",
    "extract_features",
    "load_checkpoint",
    "train_step",
]
