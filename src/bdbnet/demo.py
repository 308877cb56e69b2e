"""``bdbnet demo``: synthetic data -> BDB training -> evaluation -> table and pictures, on a CPU.

The demo is the recipe of ``presets/synthetic-demo.yaml``: the official re-ID recipe at the
synthetic dataset's native 128x64 resolution, trained from random initialisation (no ImageNet
weights offline) for a few epochs, on a ResNet-18 BDB (the paper's design on a lighter trunk:
from scratch, ResNet-50 does not get past chance level in the few iterations a 2-core CPU runs
in minutes). Its purpose is to show the whole pipeline working and the network learning, not to
reproduce the paper's numbers.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bdbnet.config import Config, load_config
from bdbnet.data import build_dataset
from bdbnet.data.records import DatasetSplits
from bdbnet.data.synthetic import GENERATOR_VERSION as SYNTHETIC_VERSION
from bdbnet.data.synthetic import generate_synthetic_reid
from bdbnet.engine.trainer import Trainer
from bdbnet.evaluation.ranked_lists import rank_gallery
from bdbnet.evaluation.report import EvalReport
from bdbnet.reporting import format_table, metrics_row
from bdbnet.runtime.precision import resolve_amp
from bdbnet.visualization import draw_ranked_list, plot_training_curve

METRIC_KEYS = ("Rank-1", "Rank-5", "mAP", "mINP")


def metric_headers(cfg: Config) -> list[str]:
    """:data:`METRIC_KEYS` as table columns, mAP naming its AP definition."""
    return [f"mAP ({cfg.eval.ap_mode})" if k == "mAP" else k for k in METRIC_KEYS]


DEMO_DATA = dict(train_ids=150, test_ids=60, seed=0)


def demo_note(cfg: Config, device: torch.device) -> str:
    """How the demo recipe differs from the paper's Market-1501 recipe (printed by the demo)."""
    d, m = cfg.data, cfg.model
    map_h, map_w = d.height // 16, d.width // 16
    amp = resolve_amp(device, cfg.train.amp)
    precision = "fp32" if amp == "none" else f"{amp} autocast"
    return (
        "Demo recipe (presets/synthetic-demo.yaml) differs from the paper's Market-1501 recipe: "
        f"{m.backbone} backbone, {d.height}x{d.width} input ({map_h}x{map_w} map, "
        f"drop {m.drop_height_ratio} x {m.drop_width_ratio}), random init instead of "
        f"ImageNet weights, P x K = {d.num_identities} x {d.num_instances}, "
        f"{epochs_text(cfg.optim.epochs)} instead of 400, {precision} (train.amp={cfg.train.amp}). "
        "Numbers are on the synthetic benchmark, not Market-1501."
    )


VARIANTS = {
    "BDB (both branches, batch drop)": ["model.branches=both", "model.drop_mode=batch"],
    "global branch only (baseline)": ["model.branches=global"],
    "both branches, no drop": ["model.branches=both", "model.drop_mode=none"],
    "both branches, per-sample DropBlock": ["model.branches=both", "model.drop_mode=sample"],
}


@dataclass
class DemoResult:
    untrained: dict[str, float]
    trained: dict[str, float]
    seconds: float
    output: Path


def epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def prepare_data(output: Path, progress: bool = True, **params: Any) -> DatasetSplits:
    """Generate the synthetic dataset under ``output/data`` unless an identical one is there.

    ``params`` go to :func:`~bdbnet.data.synthetic.generate_synthetic_reid` (``train_ids``,
    ``test_ids``, ``seed``, ...) and are compared with the ones recorded in the dataset's
    ``synthetic_meta.json``. ``progress``: a progress bar while images are written.
    """
    root = output / "data" / "synthetic"
    meta = root / "synthetic_meta.json"
    found = json.loads(meta.read_text()) if meta.is_file() else {}
    recorded = found.get("params", {})
    stale = found.get("version") != SYNTHETIC_VERSION or not found.get("complete", False)
    if stale or any(recorded.get(k) != v for k, v in params.items()):
        generate_synthetic_reid(root, overwrite=True, progress=progress, **params)
    return build_dataset("synthetic", root)


def demo_config(
    epochs: int | None, device: str, seed: int, extra: list[str] | None = None
) -> Config:
    overrides = [f"train.device={device}", f"train.seed={seed}"] + list(extra or [])
    if epochs is not None:
        overrides.append(f"optim.epochs={epochs}")
    return load_config("synthetic-demo", overrides=overrides)


def write_ranked_list(report: EvalReport, splits: DatasetSplits, path: Path, rows: int = 6) -> Path:
    """Query + top-10 gallery for a few queries, skipping same-identity same-camera items."""
    q = report.query_features
    g = report.gallery_features
    picks = torch.linspace(0, len(splits.query) - 1, rows).long().tolist()
    q_pid = torch.tensor([splits.query[i].pid for i in picks])
    q_cam = torch.tensor([splits.query[i].camid for i in picks])
    g_pid = torch.tensor([r.pid for r in splits.gallery])
    g_cam = torch.tensor([r.camid for r in splits.gallery])
    exclude = (q_pid[:, None] == g_pid[None]) & (q_cam[:, None] == g_cam[None])
    top = rank_gallery(q[picks], g, topk=10, exclude=exclude)
    ranked = [[splits.gallery[j] for j in row] for row in top.tolist()]
    distances = torch.cdist(q[picks].float(), g.float()).gather(1, top).tolist()
    return draw_ranked_list(
        [splits.query[i] for i in picks],
        ranked,
        path,
        title=f"{rows} test queries: the 10 nearest of {len(splits.gallery)} gallery images "
        "(same identity and camera excluded)",
        distances=distances,
    )


def run_demo(
    output: str | Path = "demo_output",
    epochs: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    data: dict[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> DemoResult:
    """Synthesize, train, evaluate; print the table; write plots. Returns the numbers.

    ``data`` replaces the synthetic dataset's parameters (:data:`DEMO_DATA`) and ``overrides``
    (``section.key=value``) adjust the demo preset, e.g. to make a smaller or a longer demo.
    """
    start = time.perf_counter()
    output = Path(output)
    splits = prepare_data(output, progress, **(DEMO_DATA if data is None else data))
    cfg = demo_config(epochs, device, seed, [f"train.progress={str(progress).lower()}", *overrides])
    # A demo always starts afresh: an earlier demo run in the same folder is replaced.
    trainer = Trainer.from_config(cfg, splits, output / "run", overwrite=True)
    print(
        f"Training BDB on the synthetic dataset ({len(splits.train)} images, "
        f"{splits.num_train_pids} identities) on {trainer.device}.\n"
        f"{demo_note(cfg, trainer.device)}\n"
    )
    untrained = trainer.evaluate()
    print(f"untrained network: {untrained.summary()}")
    # fit() evaluates after the last epoch; only a run resumed after its end has to do it here.
    trained = trainer.fit().last_report or trainer.evaluate()
    seconds = time.perf_counter() - start

    rows = [
        metrics_row(
            "BDB, untrained (same network, initial weights)", untrained.metrics, METRIC_KEYS
        ),
        metrics_row(f"BDB, trained {epochs_text(cfg.optim.epochs)}", trained.metrics, METRIC_KEYS),
    ]
    table = format_table(["synthetic test set (%)", *metric_headers(cfg)], rows)
    curve = output / "training_curve.png"
    try:
        plot_training_curve(output / "run" / "metrics.jsonl", curve, baseline=untrained.metrics)
    except ImportError as err:
        curve = None
        print(f"(no training curve: {err})")
    ranked = write_ranked_list(trained, splits, output / "ranked_list.png")
    results = {
        "untrained": untrained.metrics,
        "trained": trained.metrics,
        "epochs": cfg.optim.epochs,
        "seconds": round(seconds, 1),
        "device": str(trainer.device),
        "torch_threads": torch.get_num_threads(),
    }
    (output / "results.json").write_text(json.dumps(results, indent=2))
    print("\n" + table)
    print(f"\nwall time {seconds:.0f} s on {trainer.device} ({torch.get_num_threads()} threads)")
    logs = (
        "metrics.jsonl, TensorBoard"
        if (output / "run" / "tensorboard").is_dir()
        else "metrics.jsonl"
    )
    print(
        f"wrote {output / 'run'} (checkpoint, {logs}), {ranked}" + (f", {curve}" if curve else "")
    )
    return DemoResult(untrained.metrics, trained.metrics, seconds, output)


def run_ablation(
    output: str | Path = "demo_output/ablation",
    seeds: tuple[int, ...] = (0, 1, 2),
    variants: tuple[str, ...] = tuple(list(VARIANTS)[:2]),
    epochs: int | None = None,
    device: str = "auto",
    progress: bool = True,
    data: dict[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, dict[str, list[float]]]:
    """Train each variant with each seed on the same synthetic data; report mean and spread.

    ``data`` and ``overrides`` as in :func:`run_demo`.
    """
    output = Path(output)
    splits = prepare_data(output, progress, **(DEMO_DATA if data is None else data))
    results: dict[str, dict[str, list[float]]] = {}
    for name in variants:
        for seed in seeds:
            cfg = demo_config(
                epochs,
                device,
                seed,
                [
                    *VARIANTS[name],
                    f"train.progress={str(progress).lower()}",
                    "train.eval_every=0",
                    *overrides,
                ],
            )
            run_dir = output / f"{_slug(name)}-seed{seed}"
            trainer = Trainer.from_config(cfg, splits, run_dir, overwrite=True)
            report = trainer.fit().evaluations[-1]
            for key in METRIC_KEYS:
                results.setdefault(name, {}).setdefault(key, []).append(report[key])
            print(
                f"{name}, seed {seed}: "
                + "  ".join(
                    f"{h} {100 * report[k]:.1f}" for k, h in zip(METRIC_KEYS, metric_headers(cfg))
                )
            )
    rows = [[name] + [_mean_sd(results[name][k]) for k in METRIC_KEYS] for name in variants]
    final = demo_config(epochs, device, 0, list(overrides))
    headers = metric_headers(final)
    table = format_table([f"synthetic, {len(seeds)} seeds (%), mean ± sd", *headers], rows)
    (output / "ablation.json").write_text(
        json.dumps(
            {"seeds": list(seeds), "ap_mode": final.eval.ap_mode, "results": results}, indent=2
        )
    )
    (output / "ablation.md").write_text(table + "\n")
    print("\n" + table)
    return results


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]
