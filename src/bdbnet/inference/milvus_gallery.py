"""A gallery on Milvus: an embedded file (Milvus Lite, ``gallery.db``) or a cluster
(``http://host:19530``), through one client (``pip install 'bdbnet[milvus]'``).

Why an engine: a city's cameras over days are tens of millions of crops (10^8 1536-d float32
features are 614 GB), past what one file loaded into one machine's memory can hold. Milvus keeps
the same client API from an embedded file on a laptop to a distributed cluster, filters on
scalar fields inside the search, and offers approximate indexes (HNSW, IVF).

One collection (default ``bdbnet_gallery``, laid out by :mod:`~bdbnet.inference.milvus_storage`)
holds per image: an auto id (the hit's ``index``), the feature, the path, ``pid`` and ``camid``
(-1 when unknown), ``time`` (seconds, the file's modification time) and ``source`` (the image's
folder). Its description records the model identity, the feature dimension, whether labels are
known, the vector index and, for a projected gallery, its PCA (kept in the engine, applied to
every feature added and every query); features of another model are refused when adding and
when searching.

Search asks the engine for ``candidates`` (default ``max(2k, k + 10)``) items under the filter
(``--where``, and for evaluation-style queries "not the same identity on the same camera"),
then re-scores them with the stored float32 features by :func:`bdbnet.evaluation.
pairwise_distance` and sorts them stably by (distance, id): with a ``FLAT`` index the result is
exact search's; with ``HNSW``/``IVF_FLAT`` it equals exact search whenever the true neighbours are
among the candidates (recall measured in ``benchmarks/bench_index.py``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bdbnet.errors import OutputError
from bdbnet.evaluation.distance import ArrayLike, Metric, as_tensor, pairwise_distance
from bdbnet.inference.extractor import ModelIdentity
from bdbnet.inference.gallery_filter import GalleryFilter
from bdbnet.inference.index import common_folder
from bdbnet.inference.milvus_client import (
    GalleryEngineError,
    connect,
    engine_errors,
    pymilvus_module,
)
from bdbnet.inference.milvus_storage import (
    PROPERTY,
    create_collection,
    load_projection,
    store_projection,
)
from bdbnet.inference.projection import Projection
from bdbnet.inference.search import Hit
from bdbnet.vector_engines import (
    DEFAULT_COLLECTION,
    INDEX_TYPES,
    SERVER_SCHEMES,
    is_engine_target,
)

__all__ = ["ENGINE_FORMAT", "GalleryEngineError", "MilvusGallery"]

ENGINE_FORMAT = "bdbnet-gallery"
INSERT_ROWS = 2000  # rows per insert call
# Milvus Lite's exact (FLAT) search broadcasts (queries x rows x dim) float32 differences: a
# 200-query batch over 10,000 1536-d rows asks for 12 GB. Local searches are sent in chunks
# whose broadcast stays under this many bytes (one query per call past ~44,000 rows). Smaller
# broadcasts are also faster: 32 queries over 10,000 rows took 2.4-4.9 s in chunks of 17
# queries (1 GiB), 0.74-0.87 s in chunks of 4 (256 MiB), 1.0 s one by one (2-core EPYC).
LITE_SEARCH_BYTES = 1 << 28
MAX_PATH = 4096
_RECORD = ["path", "pid", "camid"]


class MilvusGallery:
    """A gallery in a Milvus collection; open with :meth:`open`.

    Example:
        >>> gallery = MilvusGallery.open("gallery.db", identity, create=True)  # doctest: +SKIP
        >>> gallery.add(features, paths, pids=pids, camids=camids)  # doctest: +SKIP
        >>> where = parse_where("camid != 2")  # doctest: +SKIP
        >>> hits = gallery.search_hits(query, topk=10, where=where)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        uri: str,
        collection: str,
        desc: dict[str, Any],
        projection: Projection | None = None,
    ) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.desc = desc
        model = desc.get("model")
        self.identity = ModelIdentity.from_dict(model) if model else None
        self.projection = projection  # PCA of the stored rows (milvus_projection)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        uri: str | Path,
        identity: ModelIdentity | None = None,
        *,
        create: bool = False,
        dim: int | None = None,
        labelled: bool = False,
        index_type: str = "FLAT",
        collection: str = DEFAULT_COLLECTION,
        token: str | None = None,
        projection: Projection | None = None,
    ) -> MilvusGallery:
        """Connect to ``uri`` (a ``.db`` path or a server URI) and its ``collection``; with
        ``create``, make the collection for ``identity``'s features when it does not exist
        (``index_type``: FLAT, HNSW or IVF_FLAT), storing ``projection``'s rows (a PCA fitted
        on the gallery, kept in the engine) when given. An existing collection of another
        model, dimension or projection is refused."""
        milvus = pymilvus_module()
        uri = str(uri)
        if index_type not in INDEX_TYPES:
            known = ", ".join(INDEX_TYPES)
            raise ValueError(f"index_type must be one of {known}; got {index_type!r}")
        if not is_engine_target(uri):
            raise GalleryEngineError(f"{uri}: a Milvus gallery is a .db file or an http(s):// URI")
        local = not uri.startswith(SERVER_SCHEMES)
        if local and not create and not Path(uri).exists():
            raise GalleryEngineError(
                f"no gallery at {uri}: build one with bdbnet extract --output {uri}"
            )
        if local:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        client, exists = connect(milvus, uri, collection, token)
        if not exists:
            if not create:
                raise GalleryEngineError(
                    f"{uri} holds no collection {collection!r}: build it with bdbnet extract "
                    f"--output {uri}"
                )
            if identity is None and dim is None:
                raise ValueError("a new gallery needs the model identity or the feature dim")
            model_dim = int(dim or identity.feature_dim)  # type: ignore[union-attr]
            if projection is not None and projection.in_dim != model_dim:
                raise ValueError(
                    f"the projection takes {projection.in_dim}-d features, the model's are "
                    f"{model_dim}-d"
                )
            desc = {
                "format": ENGINE_FORMAT,
                "version": 1,
                "dim": projection.out_dim if projection is not None else model_dim,
                "model": identity.to_dict() if identity else None,
                "labels": bool(labelled),
                "index": index_type,
            }
            if projection is not None:
                with engine_errors(uri, collection, "storing the projection"):
                    side = store_projection(client, collection, projection)
                desc["projection"] = {
                    "collection": side,
                    "model_dim": model_dim,
                    "kept_variance": projection.kept,
                }
            create_collection(client, collection, desc, MAX_PATH)
            return cls(client, uri, collection, desc, projection)
        properties = client.describe_collection(collection).get("properties") or {}
        raw = properties.get(PROPERTY, "")
        try:
            desc = json.loads(raw)
            assert isinstance(desc, dict) and desc.get("format") == ENGINE_FORMAT
        except (ValueError, AssertionError):
            raise GalleryEngineError(
                f"{uri}: collection {collection!r} was not written by bdbnet (it has no bdbnet "
                "description); use another --collection"
            ) from None
        stored = desc.get("projection")
        kept = None
        if stored:
            with engine_errors(uri, collection, "loading the projection"):
                try:
                    kept = load_projection(client, stored["collection"], stored["kept_variance"])
                except ValueError as err:
                    raise GalleryEngineError(f"{uri} ({collection}): {err}") from None
        gallery = cls(client, uri, collection, desc, kept)
        with gallery._errors("loading the collection"):
            client.load_collection(collection)
        if create and identity is not None:
            gallery.check_compatible(identity, identity.feature_dim, adding=True)
        if create and projection is not None and gallery.dim != projection.out_dim:
            raise GalleryEngineError(
                f"{uri} ({collection}) holds {gallery.dim}-d features"
                + (" (no projection)" if kept is None else f" (a PCA to {gallery.dim})")
                + f", not a PCA to {projection.out_dim}: add to it with its own dimension, "
                "or use another --collection"
            )
        return gallery

    @classmethod
    def exists(
        cls, uri: str | Path, collection: str = DEFAULT_COLLECTION, token: str | None = None
    ) -> bool:
        """Whether ``uri`` holds a collection ``collection`` (an engine that cannot be reached
        is a :class:`GalleryEngineError`, not ``False``)."""
        uri = str(uri)
        if not uri.startswith(SERVER_SCHEMES) and not Path(uri).exists():
            return False
        client, found = connect(pymilvus_module(), uri, collection, token)
        client.close()
        return found

    def close(self) -> None:
        """Disconnect; an embedded gallery's engine stops, so another process may open it."""
        self.client.close()
        if not self.uri.startswith(SERVER_SCHEMES):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)

    def __enter__(self) -> MilvusGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ facts
    def __len__(self) -> int:
        with self._errors("counting the items"):
            stats = self.client.get_collection_stats(self.collection)
        return int(stats.get("row_count", 0))

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        """The engine's refusals as one-line :class:`GalleryEngineError` naming the gallery."""
        return engine_errors(self.uri, self.collection, doing)

    @property
    def dim(self) -> int:
        """The stored rows' dimension (the projection's when the gallery has one)."""
        return int(self.desc["dim"])

    @property
    def model_dim(self) -> int:
        """The dimension of the model's features the gallery takes and is queried with."""
        return self.projection.in_dim if self.projection is not None else self.dim

    @property
    def labelled(self) -> bool:
        return bool(self.desc.get("labels"))

    def check_compatible(
        self, identity: ModelIdentity | None, dim: int | None = None, adding: bool = False
    ) -> None:
        """Raise :class:`~bdbnet.inference.index.IndexMismatchError` if features of
        ``identity`` (or of dimension ``dim``) do not belong in this gallery."""
        from bdbnet.inference.index import IndexMismatchError

        doing = "add to" if adding else "query"
        if dim is not None and dim != self.model_dim:
            raise IndexMismatchError(
                f"{self.uri} holds {self.model_dim}-d features; these are {dim}-d: {doing} it "
                "with the model that built it"
            )
        if identity is not None and self.identity is not None:
            why = self.identity.mismatch(identity)
            if why:
                raise IndexMismatchError(
                    f"the gallery {self.uri} was built with another model ({why}); {doing} it "
                    "with the checkpoint that built it, or use another --collection"
                )

    def filter_columns(self) -> dict[str, np.ndarray | None]:
        """The fields ``--where`` may name, as empty columns (``None``: not recorded): a
        filter is checked against them before the engine sees it."""
        none = np.zeros(0, dtype=np.int64)
        labels = none if self.labelled else None
        return {"pid": labels, "camid": labels, "time": none, "source": np.zeros(0, dtype=str)}

    def record(self, i: int) -> tuple[str, int | None, int | None] | None:
        """(path, pid, camid) of the item with id ``i`` (a hit's ``index``); ``None`` when
        there is none."""
        with self._errors("reading an item"):
            rows = self.client.get(self.collection, ids=[int(i)], output_fields=_RECORD)
        if not rows:
            return None
        row = rows[0]
        labels = self.labelled
        return (
            row["path"],
            int(row["pid"]) if labels else None,
            int(row["camid"]) if labels else None,
        )

    def common_folder(self) -> str:
        """The deepest folder holding every absolute path added ("" when none is absolute)."""
        return str(self.desc.get("root") or "")

    def indexed_paths(self) -> set[str]:
        """Every path already in the gallery (a resumed extraction skips them)."""
        paths: set[str] = set()
        with self._errors("listing the indexed paths"):
            iterator = self.client.query_iterator(
                self.collection, batch_size=10000, output_fields=["path"]
            )
            try:
                while batch := iterator.next():
                    paths.update(row["path"] for row in batch)
            finally:
                iterator.close()
        return paths

    # ------------------------------------------------------------------ writing
    def add(
        self,
        features: ArrayLike,
        paths: Sequence[str],
        *,
        pids: Sequence[int] | None = None,
        camids: Sequence[int] | None = None,
        times: Sequence[int] | None = None,
        sources: Sequence[str] | None = None,
    ) -> int:
        """Insert rows (``features[i]`` is ``paths[i]``); returns how many. Times default to
        the files' modification times, sources to their folders."""
        feats = as_tensor(features).float().cpu().numpy()
        n = len(paths)
        if feats.ndim != 2 or feats.shape[0] != n:
            raise ValueError(f"{feats.shape[0]} features for {n} paths")
        self.check_compatible(None, int(feats.shape[1]), adding=True)
        if self.projection is not None:
            feats = self.projection(feats).numpy()
        for path in paths:
            if len(path.encode("utf-8")) > MAX_PATH:
                raise OutputError(f"a path longer than {MAX_PATH} bytes cannot be indexed: {path}")
        pids = list(pids) if pids is not None else [-1] * n
        camids = list(camids) if camids is not None else [-1] * n
        times = list(times) if times is not None else [_mtime(p) for p in paths]
        sources = list(sources) if sources is not None else [Path(p).parent.name for p in paths]
        for start in range(0, n, INSERT_ROWS):
            rows = [
                {
                    "feature": feats[i],
                    "path": paths[i],
                    "pid": int(pids[i]),
                    "camid": int(camids[i]),
                    "time": int(times[i]),
                    "source": sources[i][:1024],
                }
                for i in range(start, min(start + INSERT_ROWS, n))
            ]
            with self._errors("inserting features"):
                self.client.insert(self.collection, rows)
        with self._errors("flushing the inserted features"):
            self.client.flush(self.collection)
        root = common_folder(paths, self.desc.get("root") or None)
        if root != self.desc.get("root", ""):  # what a server shows paths relative to
            self.desc["root"] = root
            with self._errors("recording the gallery's folder"):
                self.client.alter_collection_properties(
                    self.collection, properties={PROPERTY: json.dumps(self.desc)}
                )
        return n

    # ------------------------------------------------------------------ searching
    def search_hits(
        self,
        query: ArrayLike,
        topk: int = 10,
        identity: ModelIdentity | None = None,
        metric: Metric = "euclidean",
        *,
        where: GalleryFilter | None = None,
        exclude_same_camera: tuple[Sequence[int], Sequence[int]] | None = None,
        candidates: int | None = None,
    ) -> list[list[Hit]]:
        """The ``topk`` nearest gallery items of each query row (see the module documentation).

        ``exclude_same_camera`` = (query pids, query camids): leave out gallery items of the
        query's identity seen by the query's camera (the re-ID protocol)."""
        q = as_tensor(query).float()
        if q.dim() == 1:
            q = q.unsqueeze(0)
        self.check_compatible(identity, int(q.shape[1]))
        if self.projection is not None:
            q = self.projection(q)
        if where is not None:  # the fields it names must be recorded: checked on no rows
            where.mask(self.filter_columns())
        fetch = max(candidates or 0, 2 * topk, topk + 10)
        groups: dict[tuple[int, int] | None, list[int]] = {}
        for i in range(q.shape[0]):
            key = None
            if exclude_same_camera is not None:
                key = (int(exclude_same_camera[0][i]), int(exclude_same_camera[1][i]))
            groups.setdefault(key, []).append(i)
        out: list[list[Hit]] = [[] for _ in range(q.shape[0])]
        step = q.shape[0]  # queries per engine call
        if not self.uri.startswith(SERVER_SCHEMES):  # Milvus Lite: bound its broadcast
            step = max(1, LITE_SEARCH_BYTES // max(1, len(self) * self.dim * 4))
        for key, rows in groups.items():
            expression = _combine(where, key)
            found = self._engine_search(q[rows], fetch, expression, step)
            for row, hits in zip(rows, found):
                out[row] = _rescore(q[row], hits, topk, metric, self.labelled)
        return out

    def _engine_search(
        self, q: torch.Tensor, fetch: int, expression: str, step: int
    ) -> list[list[dict]]:
        index = self.desc.get("index")
        effort = {"ef": max(64, fetch)} if index == "HNSW" else {"nprobe": 32}
        params = {"metric_type": "L2", "params": effort if index != "FLAT" else {}}
        found: list[list[dict]] = []
        with self._errors("searching"):
            for start in range(0, q.shape[0], step):
                found += self.client.search(
                    self.collection,
                    data=[row.numpy() for row in q[start : start + step]],
                    anns_field="feature",
                    limit=fetch,
                    filter=expression,
                    output_fields=["feature", *_RECORD],
                    search_params=params,
                )
        return found


def _combine(where: GalleryFilter | None, same: tuple[int, int] | None) -> str:
    parts = [where.milvus()] if where is not None else []
    if same is not None:
        parts.append(f"not (pid == {same[0]} and camid == {same[1]})")
    return " and ".join(parts)


def _rescore(
    query: torch.Tensor, hits: Iterable[dict], topk: int, metric: Metric, labelled: bool
) -> list[Hit]:
    hits = list(hits)
    if not hits:
        return []
    feats = torch.tensor(np.asarray([h["entity"]["feature"] for h in hits], dtype=np.float32))
    dist = pairwise_distance(query.unsqueeze(0), feats, metric)[0]
    ids = torch.tensor([int(h["id"]) for h in hits])
    order = sorted(range(len(hits)), key=lambda j: (float(dist[j]), int(ids[j])))[:topk]
    out = []
    for rank, j in enumerate(order, start=1):
        entity = hits[j]["entity"]
        out.append(
            Hit(
                rank,
                int(ids[j]),
                entity["path"],
                float(dist[j]),
                int(entity["pid"]) if labelled else None,
                int(entity["camid"]) if labelled else None,
            )
        )
    return out


def _mtime(path: str) -> int:
    try:
        return int(Path(path).stat().st_mtime)
    except OSError:
        return 0
