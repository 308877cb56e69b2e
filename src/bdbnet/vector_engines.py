"""What names a gallery on a vector engine, without importing the engine or torch (the command
line's parser reads these): a Milvus Lite ``.db`` file or a Milvus server URI, the default
collection and the vector indexes offered."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_COLLECTION", "INDEX_TYPES", "is_engine_target"]

DEFAULT_COLLECTION = "bdbnet_gallery"
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")  # FLAT exact; the others approximate, re-scored
SERVER_SCHEMES = ("http://", "https://", "tcp://")


def is_engine_target(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` names a Milvus gallery: a ``.db`` file (Milvus Lite) or a server URI.

    >>> [is_engine_target(t) for t in ("gallery.db", "http://h:19530", "g.npz")]
    [True, True, False]
    """
    text = str(target)
    return text.startswith(SERVER_SCHEMES) or text.lower().endswith(".db")
