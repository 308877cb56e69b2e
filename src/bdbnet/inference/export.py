"""Export a trained BDB model for deployment: ONNX, OpenVINO
(:mod:`~bdbnet.inference.export_openvino`: fp32, fp16, INT8) or TorchScript graphs, or
safetensors weights (:mod:`bdbnet.models.weights`: the state dict with model config and
preprocessing, no optimiser state, loadable wherever a checkpoint is).

The exported graph is the eval-mode network (Batch DropBlock is the identity, BatchNorm uses its
running statistics): input ``images`` ``(N, 3, H, W)`` float32, already preprocessed; output
``features`` ``(N, D)`` float32. The batch axis is dynamic. What a deployment must do to an image
before the network (resize, mean/std normalisation, padding for the retrieval recipe) is stored
in the file as JSON, so the file alone is enough:

* ONNX: the model's ``metadata_props``, key ``"bdbnet"`` (and ``"preprocess"`` alone);
* OpenVINO: the IR's ``rt_info``, key ``"bdbnet"``;
* TorchScript: the extra file ``"bdbnet.json"`` (``torch.jit.load(f, _extra_files=...)``).

:func:`read_export_metadata` reads it back from either.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bdbnet.errors import ConfigError, DataError
from bdbnet.files import atomic_write, file_sha256
from bdbnet.version import __version__

__all__ = [
    "EXPORT_FORMATS",
    "PRECISIONS",
    "check_input_size",
    "export_checkpoint",
    "export_metadata",
    "read_export_metadata",
]

EXPORT_FORMATS = ("onnx", "openvino", "torchscript", "safetensors")
PRECISIONS = ("fp32", "fp16", "int8")
EXTRA_FILE = "bdbnet.json"


def export_metadata(
    preprocess: dict[str, Any], feature_dim: int, input_size: tuple[int, int], **extra: Any
) -> dict[str, Any]:
    """The JSON description stored in exported files."""
    h, w = input_size
    return {
        "bdbnet_version": __version__,
        "model": "BDBNet (eval mode; Batch DropBlock is the identity)",
        "input": {
            "name": "images",
            "shape": ["batch", 3, h, w],
            "dtype": "float32",
            "layout": "NCHW, RGB",
            "value": "(pixel / 255 - mean) / std after the resize below",
        },
        "output": {"name": "features", "shape": ["batch", feature_dim], "dtype": "float32"},
        "preprocess": preprocess,
        **extra,
    }


def _export_onnx(
    model: torch.nn.Module, example: torch.Tensor, output: Path, meta: dict, opset: int
) -> None:
    try:
        import onnx
    except ImportError as err:
        raise ImportError("ONNX export needs onnx: pip install 'bdbnet[onnx]'") from err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        # The TorchScript-based exporter: fast, exact for this plain conv net, dynamic batch.
        buffer = io.BytesIO()
        torch.onnx.export(
            model,
            (example,),
            buffer,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(
        proto, {"bdbnet": json.dumps(meta), "preprocess": json.dumps(meta["preprocess"])}
    )
    atomic_write(output, lambda f: f.write(proto.SerializeToString()))


def _export_torchscript(
    model: torch.nn.Module, example: torch.Tensor, output: Path, meta: dict
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        # Saved to memory first: torch.jit.save to a full disk aborts the process.
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(meta)})
    atomic_write(output, lambda f: f.write(buffer.getvalue()))


def _export_safetensors(
    model: torch.nn.Module, cfg: Any, preprocess: dict, checkpoint: Any, output: Path
) -> Path:
    """The weights alone; the graph's input size is the recipe's (``--height/--width`` do not
    apply: the network takes any multiple of 16)."""
    from bdbnet.models.registry import model_kwargs_from_config
    from bdbnet.models.weights import write_safetensors

    write_safetensors(
        output,
        model.state_dict(),
        {
            "bdbnet_version": __version__,
            "model_name": cfg.model.name,
            "model_kwargs": model_kwargs_from_config(cfg.model),
            "num_classes": int(model.num_classes),
            "feature_dim": int(model.feature_dim),
            "config": cfg.to_dict(),
            "preprocess": preprocess,
            "checkpoint": Path(checkpoint).name,
            "checkpoint_sha256": file_sha256(checkpoint),
        },
    )
    return output


#: The largest export input side: tracing at 4096x4096 already takes several GB (the graph's
#: activations grow with the pixels: 16000x16000 tried to allocate 32 GB).
MAX_INPUT_SIDE = 4096
#: Opsets of torch's TorchScript-based ONNX exporter (the one bdbnet uses).
OPSETS = range(7, 21)


def check_opset(opset: int) -> None:
    if opset not in OPSETS:
        raise ConfigError(
            f"ONNX opset {opset} is not one the exporter writes: use {OPSETS.start} to "
            f"{OPSETS.stop - 1} (default 17)"
        )


def check_input_size(height: int, width: int, what: str = "input size", stride: int = 16) -> None:
    """The rule training applies (:func:`bdbnet.config.validate`): sizes are multiples of the
    model's ``input_stride`` (the model contract; BDB's total stride is 16 with last stride 1),
    so that its maps tile the input, and at most :data:`MAX_INPUT_SIDE`."""
    if max(height, width) > MAX_INPUT_SIDE:
        raise ConfigError(
            f"{what} {height}x{width}: sides above {MAX_INPUT_SIDE} are refused (tracing needs "
            "memory in proportion to the pixels); re-ID models use e.g. 384x128"
        )
    if height < stride or width < stride or height % stride or width % stride:
        raise ConfigError(
            f"{what} {height}x{width} must be multiples of {stride} (the network's total "
            "stride), as in training; e.g. 384x128"
        )


def check_precision(format: str, precision: str) -> None:
    """fp16 and INT8 are OpenVINO exports (compressed weights; NNCF quantisation)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "fp32" and format != "openvino":
        raise ConfigError(
            f"--precision {precision} is written as an OpenVINO IR: use --format openvino "
            f"(a {format} export is fp32)"
        )


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    format: str = "onnx",
    input_size: tuple[int, int] | None = None,
    opset: int = 17,
    precision: str = "fp32",
    calibration: Sequence[str] = (),
    tracker: str | None = None,
) -> Path:
    """Export ``checkpoint`` (ours or an official ``*.pth.tar``) to ``output``.

    ``input_size`` (height, width) defaults to the checkpoint's test size; like training, it
    must be multiples of 16. The traced example has batch 2 and the exported batch axis is
    dynamic. The metadata's ``preprocess.resize`` is always the graph's input size, so a
    deployment that follows it feeds the graph what it expects. ``precision`` ``fp16`` and
    ``int8`` need ``format="openvino"``; ``int8`` is calibrated on the ``calibration`` image
    paths. ``tracker="boxmot"`` also writes the files boxmot reads
    (:mod:`~bdbnet.inference.export_trackers`; checked before anything is written). Returns
    ``output``.
    """
    from bdbnet.models.loading import load_trained_model
    from bdbnet.models.weights import state_dict_sha256

    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {format!r}")
    check_precision(format, precision)
    if format == "onnx":
        check_opset(opset)
    from bdbnet.inference.runtimes import runtime_for

    if runtime_for(checkpoint) != "torch":
        raise ConfigError(
            f"{checkpoint} is already an exported graph: export takes PyTorch weights (our .pt, "
            "an exported .safetensors or an official .pth.tar)"
        )
    if precision == "int8" and not calibration:
        raise DataError("INT8 quantisation needs calibration images (--calibration DIR)")
    model, cfg = load_trained_model(checkpoint, "cpu")
    spec = model.preprocess
    if format == "safetensors":
        return _export_safetensors(model, cfg, spec.to_dict(), checkpoint, Path(output))
    h, w = input_size if input_size is not None else spec.size
    check_input_size(int(h), int(w), "export input size", model.input_stride)
    spec = spec.with_size(h, w)  # the graph's size, whatever the recipe's
    h, w = spec.size
    output = Path(output)
    if tracker is not None:
        from bdbnet.inference.export_trackers import check_tracker

        check_tracker(tracker, spec, output)
    weights = state_dict_sha256(model.state_dict())
    calibration_inputs = None
    if precision == "int8":  # quantised weights give other features: another identity
        from bdbnet.inference.export_openvino import calibration_inputs as preprocessed

        calibration_inputs = preprocessed(calibration, spec)
        used = "\n".join(file_sha256(p) for p in list(calibration)[: len(calibration_inputs)])
        weights = hashlib.sha256(f"{weights}:int8:{used}".encode()).hexdigest()
    meta = export_metadata(
        spec.to_dict(),
        int(model.feature_dim),
        (h, w),
        checkpoint=Path(checkpoint).name,
        checkpoint_sha256=file_sha256(checkpoint),
        precision=precision,
        weights_sha256=weights,
        config=cfg.to_dict(),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    model.eval()
    if format == "openvino":
        from bdbnet.inference.export_openvino import export_openvino

        export_openvino(model, meta, output, precision, calibration_inputs)
    elif format == "onnx":
        _export_onnx(model, example, output, meta, opset)
    else:
        _export_torchscript(model, example, output, meta)
    if tracker is not None:
        from bdbnet.inference.export_trackers import write_tracker_files

        write_tracker_files(tracker, output, meta)
    return output


def exported_sidecars(path: str | os.PathLike[str], tracker: str | None) -> list[Path]:
    """The files ``export_checkpoint(..., tracker=tracker)`` wrote beside ``path``."""
    if tracker is None:
        return []
    from bdbnet.inference.export_trackers import tracker_files

    return tracker_files(tracker, Path(path))


def read_export_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON description stored in an exported ONNX, OpenVINO, TorchScript or safetensors
    file."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        from bdbnet.inference.runtimes.openvino_model import ir_metadata, openvino, read_ir

        return ir_metadata(read_ir(openvino().Core(), path), path)
    if path.suffix.lower() == ".safetensors":
        from bdbnet.models.weights import read_safetensors_metadata

        return read_safetensors_metadata(path)
    if path.suffix.lower() == ".onnx":
        try:
            import onnx
        except ImportError as err:
            raise ImportError("reading ONNX files needs onnx: pip install 'bdbnet[onnx]'") from err
        proto = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        if "bdbnet" not in props:
            raise ValueError(f"{path}: no bdbnet metadata")
        return json.loads(props["bdbnet"])
    files = {EXTRA_FILE: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    if not files[EXTRA_FILE]:
        raise ValueError(f"{path}: no bdbnet metadata")
    return json.loads(files[EXTRA_FILE])
