"""Helpers shared by the benchmark scripts: machine description, timing, results.md sections.

The scripts are run as ``python benchmarks/bench_*.py``, so this module is importable as
``_common`` (the script's folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(names: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")) -> str:
    """Which of the vector-instruction flags that change torch's kernels this CPU has."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return " ".join(n for n in names if n in have) or "none of " + ", ".join(names)
    except OSError:
        pass
    return "unknown"


def cpu_kind() -> str:
    """The CPU kind a results section is about: with or without native bf16 (the two kinds CI
    runs on; oneDNN and ``amp=auto`` choose different kernels on each)."""
    if os.environ.get("ATEN_CPU_CAPABILITY") == "avx2" and (
        os.environ.get("MKL_ENABLE_INSTRUCTIONS") == "AVX2"
    ):
        return "CPU capped to AVX2"  # torch's kernels and MKL limited to AVX2 by the user
    flags = cpu_flags().split()
    return "CPU with native bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "AVX2-only CPU"


def ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def timed(fn, repeats: int) -> tuple[float, float, object]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def write_section(text: str, section: str, path: Path = RESULTS) -> None:
    """Replace ``section`` (a ``## Title`` line) of results.md with ``text`` (or append it),
    keeping every other section."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = text.rstrip("\n") + "\n\n"
    new = (
        pattern.sub(lambda _: block, old)
        if pattern.search(old)
        else (old.rstrip("\n") + "\n\n" + block)
    )
    path.write_text(new.rstrip("\n") + "\n")
    print(f"wrote the '{section[3:]}' section of {path}")


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"
