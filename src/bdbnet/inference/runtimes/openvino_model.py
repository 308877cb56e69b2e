"""The OpenVINO runtime: a ``bdbnet export --format openvino`` IR (``.xml`` + ``.bin``), fp32,
fp16 or INT8, compiled for the CPU (or another OpenVINO device)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bdbnet.errors import CheckpointError
from bdbnet.inference.runtimes.exported import ExportedRuntime, parse_metadata
from bdbnet.runtime.precision import resolve_amp

#: The rt_info key of an IR that holds bdbnet's JSON metadata.
RT_INFO_KEY = "bdbnet"


def openvino() -> Any:
    try:
        import openvino
    except ImportError as err:
        raise ImportError("OpenVINO models need openvino: pip install 'bdbnet[openvino]'") from err
    return openvino


def ir_metadata(graph: Any, path: Path) -> dict[str, Any]:
    """bdbnet's metadata of a read IR (its ``rt_info``), checked by
    :func:`~bdbnet.inference.runtimes.exported.parse_metadata`."""
    has = graph.has_rt_info([RT_INFO_KEY])
    return parse_metadata(graph.get_rt_info([RT_INFO_KEY]).astype(str) if has else None, path)


def read_ir(core: Any, path: Path) -> Any:
    """``core.read_model`` of an IR whose ``.bin`` is checked first; an unreadable file is a
    :class:`~bdbnet.errors.CheckpointError` naming it."""
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise CheckpointError(
            f"{path}: its weights file {weights.name} is missing (an OpenVINO IR is the .xml "
            "and the .bin beside it)"
        )
    try:
        return core.read_model(str(path))
    except Exception as err:  # OpenVINO raises RuntimeError subclasses for bad files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable OpenVINO IR ({reason})") from err


class OpenVinoRuntime(ExportedRuntime):
    """An exported OpenVINO IR compiled by ``openvino.Core``.

    ``amp`` picks the CPU's inference precision as for PyTorch: ``auto`` lets OpenVINO use bf16
    where the CPU computes it natively (its default there), ``none`` forces fp32.
    """

    runtime = "openvino"

    def __init__(
        self, path: str | os.PathLike[str], device: torch.device, amp: str = "auto"
    ) -> None:
        ov = openvino()
        path = Path(path)
        core = ov.Core()
        model = read_ir(core, path)
        meta = ir_metadata(model, path)
        shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape]
        out = model.outputs[0].get_partial_shape()[-1]
        fp32 = resolve_amp(torch.device("cpu"), amp) == "none"
        config = {"INFERENCE_PRECISION_HINT": "f32"} if fp32 else {}
        self.compiled = core.compile_model(model, "CPU", config)
        precision = meta.get("precision", "fp32")
        if precision == "fp32" and not fp32:
            precision = "bf16"  # OpenVINO computes in bf16 where the CPU has it natively
        super().__init__(path, meta, dims, out.get_length() if out.is_static else None, precision)

    def run(self, images: np.ndarray) -> np.ndarray:
        return self.compiled(images)[0]
