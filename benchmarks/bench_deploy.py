"""The cost of deployment: each inference runtime x precision against eager PyTorch, side by side.

Usage::

    python benchmarks/bench_deploy.py [--checkpoint last.pt --dataset synthetic --root DIR]
        [--rounds 3] [--calibration 32] [--no-write]

What it measures, in one process, on this CPU:

1. The model: ``--checkpoint`` (a trained one, e.g. the demo's ``demo_output/run/last.pt``), or
   by default the paper's network (ResNet-50 BDB, 1536-d, 384x128) with random weights, whose
   speed does not depend on them.
2. Exports through ``bdbnet.inference.export``: ONNX (fp32), OpenVINO fp32 and OpenVINO INT8
   (NNCF, calibrated on ``--calibration`` images: the train split of ``--dataset`` when given,
   else random images; never the test split).
3. Speed: images/s at batch 1 and 32 of each runtime's forward on the same normalised batch
   (decoding excluded, as the network dominates on a CPU), rounds alternating between the
   variants so that a busy neighbour slows all of them alike; median of ``--rounds``. Beside
   them, the official-style eager fp32 forward (NCHW, no autocast) and the PyTorch default
   (``amp=auto``, channels_last).
4. Agreement: the smallest cosine of each variant's features to the eager fp32 ones.
5. Accuracy (with ``--dataset``): mAP and Rank-1 of each artifact on the test split, by the
   same protocol as the checkpoint (``bdbnet.inference.dataset_eval.evaluate_model``).

Rewrites the "## Deploy, <machine kind>" section of ``benchmarks/results.md`` ("## Deploy
accuracy, <machine kind>" with ``--dataset``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import cpu_flags, cpu_kind, cpu_model, load_average, write_section
from PIL import Image

from bdbnet.config import Config, load_config
from bdbnet.files import atomic_save
from bdbnet.inference.export import export_checkpoint
from bdbnet.inference.runtimes import open_runtime
from bdbnet.models import BDBNet
from bdbnet.models.loading import checkpoint_metadata


def paper_checkpoint(folder: Path) -> Path:
    """The paper's network with random weights (BatchNorm statistics estimated on noise)."""
    cfg = load_config("market1501")
    torch.manual_seed(0)
    model = BDBNet(751, pretrained=None)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 384, 128))
    state = {**checkpoint_metadata(cfg, 751, "market1501"), "model": model.state_dict()}
    return atomic_save(state, folder / "paper.pt")


def calibration_images(folder: Path, count: int, dataset: str | None, root: str | None) -> list:
    if dataset:
        from bdbnet.data import build_dataset

        train = build_dataset(dataset, root).train
        step = max(1, len(train) // count)
        return [r.path for r in train[::step][:count]]
    rng = np.random.default_rng(0)
    out = folder / "calibration"
    out.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = out / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (256, 96, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--root", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=32, help="INT8 calibration images")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = Path(args.checkpoint) if args.checkpoint else paper_checkpoint(folder)
        calibration = calibration_images(folder, args.calibration, args.dataset, args.root)
        artifacts, export_s = {}, {}
        for name, fmt, precision, suffix in (
            ("ONNX Runtime fp32", "onnx", "fp32", ".onnx"),
            ("OpenVINO fp32", "openvino", "fp32", ".xml"),
            ("OpenVINO INT8", "openvino", "int8", ".xml"),
        ):
            t0 = time.perf_counter()
            artifacts[name] = export_checkpoint(
                checkpoint, folder / f"{fmt}_{precision}{suffix}", fmt,
                precision=precision, calibration=calibration if precision == "int8" else (),
            )  # fmt: skip
            export_s[name] = time.perf_counter() - t0
        cpu = torch.device("cpu")
        variants = {
            "PyTorch eager fp32, official-style (NCHW)": open_runtime(
                checkpoint, "torch", cpu, amp="none", channels_last=False
            ),
            "PyTorch default (amp=auto, NHWC)": open_runtime(checkpoint, "torch", cpu, "auto"),
            "ONNX Runtime fp32": open_runtime(artifacts["ONNX Runtime fp32"], "auto", cpu),
            "OpenVINO fp32": open_runtime(artifacts["OpenVINO fp32"], "auto", cpu, amp="none"),
            "OpenVINO INT8": open_runtime(artifacts["OpenVINO INT8"], "auto", cpu),
        }
        if cpu_kind() == "CPU with native bf16":
            variants["OpenVINO auto (bf16 where native)"] = open_runtime(
                artifacts["OpenVINO fp32"], "auto", cpu, amp="auto"
            )
        reference = next(iter(variants.values()))
        h, w = reference.preprocess.size
        batch = torch.randn(32, 3, h, w, generator=torch.Generator().manual_seed(1))
        expected = reference.embed(batch)
        cosine = {
            name: float(torch.nn.functional.cosine_similarity(rt.embed(batch), expected).min())
            for name, rt in variants.items()
        }
        times: dict[tuple[str, int], list[float]] = {}
        for size in (1, 32):
            x = batch[:size]
            for rt in variants.values():  # warm-up
                rt.embed(x)
            for _ in range(args.rounds):
                for name, rt in variants.items():
                    t0 = time.perf_counter()
                    rt.embed(x)
                    times.setdefault((name, size), []).append(time.perf_counter() - t0)
        accuracy = {}
        if args.dataset:
            from bdbnet.data import build_dataset
            from bdbnet.inference.dataset_eval import evaluate_model

            splits = build_dataset(args.dataset, args.root)
            for name, rt in variants.items():
                cfg = rt.info.training_config() or Config()
                report = evaluate_model(rt, splits, cfg, cpu, progress=False)
                accuracy[name] = report.metrics
    rate = {key: key[1] / statistics.median(v) for key, v in times.items()}
    base = {size: rate[(next(iter(variants)), size)] for size in (1, 32)}
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    model = args.checkpoint or "the paper's ResNet-50 BDB, random weights"
    lines = [
        f"## Deploy{' accuracy' if accuracy else ''}, {cpu_kind()}",
        "",
        f"`python benchmarks/bench_deploy.py` ({when}): {cpu_model()} ({cpu_flags()}), "
        f"{threads} threads, torch {torch.__version__}, load {load_average()}. Model: {model}, "
        f"{h}x{w} inputs, {reference.feature_dim}-d. Median of {args.rounds} rounds alternating "
        f"between the variants; decoding excluded. INT8: NNCF on {len(calibration)} "
        f"calibration images ({'the train split' if args.dataset else 'random images'}).",
        "",
        "| runtime | img/s, batch 1 | img/s, batch 32 | x eager fp32 (batch 32) | min cosine to "
        "eager fp32 |" + (" mAP | Rank-1 |" if accuracy else ""),
        "|---|---:|---:|---:|---:|" + ("---:|---:|" if accuracy else ""),
    ]
    for name in variants:
        row = (
            f"| {name} | {rate[(name, 1)]:.2f} | {rate[(name, 32)]:.2f} | "
            f"{rate[(name, 32)] / base[32]:.2f} | {cosine[name]:.6f} |"
        )
        if accuracy:
            m = accuracy[name]
            row += f" {100 * m['mAP']:.1f} | {100 * m['Rank-1']:.1f} |"
        lines.append(row)
    lines += [
        "",
        "Export times: " + ", ".join(f"{k} {v:.0f} s" for k, v in export_s.items()) + ".",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, lines[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
