"""``bdbnet export``: ONNX, OpenVINO (fp32, fp16, INT8) or TorchScript graphs, or safetensors
weights, for deployment."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bdbnet.cli.support import POSITIVE, CLIError, add_command, int_at_least

SUFFIXES = {
    "onnx": (".onnx",),
    "openvino": (".xml",),
    "torchscript": None,
    "safetensors": (".safetensors",),
}
PRECISIONS = ("fp32", "fp16", "int8")  # bdbnet.inference.export.PRECISIONS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "export",
        "ONNX, OpenVINO or TorchScript graph, or safetensors weights",
        """
        onnx / openvino / torchscript: the eval-mode network as a graph with a dynamic batch
        axis, its preprocessing stored in the file's metadata (every --checkpoint option and
        FeatureExtractor run an .onnx in ONNX Runtime and an OpenVINO .xml in OpenVINO).
        openvino: --precision fp16 compresses the weights; int8 quantises weights and
        activations (NNCF post-training quantisation) calibrated on --calibration images, which
        should look like what the model will see and never be the test images. safetensors:
        the weights with the model config and preprocessing, no optimiser state (a fraction of
        a training checkpoint's size), loadable wherever a checkpoint is (--checkpoint of every
        command, FeatureExtractor, load_trained_model).
        """,
        """
        bdbnet export --checkpoint last.pt --format onnx --output bdb.onnx
        bdbnet export --checkpoint last.pt --format onnx --for boxmot --output bdb.onnx
        bdbnet export --checkpoint last.pt --format openvino --precision int8 \\
            --calibration market1501=data/market1501 --output bdb_int8.xml
        bdbnet export --checkpoint last.pt --format safetensors --output bdb.safetensors
        """,
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="our .pt, an exported .safetensors, or an official BDB .pth.tar",
    )
    p.add_argument(
        "--format", required=True, choices=list(SUFFIXES), help="what to write (see above)"
    )
    p.add_argument("--output", required=True, metavar="FILE", help="the file to write")
    p.add_argument(
        "--height",
        type=POSITIVE,
        default=None,
        help="graph input height, a multiple of 16 (default: the recipe's)",
    )
    p.add_argument(
        "--width",
        type=POSITIVE,
        default=None,
        help="graph input width, a multiple of 16 (default: the recipe's)",
    )
    p.add_argument("--opset", type=int_at_least(7), default=17, help="ONNX opset")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="openvino only for fp16 and int8 (see above)",
    )
    p.add_argument(
        "--for",
        dest="tracker",
        default=None,
        choices=["boxmot"],
        help="also write the files a tracking package reads (boxmot: <output>.metadata.json "
        "and <output stem>.boxmot.yaml, its ReID component config)",
    )
    p.add_argument(
        "--calibration",
        default=None,
        metavar="DIR|NAME=ROOT",
        help="images calibrating --precision int8: a folder (searched recursively) or "
        "NAME=ROOT, the train split of a dataset (`bdbnet datasets`); at most 300, spread over "
        "it, are used",
    )
    p.set_defaults(func=run)
    return p


def calibration_images(source: str) -> list[str]:
    """The images ``--calibration`` names: a folder's, or the train split of ``NAME=ROOT``
    (never a test split), spread evenly when there are more than the quantiser uses."""
    from bdbnet.data import list_datasets
    from bdbnet.inference import list_images
    from bdbnet.inference.export_openvino import CALIBRATION_LIMIT

    name, sep, root = source.partition("=")
    if sep and name.lower() in list_datasets():
        from bdbnet.data import build_dataset

        paths = [str(r.path) for r in build_dataset(name, root).train]
        where = f"the train split of {name} at {root}"
    else:
        paths, where = list_images(source), f"the calibration folder {source}"
    if not paths:
        raise CLIError(f"no images in {where}")
    step = max(1, len(paths) // CALIBRATION_LIMIT)
    return paths[::step][:CALIBRATION_LIMIT]


def run(args: argparse.Namespace) -> int:
    from bdbnet.inference.export import (
        check_input_size,
        check_opset,
        check_precision,
        export_checkpoint,
        exported_sidecars,
        read_export_metadata,
    )
    from bdbnet.outputs import ensure_output_file

    size = None
    if args.height or args.width:
        if not (args.height and args.width):
            raise CLIError("give both --height and --width (or neither)")
        size = (args.height, args.width)
    ensure_output_file(args.output, SUFFIXES[args.format])
    check_precision(args.format, args.precision)
    if args.format == "onnx":
        check_opset(args.opset)
    if size is not None:
        check_input_size(*size, "export input size")
    calibration: list[str] = []
    if args.precision == "int8":
        if not args.calibration:
            raise CLIError("--precision int8 needs --calibration DIR (images like the model's)")
        calibration = calibration_images(args.calibration)
    elif args.calibration:
        raise CLIError("--calibration is for --precision int8")
    if args.tracker and args.format not in ("onnx", "openvino"):
        raise CLIError(f"--for {args.tracker} needs --format onnx or --format openvino")
    try:
        path = export_checkpoint(
            args.checkpoint,
            args.output,
            args.format,
            size,
            args.opset,
            args.precision,
            calibration,
            tracker=args.tracker,
        )
        meta = read_export_metadata(path)
    except ImportError as err:
        raise CLIError(str(err)) from err
    if args.format == "safetensors":
        print(
            f"wrote {path} (safetensors: {meta['tensors']} tensors, model {meta['model_name']}, "
            f"weights sha256 {meta['weights_sha256'][:16]}...); preprocessing: "
            f"{json.dumps(meta['preprocess'])}"
        )
        return 0
    for sidecar in exported_sidecars(path, args.tracker):
        print(f"wrote {sidecar}")
    print(
        f"wrote {path} ({args.format} {args.precision}): input {meta['input']['shape']} -> output "
        f"{meta['output']['shape']}; preprocessing: {json.dumps(meta['preprocess'])}"
    )
    return 0
