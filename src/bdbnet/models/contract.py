"""The model contract: what the engine, inference and export rely on of any registered model.

A second architecture is one file plus ``@register_model("name")``: if it honours
:class:`ReIDModel`, it trains (the step, replicas, DDP), evaluates, extracts, exports and
serves like BDB, and the contract tests (``tests/models/test_contract.py``) run over it by
name. Nothing outside :mod:`bdbnet.models` names a concrete model.

* eval mode: ``model(images)`` with ``images`` ``(B, 3, H, W)`` float32, normalised by
  ``model.preprocess``, returns ``(B, feature_dim)`` float32 features (``B == 1`` works), and is
  traceable (``torch.jit.trace`` / ONNX export of that forward);
* train mode: ``model(images)`` returns a :class:`TrainOutput`: per-branch embeddings for the
  metric loss and per-branch logits (``num_classes`` wide) for the softmax loss;
* ``H`` and ``W`` are multiples of ``input_stride``;
* random layers whose draws must be shared by the chunks of one step (Batch DropBlock's
  rectangle) are :class:`PlannedLayer` modules: the engine gives them a :class:`StepPlan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from bdbnet.models.preprocess import Preprocessing

__all__ = ["PlannedLayer", "ReIDModel", "StepPlan", "TrainOutput"]


@dataclass
class TrainOutput:
    """What a training forward returns: per-branch embeddings (for the triplet loss) and
    logits (for the softmax loss), keyed by branch name (BDB: ``"global"``, ``"drop"``)."""

    features: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]

    @staticmethod
    def concat(outputs: list[TrainOutput]) -> TrainOutput:
        """Join the outputs of consecutive chunks of one batch, in chunk order."""
        first = outputs[0]
        return TrainOutput(
            features={k: torch.cat([o.features[k] for o in outputs]) for k in first.features},
            logits={k: torch.cat([o.logits[k] for o in outputs]) for k in first.logits},
        )

    def map(self, fn) -> TrainOutput:
        """The same output with ``fn`` applied to every tensor (e.g. a gather over ranks)."""
        return TrainOutput(
            {k: fn(v) for k, v in self.features.items()},
            {k: fn(v) for k, v in self.logits.items()},
        )


@dataclass
class StepPlan:
    """The random draws of one training step when its batch is forwarded in several chunks
    (replicas, processes): ``chunks`` draws come from a generator seeded by ``seed`` and chunk
    ``index`` uses the ``index``-th, so any layout of the same chunks (W processes x R
    replicas) draws the same. ``nn.DataParallel`` drew one per replica too, from each GPU's
    generator.

    The draws are made here, when the engine sets the plan before the forward (``uniform``:
    ``chunks x 2`` floats in [0, 1), scaled by the layer in its forward), so the forward holds
    no generator and no Python number taken from a tensor: it compiles without graph breaks.
    """

    seed: int
    chunks: int
    index: int = 0
    uniform: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        self.uniform = torch.rand(self.chunks, 2, generator=gen)


class PlannedLayer(nn.Module):
    """A layer whose training-time draw follows ``plan`` when the engine sets one (``None``:
    the layer draws from torch's generator, as on a single device)."""

    plan: StepPlan | None = None


@runtime_checkable
class ReIDModel(Protocol):
    """What every registered model offers (see the module documentation)."""

    num_classes: int  # classifier width (training identities or classes); 0: no classifier
    feature_dim: int  # width of the eval-mode features
    input_stride: int  # input height and width are multiples of this
    preprocess: Preprocessing  # how an image becomes this model's input
    training: bool

    def __call__(self, images: torch.Tensor) -> torch.Tensor | TrainOutput: ...
