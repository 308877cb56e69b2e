"""Helpers of the serve tests: uploads, crafted bad images, and a real server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SRC = str(Path(__file__).resolve().parents[1] / "src")


def upload(path: str | Path, name: str | None = None) -> tuple[str, tuple[str, bytes, str]]:
    """One ``images`` field of a multipart request."""
    path = Path(path)
    return ("images", (name or path.name, path.read_bytes(), "image/png"))


def png_bytes(height: int = 48, width: int = 24, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming ``width x height`` pixels with a tiny body: a decoder that
    trusted it would allocate tens of gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m bdbnet serve ARGS`` on 127.0.0.1 and a free port, stopped on exit."""

    def __init__(self, args: list[str], timeout: float = 120.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, "-m", "bdbnet", "serve", *args, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bdbnet serve exited: {self.proc.stdout.read()}")
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=2) as r:
                    if json.load(r)["status"] == "ok":
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("bdbnet serve did not answer /v1/health in time")

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def multipart(files: list[tuple[str, bytes]], boundary: str = "bdbnet-test-boundary") -> bytes:
    """A multipart/form-data body with ``files`` in the field ``images`` (stdlib clients)."""
    parts = []
    for name, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="{name}"'
            "\r\nContent-Type: image/png\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()
