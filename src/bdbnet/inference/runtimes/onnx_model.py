"""The ONNX Runtime runtime: a ``bdbnet export --format onnx`` file, on the CPU (or a GPU
through ONNX Runtime's CUDA provider where installed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bdbnet.errors import CheckpointError
from bdbnet.inference.runtimes.exported import ExportedRuntime, parse_metadata


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            "running .onnx models needs onnxruntime: pip install 'bdbnet[onnx]'"
        ) from err
    return onnxruntime


class OnnxRuntime(ExportedRuntime):
    """An exported ``.onnx`` model in an ``onnxruntime.InferenceSession``."""

    runtime = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], device: torch.device) -> None:
        ort = _onnxruntime()
        path = Path(path)
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as err:  # onnxruntime raises its own types for bad files
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path}: not a readable ONNX model ({reason})") from err
        meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map.get("bdbnet"), path)
        graph_input, graph_output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = graph_input.name
        width = graph_output.shape[-1]
        super().__init__(
            path, meta, list(graph_input.shape), width if isinstance(width, int) else None, "fp32"
        )
        uses_gpu = self.session.get_providers()[0] == "CUDAExecutionProvider"
        self.device = torch.device("cuda" if uses_gpu else "cpu")

    def run(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: images})[0]
