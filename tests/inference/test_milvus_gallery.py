"""A gallery on the real embedded Milvus (Milvus Lite, a ``.db`` folder): the same hits as the
file index (filters and the re-ID protocol included), approximate indexes re-scored to exact,
the model identity enforced, and one-line errors for what cannot be used."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bdbnet.inference import GalleryIndex, IndexMismatchError, ModelIdentity, parse_where
from bdbnet.inference.gallery_filter import GalleryFilterError

pytest.importorskip("pymilvus", reason="the Milvus gallery needs bdbnet[milvus]")
pytest.importorskip("milvus_lite", reason="the embedded Milvus needs milvus-lite")

from bdbnet.inference.milvus_gallery import GalleryEngineError, MilvusGallery

DIM = 16
N = 300
MODEL = ModelIdentity("f" * 64, DIM, weights_sha256="a" * 64, checkpoint="m.pt")
OTHER = ModelIdentity("e" * 64, DIM, weights_sha256="b" * 64, checkpoint="other.pt")


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, DIM)).astype(np.float32)
    pids = rng.integers(0, 30, N)
    feats = centres[pids] + 0.3 * rng.standard_normal((N, DIM)).astype(np.float32)
    camids = rng.integers(0, 4, N)
    paths = [
        f"/g/cam{c}/{p:04d}_c{c + 1}s1_{i:06d}.jpg" for i, (p, c) in enumerate(zip(pids, camids))
    ]
    return torch.from_numpy(feats), paths, torch.from_numpy(pids), torch.from_numpy(camids)


@pytest.fixture(scope="module")
def galleries(tmp_path_factory):
    """The same gallery as a file index and in Milvus Lite (FLAT)."""
    feats, paths, pids, camids = data()
    index = GalleryIndex(feats, paths, MODEL, pids=pids, camids=camids)
    uri = str(tmp_path_factory.mktemp("milvus") / "gallery.db")
    engine = MilvusGallery.open(uri, MODEL, create=True, labelled=True)
    engine.add(feats, paths, pids=pids.tolist(), camids=camids.tolist(), times=list(range(N)))
    return index, engine


def queries(n: int = 12, seed: int = 1) -> tuple[torch.Tensor, list[int], list[int]]:
    feats, _, pids, camids = data()
    rng = np.random.default_rng(seed)
    rows = rng.choice(N, n, replace=False)
    noise = 0.05 * torch.from_numpy(rng.standard_normal((n, DIM)).astype(np.float32))
    return feats[rows] + noise, pids[rows].tolist(), camids[rows].tolist()


def same_hits(a, b) -> None:
    """Equal ranked paths and labels; distances equal to float32 rounding (a query alone or in
    a batch: the |x|^2 + |y|^2 - 2xy expansion loses digits of small distances)."""
    assert [[h.path for h in row] for row in a] == [[h.path for h in row] for row in b]
    assert [[(h.pid, h.camid) for h in row] for row in a] == [
        [(h.pid, h.camid) for h in row] for row in b
    ]
    da = torch.tensor([[h.distance for h in row] for row in a])
    db = torch.tensor([[h.distance for h in row] for row in b])
    assert torch.allclose(da, db, rtol=1e-5, atol=1e-4 * float(db.abs().max()))


def test_exact_engine_search_equals_the_file_index(galleries):
    index, engine = galleries
    q, _, _ = queries()
    assert len(engine) == N and engine.dim == DIM and engine.identity == MODEL
    same_hits(engine.search_hits(q, 10, MODEL), index.search_hits(q, 10, MODEL))
    hits = engine.search_hits(q, 10)
    assert [h.rank for h in hits[0]] == list(range(1, 11))
    assert all(a.distance <= b.distance for row in hits for a, b in itertools.pairwise(row))


def test_a_local_search_is_sent_in_chunks_the_embedded_engine_can_hold(galleries, monkeypatch):
    """Milvus Lite's exact search allocates queries x rows x dim floats: bounded per call."""
    from bdbnet.inference import milvus_gallery

    index, engine = galleries
    q, _, _ = queries()
    calls = []
    search = engine.client.search
    monkeypatch.setattr(
        engine.client, "search", lambda *a, **kw: calls.append(len(kw["data"])) or search(*a, **kw)
    )
    monkeypatch.setattr(milvus_gallery, "LITE_SEARCH_BYTES", 5 * N * DIM * 4)
    same_hits(engine.search_hits(q, 10), index.search_hits(q, 10))
    assert calls == [5, 5, 2]


@pytest.mark.parametrize(
    "where", ["camid in [0, 2]", "not (pid < 10 and camid == 1)", "pid != 3 or camid == 0"]
)
def test_filters_keep_the_same_items_as_in_memory(galleries, where):
    index, engine = galleries
    q, _, _ = queries()
    f = parse_where(where)
    expected = index.search_hits(q, 8, where=f)
    same_hits(engine.search_hits(q, 8, where=f), expected)
    kept = f.mask({"pid": index.pids.numpy(), "camid": index.camids.numpy()})
    assert all(kept[h.index] for row in expected for h in row)


def test_the_reid_protocol_leaves_out_the_querys_identity_on_its_camera(galleries):
    index, engine = galleries
    q, pids, camids = queries()
    hits = engine.search_hits(q, 10, exclude_same_camera=(pids, camids))
    same_hits(hits, index.search_hits(q, 10, exclude_same_camera=(pids, camids)))
    for row, pid, cam in zip(hits, pids, camids):
        assert not [h for h in row if (h.pid, h.camid) == (pid, cam)]


def test_time_is_a_filter_field_of_the_engine(galleries):
    _, engine = galleries
    q, _, _ = queries(3)
    hits = engine.search_hits(q, 5, where=parse_where("time >= 100 and time < 110"))
    paths = data()[1]
    assert {h.path for row in hits for h in row} <= set(paths[100:110])


def test_approximate_indexes_are_rescored_to_exact(galleries, tmp_path):
    index, _ = galleries
    feats, paths, pids, camids = data()
    q, _, _ = queries()
    for kind in ("HNSW", "IVF_FLAT"):
        engine = MilvusGallery.open(
            str(tmp_path / f"{kind}.db"), MODEL, create=True, labelled=True, index_type=kind
        )
        engine.add(feats, paths, pids=pids.tolist(), camids=camids.tolist())
        same_hits(engine.search_hits(q, 10, candidates=60), index.search_hits(q, 10))


def test_a_resumed_extraction_knows_what_is_indexed(galleries):
    _, engine = galleries
    assert engine.indexed_paths() == set(data()[1])


def test_features_of_another_model_are_refused_and_nothing_is_added(galleries):
    _, engine = galleries
    with pytest.raises(IndexMismatchError, match="was built with another model"):
        MilvusGallery.open(engine.uri, OTHER, create=True)
    with pytest.raises(IndexMismatchError, match="holds 16-d features; these are 8-d"):
        engine.add(torch.zeros(2, 8), ["a.jpg", "b.jpg"])
    with pytest.raises(IndexMismatchError, match="query it with the checkpoint that built it"):
        engine.search_hits(queries(2)[0], 3, OTHER)
    assert len(engine) == N


def test_a_filter_on_labels_an_unlabelled_gallery_lacks(tmp_path):
    engine = MilvusGallery.open(str(tmp_path / "u.db"), MODEL, create=True)
    engine.add(torch.randn(5, DIM), [f"{i}.jpg" for i in range(5)], times=[0] * 5)
    with pytest.raises(GalleryFilterError, match="uses pid, which this gallery does not record"):
        engine.search_hits(torch.randn(1, DIM), 3, where=parse_where("pid == 1"))
    hits = engine.search_hits(torch.randn(1, DIM), 3, where=parse_where("source == ''"))
    assert len(hits[0]) == 3 and hits[0][0].pid is None


def test_what_cannot_be_opened_is_one_line(tmp_path):
    missing = tmp_path / "none.db"
    with pytest.raises(GalleryEngineError, match=f"no gallery at {missing}: build one with"):
        MilvusGallery.open(str(missing))
    assert not missing.exists()
    with pytest.raises(GalleryEngineError, match="cannot reach the Milvus gallery at http://"):
        MilvusGallery.open("http://127.0.0.1:9", create=True, identity=MODEL)
    from pymilvus import DataType, MilvusClient

    foreign = str(tmp_path / "foreign.db")
    client = MilvusClient(foreign)
    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("bdbnet_gallery", schema=schema)
    with pytest.raises(GalleryEngineError, match="was not written by bdbnet"):
        MilvusGallery.open(foreign)
    with pytest.raises(GalleryEngineError, match="holds no collection 'other'"):
        MilvusGallery.open(foreign, collection="other")


def test_an_embedded_gallery_open_in_another_process_is_named(galleries):
    """Milvus Lite locks its folder: a second process is told why, not "cannot reach"."""
    import subprocess
    import sys

    _, engine = galleries
    code = (
        "import sys\n"
        "from bdbnet.inference.milvus_gallery import GalleryEngineError, MilvusGallery\n"
        "try:\n    MilvusGallery.open(sys.argv[1])\n"
        "except GalleryEngineError as err:\n    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, engine.uri], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == (
        f"{engine.uri} is open in another process (an embedded Milvus Lite gallery has one user "
        "at a time): wait for it to finish, or put the gallery on a Milvus server to share it"
    ), done.stderr[-2000:]


def test_a_projected_gallery_keeps_its_pca_in_the_engine(tmp_path):
    """``projection=``: the rows are stored projected, the PCA lives in the engine and every
    query is projected with it, also after the gallery is reopened: the hits equal the
    compacted file index's."""
    feats, paths, pids, camids = data()
    index = GalleryIndex(feats, paths, MODEL, pids=pids, camids=camids).compact(dim=6)
    uri = str(tmp_path / "small.db")
    engine = MilvusGallery.open(uri, MODEL, create=True, labelled=True, projection=index.projection)
    engine.add(feats, paths, pids=pids.tolist(), camids=camids.tolist(), times=list(range(N)))
    assert (engine.dim, engine.model_dim) == (6, DIM)
    q, qp, qc = queries()
    same_hits(engine.search_hits(q, 10, MODEL), index.search_hits(q, 10, MODEL))
    engine.close()
    again = MilvusGallery.open(uri, MODEL, create=True, projection=index.projection)
    assert torch.equal(again.projection.components, index.projection.components)
    assert torch.equal(again.projection.mean, index.projection.mean)
    assert again.projection.kept == pytest.approx(index.projection.kept)
    protocol = {"exclude_same_camera": (qp, qc)}
    same_hits(again.search_hits(q, 5, **protocol), index.search_hits(q, 5, **protocol))
    with pytest.raises(IndexMismatchError, match=f"holds {DIM}-d features; these are 6-d"):
        again.search_hits(index.projection(q), 5)  # queries are the model's features
    other = GalleryIndex(feats, paths, MODEL).compact(dim=4).projection
    with pytest.raises(GalleryEngineError, match=r"holds 6-d features \(a PCA to 6\), not a PCA"):
        MilvusGallery.open(uri, MODEL, create=True, projection=other)
    again.close()
