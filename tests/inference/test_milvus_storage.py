"""How a gallery is laid out in the real embedded Milvus: a projection stored in its side
collection reads back exactly, and a damaged one is refused."""

from __future__ import annotations

import pytest
import torch

from bdbnet.inference.projection import Projection

pytest.importorskip("pymilvus", reason="the Milvus gallery needs bdbnet[milvus]")
pytest.importorskip("milvus_lite", reason="the embedded Milvus needs milvus-lite")

from bdbnet.inference.milvus_storage import (
    load_projection,
    projection_collection,
    store_projection,
)


def test_a_projection_round_trips_through_its_side_collection(tmp_path):
    from pymilvus import MilvusClient

    torch.manual_seed(0)
    projection = Projection.fit(torch.randn(40, 12), 5)
    client = MilvusClient(str(tmp_path / "p.db"))
    try:
        side = store_projection(client, "gallery", projection)
        assert side == projection_collection("gallery") == "gallery__pca"
        again = load_projection(client, side, projection.kept)
        assert torch.equal(again.mean, projection.mean)
        assert torch.equal(again.components, projection.components)
        assert (again.in_dim, again.out_dim, again.kept) == (12, 5, projection.kept)
        store_projection(client, "gallery", Projection.fit(torch.randn(40, 12), 3))  # replaced
        assert load_projection(client, side, 0.5).out_dim == 3
        client.insert(side, [{"row": 9, "vector": [0.0] * 12}])  # rows 0-3 and 9: damaged
        client.flush(side)
        with pytest.raises(ValueError, match="'gallery__pca' is incomplete"):
            load_projection(client, side, 0.5)
    finally:
        client.close()
