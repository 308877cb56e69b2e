"""The limits and batching of one server: a plain dataclass, importable without torch (the
command line builds its help from these defaults)."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DEFAULT_RUN_TOPK", "LOOPBACK_HOSTS", "ServeConfig", "is_loopback"]

#: The ``Host`` names a server bound to a loopback address answers to.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: Ranked gallery items ``evaluate --save-run`` keeps per query.
DEFAULT_RUN_TOPK = 20


@dataclass(frozen=True)
class ServeConfig:
    """Limits and batching of one server (``bdbnet serve --help`` describes each).

    >>> ServeConfig(max_batch=8).max_batch
    8
    """

    max_upload_bytes: int = 20 * 2**20
    max_images: int = 32
    max_pixels: int = 25_000_000
    max_topk: int = 100
    max_rerank_gallery: int = 5000
    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 512
    thumbnail_cache: int = 2048

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value >= (0 if name in ("max_wait_ms", "thumbnail_cache") else 1):
                raise ValueError(f"{name} must be positive, got {value}")
        if self.max_images > self.max_queue:
            raise ValueError(
                f"max_images ({self.max_images}) is over max_queue ({self.max_queue}): a request "
                "of that many images could never be queued; raise --max-queue or lower "
                "--max-images"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
