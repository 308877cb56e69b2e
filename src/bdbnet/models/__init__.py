"""Models: the model contract and the preprocessing spec every model carries, the BDB network,
its Batch DropBlock layer, the backbone, and loading every model file."""

from bdbnet.models.backbone import PretrainedWeightsError, build_resnet50, imagenet_weights_path
from bdbnet.models.batch_drop import BatchDropBlock
from bdbnet.models.bdb import BDBNet, BDBTrainOutput
from bdbnet.models.contract import PlannedLayer, ReIDModel, StepPlan, TrainOutput
from bdbnet.models.loading import load_checkpoint, load_trained_model
from bdbnet.models.official import (
    CheckpointError,
    convert_official_state_dict,
    load_official_checkpoint,
    safe_torch_load,
    to_official_state_dict,
)
from bdbnet.models.preprocess import Preprocessing
from bdbnet.models.registry import (
    create_model,
    list_models,
    model_kwargs_from_config,
    register_model,
)

__all__ = [
    "BDBNet",
    "BDBTrainOutput",
    "BatchDropBlock",
    "CheckpointError",
    "PlannedLayer",
    "Preprocessing",
    "PretrainedWeightsError",
    "ReIDModel",
    "StepPlan",
    "TrainOutput",
    "build_resnet50",
    "convert_official_state_dict",
    "create_model",
    "imagenet_weights_path",
    "list_models",
    "load_checkpoint",
    "load_official_checkpoint",
    "load_trained_model",
    "model_kwargs_from_config",
    "register_model",
    "safe_torch_load",
    "to_official_state_dict",
]
