"""Plain-text result tables (printed by the CLI, pasted into the README)."""

from __future__ import annotations

from collections.abc import Sequence

#: What each AP definition (``eval.ap_mode``) means, printed under every re-ID table.
AP_DEFINITIONS = {
    "full": "full = precision averaged over all positives of the whole ranked list",
    "truncated": "truncated = ranked list cut at eval.max_rank (50), divided by all positives "
    "(the official BDB evaluator)",
    "trapezoid": "trapezoid = precision integrated over recall, trapezoid rule "
    "(the Market-1501 MATLAB code)",
}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown-compatible table with columns padded to equal width."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def metrics_row(name: str, metrics: dict[str, float], keys: Sequence[str]) -> list[object]:
    """``[name, 100*metrics[k] for k in keys]`` (percentages, as papers report them)."""
    return [name] + [100.0 * metrics[k] for k in keys]
