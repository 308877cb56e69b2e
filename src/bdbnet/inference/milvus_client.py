"""The Milvus client, connected with one-line errors: an engine that cannot be reached, an
embedded gallery another process holds, a refusal of the engine naming the gallery.

pymilvus is an optional extra (``pip install 'bdbnet[milvus]'``), imported only here and only
when a Milvus gallery is used; its client logs every failed call with a traceback, which is
silenced: the error it raises says it all and becomes one line here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bdbnet.errors import DataError
from bdbnet.vector_engines import SERVER_SCHEMES

__all__ = ["GalleryEngineError", "connect", "engine_errors", "pymilvus_module"]


class GalleryEngineError(DataError):
    """The engine cannot be reached, or its collection is not a bdbnet gallery."""


def pymilvus_module() -> Any:
    """pymilvus, or an ImportError saying which extra to install."""
    try:
        import pymilvus
    except ImportError as err:
        raise ImportError(
            "galleries on Milvus need pymilvus (and milvus-lite for a .db file): "
            "pip install 'bdbnet[milvus]'"
        ) from err
    # its client logs every failed call with a traceback; the error it raises says it all
    for name in ("pymilvus", "milvus_lite"):  # their refusals become one-line errors here
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


def connect(milvus: Any, uri: str, collection: str, token: str | None) -> tuple[Any, bool]:
    """A client of ``uri`` and whether it holds ``collection``; one-line errors for an engine
    that cannot be reached or an embedded gallery another process holds."""
    local = not uri.startswith(SERVER_SCHEMES)
    try:
        client = milvus.MilvusClient(uri, token=token or "")
        exists = client.has_collection(collection)
    except milvus.MilvusException as err:
        if local and _locked_elsewhere(uri):
            raise GalleryEngineError(
                f"{uri} is open in another process (an embedded Milvus Lite gallery has "
                "one user at a time): wait for it to finish, or put the gallery on a "
                "Milvus server to share it"
            ) from None
        raise GalleryEngineError(
            f"cannot reach the Milvus gallery at {uri} ({err.message}): is the server "
            "running and the URI right?"
        ) from None
    return client, exists


@contextlib.contextmanager
def engine_errors(uri: str, collection: str, doing: str) -> Iterator[None]:
    """The engine's refusals as one-line :class:`GalleryEngineError` naming the gallery."""
    milvus = pymilvus_module()
    try:
        yield
    except milvus.MilvusException as err:
        raise GalleryEngineError(
            f"{uri} ({collection}): the engine failed {doing}: {err.message}"
        ) from None


def _locked_elsewhere(uri: str) -> bool:
    """Whether another process holds Milvus Lite's lock on the ``.db`` folder ``uri``."""
    import fcntl
    import os

    try:
        fd = os.open(Path(uri) / "LOCK", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this check took
    return False
