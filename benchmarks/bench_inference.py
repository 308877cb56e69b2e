"""Speed of using a trained model: feature extraction and gallery search.

Usage::

    python benchmarks/bench_inference.py [--device cpu|cuda] [--batches 3] [--slow-batches 1]
        [--variants fp32 fp32+cl bf16 bf16+cl auto] [--sizes 10000 100000 1000000]
        [--queries 100] [--no-write]

1. Extraction: images/s of the BDB network (ResNet-50, 1536-d output) in eval mode at 384x128,
   batch 32, through :func:`bdbnet.inference.embed.embed_batch` (what ``FeatureExtractor`` and
   ``bdbnet evaluate`` run), per variant: ``fp32``, ``bf16`` (autocast), ``+cl``
   (channels_last), and ``auto``, the default of ``FeatureExtractor`` and evaluation (auto
   precision and channels_last). A 4-image and a full warm-up batch, then ``--batches`` timed
   batches (``--slow-batches`` for bf16 on a CPU that only emulates it); best and median.
   Image decoding is not included (the network dominates on a CPU). Random weights: speed
   does not depend on them.
2. Search: exact top-10 of ``--queries`` random 1536-d queries against random galleries of
   each size with :func:`bdbnet.inference.topk_search` (chunked: 64 Ki gallery rows at a time),
   Euclidean, on ``--device``. Galleries up to 100k are float32; the 1M gallery is stored in
   float16 (2.9 GiB instead of 5.7 GiB; each chunk is converted to float32 when compared). The
   chunked result is checked against one dense ``torch.cdist`` + stable sort on the smallest
   gallery; faiss (``IndexFlatL2``, exact, CPU) is timed too when installed.

Rewrites the "## Inference, <machine kind>" section of ``benchmarks/results.md`` (other
sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import time

import numpy as np
import torch
from _common import (
    cpu_flags,
    cpu_kind,
    cpu_model,
    fmt_s,
    load_average,
    ram_gib,
    timed,
    write_section,
)

from bdbnet.inference.embed import embed_batch
from bdbnet.inference.search import topk_search
from bdbnet.models import BDBNet
from bdbnet.runtime.precision import cpu_has_fast_bf16, resolve_amp

DIM = 1536


VARIANTS = ("fp32", "fp32+cl", "bf16", "bf16+cl", "auto")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def variant_settings(variant: str, device: torch.device) -> tuple[str, bool]:
    """(amp, channels_last) of a variant; ``auto`` is what ``FeatureExtractor`` and
    ``bdbnet evaluate`` run by default on ``device`` (auto precision, channels_last)."""
    if variant == "auto":
        return resolve_amp(device, "auto"), True
    return ("bf16" if variant.startswith("bf16") else "none"), variant.endswith("+cl")


def bench_extraction(
    variants: list[str],
    batches: int,
    slow_batches: int,
    device: torch.device,
    batch_size: int = 32,
) -> dict[str, tuple[float, float, int]]:
    """{variant: (best img/s, median img/s, timed batches)}."""
    torch.manual_seed(0)
    model = BDBNet(751, pretrained=None).eval().to(device)
    x = torch.randn(batch_size, 3, 384, 128, device=device)
    out = {}
    for variant in variants:
        amp, channels_last = variant_settings(variant, device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        emulated = amp == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16()
        n = slow_batches if emulated else batches
        # warm-up (kernel selection, allocations); emulated bf16 is too slow for a full batch
        embed_batch(model, x[:4], amp=amp, channels_last=channels_last)
        if not emulated:
            embed_batch(model, x, amp=amp, channels_last=channels_last)
        sync(device)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            embed_batch(model, x, amp=amp, channels_last=channels_last)
            sync(device)
            times.append(time.perf_counter() - t0)
        out[variant] = (batch_size / min(times), batch_size / statistics.median(times), n)
        print(f"  extraction {variant}: {out[variant][1]:.2f} img/s (median)", flush=True)
    return out


def extraction_notes(ext: dict[str, tuple[float, float, int]], device: torch.device) -> list[str]:
    """What the table says about the defaults, from the measured medians."""
    notes = []
    if device.type == "cpu" and "fp32" in ext and "bf16" in ext:
        fp32, bf16 = ext["fp32"][1], ext["bf16"][1]
        native = "has" if cpu_has_fast_bf16() else "has no"
        if bf16 < fp32:
            notes.append(
                f"bf16 autocast is **{fp32 / bf16:.1f}x slower** than float32 on this CPU, "
                f"which {native} native bf16 instructions (AVX512-BF16 / AMX): `auto` keeps "
                "float32 here."
            )
        else:
            notes.append(
                f"bf16 autocast runs at {bf16 / fp32:.2f}x the float32 rate on this CPU, which "
                f"{native} native bf16 instructions: `auto` picks bf16 here."
            )
    if "auto" in ext and "fp32" in ext:
        notes.append(
            f"The default (`auto`: amp={resolve_amp(device, 'auto')}, channels_last) runs at "
            f"{ext['auto'][1] / ext['fp32'][1]:.2f}x the float32 NCHW rate (medians)."
        )
    return notes


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


def bench_search(
    sizes: list[int], num_queries: int, device: torch.device, k: int = 10
) -> tuple[list[str], list[str]]:
    rows, notes = [], []
    q = torch.randn(num_queries, DIM, generator=torch.Generator().manual_seed(1)).to(device)

    def search(gallery: torch.Tensor):
        result = topk_search(q, gallery, k)
        sync(device)
        return result

    for n in sizes:
        dtype = torch.float16 if n >= 1_000_000 else torch.float32
        gallery = random_gallery(n, dtype, seed=n).to(device)
        repeats = 1 if n >= 1_000_000 else 3
        topk_search(q[:2], gallery[: min(n, 1 << 16)], k)  # warm-up
        best, med, res = timed(lambda gallery=gallery: search(gallery), repeats)
        found = res.indices.cpu()
        storage = gallery.numel() * gallery.element_size() / 2**30
        check = "-"
        if n == min(sizes):
            d = torch.cdist(q, gallery.float())
            ref = torch.sort(d, dim=1, stable=True).indices[:, :k].cpu()
            check = "identical to dense cdist + sort" if torch.equal(ref, found) else "DIFFERENT"
        faiss_cell = "-"
        try:
            import faiss

            if dtype == torch.float32:
                index = faiss.IndexFlatL2(DIM)
                index.add(gallery.cpu().numpy())
                t0 = time.perf_counter()
                _, idx = index.search(q.cpu().numpy(), k)
                faiss_s = time.perf_counter() - t0
                same = np.array_equal(idx, found.numpy())
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


def machine_kind(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_kind()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, default=3, help="timed batches per variant")
    ap.add_argument(
        "--slow-batches", type=int, default=1, help="timed batches of bf16 on a CPU emulating it"
    )
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="only print, keep results.md")
    args = ap.parse_args(argv)
    device = torch.device(args.device)

    load_before = load_average()
    print("[1/2] extraction, 384x128, batch 32 ...", flush=True)
    ext = bench_extraction(args.variants, args.batches, args.slow_batches, device)
    print("[2/2] search ...", flush=True)
    search_rows, notes = bench_search(sorted(args.sizes), args.queries, device)
    section = f"## Inference, {machine_kind(device)}"
    cmd = "python benchmarks/bench_inference.py"
    if argv:
        cmd += " " + " ".join(argv)
    machine = (
        f"{torch.cuda.get_device_name(device)}; host: {cpu_model()}, {os.cpu_count()} cores"
        if device.type == "cuda"
        else f"{cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores, {ram_gib():.0f} GiB RAM"
    )
    ext_rows = [
        f"| {v} | {amp} | {'yes' if cl else 'no'} | {best:.2f} | {med:.2f} | {n} |"
        for v, (best, med, n) in ext.items()
        for amp, cl in [variant_settings(v, device)]
    ]
    text = "\n".join(
        [
            section,
            "",
            f"`{cmd}`: BDB network (ResNet-50, last stride 1, 1536-d features) in eval mode, "
            "random weights, random inputs (image decoding not included); search over random "
            "1536-d galleries with the exact chunked torch search of `bdbnet search`.",
            "",
            f"- Machine: {machine}; {platform.system()} {platform.release()}",
            f"- Software: Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}",
            f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; load average "
            f"before / after (1/5/15 min): {load_before} | {load_average()} "
            "(other jobs may share the CPU)",
            "",
            "Feature extraction, 384x128, batch 32 (after warm-up; best / median of the timed "
            "batches):",
            "",
            "| variant | amp | channels_last | best img/s | median img/s | batches |",
            "|---|---|---|---:|---:|---:|",
            *ext_rows,
            "",
            *[f"- {n}" for n in extraction_notes(ext, device)],
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
        write_section(text, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
