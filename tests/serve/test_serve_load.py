"""A bounded load test of a real `bdbnet serve` on 127.0.0.1: 8 clients x 50 searches, zero
errors, latency and throughput reported, no memory growth (the heavy version:
benchmarks/bench_serve.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_helpers import Server, multipart

from bdbnet.inference import FeatureExtractor, GalleryIndex
from bdbnet.serve.load import run_load

pytestmark = pytest.mark.slow  # a live server under load

BOUNDARY = "bdbnet-load"


def test_load_on_loopback(tiny_checkpoint, person_images, tmp_path):
    extractor = FeatureExtractor(tiny_checkpoint, device="cpu")
    index = GalleryIndex.from_extraction(extractor.extract(person_images), extractor.identity)
    path = index.save(tmp_path / "gallery.npz")
    body = multipart([(Path(person_images[0]).name, Path(person_images[0]).read_bytes())], BOUNDARY)
    kind = f"multipart/form-data; boundary={BOUNDARY}"
    args = ["--checkpoint", str(tiny_checkpoint), "--index", str(path), "--max-wait-ms", "10"]
    with Server(args) as server:
        warm = run_load(server.url, body, kind, clients=8, requests=10, time_limit=60)
        assert not warm.errors, warm.errors[:3]
        before = server.rss_bytes()
        report = run_load(server.url, body, kind, clients=8, requests=50, time_limit=120)
        after = server.rss_bytes()
    stats = report.summary()
    print(
        f"\nload: {stats['requests']} requests, {stats['errors']} errors, "
        f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, "
        f"{stats['images_per_s']:.1f} images/s; server RSS {before / 2**20:.0f} -> "
        f"{after / 2**20:.0f} MiB"
    )
    assert stats["requests"] == 400 and stats["errors"] == 0, report.errors[:3]
    assert stats["p99_ms"] < 10_000
    assert after - before < 40 * 2**20  # no growth beyond allocator noise over 400 requests


def test_the_load_generator_refuses_other_hosts():
    with pytest.raises(ValueError, match="loopback"):
        run_load("http://192.0.2.1:80", b"", "x", clients=1, requests=1)
    with pytest.raises(ValueError, match="loopback"):
        run_load("https://127.0.0.1:80", b"", "x", clients=1, requests=1)
