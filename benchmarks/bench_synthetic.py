"""Throughput of the synthetic pedestrian generator (images per second, JPEGs on disk).

Usage::

    python benchmarks/bench_synthetic.py [--train-ids 200 --test-ids 200 --repeats 3]

Prints a table and rewrites the "## Synthetic data generation" section of
``benchmarks/results.md`` (other sections, written by other benchmarks, are kept). Each setting
is run ``--repeats`` times and the best run is reported (the median too): the machine may be
shared, and the best run is the one least disturbed by other work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
from _common import cpu_model, load_average, write_section

from bdbnet.data.synthetic import Renderer, generate_synthetic_reid, sample_identities

SECTION = "## Synthetic data generation"


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_generate(train_ids: int, test_ids: int, workers: int, repeats: int) -> dict:
    """Full pipeline: plan, render, JPEG-encode and write every file."""
    rates, per_cpu, images = [], [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            c, t = cpu_seconds(), time.perf_counter()
            s = generate_synthetic_reid(
                Path(tmp) / "synth", train_ids=train_ids, test_ids=test_ids, workers=workers
            )
            rates.append(s.total_images / (time.perf_counter() - t))
            per_cpu.append(s.total_images / max(cpu_seconds() - c, 1e-9))
            images = s.total_images
    return {
        "images": images,
        "best": max(rates),
        "median": statistics.median(rates),
        "per_cpu": max(per_cpu),
    }


def bench_render(n: int, repeats: int) -> dict:
    """Rendering alone (no JPEG, no disk), one process."""
    people = sample_identities(100, seed=0)
    r = Renderer(0, 6, 128, 64, 0.3)
    rates, per_cpu = [], []
    for _ in range(repeats):
        c, t = cpu_seconds(), time.perf_counter()
        for i in range(n):
            r.render(people[i % 100], i % 6, np.random.default_rng(i))
        rates.append(n / (time.perf_counter() - t))
        per_cpu.append(n / max(cpu_seconds() - c, 1e-9))
    return {
        "images": n,
        "best": max(rates),
        "median": statistics.median(rates),
        "per_cpu": max(per_cpu),
    }


def report(row: tuple[str, dict]) -> None:
    name, r = row
    print(
        f"{name:<28} {r['images']:>6} images  best {r['best']:7.0f} img/s  "
        f"median {r['median']:7.0f} img/s  {r['per_cpu']:7.0f} img per CPU-second",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-ids", type=int, default=200)
    ap.add_argument("--test-ids", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="only print, keep results.md")
    args = ap.parse_args(argv)

    n_cores = cores()
    load_before = load_average()
    rows = []
    settings = [1] if n_cores == 1 else [1, n_cores]
    for workers in settings:
        r = bench_generate(args.train_ids, args.test_ids, workers, args.repeats)
        rows.append((f"generate, {workers} process{'es' if workers > 1 else ''}", r))
        report(rows[-1])
    r = bench_render(2000, args.repeats)
    rows.append(("render only, 1 process", r))
    report(rows[-1])

    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_synthetic.py --train-ids {args.train_ids} "
        f"--test-ids {args.test_ids} --repeats {args.repeats}`: the default dataset "
        "(Market-1501 layout, 128x64 JPEGs at quality 90, occlusion 0.3), generated into a "
        "temporary folder; images/s over the whole call (planning, rendering, JPEG encoding, "
        "writing). Best and median of the repeats. The last column, images per CPU-second "
        "(this process and its workers), hardly depends on other jobs sharing the machine: "
        "it is what one undisturbed core does; the wall-clock rate with all cores free "
        "approaches it times the number of processes.",
        "",
        f"- Machine: {cpu_model()}, {n_cores} cores; {platform.system()} {platform.release()}",
        f"- Software: Python {platform.python_version()}, numpy {np.__version__}, "
        f"Pillow {PIL.__version__}",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; load average before "
        f"the run (1/5/15 min): {load_before} (other jobs may share the CPU)",
        "",
        "| setting | images | best img/s | median img/s | img per CPU-second |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {r['images']} | {r['best']:.0f} | {r['median']:.0f} | {r['per_cpu']:.0f} |"
            for name, r in rows
        ),
        "",
    ]
    text = "\n".join(lines)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
