"""Data-parallel scaling on this CPU: 1 vs 2 processes of 1 thread each (torchrun, gloo).

Each run is ``torchrun --nproc-per-node N -m bdbnet train`` on the synthetic dataset with the
demo recipe (ResNet-18 BDB, 128x64, P x K = 16 x 4, fp32), for a fixed number of epochs; the
global batch is the same for every N (each process takes P / N identities). The throughput is
the training epochs' global images per second as the run itself logs them (``metrics.jsonl``
epoch lines, data loading included), the first epoch dropped as warm-up.

    python benchmarks/bench_distributed.py [--epochs 3] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_flags, cpu_model, load_average, ram_gib, write_section

from bdbnet.data.synthetic import generate_synthetic_reid

RECIPE = [
    "--preset",
    "synthetic-demo",
    "train.amp=none",
    "train.tensorboard=false",
    "train.progress=false",
    "train.eval_every=0",
    "train.device=cpu",
    "train.log_every=100",
]


def run(root: Path, output: Path, processes: int, epochs: int) -> tuple[float, list[float]]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(processes), "-m", "bdbnet", "train"]
    command += ["--dataset", "synthetic", "--root", str(root), "--output", str(output)]
    # eval_every=0 still evaluates after the last epoch: the epoch lines exclude it.
    command += [*RECIPE, f"optim.epochs={epochs}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = [json.loads(x) for x in (output / "metrics.jsonl").read_text().splitlines()]
    rates = [x["images_per_second"] for x in lines if x["kind"] == "epoch"]
    return wall, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-ids", type=int, default=96)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        generate_synthetic_reid(root, train_ids=args.train_ids, test_ids=4, seed=0)
        for n in args.processes:
            wall, rates = run(root, Path(tmp) / f"run{n}", n, args.epochs)
            steady = rates[1:] or rates
            rows.append((n, statistics.median(steady), rates, wall))
            print(f"{n} process(es): {statistics.median(steady):.1f} img/s {rates}")
    base = rows[0][1]
    table = [
        "| processes x threads | global batch | img/s (median of epochs 2..) | speed-up | "
        "epochs' img/s |",
        "|---|---:|---:|---:|---|",
    ]
    for n, rate, rates, _ in rows:
        per = ", ".join(f"{r:.1f}" for r in rates)
        table.append(f"| {n} x 1 | 16 x 4 | {rate:.1f} | {rate / base:.2f}x | {per} |")
    text = "\n".join(
        [
            "## Data-parallel scaling (torchrun, CPU)",
            "",
            f"`python benchmarks/bench_distributed.py --epochs {args.epochs}` "
            f"({time.strftime('%Y-%m-%d')}): `torchrun --nproc-per-node N -m bdbnet train` "
            f"on {args.train_ids} synthetic identities ({args.train_ids // 16} steps an epoch), "
            "demo recipe (ResNet-18 BDB, 128x64, fp32), gloo, `OMP_NUM_THREADS=1` per process; "
            "global images/s as logged per epoch, data loading included, evaluation excluded.",
            f"- Machine: {cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores, "
            f"{ram_gib():.0f} GiB RAM; load average before the runs {load_average()}.",
            "",
            *table,
            "",
            "Two processes on two cores split each P x K batch by whole identities; the "
            "gradient all-reduce and the feature all-gather of `train.loss_scope=global` "
            "travel over loopback TCP (gloo).",
        ]
    )
    write_section(text, "## Data-parallel scaling (torchrun, CPU)")


if __name__ == "__main__":
    main()
