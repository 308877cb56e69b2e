"""The HTTP service: every route, every refusal (a 4xx JSON error, then it keeps serving)."""

from __future__ import annotations

import io
import os
import shutil
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

import torch
from conftest import assert_rows_close, feature_scale, write_tiny_checkpoint
from fastapi.testclient import TestClient
from PIL import Image
from serve_helpers import bomb_png, png_bytes, upload

from bdbnet.cli import main
from bdbnet.inference import FeatureExtractor, GalleryIndex, IndexMismatchError
from bdbnet.serve.app import STATIC_FILES, create_app
from bdbnet.serve.settings import ServeConfig


@pytest.fixture(scope="module")
def extractor(tiny_checkpoint):
    return FeatureExtractor(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def index(extractor, person_images):
    return GalleryIndex.from_extraction(extractor.extract(person_images), extractor.identity)


def client(extractor, index, api_key=None, **limits) -> TestClient:
    return TestClient(create_app(extractor, index, config=ServeConfig(**limits), api_key=api_key))


@pytest.fixture(scope="module")
def api(extractor, index):
    with client(extractor, index) as c:
        yield c


def good_search(c: TestClient, image: str) -> None:
    """The server still answers a valid request."""
    r = c.post("/v1/search?topk=2", files=[upload(image)])
    assert r.status_code == 200, r.text
    first, second = r.json()["results"][0]
    # the image's own copy, far closer than any other image (batch composition and NHWC
    # kernels move features by a few 1e-4 of their norm; other images lie at about 0.6 of it)
    assert first["distance"] < 0.01 * second["distance"]


# ---------------------------------------------------------------------------------- routes
def test_health_and_info(api, extractor, index):
    assert api.get("/v1/health").json() == {"status": "ok", "auth": False, "mode": "search"}
    info = api.get("/v1/info").json()
    identity = extractor.identity.to_dict()
    assert info["model"] == {**identity, "checkpoint": os.path.basename(identity["checkpoint"])}
    assert info["feature_dim"] == 1536 and info["input_size"] == [32, 16]
    assert info["preprocess"] == extractor.preprocess
    assert (info["runtime"], info["precision"]) == ("torch", extractor.runtime.info.precision)
    assert info["gallery_size"] == len(index) and info["gallery_labels"] is True
    assert info["limits"]["max_topk"] == 100 and "batches" in info["batching"]


def test_embed_gives_the_features_of_the_extractor(api, extractor, person_images):
    r = api.post("/v1/embed", files=[upload(p) for p in person_images[:3]])
    assert r.status_code == 200
    body = r.json()
    assert body["dim"] == 1536 and len(body["features"]) == 3
    assert_rows_close(torch.tensor(body["features"]), extractor(person_images[:3]))


def test_search_ranks_the_gallery_like_the_index(api, extractor, index, person_images):
    r = api.post("/v1/search?topk=5", files=[upload(p) for p in person_images[:2]])
    assert r.status_code == 200
    body = r.json()
    expected = index.search(extractor(person_images[:2]), 5)
    assert len(body["results"]) == 2
    for q, row in enumerate(body["results"]):
        assert [item["rank"] for item in row] == [1, 2, 3, 4, 5]
        assert [item["index"] for item in row] == expected.indices[q].tolist()
        scale = feature_scale(index.features)
        for item, d in zip(row, expected.distances[q].tolist()):
            assert item["distance"] == pytest.approx(d, abs=1e-3 * scale)
            i = item["index"]  # without an API key, paths relative to the images' folder
            assert not os.path.isabs(item["path"]) and index.paths[i].endswith(item["path"])
            assert (item["pid"], item["camid"]) == (int(index.pids[i]), int(index.camids[i]))
        assert row[0]["index"] == q  # each gallery image finds itself first
    assert body["queries"][0] == {"name": "0001_c1s1_000000_00.png", "pid": 1, "camid": 0}


def test_search_with_rerank_and_topk_past_the_gallery(api, extractor, index, person_images):
    r = api.post("/v1/search?topk=50&rerank=true", files=[upload(person_images[3])])
    assert r.status_code == 200
    row = r.json()["results"][0]
    assert len(row) == len(index)  # topk larger than the gallery: the whole gallery
    expected = index.search(extractor(person_images[3:4]), 50, rerank=True)
    assert [item["index"] for item in row] == expected.indices[0].tolist()


def test_search_filters_like_search_where(api, extractor, index, person_images):
    from bdbnet.inference import parse_where

    where = "camid == 1 and pid != 2"
    r = api.post("/v1/search", params={"topk": 3, "where": where}, files=[upload(person_images[0])])
    assert r.status_code == 200, r.text
    row = r.json()["results"][0]
    expected = index.search_hits(extractor(person_images[:1]), 3, where=parse_where(where))[0]
    assert [item["index"] for item in row] == [h.index for h in expected] and row
    assert all(item["camid"] == 1 and item["pid"] != 2 for item in row)
    for bad, message in [
        ("camid = 1", "--where 'camid = 1' does not parse"),
        ("time > 3", "uses time, which this gallery does not record"),
    ]:
        r = api.post("/v1/search", params={"where": bad}, files=[upload(person_images[0])])
        assert r.status_code == 400 and message in r.json()["error"], r.text


def test_a_query_without_a_market_name_has_unknown_labels(api, person_images):
    r = api.post("/v1/search", files=[upload(person_images[0], name="someone.png")])
    assert r.json()["queries"] == [{"name": "someone.png", "pid": None, "camid": None}]


def test_gallery_images_by_integer_index(api, person_images):
    r = api.get("/v1/gallery/3/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (24, 48)
    with Image.open(io.BytesIO(api.get("/v1/gallery/3/image?size=16").content)) as img:
        assert max(img.size) == 16


def test_the_page_and_its_files_need_no_network(api):
    r = api.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in r.text
    for name, kind in STATIC_FILES.items():
        r = api.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == kind
        assert "http://" not in r.text and "https://" not in r.text  # no CDN, no internet


# ---------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "query, status, message",
    [
        ("topk=0", 400, "topk must be between 1 and 100"),
        ("topk=101", 400, "topk must be between 1 and 100"),
        ("topk=-3", 400, "topk must be between 1 and 100"),
        ("topk=ten", 400, "topk: Input should be a valid integer"),
        ("rerank=perhaps", 400, "rerank: Input should be a valid boolean"),
    ],
)
def test_topk_and_rerank_out_of_range(api, person_images, query, status, message):
    r = api.post(f"/v1/search?{query}", files=[upload(person_images[0])])
    assert r.status_code == status and message in r.json()["error"]
    good_search(api, person_images[0])


def test_rerank_is_refused_on_a_large_gallery(extractor, index, person_images):
    with client(extractor, index, max_rerank_gallery=4) as c:
        r = c.post("/v1/search?rerank=true", files=[upload(person_images[0])])
        assert r.status_code == 400 and "galleries up to 4 images" in r.json()["error"]
        good_search(c, person_images[0])


@pytest.mark.parametrize(
    "files, status, message",
    [
        ([("images", ("x.png", b"not an image at all", "image/png"))], 400, "not a readable image"),
        ([("images", ("e.png", b"", "image/png"))], 400, "image 'e.png' is empty"),
        ([("images", ("t.png", png_bytes()[:60], "image/png"))], 400, "not a readable image"),
        ([("images", ("bomb.png", bomb_png(), "image/png"))], 413, "over this server's limit"),
        ([("other", ("x.png", png_bytes(), "image/png"))], 400, "no image"),
        (
            [("images", (f"{i}.png", png_bytes(seed=i), "image/png")) for i in range(4)],
            400,
            "at most 3 images per request",
        ),
    ],
    ids=["garbage", "empty", "truncated", "decompression bomb", "wrong field", "too many"],
)
def test_bad_uploads(extractor, index, person_images, files, status, message):
    with client(extractor, index, max_images=3) as c:
        for route in ("/v1/embed", "/v1/search"):
            r = c.post(route, files=files)
            assert r.status_code == status, r.text
            assert message in r.json()["error"]
            assert "BytesIO" not in r.json()["error"]
        good_search(c, person_images[0])


def test_too_many_pixels(extractor, index, person_images):
    with client(extractor, index, max_pixels=48 * 24) as c:
        big = [("images", ("big.png", png_bytes(49, 24), "image/png"))]
        r = c.post("/v1/embed", files=big)
        assert r.status_code == 413
        assert r.json()["error"] == (
            "image 'big.png' has 1176 pixels, over this server's limit of 1152 (--max-pixels)"
        )
        good_search(c, person_images[0])


def test_upload_size_from_the_header_and_from_a_chunked_body(extractor, index, person_images):
    with client(extractor, index, max_upload_bytes=4000) as c:
        large = [("images", ("l.png", png_bytes(60, 30), "image/png"))]  # ~5.4 kB
        r = c.post("/v1/embed", files=large)
        assert r.status_code == 413 and "limit of 4000 bytes" in r.json()["error"]

        body = c.build_request("POST", "/v1/embed", files=large)
        data, kind = body.read(), body.headers["content-type"]

        def chunks():  # no Content-Length: the limit counts the bytes as they arrive
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        r = c.post("/v1/embed", content=chunks(), headers={"content-type": kind})
        assert r.status_code == 413 and "limit of 4000 bytes" in r.json()["error"]
        good_search(c, person_images[0])


def test_not_multipart(api, person_images):
    r = api.post("/v1/search", json={"images": []})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    good_search(api, person_images[0])


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/v1/gallery/8/image", 404, "no gallery image 8: the gallery has 8 images (0..7)"),
        ("/v1/gallery/-1/image", 404, "no gallery image -1"),
        ("/v1/gallery/abc/image", 400, "index: Input should be a valid integer"),
        ("/v1/gallery/..%2F..%2Fetc%2Fpasswd/image", 404, "no such route"),
        ("/v1/gallery/..%5Cx/image", 400, "index: Input should be a valid"),
        ("/v1/gallery/1/image?size=4", 400, "size must be between 16 and 1024"),
        ("/v1/gallery/%2Fetc%2Fpasswd", 404, "no such route"),
        ("/static/..%2F..%2Fapp.py", 404, "no such route"),
        ("/static/app.py", 404, "no static file 'app.py'"),
        ("/v1/nothing", 404, "no such route"),
        ("/v1/run", 404, "holds no saved run"),
        ("/v1/run/queries", 404, "holds no saved run"),
        ("/v1/run/queries/0/image", 404, "holds no saved run"),
    ],
)
def test_bad_paths(api, person_images, path, status, message):
    r = api.get(path)
    assert r.status_code == status and message in r.json()["error"]
    good_search(api, person_images[0])


def test_wrong_method(api):
    r = api.get("/v1/search")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_a_gallery_file_gone_since_indexing(extractor, person_images, tmp_path):
    copy = tmp_path / "0009_c1s1_000000_00.png"
    shutil.copy(person_images[0], copy)
    gallery = GalleryIndex.from_extraction(extractor.extract([str(copy)]), extractor.identity)
    copy.unlink()
    with client(extractor, gallery) as c:
        r = c.get("/v1/gallery/0/image")
        assert r.status_code == 404 and "cannot be read on the server" in r.json()["error"]


def test_a_full_queue_answers_503(extractor, index, person_images, monkeypatch):
    """The model is held on one image while another request fills the queue: a third is
    refused with 503 at once, and everything queued is answered once the model moves on."""
    gate, busy = threading.Event(), threading.Event()
    embed = extractor.embed_inputs

    def held(batch):
        busy.set()
        gate.wait(30)
        return embed(batch)

    monkeypatch.setattr(extractor, "embed_inputs", held)
    with client(extractor, index, max_batch=1, max_queue=2, max_images=2) as c:
        answers: list[int] = []

        def post(images):
            answers.append(c.post("/v1/embed", files=[upload(p) for p in images]).status_code)

        first = threading.Thread(target=post, args=(person_images[:1],))
        first.start()
        assert busy.wait(30)
        second = threading.Thread(target=post, args=(person_images[1:3],))
        second.start()
        service = c.app.state.service
        for _ in range(300):  # the second request's two images are queued
            if service.batcher.pending() == 2:
                break
            threading.Event().wait(0.01)
        r = c.post("/v1/embed", files=[upload(person_images[3])])
        assert r.status_code == 503 and "the server is busy" in r.json()["error"]
        gate.set()
        first.join(30)
        second.join(30)
        assert answers == [200, 200]
        good_search(c, person_images[0])


def test_a_request_larger_than_the_queue_is_refused_at_start(tiny_checkpoint, capsys):
    """A request of --max-images images must fit the queue, or it would get 503 forever: the
    command refuses such limits in one line before it loads anything."""
    with pytest.raises(ValueError, match=r"max_images \(32\) is over max_queue \(4\)"):
        ServeConfig(max_queue=4)
    args = ["serve", "--checkpoint", "missing.pt", "--index", "missing.npz", "--max-queue", "4"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "max_images (32) is over max_queue (4)" in err and "Traceback" not in err


def test_api_key(extractor, index, person_images):
    with client(extractor, index, api_key="s3cret") as c:
        assert c.get("/v1/health").json()["auth"] is True
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        for method, path in (("GET", "/v1/info"), ("GET", "/v1/gallery/0/image")):
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer nope"}):
                r = c.request(method, path, headers=headers)
                assert r.status_code == 401 and "API key" in r.json()["error"]
        r = c.post("/v1/search", files=[upload(person_images[0])])
        assert r.status_code == 401
        for headers in ({"X-API-Key": "s3cret"}, {"Authorization": "Bearer s3cret"}):
            assert c.get("/v1/info", headers=headers).status_code == 200
            r = c.post("/v1/search", files=[upload(person_images[0])], headers=headers)
            assert r.status_code == 200


def test_an_index_of_another_model_is_refused(extractor, person_images, tmp_path):
    other = FeatureExtractor(write_tiny_checkpoint(tmp_path / "other.pt", seed=1), device="cpu")
    gallery = GalleryIndex.from_extraction(other.extract(person_images[:2]), other.identity)
    with pytest.raises(IndexMismatchError, match="another model"):
        create_app(extractor, gallery)


def test_concurrent_requests_share_forward_passes(extractor, index, person_images):
    with client(extractor, index, max_batch=16, max_wait_ms=200) as c:
        errors: list[str] = []
        barrier = threading.Barrier(6)

        def one(i: int) -> None:
            barrier.wait()
            r = c.post("/v1/embed", files=[upload(person_images[i])])
            if r.status_code != 200:
                errors.append(r.text)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        stats = c.get("/v1/info").json()["batching"]
    assert not errors
    assert stats["items"] == 6 and stats["batches"] < 6 and stats["largest"] > 1


# ---------------------------------------------------------------------------------- command
def test_serve_help_and_its_errors(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--index", "--run", "--api-key", "--max-batch", "--max-upload-mb"):
        assert option in out
    assert "default 127.0.0.1" in out
    ck = str(tiny_checkpoint)
    assert main(["serve", "--checkpoint", ck, "--index", str(tmp_path / "none.npz")]) == 2
    assert "no gallery index at" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not an index")
    for path, what in ((tmp_path, "a folder"), (tmp_path / "notes.txt", "a file")):
        assert main(["serve", "--checkpoint", ck, "--index", str(path)]) == 2
        assert f"{path} is {what}, not a gallery index (.safetensors" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", ck, "--run", str(tmp_path)]) == 2
    assert "no saved run at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--checkpoint", ck, "--index", "a.npz", "--run", str(tmp_path)])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# ---------------------------------------------------------------------- host and origin
def test_a_loopback_server_answers_its_own_names_only(extractor, index, person_images):
    """DNS rebinding: a page of attacker.example whose name resolves to 127.0.0.1 reaches a
    loopback server with its own Host header; it is refused before any route (no info, no
    gallery, no model), while the loopback names (any port, any case) are served."""
    hosts = ["localhost", "127.0.0.1", "::1", "cameras.internal"]
    with TestClient(create_app(extractor, index, allowed_hosts=hosts)) as c:
        for host in ("attacker.example", "attacker.example:8000", "127.0.0.2"):
            for method, path in (("GET", "/v1/info"), ("GET", "/v1/gallery/0/image")):
                r = c.request(method, path, headers={"Host": host})
                assert r.status_code == 421, host
                assert "does not answer to the host" in r.json()["error"]
                assert "--allowed-host" in r.json()["error"]
        for host in ("LOCALHOST:8000", "127.0.0.1:8000", "[::1]:8000", "cameras.internal"):
            assert c.get("/v1/info", headers={"Host": host}).status_code == 200, host


def test_posts_from_pages_of_other_origins_are_refused(extractor, index, person_images):
    files = [upload(person_images[0])]
    with TestClient(create_app(extractor, index, allowed_hosts=["127.0.0.1"])) as c:
        head = {"Host": "127.0.0.1:8000"}
        r = c.post("/v1/search", files=files, headers={**head, "Origin": "http://evil.example"})
        assert r.status_code == 403 and "evil.example" in r.json()["error"]
        same = {**head, "Origin": "http://127.0.0.1:8000"}  # the server's own page
        assert c.post("/v1/search", files=files, headers=same).status_code == 200
        assert c.post("/v1/search", files=files, headers=head).status_code == 200  # no browser
    with TestClient(create_app(extractor, index)) as c:  # any host; pages of that host only
        head = {"Host": "gallery.example"}
        evil = {**head, "Origin": "https://evil.example"}
        assert c.post("/v1/search", files=files, headers=evil).status_code == 403
        own = {**head, "Origin": "https://gallery.example"}
        assert c.post("/v1/search", files=files, headers=own).status_code == 200


def test_bad_and_busy_ports_are_one_line_errors_before_the_model_loads(capsys):
    import socket

    base = ["serve", "--checkpoint", "missing.pt", "--index", "missing.npz"]
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--port", "70000"])
    assert exit_.value.code == 2
    assert "must be an integer from 0 to 65535; got 70000" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main([*base, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}" in err and "pick another --port" in err
    assert "Traceback" not in err and "serve:" not in capsys.readouterr().out


def test_absolute_paths_only_behind_the_api_key(extractor, index, person_images):
    """Without a key, file paths are answered relative to the folder the gallery shares and the
    checkpoint by its name: nothing of the machine's layout. With a key, whole."""
    files = [upload(person_images[0])]
    with client(extractor, index) as c:
        item = c.post("/v1/search?topk=1", files=files).json()["results"][0][0]
        assert item["path"] == os.path.basename(index.paths[item["index"]])
        checkpoint = c.get("/v1/info").json()["model"]["checkpoint"]
        assert checkpoint == os.path.basename(extractor.identity.checkpoint)
    with client(extractor, index, api_key="k") as c:
        head = {"X-API-Key": "k"}
        item = c.post("/v1/search?topk=1", files=files, headers=head).json()["results"][0][0]
        assert item["path"] == index.paths[item["index"]] and os.path.isabs(item["path"])
        info = c.get("/v1/info", headers=head).json()
        assert info["model"]["checkpoint"] == extractor.identity.checkpoint


def test_a_client_gone_mid_upload_is_one_log_line(extractor, index, caplog):
    """The ASGI app driven directly: the client sends part of a multipart body, then
    disconnects. The app logs one line and returns; nothing is raised to the server (which
    would log a traceback per disconnect)."""
    import asyncio
    import logging

    app = create_app(extractor, index)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG partial"
    )
    messages = [{"type": "http.request", "body": body, "more_body": True}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/embed",
        "raw_path": b"/v1/embed",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"multipart/form-data; boundary=b"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.INFO, logger="bdbnet.serve"):
        asyncio.run(app(scope, receive, send))
    lines = [r.getMessage() for r in caplog.records if r.name == "bdbnet.serve"]
    assert lines == ["127.0.0.1 disconnected during POST /v1/embed"]
    assert not any(r.exc_info for r in caplog.records)
