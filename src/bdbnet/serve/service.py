"""What the HTTP routes call: decoding uploads, batched embedding, search, gallery images and a
saved run's queries. Plain Python (no FastAPI), so every rule is testable without a server.

Every user mistake raises :class:`ApiError` with the HTTP status the route answers and a
sentence saying what to change; the routes turn it into ``{"error": "..."}``.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bdbnet.data.images import ImageTooLargeError, UnreadableImageError, read_image
from bdbnet.serve.batching import BatcherFullError, MicroBatcher
from bdbnet.serve.settings import ServeConfig

if TYPE_CHECKING:
    from bdbnet.inference import FeatureExtractor, GalleryFilter
    from bdbnet.inference.galleries import Gallery
    from bdbnet.serve.runs import SavedRun

__all__ = ["ApiError", "ServeConfig", "Service", "labels_from_name"]

_STREAM = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx, or 503 when overloaded) and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def labels_from_name(name: str) -> tuple[int | None, int | None]:
    """(identity, 0-based camera) from a Market-1501/DukeMTMC-style file name, else Nones."""
    from bdbnet.inference import labels_from_paths

    parsed = labels_from_paths([name])
    if parsed is None:
        return None, None
    return int(parsed[0][0]), int(parsed[1][0])


class _LRU:
    """A small thread-safe least-recently-used cache of encoded thumbnails."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Any, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: bytes) -> None:
        if not self.capacity:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)


class Service:
    """A model behind a :class:`MicroBatcher`, and what it searches or browses: a gallery
    (``index``: a file index in memory or a Milvus gallery) or a saved evaluation (``run``),
    never both."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        index: Gallery | None = None,
        run: SavedRun | None = None,
        config: ServeConfig | None = None,
        expose_paths: bool = True,
    ) -> None:
        if (index is None) == (run is None):
            raise ValueError("give a gallery index or a saved run (exactly one)")
        self.extractor = extractor
        self.index = index
        self.run = run
        self.config = config or ServeConfig()
        self.expose_paths = expose_paths
        from bdbnet.inference import GalleryIndex

        self._positional = isinstance(index, GalleryIndex)  # hit indexes are row positions
        self._root = ""
        if not expose_paths:
            self._root = index.common_folder() if index is not None else self._run_root()
        if index is not None:
            index.check_compatible(extractor.identity)
        self.batcher: MicroBatcher[torch.Tensor, torch.Tensor] = MicroBatcher(
            self._forward,
            max_batch=self.config.max_batch,
            max_wait=self.config.max_wait_ms / 1000.0,
            max_queue=self.config.max_queue,
            name="bdbnet-model",
        )
        self._thumbs = _LRU(self.config.thumbnail_cache)

    # ------------------------------------------------------------------ model
    def _forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(self.extractor.embed_inputs(torch.stack(inputs)).unbind(0))

    def prepare(self, uploads: Sequence[tuple[str, bytes]]) -> list[torch.Tensor]:
        """Decode ``(file name, bytes)`` uploads with the package's image reader (pixel limit
        from the header, before decoding) and apply the model's test preprocessing."""
        limit = self.config.max_pixels
        inputs = []
        for name, data in uploads:
            if not data:
                raise ApiError(400, f"image {name!r} is empty")
            try:
                image = read_image(io.BytesIO(data), max_pixels=limit, name=repr(name))
            except ImageTooLargeError as err:
                size = f"has {err.pixels} pixels" if err.pixels >= 0 else "has too many pixels"
                raise ApiError(
                    413,
                    f"image {name!r} {size}, over this server's limit of {limit} (--max-pixels)",
                ) from err
            except UnreadableImageError as err:
                reason = _STREAM.sub("the upload", str(err.__cause__ or err))
                raise ApiError(400, f"image {name!r} is not a readable image ({reason})") from err
            inputs.append(self.extractor.preprocess_image(image))
        return inputs

    def submit(self, inputs: list[torch.Tensor]):
        """Queue network inputs on the model's batcher (futures of their feature rows)."""
        try:
            return self.batcher.submit(inputs)
        except BatcherFullError as err:
            raise ApiError(503, f"the server is busy: {err}") from err

    # ------------------------------------------------------------------ paths
    def _run_root(self) -> str:
        from bdbnet.inference.index import common_folder

        assert self.run is not None
        return common_folder([*self.run.gallery_paths, *self.run.query_paths])

    def shown(self, path: str) -> str:
        """``path`` as answered: whole when paths are exposed, else relative to the folder all
        the server's images share (absolute paths say how a machine is laid out)."""
        if self.expose_paths or not os.path.isabs(path):
            return path
        return os.path.relpath(path, self._root) if self._root else os.path.basename(path)

    def _model(self, model: dict[str, Any] | None) -> dict[str, Any] | None:
        if model is None or self.expose_paths or not model.get("checkpoint"):
            return model
        return {**model, "checkpoint": os.path.basename(str(model["checkpoint"]))}

    # ------------------------------------------------------------------ gallery
    @property
    def gallery_size(self) -> int:
        if self.index is not None:
            return len(self.index)
        assert self.run is not None
        return len(self.run.gallery_paths)

    def gallery_record(self, i: int) -> tuple[str, int | None, int | None] | None:
        """(path, identity, camera) of gallery item ``i`` (a hit's ``index``; labels None
        when unknown), ``None`` when there is no such item."""
        if self.index is not None:
            return self.index.record(i)
        assert self.run is not None
        run = self.run
        if not 0 <= i < len(run.gallery_paths):
            return None
        return run.gallery_paths[i], int(run.gallery_pids[i]), int(run.gallery_camids[i])

    def check_topk(self, topk: int, rerank: bool) -> None:
        top = self.config.max_topk
        if not 1 <= topk <= top:
            raise ApiError(400, f"topk must be between 1 and {top} (--max-topk); got {topk}")
        if rerank and self.index is not None and not self._positional:
            raise ApiError(
                400,
                "rerank=true re-ranks a gallery held in memory; this server searches a vector "
                "engine (Milvus), which returns its ranked lists as they are",
            )
        if rerank and self.gallery_size > self.config.max_rerank_gallery:
            raise ApiError(
                400,
                f"rerank=true re-ranks the whole gallery per request: allowed for galleries up "
                f"to {self.config.max_rerank_gallery} images (--max-rerank-gallery); this one "
                f"has {self.gallery_size}",
            )

    def require_index(self) -> Gallery:
        if self.index is None:
            raise ApiError(
                404,
                "this server browses a saved evaluation (--run) and holds no gallery index; "
                "start it with --index INDEX to search",
            )
        return self.index

    def check_where(self, text: str) -> GalleryFilter:
        """The request's ``where`` filter, checked against the gallery's fields (a 400 if it
        does not parse or names a field the gallery does not record)."""
        from bdbnet.inference import parse_where
        from bdbnet.inference.gallery_filter import GalleryFilterError

        try:
            where = parse_where(text)
            where.mask(self.require_index().filter_columns())
        except GalleryFilterError as err:
            raise ApiError(400, str(err)) from None
        return where

    def search(
        self, features: torch.Tensor, topk: int, rerank: bool, where: GalleryFilter | None = None
    ) -> list[list[dict]]:
        """The ranked gallery items of each feature row, as the contract's dictionaries;
        ``where`` keeps the gallery items it matches (``search --where``'s language)."""
        options = {"rerank": True} if rerank else {}
        hits = self.require_index().search_hits(
            features, topk, identity=self.extractor.identity, where=where, **options
        )
        return [[{**hit.to_dict(), "path": self.shown(hit.path)} for hit in row] for row in hits]

    def image(self, kind: str, i: int, size: int | None) -> bytes:
        """JPEG bytes of gallery (or, with a run, query) image ``i``, at most ``size`` pixels
        on its longer side. Only files listed by the index or the run are ever opened: the
        request gives an integer, never a path."""
        if size is not None and not 16 <= size <= 1024:
            raise ApiError(400, f"size must be between 16 and 1024 pixels; got {size}")
        key = (kind, i, size)
        cached = self._thumbs.get(key)
        if cached is not None:  # before any lookup: an engine gallery answers over the network
            return cached
        if kind == "gallery":
            record = self.gallery_record(i)
            if record is None:
                n = self.gallery_size
                why = f"the gallery has {n} images (0..{n - 1})"
                if self.run is None and not self._positional:  # engine ids, not positions
                    why = "the engine gallery holds no item with this id (a hit's 'index')"
                raise ApiError(404, f"no gallery image {i}: {why}")
            path = record[0]
        else:
            if self.run is None:
                raise ApiError(404, "this server holds no saved run (start it with --run DIR)")
            count = self.run.num_queries
            if not 0 <= i < count:
                raise ApiError(
                    404, f"no query image {i}: the query has {count} images (0..{count - 1})"
                )
            path = self.run.query_paths[i]
        try:
            image = read_image(path)
        except UnreadableImageError as err:
            raise ApiError(404, f"{kind} image {i} cannot be read on the server ({err})") from err
        if size is not None:
            image.thumbnail((size, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        data = buffer.getvalue()
        self._thumbs.put(key, data)
        return data

    # ------------------------------------------------------------------ saved run
    def run_summary(self) -> dict[str, Any]:
        run = self._need_run()
        meta = run.metadata
        valid = ~np.isnan(run.ap)
        return {
            "dataset": meta.get("dataset"),
            "model": self._model(meta.get("model")),
            "metric": meta.get("metric"),
            "rerank": meta.get("rerank"),
            "ap_mode": meta.get("ap_mode"),
            "metrics": meta.get("metrics", {}),
            "topk": meta.get("topk"),
            "num_queries": run.num_queries,
            "num_valid_queries": int(valid.sum()),
            "num_gallery": len(run.gallery_paths),
            "cameras": sorted({int(c) for c in run.query_camids}),
            "identities": len({int(p) for p in run.query_pids}),
        }

    def run_queries(
        self, pid: int | None, camid: int | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of the run's queries, worst AP first, filtered by identity and camera."""
        run = self._need_run()
        if offset < 0 or not 1 <= limit <= 200:
            raise ApiError(400, f"offset must be >= 0 and limit 1..200; got {offset}, {limit}")
        order = [
            q
            for q in run.worst_first()
            if (pid is None or run.query_pids[q] == pid)
            and (camid is None or run.query_camids[q] == camid)
        ]
        page = []
        for q in order[offset : offset + limit]:
            q_pid = int(run.query_pids[q])
            results = []
            for rank, (g, d) in enumerate(run.ranking(q), start=1):
                g_pid = int(run.gallery_pids[g])
                results.append(
                    {
                        "rank": rank,
                        "index": g,
                        "path": self.shown(run.gallery_paths[g]),
                        "distance": d,
                        "pid": g_pid,
                        "camid": int(run.gallery_camids[g]),
                        "match": g_pid == q_pid,
                    }
                )
            ap = float(run.ap[q])
            page.append(
                {
                    "index": q,
                    "path": self.shown(run.query_paths[q]),
                    "pid": q_pid,
                    "camid": int(run.query_camids[q]),
                    "ap": None if np.isnan(ap) else ap,
                    "first_match_rank": int(run.first_match_rank[q]),
                    "results": results,
                }
            )
        return {"total": len(order), "offset": offset, "queries": page}

    def _need_run(self) -> SavedRun:
        if self.run is None:
            raise ApiError(404, "this server holds no saved run; start it with --run DIR")
        return self.run

    def info(self) -> dict[str, Any]:
        ex = self.extractor
        return {
            "mode": "search" if self.index is not None else "run",
            "model": self._model(ex.identity.to_dict()),
            "feature_dim": ex.feature_dim,
            "input_size": list(ex.input_size),
            "preprocess": ex.preprocess,
            "device": str(ex.device),
            "runtime": ex.runtime.info.runtime,
            "precision": ex.runtime.info.precision,
            "flip": ex.flip,
            "gallery_size": self.gallery_size,
            "gallery_labels": self.index is None or self.index.labelled,
            "limits": self.config.to_dict(),
            "batching": self.batcher.stats.to_dict(),
        }

    def close(self) -> None:
        self.batcher.close()
