"""What the graph runtimes share: an exported model file's metadata (the one preprocessing spec,
the feature width, the source weights), read without PyTorch weights, checked against the
graph's own input and output shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from bdbnet.errors import CheckpointError
from bdbnet.inference.runtimes.base import RuntimeInfo, flip_average
from bdbnet.models.preprocess import Preprocessing

__all__ = ["ExportedRuntime", "parse_metadata"]


def parse_metadata(text: str | None, path: Path) -> dict[str, Any]:
    """The ``bdbnet`` JSON of an exported file; a file without it raises
    :class:`~bdbnet.errors.CheckpointError` naming it."""
    if not text:
        raise CheckpointError(
            f"{path}: no bdbnet metadata (not written by bdbnet export): its preprocessing is "
            "unknown; export the checkpoint again with bdbnet export"
        )
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: unreadable bdbnet metadata ({err})") from err
    if not isinstance(meta, dict) or "preprocess" not in meta:
        raise CheckpointError(f"{path}: bdbnet metadata without a preprocessing entry")
    return meta


class ExportedRuntime:
    """Shared part of the ONNX Runtime and OpenVINO runtimes: metadata, shapes and batching.
    Subclasses set :attr:`run` (a ``float32 NCHW numpy array -> (B, D) array`` callable)."""

    runtime = ""

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        input_shape: list[Any],
        feature_dim: int | None,
        precision: str,
    ) -> None:
        self.device = torch.device("cpu")
        self.meta = meta
        self.preprocess = Preprocessing.from_dict(meta["preprocess"], str(path))
        graph_size = tuple(int(v) for v in input_shape[2:4] if isinstance(v, int))
        if len(graph_size) == 2 and graph_size != self.preprocess.size:
            raise CheckpointError(
                f"{path}: the graph takes {graph_size[0]}x{graph_size[1]} inputs but its "
                f"metadata says {self.preprocess.size[0]}x{self.preprocess.size[1]}; export "
                "it again"
            )
        recorded = meta.get("output", {}).get("shape", [None, None])[-1]
        self.feature_dim = int(feature_dim or recorded or 0)
        if not self.feature_dim:
            raise CheckpointError(
                f"{path}: the feature dimension is neither in the graph nor in its metadata"
            )
        quantised = meta.get("precision") == "int8"
        self.info = RuntimeInfo(
            path=path,
            runtime=self.runtime,
            precision="int8" if quantised else precision,
            weights_sha256=str(meta.get("weights_sha256", "")),
            config=meta.get("config"),
        )

    def run(self, images: Any) -> Any:  # pragma: no cover - set by subclasses
        raise NotImplementedError

    def embed(self, images: torch.Tensor, flip: bool = False) -> torch.Tensor:
        def run(batch: torch.Tensor) -> torch.Tensor:
            array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
            return torch.from_numpy(self.run(array)).float()

        return flip_average(run, images, flip)
