"""``bdbnet.hub``: released models by name, downloaded into the torch hub cache and checked."""

from __future__ import annotations

import hashlib
import logging
import os
import stat

import pytest
import torch

from bdbnet.hub import HubError, download, from_pretrained, list_releases, load_releases

OFFICIAL = ["cuhk-detect-764", "cuhk-label-794", "clothes_895", "duke_887", "market_953"]


@pytest.fixture
def hub_dir(tmp_path):
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(before)


def _registry(tmp_path, url: str, sha256: str | None) -> str:
    path = tmp_path / "releases.yaml"
    sha = f'"{sha256}"' if sha256 else "null"
    path.write_text(
        f"tiny:\n  url: {url}\n  sha256: {sha}\n  file: tiny.pt\n  dataset: synthetic\n"
        "  preset: synthetic-demo\n  published: {rank1: 1.0}\n"
    )
    return str(path)


def test_the_official_releases_are_registered_without_invented_hashes():
    releases = load_releases()
    assert sorted(releases) == sorted(OFFICIAL) == list_releases()
    for release in releases.values():
        assert release.sha256 is None  # never computed here: unknown, not made up
        assert release.url.endswith(f"/share/bfe_models/{release.file}")
    assert releases["market_953"].published == {"rank1": 95.3, "mAP": 86.2}


def test_download_checks_the_hash_and_caches(tiny_checkpoint, tmp_path, hub_dir):
    sha = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    registry = _registry(tmp_path, tiny_checkpoint.as_uri(), sha)
    mask = os.umask(0o002)  # a group that shares the cache
    try:
        path = download("tiny", registry)
    finally:
        os.umask(mask)
    assert path == hub_dir / "tiny.pt" and path.read_bytes() == tiny_checkpoint.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o664  # the umask's mode, not mkstemp's 0600
    model, cfg = from_pretrained("tiny", registry=registry)  # from the cache
    assert not model.training and cfg.data.height == 32
    assert sorted(p.name for p in hub_dir.iterdir()) == ["tiny.pt"]


def test_a_wrong_hash_is_refused_and_nothing_is_kept(tiny_checkpoint, tmp_path, hub_dir):
    registry = _registry(tmp_path, tiny_checkpoint.as_uri(), "0" * 64)
    with pytest.raises(HubError, match=r"sha256 [0-9a-f]{64} is not the registry's 0000"):
        download("tiny", registry)
    assert list(hub_dir.iterdir()) == []


def test_an_unknown_hash_is_printed(tiny_checkpoint, tmp_path, hub_dir, caplog):
    registry = _registry(tmp_path, tiny_checkpoint.as_uri(), None)
    with caplog.at_level(logging.INFO, logger="bdbnet"):
        download("tiny", registry)
    sha = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert f"knows no sha256 for this release; the file has sha256 {sha}" in caplog.text


def test_offline_says_where_to_put_the_file(tmp_path, hub_dir):
    registry = _registry(tmp_path, (tmp_path / "missing.pt").as_uri(), None)
    with pytest.raises(HubError, match="put it at .*hub/checkpoints/tiny.pt"):
        download("tiny", registry)
    assert list(hub_dir.iterdir()) == []
    with pytest.raises(HubError, match="no release named 'nope'; known: tiny"):
        download("nope", registry)


def test_a_download_cut_short_is_an_error_and_leaves_nothing(tiny_checkpoint, tmp_path, hub_dir):
    """The server announces the file's size, sends half and closes: an error, no file in the
    cache (a release without a hash is checked by size at least), and temporaries of earlier
    killed downloads of that file are cleaned away."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    data = tiny_checkpoint.read_bytes()

    class Half(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Half)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hub_dir.mkdir(parents=True)
        (hub_dir / ".tiny.pt.killed.tmp").write_bytes(b"x" * 100)  # a download killed before
        url = f"http://127.0.0.1:{server.server_address[1]}/tiny.pt"
        registry = _registry(tmp_path, url, None)
        with pytest.raises(HubError, match=rf"cut short \({len(data) // 2} of {len(data)} bytes"):
            download("tiny", registry)
        assert list(hub_dir.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()
