"""``bdbnet export --format openvino``: the eval-mode network as an OpenVINO IR (``.xml`` +
``.bin``), in fp32, fp16 (compressed weights) or INT8 (NNCF post-training quantisation,
calibrated on images the caller names -- never the test split by default).

The metadata travels in the IR itself (its ``rt_info``, key ``bdbnet``: the same JSON as an
ONNX file's), so the ``.xml`` alone says how to preprocess an image. Both files are written
under temporary names and renamed into place, the ``.xml`` last, so a failed export leaves no
half model behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bdbnet.errors import DataError, OutputError
from bdbnet.files import remove_stale_temporaries, temporary_prefix
from bdbnet.inference.runtimes.openvino_model import RT_INFO_KEY, openvino
from bdbnet.models.preprocess import Preprocessing

__all__ = ["CALIBRATION_LIMIT", "calibration_inputs", "export_openvino"]

#: Calibration images NNCF looks at, at most (its own default subset size).
CALIBRATION_LIMIT = 300


def calibration_inputs(paths: Sequence[str], spec: Preprocessing) -> list[np.ndarray]:
    """The network inputs (``1 x 3 x H x W`` float32, preprocessed by ``spec``) of up to
    :data:`CALIBRATION_LIMIT` images, in order; unreadable files are a
    :class:`~bdbnet.errors.DataError` naming them."""
    from bdbnet.data.images import UnreadableImageError, read_image
    from bdbnet.data.transforms import inference_transform

    transform = inference_transform(spec)
    inputs = []
    for path in list(paths)[:CALIBRATION_LIMIT]:
        try:
            image = read_image(path)
        except UnreadableImageError as err:
            reason = err.__cause__ or err
            raise DataError(f"calibration image {path} cannot be read ({reason})") from err
        inputs.append(transform(image).as_subclass(torch.Tensor)[None].numpy())
    return inputs


def export_openvino(
    model: torch.nn.Module,
    meta: dict[str, Any],
    output: Path,
    precision: str = "fp32",
    calibration: list[np.ndarray] | None = None,
) -> Path:
    """Write ``output`` (``.xml``) and its ``.bin``; ``meta`` is stored in the IR."""
    ov = openvino()
    h, w = meta["input"]["shape"][2:4]
    example = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        graph = ov.convert_model(model.eval(), example_input=example, input=[(-1, 3, h, w)])
    graph.inputs[0].get_tensor().set_names({"images"})
    graph.outputs[0].get_tensor().set_names({"features"})
    if precision == "int8":
        graph = _quantise(graph, calibration or [])
    graph.set_rt_info(json.dumps(meta), [RT_INFO_KEY])
    folder = None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(output)  # what killed exports of this model left
        # OpenVINO writes two files: into a temporary folder next to the output, then renamed
        prefix = temporary_prefix(output)
        folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=output.parent))
        temp = folder / "model.xml"
        ov.save_model(graph, str(temp), compress_to_fp16=precision == "fp16")
        os.replace(temp.with_suffix(".bin"), output.with_suffix(".bin"))
        os.replace(temp, output)  # the .xml last: it is what makes the model visible
    except (OSError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OutputError(
            f"cannot write {output} ({reason}): is the disk full or the folder read-only?"
        ) from err
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return output


def _quantise(graph: Any, calibration: list[np.ndarray]) -> Any:
    """NNCF's post-training INT8 quantisation of ``graph`` over the ``calibration`` inputs."""
    try:
        import nncf
    except ImportError as err:
        raise ImportError("INT8 export needs nncf: pip install 'bdbnet[openvino]'") from err
    if not calibration:
        raise DataError("INT8 quantisation needs calibration images (--calibration DIR)")
    dataset = nncf.Dataset(calibration)
    return nncf.quantize(graph, dataset, subset_size=len(calibration))
