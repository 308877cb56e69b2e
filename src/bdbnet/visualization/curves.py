"""Training curves from a run's ``metrics.jsonl`` and CMC curves (matplotlib:
``pip install bdbnet[viz]``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bdbnet.engine.metrics_log import read_metrics


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'bdbnet[viz]'") from err
    return plt


def plot_training_curve(
    metrics_file: str | os.PathLike[str],
    output: str | os.PathLike[str],
    baseline: dict[str, float] | None = None,
) -> Path:
    """Loss per epoch (left) and Rank-1 / mAP per evaluation (right) as a PNG.

    ``baseline`` (e.g. the untrained network's metrics) is drawn as dashed lines at epoch 0. The
    mAP legend names its AP definition (the evaluations' ``ap_mode``), e.g. ``mAP (full)``.
    """
    plt = _pyplot()
    records = read_metrics(metrics_file)
    epochs = [r for r in records if r["kind"] == "epoch"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    if epochs:
        xs = [r["epoch"] for r in epochs]
        ax_loss.plot(xs, [r["total"] for r in epochs], "k-o", ms=3, label="total")
        for key in sorted(k for k in epochs[0] if "/" in k):
            ax_loss.plot(xs, [r[key] for r in epochs], lw=1, label=key)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Loss")
    _integer_ticks(ax_loss)
    ax_loss.legend(fontsize=7)
    modes = sorted({str(r["ap_mode"]) for r in evals if "ap_mode" in r})
    names = {"Rank-1": "Rank-1", "mAP": f"mAP ({', '.join(modes)})" if modes else "mAP"}
    for key, colour in (("Rank-1", "tab:blue"), ("mAP", "tab:orange")):
        xs = [0] if baseline else []
        ys = [100 * baseline[key]] if baseline else []
        xs += [r["epoch"] for r in evals if key in r]
        ys += [100 * r[key] for r in evals if key in r]
        if xs:
            ax_acc.plot(xs, ys, "-o", ms=3, color=colour, label=names[key])
        if baseline:
            value = 100 * baseline[key]
            ax_acc.axhline(
                value, ls="--", lw=0.8, color=colour, label=f"{names[key]} untrained {value:.1f}"
            )
    ax_acc.set(xlabel="epoch (0 = untrained)", ylabel="%", title="Evaluation", ylim=(0, 100))
    _integer_ticks(ax_acc)
    ax_acc.legend(fontsize=7)
    return _save(plt, fig, output)


def plot_cmc(
    curves: dict[str, Sequence[float]] | Sequence[float],
    output: str | os.PathLike[str],
    max_rank: int | None = None,
    title: str = "CMC",
) -> Path:
    """Cumulative matching characteristic (identification rate vs. rank) as a PNG.

    ``curves`` is one CMC (``cmc[k-1]`` = rate within the top ``k``, a fraction) or several
    keyed by legend label; ranks are drawn from 1 to ``max_rank`` (default: all).
    """
    plt = _pyplot()
    if not isinstance(curves, dict):
        curves = {"": curves}
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for label, cmc in curves.items():
        ys = [100 * float(v) for v in cmc][: max_rank or None]
        xs = list(range(1, len(ys) + 1))
        ax.plot(xs, ys, "-o", ms=2.5, label=label or None)
        if ys:
            ax.annotate(f"R1 {ys[0]:.1f}%", (1, ys[0]), textcoords="offset points", xytext=(6, -10))
    ax.set(xlabel="rank", ylabel="identification rate (%)", title=title, ylim=(0, 100.5))
    ax.set_xlim(left=1)
    ax.grid(alpha=0.3)
    if any(curves):
        ax.legend(fontsize=8, loc="lower right")
    return _save(plt, fig, output)


def _integer_ticks(ax: Any) -> None:
    """Epochs are whole numbers: no ``2.5`` on the axis."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(plt, fig, output: str | os.PathLike[str]) -> Path:
    """Write ``fig`` (creating the folder) and free it."""
    from bdbnet.visualization.saving import save_figure

    fig.tight_layout()
    try:
        return save_figure(fig, output)
    finally:
        plt.close(fig)
