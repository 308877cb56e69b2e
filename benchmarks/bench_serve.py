"""Throughput and latency of ``bdbnet serve`` against its largest micro-batch.

Usage::

    python benchmarks/bench_serve.py [--batches 1 4 16] [--clients 8] [--requests 8]
        [--height 256 --width 128] [--no-write]

For each ``--max-batch``: a real server (``python -m bdbnet serve``, a subprocess) on 127.0.0.1
with a BDB ResNet-50 of random weights at ``--height x --width`` and a 200-image gallery index
of random features; ``--clients`` threads each send ``--requests`` single-image searches
(top-10) over keep-alive connections after a warm-up round. Reports requests/s, p50/p99
latency, the mean forward-pass size the server saw and its memory before/after. Only loopback
traffic; every loop is bounded in count and time.

Rewrites the "## Serving" section of ``benchmarks/results.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import platform
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
from _common import cpu_model, load_average, ram_gib, write_section
from PIL import Image

SECTION = "## Serving"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serve_helpers import Server, multipart  # noqa: E402

from bdbnet.serve.load import run_load  # noqa: E402


def write_checkpoint(path: Path, height: int, width: int) -> Path:
    """A BDB ResNet-50 (random weights) with the test recipe at ``height x width``."""
    from bdbnet.config import load_config
    from bdbnet.engine.builders import model_kwargs
    from bdbnet.files import atomic_save
    from bdbnet.models import BDBNet
    from bdbnet.models.loading import FORMAT, VERSION

    cfg = load_config(
        "synthetic-demo",
        overrides=[f"data.height={height}", f"data.width={width}", "model.backbone=resnet50"],
    )
    kwargs = model_kwargs(cfg)
    torch.manual_seed(0)
    model = BDBNet(751, pretrained=None, **kwargs).eval()
    state = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": 1,
        "model": model.state_dict(),
        "model_kwargs": kwargs,
        "num_classes": 751,
        "config": cfg.to_dict(),
    }
    atomic_save(state, path)
    return path


def write_index(folder: Path, checkpoint: Path, size: int = 200) -> Path:
    from bdbnet.inference import FeatureExtractor, GalleryIndex

    extractor = FeatureExtractor(checkpoint, device="cpu")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(size):  # files exist so that thumbnails could be served
        path = folder / f"{i // 4 + 1:04d}_c{i % 6 + 1}s1_{i:06d}_00.png"
        Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    feats = torch.randn(size, extractor.feature_dim)
    index = GalleryIndex(feats, paths, extractor.identity)
    return index.save(folder / "gallery.npz")


def query_body(height: int, width: int) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    arr = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buffer, format="JPEG", quality=90)
    return multipart([("0001_c1s1_000001_00.jpg", buffer.getvalue())], "b"), (
        "multipart/form-data; boundary=b"
    )


def bench(args: argparse.Namespace) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpt = write_checkpoint(folder / "model.pt", args.height, args.width)
        index = write_index(folder, ckpt)
        body, kind = query_body(args.height, args.width)
        for max_batch in args.batches:
            cmd = ["--checkpoint", str(ckpt), "--index", str(index), "--device", "cpu"]
            cmd += ["--max-batch", str(max_batch), "--max-wait-ms", str(args.max_wait_ms)]
            with Server(cmd) as server:
                warm = run_load(server.url, body, kind, clients=args.clients, requests=1)
                before = server.rss_bytes()
                report = run_load(
                    server.url,
                    body,
                    kind,
                    clients=args.clients,
                    requests=args.requests,
                    time_limit=args.time_limit,
                )
                after = server.rss_bytes()
                with urllib.request.urlopen(server.url + "/v1/info", timeout=10) as r:
                    batching = json.load(r)["batching"]
            stats = report.summary()
            stats.update(
                max_batch=max_batch,
                warm_errors=len(warm.errors),
                mean_batch=batching["mean_batch"],
                rss_before=before / 2**20,
                rss_after=after / 2**20,
            )
            print(json.dumps(stats))
            rows.append(stats)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=8, help="per client")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds per setting")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = load_average()
    started = dt.datetime.now(dt.timezone.utc)
    rows = bench(args)
    flags = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        line = next(x for x in cpuinfo.splitlines() if x.startswith("flags"))
        wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")
        flags = ", ".join(f for f in wanted if f in line.split())
    except (OSError, StopIteration):
        pass
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_serve.py --clients {args.clients} --requests {args.requests}"
        f" --height {args.height} --width {args.width}`: a real `bdbnet serve` (subprocess, "
        f"127.0.0.1) with a BDB ResNet-50 of random weights at {args.height}x{args.width} and a "
        f"200-image index; {args.clients} client threads x {args.requests} single-image "
        f"`POST /v1/search?topk=10` (JPEG uploads) each, after one warm-up request per client; "
        f"`--max-wait-ms {args.max_wait_ms:g}`. Latency is per request, client side (upload, "
        "decoding, queueing, forward pass, search, JSON).",
        "",
        f"- Machine: {cpu_model()} ({flags or 'flags n/a'}), {torch.get_num_threads()} torch "
        f"threads, {ram_gib():.0f} GiB RAM; Linux {platform.release()}",
        f"- Software: Python {platform.python_version()}, torch {torch.__version__}",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; load average before / after (1/5/15 min): "
        f"{load_before} | {load_average()} (other jobs may share the CPU)",
        "",
        "| --max-batch | requests | errors | requests/s (= images/s) | p50 latency | p99 latency "
        "| mean forward batch | server RSS before -> after |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['max_batch']} | {r['requests']} | {r['errors']} | {r['requests_per_s']:.2f} "
            f"| {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms | {r['mean_batch']:.2f} "
            f"| {r['rss_before']:.0f} -> {r['rss_after']:.0f} MiB |"
        )
    base = rows[0]["requests_per_s"] if rows else float("nan")
    best = max(rows, key=lambda r: r["requests_per_s"]) if rows else None
    if best is not None:
        lines += [
            "",
            f"- Micro-batching: {best['requests_per_s'] / base:.2f}x the requests/s of "
            f"`--max-batch {rows[0]['max_batch']}` at `--max-batch {best['max_batch']}` with "
            f"{args.clients} concurrent clients.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
