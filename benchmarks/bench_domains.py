"""The domain gap on synthetic camera networks: train on A, test on A and B; train on A + B.

Usage::

    python benchmarks/bench_domains.py [--seeds 0 1 2] [--domain 1] [--work DIR] [--no-write]

Two synthetic datasets of the demo's size (150 train / 60 test identities, data seed 0):
A = domain 0 (the demo's camera network) and B = ``--domain`` (default 1: a dim indoor network
with a warm cast, half resolution, people mostly seen from behind; other people).
For each training seed, three runs of the demo recipe (``presets/synthetic-demo.yaml``, as
``bdbnet demo`` trains it) through the command line users run, each evaluated on its targets in
the same run (``--eval-dataset``):

* trained on A, tested on A and on B (direct transfer A -> B);
* trained on B, tested on B (B's in-domain reference);
* trained on A + B (``--dataset`` twice), tested on B and on A.

Rewrites the "## Domain gap (synthetic camera networks)" section of ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import cpu_flags, cpu_model, write_section

SECTION = "## Domain gap (synthetic camera networks)"
SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from bdbnet.data.synthetic.domains import get_domain  # noqa: E402
from bdbnet.demo import DEMO_DATA, prepare_data  # noqa: E402

# (name, training datasets, evaluation targets)
RUNS = (("A", ("A",), ("A", "B")), ("B", ("B",), ("B",)), ("A+B", ("A", "B"), ("B", "A")))


def train(work: Path, roots: dict[str, Path], name: str, sources, targets, seed: int) -> dict:
    """One ``bdbnet train`` run; its last evaluation per target, keyed by A/B."""
    output = work / "runs" / f"{name}-seed{seed}"
    args = [sys.executable, "-m", "bdbnet", "train", "--preset", "synthetic-demo"]
    for s in sources:
        args += ["--dataset", f"synthetic={roots[s]}"]
    for t in targets:
        args += ["--eval-dataset", f"synthetic={roots[t]}"]
    args += ["--output", str(output), f"train.seed={seed}", "train.progress=false"]
    args += ["train.tensorboard=false"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    lines = [json.loads(x) for x in (output / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if x["kind"] == "eval"]
    last = max(x["epoch"] for x in evals)
    by_label = {x["target"]: x for x in evals if x["epoch"] == last}
    # one loader twice: the labels are synthetic=ROOT; a lone target is just "synthetic"
    found = {}
    for t in targets:
        found[t] = by_label.get(f"synthetic={roots[t]}") or by_label["synthetic"]
    print(f"{name} seed {seed}: {seconds:.0f} s, " + ", ".join(
        f"{name}->{t} mAP {100 * r['mAP']:.1f} R1 {100 * r['Rank-1']:.1f}" for t, r in found.items()
    ), flush=True)  # fmt: skip
    return {"seconds": seconds, **found}


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--domain", type=int, default=1, help="B's synthetic domain")
    parser.add_argument("--work", default="/tmp/bdbnet_domains", help="datasets and runs")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    roots = {}
    for name, domain in (("A", 0), ("B", args.domain)):
        splits = prepare_data(work / name, progress=False, domain=domain, **DEMO_DATA)
        roots[name] = Path(splits.root)
    results: dict[str, list[dict]] = {name: [] for name, _, _ in RUNS}
    for seed in args.seeds:
        for name, sources, targets in RUNS:
            run_dir = work / "runs" / f"{name}-seed{seed}"
            if run_dir.exists():
                shutil.rmtree(run_dir)
            results[name].append(train(work, roots, name, sources, targets, seed))

    rows = [
        ("A", "A", "A", "in-domain"),
        ("A", "B", "A", "direct transfer"),
        ("B", "B", "B", "in-domain reference for B"),
        ("A + B", "B", "A+B", "multi-source"),
        ("A + B", "A", "A+B", "multi-source"),
    ]
    b = get_domain(args.domain)
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today()} on {cpu_model()} ({cpu_flags()}), "
        f"{os.cpu_count()} threads, Python {platform.python_version()}: "
        "`python benchmarks/bench_domains.py` -- the demo recipe "
        "(`presets/synthetic-demo.yaml`: ResNet-18 BDB from scratch, 128x64, 5 epochs, "
        "amp auto) run by `bdbnet train` with `--eval-dataset`, training seeds "
        f"{', '.join(map(str, args.seeds))} (mean ± sd over seeds). "
        f"A: `bdbnet synth --domain 0` (the demo's network); B: `--domain {args.domain}` "
        f"({b.description}); both {DEMO_DATA['train_ids']} train / {DEMO_DATA['test_ids']} test "
        "identities, other people in each. Rank-1 and mAP (full AP) in %.",
        "",
        "| trained on | tested on | protocol | Rank-1 | mAP | per seed (mAP) |",
        "|---|---|---|---:|---:|---|",
    ]
    for trained, tested, run, what in rows:
        got = [r[tested] for r in results[run]]
        r1 = [100 * g["Rank-1"] for g in got]
        m = [100 * g["mAP"] for g in got]
        lines.append(
            f"| {trained} | {tested} | {what} | {mean_sd(r1)} | {mean_sd(m)} | "
            + ", ".join(f"{x:.1f}" for x in m)
            + " |"
        )
    seconds = {name: statistics.mean(r["seconds"] for r in rs) for name, rs in results.items()}
    lines += [
        "",
        "Seconds per run (training + its evaluations): "
        + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
        + ".",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
