"""Galleries on Milvus (Milvus Lite, the embedded engine) against the in-memory file index.

Usage::

    python benchmarks/bench_index.py [--sizes 10000 100000 1000000] [--hnsw-max 100000]
        [--engine-max 100000] [--queries 100] [--no-write]

For each gallery size N: N synthetic 1536-d float32 features (BDB's feature size) drawn as
re-ID features are -- identities as cluster centres, each image its identity's centre plus
noise -- are inserted into a new Milvus Lite gallery (``.db`` folder, FLAT index, and HNSW up to
``--hnsw-max``; no engine past ``--engine-max``, where only the file index is measured)
through :class:`bdbnet.inference.MilvusGallery`. Reported: insert rate (rows/s, flush
included), query latency p50/p95 for batches of 1 and 32 queries (top-10, the engine's
candidates re-scored exactly), recall@10 against exact search, and the process's resident
memory added by the gallery; beside it the file index (:class:`GalleryIndex`, exact torch
search) on the same features and queries.

The re-ID protocol check: 300 queries against a 3,000-image gallery of the same kind, ranked in
full by the engine (FLAT, the query's identity on its camera left out by an engine filter) and by
:func:`bdbnet.evaluation.evaluate_features`; the two mAP must be equal.

Rewrites the "## Galleries on Milvus" section of ``benchmarks/results.md``.
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
import torch
from _common import cpu_model, load_average, ram_gib, write_section

SECTION = "## Galleries on Milvus"
DIM = 1536
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bdbnet.evaluation import evaluate_features, evaluate_rank  # noqa: E402
from bdbnet.inference import GalleryIndex, ModelIdentity, topk_search  # noqa: E402
from bdbnet.inference.milvus_gallery import MilvusGallery  # noqa: E402

NOISE = 3.0  # protocol check: mAP ~70, Rank-1 ~98
MODEL = ModelIdentity("0" * 64, DIM, weights_sha256="1" * 64, checkpoint="bench.pt")


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def reid_features(n: int, ids: int, seed: int, noise: float = 1.0):
    """``n`` features of ``ids`` identities (centres of norm ~sqrt(DIM)), cameras 0-5."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, DIM), dtype=np.float32)
    pids = rng.integers(0, ids, n)
    feats = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 65536):
        e = min(s + 65536, n)
        feats[s:e] = centres[pids[s:e]] + noise * rng.standard_normal(
            (e - s, DIM), dtype=np.float32
        )
    return feats, pids, rng.integers(0, 6, n), centres


def latencies(fn, batches: list[torch.Tensor]) -> tuple[float, float]:
    times = []
    for batch in batches:
        t0 = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def recall_at_10(hits, exact) -> float:
    found = [
        len({h.index - 1 for h in row[:10]} & set(ex[:10].tolist())) for row, ex in zip(hits, exact)
    ]
    return sum(found) / (10 * len(found))


def bench_size(n: int, kinds: list[str], queries: int, folder: Path) -> list[dict]:
    feats, pids, camids, centres = reid_features(n, max(n // 20, 10), seed=n)
    rng = np.random.default_rng(1)
    q = torch.from_numpy(
        centres[pids[rng.choice(n, queries)]]
        + rng.standard_normal((queries, DIM), dtype=np.float32)
    )
    exact = topk_search(q, torch.from_numpy(feats), 10).indices
    paths = [f"/cams/c{c}/{p:06d}_{i:08d}.jpg" for i, (p, c) in enumerate(zip(pids, camids))]
    ones = [q[i : i + 1] for i in range(min(queries, 50))]
    thirty_two = [q[s : s + 32] for s in range(0, queries - 31, 32)]
    rows = []
    before = rss_mib()
    index = GalleryIndex(
        torch.from_numpy(feats),
        paths,
        MODEL,
        pids=torch.from_numpy(pids),
        camids=torch.from_numpy(camids),
    )
    file_mem = rss_mib() - before
    p50_1, p95_1 = latencies(lambda b: index.search_hits(b, 10), ones)
    p50_32, p95_32 = latencies(lambda b: index.search_hits(b, 10), thirty_two)
    rows.append(
        {
            "n": n,
            "kind": "file index (torch, exact)",
            "insert": float("nan"),
            "p50_1": p50_1,
            "p95_1": p95_1,
            "p50_32": p50_32,
            "p95_32": p95_32,
            "recall": 1.0,
            "mem": file_mem,
            "disk": feats.nbytes / 2**20,
        }
    )
    for kind in kinds:
        before = rss_mib()
        gallery = MilvusGallery.open(
            str(folder / f"g{n}_{kind}.db"), MODEL, create=True, labelled=True, index_type=kind
        )
        t0 = time.perf_counter()
        for s in range(0, n, 20000):
            e = min(s + 20000, n)
            gallery.add(
                feats[s:e],
                paths[s:e],
                pids=pids[s:e].tolist(),
                camids=camids[s:e].tolist(),
                times=[0] * (e - s),
                sources=["bench"] * (e - s),
            )
        insert = n / (time.perf_counter() - t0)
        search = gallery.search_hits
        search(ones[0], 10)  # warm-up (an index may be built on first use)
        search(thirty_two[0], 10)
        p50_1, p95_1 = latencies(lambda b, search=search: search(b, 10), ones)
        p50_32, p95_32 = latencies(lambda b, search=search: search(b, 10), thirty_two)
        hits = gallery.search_hits(q, 10)
        rows.append(
            {
                "n": n,
                "kind": f"Milvus Lite {kind}",
                "insert": insert,
                "p50_1": p50_1,
                "p95_1": p95_1,
                "p50_32": p50_32,
                "p95_32": p95_32,
                "recall": recall_at_10(hits, exact),
                "mem": rss_mib() - before,
                "disk": folder_mib(folder / f"g{n}_{kind}.db"),
            }
        )
        print(rows[-1], flush=True)
        del gallery
    return rows


def protocol_check(folder: Path) -> tuple[float, float, float]:
    """mAP of 300 queries over 3,000 gallery images: the engine (FLAT, full ranking) against
    :func:`evaluate_features`; noisy enough that mAP is far from 100."""
    feats, pids, camids, _ = reid_features(3300, 150, seed=7, noise=NOISE)
    qf, gf = feats[:300], feats[300:]
    qp, gp, qc, gc = pids[:300], pids[300:], camids[:300], camids[300:]
    reference = evaluate_features(
        torch.from_numpy(qf),
        torch.from_numpy(gf),
        torch.from_numpy(qp),
        torch.from_numpy(gp),
        torch.from_numpy(qc),
        torch.from_numpy(gc),
    )
    gallery = MilvusGallery.open(str(folder / "protocol.db"), MODEL, create=True, labelled=True)
    gallery.add(
        gf,
        [f"{i}.jpg" for i in range(len(gf))],
        pids=gp.tolist(),
        camids=gc.tolist(),
        times=[0] * len(gf),
        sources=["x"] * len(gf),
    )
    hits = gallery.search_hits(
        torch.from_numpy(qf), len(gf), exclude_same_camera=(qp.tolist(), qc.tolist())
    )
    # the ranked lists as a distance matrix: rank order, excluded items last (dropped anyway)
    dist = np.full((len(qf), len(gf)), np.inf, dtype=np.float64)
    for i, row in enumerate(hits):
        for h in row:
            dist[i, h.index - 1] = h.rank
    result = evaluate_rank(dist, qp, gp, qc, gc)
    return float(reference.mAP), float(result.mAP), float(reference.cmc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000, 1000000])
    parser.add_argument("--hnsw-max", type=int, default=100000)
    parser.add_argument(
        "--engine-max",
        type=int,
        default=100000,
        help="larger galleries measure the file index alone (one Milvus Lite exact query "
        "broadcasts queries x rows x 1536 floats: 6 GB at 1M rows)",
    )
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        folder = Path(tmp)
        file_map, engine_map, rank1 = protocol_check(folder)
        print(f"protocol: mAP file {file_map:.6f} engine {engine_map:.6f}", flush=True)
        rows = []
        for n in args.sizes:
            kinds = ["FLAT"] + (["HNSW"] if n <= args.hnsw_max else [])
            kinds = kinds if n <= args.engine_max else []
            rows += bench_size(n, kinds, args.queries, folder)
    import milvus_lite
    import pymilvus

    sizes = " ".join(map(str, args.sizes))
    command = "python benchmarks/bench_index.py" + (
        f" --sizes {sizes}" if args.sizes != [10000, 100000, 1000000] else ""
    )
    alone = [n for n in args.sizes if n > args.engine_max]
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today()} on {cpu_model()} ({os.cpu_count()} cores, "
        f"{ram_gib():.0f} GiB; load {load_average()}), Python {platform.python_version()}, "
        f"torch {torch.__version__}, pymilvus {pymilvus.__version__}, milvus-lite "
        f"{milvus_lite.__version__}: `{command}`. Synthetic 1536-d float32 re-ID features "
        "(identity centres + noise); top-10. Milvus rows: `bdbnet.inference.MilvusGallery` on "
        "an embedded Milvus Lite `.db`, the engine's candidates (max(2k, k + 10)) re-scored "
        "exactly. RAM: resident memory the gallery added to the process (Milvus Lite runs "
        "in-process; it maps its segments, so this can read low); disk: the `.db` folder "
        "(the file index: its feature matrix)."
        + (
            f" Galleries over {args.engine_max:,} rows: the file index alone (Milvus Lite's "
            "exact search broadcasts queries x rows x dim floats, 6 GB per query at 1M 1536-d "
            "rows; its HNSW searched most of 100k rows by brute force)."
            if alone
            else ""
        ),
        "",
        "| gallery | backend | insert (rows/s) | p50 / p95 batch 1 | p50 / p95 batch 32 "
        "| recall@10 vs exact | RAM | disk |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        insert = "n/a (in memory)" if r["insert"] != r["insert"] else f"{r['insert']:,.0f}"
        lines.append(
            f"| {r['n']:,} | {r['kind']} | {insert} "
            f"| {1e3 * r['p50_1']:.1f} / {1e3 * r['p95_1']:.1f} ms "
            f"| {1e3 * r['p50_32']:.0f} / {1e3 * r['p95_32']:.0f} ms | {r['recall']:.3f} "
            f"| {max(r['mem'], 0):,.0f} MiB | {r['disk']:,.0f} MiB |"
        )
    verdict = "equal" if abs(engine_map - file_map) < 1e-9 else "NOT equal"
    lines += [
        "",
        "Re-ID protocol through the engine: 300 queries x 3,000 gallery images, ranked in full "
        "by Milvus (FLAT, the query's identity on its camera left out by an engine filter): "
        f"mAP {100 * engine_map:.4f} vs {100 * file_map:.4f} from `evaluate_features` "
        f"(Rank-1 {100 * rank1:.1f}): {verdict}.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
