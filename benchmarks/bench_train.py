"""Training throughput: the data path alone, the train step alone, and the two end to end.

The step is the engine's own (``bdbnet.engine.step.train_step``: forward, the paper's four
losses, backward, the non-finite guard, the optimiser built as ``bdbnet train`` builds it) on
the ``market1501`` preset's network (ResNet-50 BDB, random weights), fed alone one fixed batch
of the tensor data path kept on the device: real pixels, as end to end sees them. The data path is
``build_batch_source`` of ``bdbnet train`` (decode, augment, collate) over the synthetic
dataset written at the requested resolution's aspect; end to end feeds the step from it.
Rates are training images per second, best and median of the timed steps after warm-up.

    python benchmarks/bench_train.py [--steps 6] [--identities 8] [--variants fp32 fp32+cl ...]

Variants: ``fp32``, ``bf16`` (autocast), ``+cl`` (channels_last), ``+compile``
(``torch.compile`` of the network); ``preset``: what the ``market1501`` preset runs on this
machine (``train.amp=auto``, channels_last); ``official``: the official code's numerics and
optimiser -- fp32, NCHW, torch's default CPU Adam (the per-tensor loop) -- on the same network
(equal to the official ``BFE``, tests/models/test_official.py) and our losses: a stand-in for the
official code, whose own step was not run here; ``preset+compile``: the preset, compiled.
Pipelines (``--pipelines``): ``pil`` (DataLoader workers), ``tensor`` (decoded once into RAM,
augmented in batches on the device), ``tensor+device`` (decoded once onto the GPU:
``data.cache=device``). The model FLOP rate on a GPU uses 41.4 GFLOP per training image at
384x128 (3x the forward's 13.8 GFLOP), scaled with the pixel count.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import cpu_flags, cpu_kind, cpu_model, load_average, ram_gib, write_section

from bdbnet.config import load_config
from bdbnet.data import build_dataset
from bdbnet.data.synthetic import generate_synthetic_reid
from bdbnet.engine.builders import build_batch_source, build_criterion, build_model, build_optimizer
from bdbnet.engine.step import train_step
from bdbnet.runtime.device import configure_backends
from bdbnet.runtime.distributed import DistContext
from bdbnet.runtime.precision import resolve_amp

TRAIN_GFLOP_384x128 = 41.4


def config(args: argparse.Namespace, variant: str, pipeline: str | None = None):
    overrides = []
    if not variant.startswith("preset"):  # preset: the preset's own amp=auto, channels_last
        amp = "bf16" if variant.startswith("bf16") else "none"
        overrides += [f"train.amp={amp}", f"train.channels_last={str('+cl' in variant).lower()}"]
    overrides += [
        f"data.num_identities={args.identities}",
        f"data.height={args.height}",
        f"data.width={args.width}",
        f"data.workers={args.workers}",
        "model.pretrained=null",
    ]
    if pipeline and pipeline != "pil":  # pil: the default, also before data.pipeline existed
        name, _, cache = pipeline.partition("+")  # tensor+device: decoded once onto the GPU
        overrides.append(f"data.pipeline={name}")
        if cache:
            overrides.append(f"data.cache={cache}")
    return load_config("market1501", overrides=overrides)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rates(times: list[float], batch: int) -> tuple[float, float]:
    return batch / min(times), batch / statistics.median(times)


def bench_step(args, variant: str, device: torch.device, num_classes: int, batches):
    """Seconds per step, fed by ``batches`` (an iterator of (images, labels))."""
    cfg = config(args, variant)
    configure_backends(device)
    model = build_model(cfg, num_classes).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)
    if variant == "official":  # torch's default Adam on the CPU: the per-tensor loop
        o = cfg.optim
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay, foreach=False)
    criterion = build_criterion(cfg)
    net = torch.compile(model) if "+compile" in variant else model
    amp = resolve_amp(device, cfg.train.amp)
    model.train()
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        images, labels = next(batches)
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        train_step(net, images, labels, criterion, optimizer, amp=amp)
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


def endless(source):
    epoch = 0
    while True:
        source.set_epoch(epoch)
        yield from source
        epoch += 1


def fixed_batch(args, splits, device: torch.device):
    """One batch of the tensor data path on the device, repeated for the step alone."""
    source = build_batch_source(splits, config(args, "fp32", "tensor"), DistContext(device=device))
    images, labels = next(endless(source))
    return itertools.repeat((images.to(device), labels.to(device)))


def bench_data(args, splits, pipeline: str | None, device: torch.device) -> list[float]:
    cfg = config(args, "fp32", pipeline)
    source = build_batch_source(splits, cfg, DistContext(device=device))
    batches = endless(source)
    times = []
    for i in range(args.warmup + args.data_steps):
        start = time.perf_counter()
        images, _ = next(batches)
        images = images.to(device)
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--data-steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--identities", type=int, default=8, help="P (K = 4)")
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    variants = ["official", "fp32", "fp32+cl", "bf16", "bf16+cl", "preset"]
    parser.add_argument("--variants", nargs="+", default=variants)
    parser.add_argument("--pipelines", nargs="+", default=["pil"])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch = args.identities * 4
    load_before = load_average()
    rows, data_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        # 128x64 JPEGs: Market-1501's own size, upscaled to the training resolution
        generate_synthetic_reid(root, train_ids=64, test_ids=8, seed=0)
        splits = build_dataset("synthetic", root=str(root))
        for pipeline in args.pipelines:
            best, median = rates(bench_data(args, splits, pipeline, device), batch)
            data_rows.append(f"| {pipeline} | {best:.1f} | {median:.1f} |")
            print(data_rows[-1], flush=True)
        fixed = fixed_batch(args, splits, device)
        for variant in args.variants:
            step = rates(bench_step(args, variant, device, splits.num_train_pids, fixed), batch)
            cells = [f"{step[0]:.2f}", f"{step[1]:.2f}"]
            for pipeline in args.pipelines:
                cfg = config(args, variant, pipeline)
                source = build_batch_source(splits, cfg, DistContext(device=device))
                e2e = rates(
                    bench_step(args, variant, device, splits.num_train_pids, endless(source)),
                    batch,
                )
                cells += [f"{e2e[1]:.2f}", f"{100 * e2e[1] / step[1]:.0f}%"]
            if device.type == "cuda":
                gflop = TRAIN_GFLOP_384x128 * args.height * args.width / (384 * 128)
                cells.append(f"{step[1] * gflop / 1000:.1f} TFLOP/s")
            rows.append(f"| {variant} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    section = "## Training throughput, " + (
        torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_kind()
    )
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_model()} ({cpu_flags()}), {torch.get_num_threads()} threads, "
        f"{ram_gib():.0f} GiB RAM"
    )
    e2e_head = "".join(f" end to end, {p} (median) | of the step |" for p in args.pipelines)
    e2e_rule = "---:|---:|" * len(args.pipelines)
    gpu_head, gpu_rule = (" model FLOP/s |", "---:|") if device.type == "cuda" else ("", "")
    text = "\n".join(
        [
            section,
            "",
            "`python benchmarks/bench_train.py "
            f"--identities {args.identities} --height {args.height} --width {args.width} "
            f"--workers {args.workers} --device {args.device}`: the `market1501` preset's "
            f"network (ResNet-50 BDB, random weights), batch {batch} "
            f"({args.identities} identities x 4) at {args.height}x{args.width}; the engine's "
            "train step (forward, the four losses, backward, guard, fused Adam) on one fixed "
            "batch of the tensor data path (real pixels) on the device, the `bdbnet train` "
            "data path over the synthetic dataset (128x64 JPEGs like Market-1501's), and "
            f"the two together; training images per second, {args.steps} timed steps after "
            f"{args.warmup} warm-up steps.",
            "",
            f"- Machine: {machine}; torch {torch.__version__}",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
            f"before / after (1/5/15 min): {load_before} | {load_average()}",
            "",
            "Data path alone (decode, augment, collate; images/s):",
            "",
            "| pipeline | best | median |",
            "|---|---:|---:|",
            *data_rows,
            "",
            "Train step:",
            "",
            f"| variant | step alone, best | step alone, median |{e2e_head}{gpu_head}",
            f"|---|---:|---:|{e2e_rule}{gpu_rule}",
            *rows,
        ]
    )
    print(text)
    if not args.no_write:
        write_section(text, section)


if __name__ == "__main__":
    main()
