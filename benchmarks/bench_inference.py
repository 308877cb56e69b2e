"""Speed of using a trained model: feature extraction and gallery search.

Usage::

    python benchmarks/bench_inference.py [--batches 3] [--bf16-batches 1]
        [--sizes 10000 100000 1000000] [--queries 100] [--no-write]

1. Extraction: images/s of the BDB network (ResNet-50, 1536-d output) in eval mode at 384x128,
   batch 32, through :func:`bdbnet.engine.features.embed_batch` (what ``FeatureExtractor`` and
   ``bdbnet evaluate`` run), in float32 and under bf16 autocast. A 4-image warm-up, then
   ``--batches`` timed float32 batches and ``--bf16-batches`` bf16 ones (bf16 is very slow on
   CPUs without native bf16); best and median. Image decoding is not included (the network
   dominates on a CPU). Random weights: speed does not depend on them.
2. Search: exact top-10 of ``--queries`` random 1536-d queries against random galleries of
   each size with :func:`bdbnet.inference.topk_search` (chunked: 64 Ki gallery rows at a time),
   Euclidean. Galleries up to 100k are float32; the 1M gallery is stored in float16 (2.9 GiB
   instead of 5.7 GiB; each chunk is converted to float32 when compared). The chunked result is
   checked against one dense ``torch.cdist`` + stable sort on the smallest gallery; faiss
   (``IndexFlatL2``, exact) is timed too when installed.

Rewrites the "## Inference" section of ``benchmarks/results.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import cpu_model, fmt_s, load_average, ram_gib, timed, write_section

from bdbnet.engine.features import embed_batch
from bdbnet.inference.search import topk_search
from bdbnet.models import BDBNet

SECTION = "## Inference"
DIM = 1536


def bench_extraction(
    batches: int, bf16_batches: int, batch_size: int = 32
) -> dict[str, tuple[float, float]]:
    """{amp: (best img/s, median img/s)}."""
    torch.manual_seed(0)
    model = BDBNet(751, pretrained=None).eval()
    x = torch.randn(batch_size, 3, 384, 128)
    out = {}
    for amp, n in (("none", batches), ("bf16", bf16_batches)):
        # warm-up (kernel selection, allocations) on a small batch: bf16 is slow on most CPUs
        embed_batch(model, x[:4], amp=amp)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            embed_batch(model, x, amp=amp)
            times.append(time.perf_counter() - t0)
        out[amp] = (batch_size / min(times), batch_size / statistics.median(times))
        print(f"  extraction amp={amp}: {out[amp][0]:.2f} img/s (best)", flush=True)
    return out


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def bf16_note(fp32: float, bf16: float) -> str:
    native = "has" if cpu_has_native_bf16() else "has no"
    if bf16 < fp32:
        return (
            f"bf16 autocast is **{fp32 / bf16:.1f}x slower** than float32 on this CPU, which "
            f"{native} native bf16 instructions (AVX512-BF16 / AMX): keep the default float32 "
            "here; bf16 is for GPUs and CPUs with AMX."
        )
    return (
        f"bf16 autocast is {bf16 / fp32:.1f}x faster than float32 on this CPU ({native} "
        "native bf16 instructions)."
    )


def random_gallery(n: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Standard normal rows, generated in chunks straight into ``dtype`` storage."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, DIM, dtype=dtype)
    step = 1 << 16
    for s in range(0, n, step):
        out[s : s + step] = torch.randn(min(step, n - s), DIM, generator=g).to(dtype)
    return out


def maxrss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench_search(sizes: list[int], num_queries: int, k: int = 10) -> tuple[list[str], list[str]]:
    rows, notes = [], []
    q = torch.randn(num_queries, DIM, generator=torch.Generator().manual_seed(1))
    for n in sizes:
        dtype = torch.float16 if n >= 1_000_000 else torch.float32
        gallery = random_gallery(n, dtype, seed=n)
        repeats = 1 if n >= 1_000_000 else 3
        topk_search(q[:2], gallery[: min(n, 1 << 16)], k)  # warm-up
        best, med, res = timed(lambda gallery=gallery: topk_search(q, gallery, k), repeats)
        storage = gallery.numel() * gallery.element_size() / 2**30
        check = "-"
        if n == min(sizes):
            d = torch.cdist(q, gallery.float())
            ref = torch.sort(d, dim=1, stable=True).indices[:, :k]
            check = (
                "identical to dense cdist + sort" if torch.equal(ref, res.indices) else "DIFFERENT"
            )
        faiss_cell = "-"
        try:
            import faiss

            if dtype == torch.float32:
                index = faiss.IndexFlatL2(DIM)
                index.add(gallery.numpy())
                t0 = time.perf_counter()
                _, idx = index.search(q.numpy(), k)
                faiss_s = time.perf_counter() - t0
                same = np.array_equal(idx, res.indices.numpy())
                faiss_cell = f"{fmt_s(faiss_s)} ({'same top-10' if same else 'top-10 differs'})"
                del index
        except ImportError:
            faiss_cell = "faiss not installed"
        per_q = best / num_queries * 1e3
        rows.append(
            f"| {n:,} | {str(dtype).replace('torch.', '')} ({storage:.2f} GiB) | "
            f"{fmt_s(best)} (median {fmt_s(med)}, {repeats} run(s)) | {per_q:.1f} ms | "
            f"{faiss_cell} | {check} |"
        )
        print(f"  search {n:,}: {fmt_s(best)}", flush=True)
        del gallery
    notes.append(
        f"Search: {num_queries} queries, top-{k}, Euclidean, exact; peak resident memory of the "
        f"whole benchmark process: {maxrss_gib():.1f} GiB."
    )
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=3, help="timed float32 batches")
    ap.add_argument("--bf16-batches", type=int, default=1, help="timed bf16 batches")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="only print, keep results.md")
    args = ap.parse_args(argv)

    load_before = load_average()
    print("[1/2] extraction, 384x128, batch 32 ...", flush=True)
    ext = bench_extraction(args.batches, args.bf16_batches)
    print("[2/2] search ...", flush=True)
    search_rows, notes = bench_search(sorted(args.sizes), args.queries)
    fp32, bf16 = ext["none"], ext["bf16"]
    cmd = "python benchmarks/bench_inference.py"
    if argv:
        cmd += " " + " ".join(argv)
    text = "\n".join(
        [
            SECTION,
            "",
            f"`{cmd}`: BDB network (ResNet-50, last stride 1, 1536-d features) in eval mode, "
            "random weights, random inputs (image decoding not included); search over random "
            "1536-d galleries with the exact chunked torch search of `bdbnet search`.",
            "",
            f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {ram_gib():.0f} GiB RAM; "
            f"{platform.system()} {platform.release()}",
            f"- Software: Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}",
            f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; load average "
            f"before / after (1/5/15 min): {load_before} | {load_average()} "
            "(other jobs may share the CPU)",
            "",
            f"Feature extraction, 384x128, batch 32 (after a 4-image warm-up; best / median of "
            f"{args.batches} float32 and {args.bf16_batches} bf16 batch(es)):",
            "",
            "| precision | best img/s | median img/s |",
            "|---|---:|---:|",
            f"| float32 | {fp32[0]:.2f} | {fp32[1]:.2f} |",
            f"| bf16 autocast | {bf16[0]:.2f} | {bf16[1]:.2f} |",
            "",
            bf16_note(fp32[0], bf16[0]),
            "",
            f"Exact top-10 search, {args.queries} queries x 1536-d:",
            "",
            "| gallery | storage | time (all queries) | per query | faiss IndexFlatL2 | check |",
            "|---:|---|---:|---:|---|---|",
            *search_rows,
            "",
            *[f"- {n}" for n in notes],
        ]
    )
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
