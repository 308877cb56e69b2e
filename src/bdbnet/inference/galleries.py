"""Open a gallery by what names it: a file index (``.safetensors``/``.npz``/``.npy``, searched in
memory) or a vector engine (a Milvus Lite ``.db`` file or an ``http(s)://`` server). Both answer
:meth:`search_hits` with the same ranked :class:`~bdbnet.inference.search.Hit` lists."""

from __future__ import annotations

import os
from typing import Any

from bdbnet.inference.index import GalleryIndex
from bdbnet.inference.milvus_gallery import MilvusGallery
from bdbnet.vector_engines import DEFAULT_COLLECTION, is_engine_target

__all__ = ["Gallery", "is_engine_target", "open_gallery"]

Gallery = GalleryIndex | MilvusGallery


def open_gallery(
    target: str | os.PathLike[str], collection: str = DEFAULT_COLLECTION, **engine: Any
) -> Gallery:
    """The gallery at ``target``: a Milvus collection for a ``.db`` path or a server URI
    (``engine`` options go to :meth:`MilvusGallery.open`), else a saved file index.

    Example:
        >>> gallery = open_gallery("gallery.db")  # doctest: +SKIP
        >>> hits = gallery.search_hits(features, topk=10)  # doctest: +SKIP
    """
    if is_engine_target(target):
        return MilvusGallery.open(str(target), collection=collection, **engine)
    return GalleryIndex.load(target)
