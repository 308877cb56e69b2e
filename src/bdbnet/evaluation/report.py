"""What one evaluation of a model on a dataset reports: the headline metrics, and, for re-ID,
the per-query results and the features they came from, as typed fields (the command line, the
demo and saved runs read them by name, never by string key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bdbnet.evaluation.reid import RankResults

#: The AP definitions, each also reported as ``mAP_<mode>`` (:mod:`bdbnet.evaluation.reid`).
AP_KEYS = {mode: f"mAP_{mode}" for mode in ("full", "truncated", "trapezoid")}


@dataclass
class EvalReport:
    """Headline numbers of one evaluation (fractions in [0, 1]).

    Re-ID ``metrics`` also name the AP definition behind ``mAP`` (``"ap_mode"``, a string) and
    carry all three definitions (``mAP_full``, ``mAP_truncated``, ``mAP_trapezoid``), so every
    log line and JSON file built from them says which mAP it is.

    Attributes:
        task: ``"reid"`` or ``"retrieval"``.
        metrics: Name -> value (``Rank-1``, ``mAP``, ... or ``R@K``).
        rank: Re-ID only, on the process that scored: the per-query results (CMC, AP,
            first-match rank) behind ``metrics``.
        query_features, gallery_features: The features that were scored (after query
            expansion), on the process that scored.
    """

    task: str
    metrics: dict[str, Any]
    rank: RankResults | None = None
    query_features: torch.Tensor | None = None
    gallery_features: torch.Tensor | None = None

    @property
    def ap_mode(self) -> str | None:
        return self.metrics.get("ap_mode")

    @property
    def cmc(self) -> list[float] | None:
        """The CMC curve (re-ID), as plain floats."""
        return None if self.rank is None else [float(x) for x in self.rank.cmc]

    @property
    def num_valid_queries(self) -> int | None:
        return None if self.rank is None else int(self.rank.num_valid_queries)

    def headline(self) -> dict[str, float]:
        """The numbers to print: every float except the extra AP definitions."""
        extra = set(AP_KEYS.values())
        return {k: v for k, v in self.metrics.items() if isinstance(v, float) and k not in extra}

    def label(self, key: str) -> str:
        """Column name of ``key``: ``mAP`` with its AP definition, e.g. ``mAP (truncated)``."""
        return f"mAP ({self.ap_mode})" if key == "mAP" and self.ap_mode else key

    def summary(self) -> str:
        return "  ".join(f"{self.label(k)} {100 * v:.1f}" for k, v in self.headline().items())


def reid_metrics(result: RankResults) -> dict[str, Any]:
    """The headline re-ID metrics of ``result``: mAP, Rank-1/5/10, mINP, the AP definition and
    every AP definition's mAP."""
    cmc = result.cmc
    return {
        "mAP": float(result.mAP),
        "Rank-1": float(cmc[0]),
        "Rank-5": float(cmc[min(4, len(cmc) - 1)]),
        "Rank-10": float(cmc[min(9, len(cmc) - 1)]),
        "mINP": float(result.mINP),
        "ap_mode": result.ap_mode,
        **{key: float(result.map_by_mode[mode]) for mode, key in AP_KEYS.items()},
    }
