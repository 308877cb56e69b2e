"""How a bdbnet gallery is laid out in Milvus: its collection's schema, and its PCA stored in the
engine beside it.

The collection: an auto id (a hit's ``index``), the feature (``FLOAT_VECTOR``), the path, ``pid``
and ``camid`` (-1 when unknown), ``time`` and ``source``, with one vector index (FLAT, HNSW or
IVF_FLAT, L2) and the gallery's description (JSON) as the collection property ``bdbnet``.

Why the projection lives in the engine: a projected gallery (``extract --project-dim K``) holds
K-d rows; its queries must be projected with the very mean and directions the rows were,
wherever the gallery is opened (a laptop's ``.db``, a server shared by many clients). The
projection is too large for the collection's description (1536 x 256 floats: 1.5 MB), so it
lives in a side collection ``<collection>__pca`` of K + 1 vectors of the model's dimension: row 0
the mean, row i the i-th direction. Milvus Lite has no float16 vectors: a projection is the
engine's compact form.

Example:
    >>> side = store_projection(client, "gallery", projection)  # doctest: +SKIP
    >>> projection = load_projection(client, side, kept=0.93)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from bdbnet.inference.projection import Projection

__all__ = ["create_collection", "load_projection", "projection_collection", "store_projection"]

PROPERTY = "bdbnet"  # the collection property holding the description (JSON)
_INDEX_PARAMS = {"FLAT": {}, "HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}}


def create_collection(client: Any, collection: str, desc: dict[str, Any], max_path: int) -> None:
    """Make ``collection`` for the gallery ``desc`` describes (its ``dim`` and ``index``)."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("feature", DataType.FLOAT_VECTOR, dim=desc["dim"])
    schema.add_field("path", DataType.VARCHAR, max_length=max_path)
    schema.add_field("pid", DataType.INT64)
    schema.add_field("camid", DataType.INT64)
    schema.add_field("time", DataType.INT64)
    schema.add_field("source", DataType.VARCHAR, max_length=1024)
    index = client.prepare_index_params()
    kind = desc["index"]
    index.add_index("feature", index_type=kind, metric_type="L2", params=_INDEX_PARAMS[kind])
    client.create_collection(collection, schema=schema, index_params=index)
    client.alter_collection_properties(collection, properties={PROPERTY: json.dumps(desc)})


def projection_collection(collection: str) -> str:
    """The side collection holding ``collection``'s projection."""
    return f"{collection}__pca"


def store_projection(client: Any, collection: str, projection: Projection) -> str:
    """Write ``projection`` as the side collection of ``collection`` (replacing an earlier one
    of the same name, which only a creation that failed halfway leaves); returns its name."""
    from pymilvus import DataType

    side = projection_collection(collection)
    if client.has_collection(side):
        client.drop_collection(side)
    schema = client.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=projection.in_dim)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(side, schema=schema, index_params=index)
    rows = np.concatenate([projection.mean[None].numpy(), projection.components.T.numpy()])
    client.insert(side, [{"row": i, "vector": rows[i]} for i in range(rows.shape[0])])
    client.flush(side)
    return side


def load_projection(client: Any, side: str, kept: float) -> Projection:
    """The projection :func:`store_projection` wrote to ``side``.

    Raises:
        ValueError: the side collection is missing rows (not written by bdbnet, or damaged).
    """
    client.load_collection(side)
    found = client.query(side, filter="row >= 0", output_fields=["row", "vector"])
    rows = {int(r["row"]): np.asarray(r["vector"], dtype=np.float32) for r in found}
    if not rows or sorted(rows) != list(range(len(rows))) or len(rows) < 2:
        raise ValueError(f"the projection collection {side!r} is incomplete ({len(rows)} rows)")
    matrix = np.stack([rows[i] for i in range(len(rows))])
    return Projection(
        torch.from_numpy(matrix[0].copy()), torch.from_numpy(matrix[1:].T.copy()), kept
    )
