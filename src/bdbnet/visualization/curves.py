"""Training curves from a run's ``metrics.jsonl`` (matplotlib: ``pip install bdbnet[viz]``)."""

from __future__ import annotations

import os
from pathlib import Path

from bdbnet.engine.metrics_log import read_metrics


def plot_training_curve(
    metrics_file: str | os.PathLike[str],
    output: str | os.PathLike[str],
    baseline: dict[str, float] | None = None,
) -> Path:
    """Loss per epoch (left) and Rank-1 / mAP per evaluation (right) as a PNG.

    ``baseline`` (e.g. the untrained network's metrics) is drawn as dashed lines at epoch 0.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'bdbnet[viz]'") from err

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
    ax_loss.legend(fontsize=7)
    for key, colour in (("Rank-1", "tab:blue"), ("mAP", "tab:orange")):
        xs = [0] if baseline else []
        ys = [100 * baseline[key]] if baseline else []
        xs += [r["epoch"] for r in evals if key in r]
        ys += [100 * r[key] for r in evals if key in r]
        if xs:
            ax_acc.plot(xs, ys, "-o", ms=3, color=colour, label=key)
        if baseline:
            ax_acc.axhline(100 * baseline[key], ls="--", lw=0.8, color=colour)
    ax_acc.set(xlabel="epoch (0 = untrained)", ylabel="%", title="Evaluation", ylim=(0, 100))
    ax_acc.legend(fontsize=7)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
