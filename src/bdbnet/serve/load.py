"""A bounded load generator for a local ``bdbnet serve`` (the load test and the benchmark).

It only ever talks to a loopback address (127.0.0.1, ::1, localhost) and stops by itself:
``clients`` threads send ``requests`` requests each (one keep-alive connection per client), or
fewer when ``time_limit`` seconds have passed. Standard library only.

Example:
    >>> kind = "multipart/form-data; boundary=b"
    >>> report = run_load("http://127.0.0.1:8000", body, kind)  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bdbnet.serve.settings import is_loopback

__all__ = ["LoadReport", "run_load"]


@dataclass
class LoadReport:
    """Latencies (seconds) of the successful requests, the failures, and the wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    images_per_request: int = 1

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    def percentile(self, p: float) -> float:
        data = sorted(self.latencies)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, max(0, round(p / 100 * len(data)) - 1))]

    def summary(self) -> dict[str, float]:
        ok = len(self.latencies)
        return {
            "requests": self.requests,
            "errors": len(self.errors),
            "p50_ms": 1000 * self.percentile(50),
            "p99_ms": 1000 * self.percentile(99),
            "mean_ms": 1000 * statistics.fmean(self.latencies) if ok else float("nan"),
            "requests_per_s": ok / self.wall_s if self.wall_s else float("nan"),
            "images_per_s": ok * self.images_per_request / self.wall_s if self.wall_s else 0.0,
        }


def run_load(
    url: str,
    body: bytes,
    content_type: str,
    path: str = "/v1/search?topk=10",
    clients: int = 8,
    requests: int = 50,
    time_limit: float = 120.0,
    images_per_request: int = 1,
    headers: dict[str, str] | None = None,
) -> LoadReport:
    """POST ``body`` to ``url + path`` from ``clients`` threads, ``requests`` times each."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    if parts.scheme != "http" or not is_loopback(host):
        raise ValueError(f"the load generator only talks to a loopback http address, not {url}")
    if clients < 1 or requests < 1:
        raise ValueError("clients and requests must be positive")
    report = LoadReport(images_per_request=images_per_request)
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit
    start = threading.Barrier(clients)
    send = {"Content-Type": content_type, **(headers or {})}

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        start.wait()
        try:
            for _ in range(requests):
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=send)
                    response = conn.getresponse()
                    data = response.read()
                    failed = None if response.status == 200 else f"{response.status} {data[:200]!r}"
                except (OSError, http.client.HTTPException) as err:
                    failed = f"{type(err).__name__}: {err}"
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=60)
                elapsed = time.perf_counter() - t0
                with lock:
                    if failed is None:
                        report.latencies.append(elapsed)
                    else:
                        report.errors.append(failed)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, name=f"load-{i}") for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_limit + 70)
    report.wall_s = time.perf_counter() - t0
    return report
