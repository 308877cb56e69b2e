"""``train.replicas``: forward a batch in chunks, as ``nn.DataParallel`` did on its GPUs.

The official BDB numbers come from 4-GPU DataParallel: each GPU normalised its 32-image shard
with its own BatchNorm statistics and dropped its own rectangle, and the running statistics
kept were those of GPU 0. :class:`ReplicaForward` reproduces that on any device count: the
batch is cut into R consecutive chunks, each forwarded separately, the running statistics
restored after every chunk but the first, and each chunk told which rectangle of the step's
:class:`~bdbnet.models.contract.StepPlan` to drop. With W processes (DDP) x R replicas there
are W*R chunks and the plan covers all of them, so 1 process x 4 replicas, 2 x 2 and 4 x 1
train the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from bdbnet.data.samplers import derived_seed
from bdbnet.models.contract import PlannedLayer, StepPlan, TrainOutput


def drop_plan_seed(seed: int, step: int) -> int:
    """The generator seed of step ``step``'s rectangles (the same on every rank)."""
    return derived_seed(seed, step)


class ReplicaForward(nn.Module):
    """Wrap ``model`` so that a training forward runs ``replicas`` chunks separately.

    Args:
        model: A model of the contract (:class:`~bdbnet.models.contract.ReIDModel`): its
            training forward returns a :class:`~bdbnet.models.contract.TrainOutput`.
        replicas: R, chunks per forward (1: a plain forward).
        chunk_offset: Index of this process's first chunk among all chunks of the step
            (``rank * R``); ``total_chunks``: W * R.

    Call :meth:`plan_step` before each training forward when there is more than one chunk in
    all; eval-mode forwards pass straight through.
    """

    def __init__(
        self, model: nn.Module, replicas: int = 1, chunk_offset: int = 0, total_chunks: int = 1
    ) -> None:
        super().__init__()
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {replicas}")
        self.model = model
        self.replicas = replicas
        self.chunk_offset = chunk_offset
        self.total_chunks = total_chunks
        self._drops = [m for m in model.modules() if isinstance(m, PlannedLayer)]
        self._norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]

    def plan_step(self, seed: int) -> None:
        """Draw this step's rectangles from ``seed`` (see :func:`drop_plan_seed`). With a
        single chunk in all nothing is planned: the layer draws from torch's generator, as the
        official single-device code does."""
        if self.total_chunks == 1:
            return
        for drop in self._drops:
            drop.plan = StepPlan(seed, self.total_chunks, self.chunk_offset)

    def _set_chunk(self, index: int) -> None:
        for drop in self._drops:
            if drop.plan is not None:
                drop.plan.index = self.chunk_offset + index

    def forward(self, images: torch.Tensor) -> torch.Tensor | TrainOutput:
        if not self.training or self.replicas == 1:
            self._set_chunk(0)
            return self.model(images)
        if images.shape[0] % self.replicas:
            raise ValueError(
                f"a batch of {images.shape[0]} images cannot be cut into "
                f"{self.replicas} equal replicas"
            )
        outputs = []
        for index, chunk in enumerate(images.chunk(self.replicas)):
            self._set_chunk(index)
            if index == 0:
                outputs.append(self.model(chunk))
                continue
            # DataParallel keeps only replica 0's running statistics: the other chunks update
            # throw-away copies. (Swapped, not copied back in place: the kernels keep the
            # statistics for the backward pass, which an in-place restore would invalidate.)
            kept = [dict(norm._buffers) for norm in self._norms]
            for norm in self._norms:
                for name, buffer in norm._buffers.items():
                    if buffer is not None:
                        norm._buffers[name] = buffer.clone()
            try:
                outputs.append(self.model(chunk))
            finally:
                for norm, buffers in zip(self._norms, kept):
                    norm._buffers.update(buffers)
        return TrainOutput.concat(outputs)
