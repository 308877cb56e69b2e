"""The HTTP service over a Milvus gallery (the real embedded engine): the same ranked lists as
over the file index, gallery images by a hit's ``index`` (the engine's id), filters on the
engine's fields, and what an engine gallery cannot do refused with a 4xx."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("pymilvus", reason="the Milvus gallery needs bdbnet[milvus]")
pytest.importorskip("milvus_lite", reason="the embedded Milvus needs milvus-lite")

from fastapi.testclient import TestClient
from serve_helpers import upload

from bdbnet.inference import FeatureExtractor, GalleryIndex
from bdbnet.inference.milvus_gallery import MilvusGallery
from bdbnet.serve.app import create_app


@pytest.fixture(scope="module")
def galleries(tiny_checkpoint, person_images, tmp_path_factory):
    extractor = FeatureExtractor(tiny_checkpoint, device="cpu")
    index = GalleryIndex.from_extraction(extractor.extract(person_images), extractor.identity)
    uri = str(tmp_path_factory.mktemp("engine") / "gallery.db")
    engine = MilvusGallery.open(uri, extractor.identity, create=True, labelled=True)
    engine.add(index.features, index.paths, pids=index.pids.tolist(), camids=index.camids.tolist())
    return extractor, index, engine


@pytest.fixture(scope="module")
def api(galleries):
    extractor, _, engine = galleries
    with TestClient(create_app(extractor, engine)) as c:
        yield c


def test_the_engine_answers_the_file_indexs_ranked_lists(api, galleries, person_images):
    extractor, index, engine = galleries
    r = api.post("/v1/search?topk=4", files=[upload(p) for p in person_images[:2]])
    assert r.status_code == 200, r.text
    expected = index.search_hits(extractor(person_images[:2]), 4)
    for row, want in zip(r.json()["results"], expected):
        assert [item["path"] for item in row] == [
            os.path.relpath(h.path, os.path.dirname(index.paths[0])) for h in want
        ]  # without an API key, paths relative to the images' folder (recorded by the engine)
        assert [(item["pid"], item["camid"]) for item in row] == [(h.pid, h.camid) for h in want]
        first = row[0]  # the hit's index is the engine's id, and names its image
        assert engine.record(first["index"])[0] == want[0].path
        image = api.get(f"/v1/gallery/{first['index']}/image?size=32")
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    info = api.get("/v1/info").json()
    assert info["gallery_size"] == len(index) and info["gallery_labels"] is True


def test_engine_fields_filter_and_what_the_engine_cannot_do_is_refused(api, person_images):
    image = [upload(person_images[0])]
    r = api.post("/v1/search", params={"topk": 8, "where": "camid == 1"}, files=image)
    assert r.status_code == 200, r.text
    row = r.json()["results"][0]
    assert row and all(item["camid"] == 1 for item in row)
    r = api.post("/v1/search", params={"where": "time >= 0"}, files=image)
    assert r.status_code == 200 and len(r.json()["results"][0]) == 8  # the engine records time
    for url, status, message in [
        ("/v1/search?rerank=true", 400, "this server searches a vector engine (Milvus)"),
        ("/v1/search?where=camid%20%3D%201", 400, "does not parse"),
    ]:
        r = api.post(url, files=image)
        assert r.status_code == status and message in r.json()["error"], r.text
    r = api.get("/v1/gallery/999/image")
    assert r.status_code == 404
    assert r.json()["error"] == (
        "no gallery image 999: the engine gallery holds no item with this id (a hit's 'index')"
    )


def test_bdbnet_serve_opens_an_engine_gallery(galleries, tiny_checkpoint, monkeypatch, capsys):
    import uvicorn

    from bdbnet.cli import main

    _, index, engine = galleries
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    args = ["serve", "--checkpoint", str(tiny_checkpoint), "--port", "0", "--index"]
    assert main([*args, engine.uri]) == 0 and len(served) == 1
    assert f"bdbnet serve: gallery of {len(index)} images" in capsys.readouterr().out
    assert main([*args, engine.uri + "x.db"]) == 2
    err = capsys.readouterr().err
    assert "no gallery at" in err and "bdbnet extract --output" in err
