"""Fault injection for gallery index files: concurrent saves, kills mid-write, corrupt files.

The invariant: a load returns one whole saved gallery (features, paths and labels of the same
save) or raises :class:`IndexFileError` naming the file; never a mix, never a decoder traceback.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import stat
import time

import numpy as np
import pytest
import torch

from bdbnet.errors import BDBNetError, OutputError
from bdbnet.inference import GalleryIndex
from bdbnet.inference.index import IndexFileError

FORMATS = [".npz", ".npy", ".safetensors"]
SIZES = {"a": 12, "b": 5}  # the "12 features but 5 paths"


def gallery(name: str) -> GalleryIndex:
    """Row i of gallery ``name`` is ``code + i`` everywhere and its path says ``name/i``."""
    n, code = SIZES[name], {"a": 100.0, "b": 200.0}[name]
    feats = code + torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 8)
    pids = torch.arange(n) + int(code)
    return GalleryIndex(feats, [f"{name}/{i}.jpg" for i in range(n)], pids=pids, camids=pids % 3)


def assert_whole(index: GalleryIndex) -> str:
    """The gallery ``index`` is, checking that every part comes from it alone."""
    name = index.paths[0].split("/")[0]
    expected = gallery(name)
    assert index.paths == expected.paths
    assert torch.equal(index.features, expected.features)
    assert torch.equal(index.pids, expected.pids) and torch.equal(index.camids, expected.camids)
    return name


def _writer(path: str, index: GalleryIndex, times: int) -> None:
    # The galleries are built in the parent: forked children run no torch kernels.
    for _ in range(times):
        index.save(path)


def _ctx():
    return multiprocessing.get_context("fork")


@pytest.mark.parametrize("suffix", FORMATS)
def test_two_processes_saving_while_a_reader_loads(tmp_path, suffix):
    path = str(tmp_path / f"gallery{suffix}")
    gallery("a").save(path)
    writers = [_ctx().Process(target=_writer, args=(path, gallery(n), 60)) for n in "ab"]
    for w in writers:
        w.start()
    seen, loads = set(), 0
    while any(w.is_alive() for w in writers) or loads < 20:
        seen.add(assert_whole(GalleryIndex.load(path)))  # any error fails the test
        loads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert_whole(GalleryIndex.load(path))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # no temp left


def _save_forever(path: str, index: GalleryIndex) -> None:
    while True:
        index.save(path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_kill_mid_write_never_leaves_a_mixed_index(tmp_path, suffix):
    path = str(tmp_path / f"gallery{suffix}")
    gallery("a").save(path)
    rng = np.random.default_rng(0)
    outcomes = []
    for i in range(8):
        proc = _ctx().Process(target=_save_forever, args=(path, gallery("ab"[i % 2])))
        proc.start()
        time.sleep(float(rng.uniform(0.05, 0.25)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        try:
            outcomes.append(assert_whole(GalleryIndex.load(path)))
        except IndexFileError as err:  # .npy killed between two renames: refused, named
            assert suffix == ".npy" and "come from different saves" in str(err)
            assert path in str(err)
            outcomes.append("refused")
            gallery("a").save(path)  # saving again repairs it
    assert outcomes
    gallery("b").save(path)  # the killed saves' temporaries (a gallery each) go with it
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert_whole(GalleryIndex.load(path))


def test_npy_save_interrupted_between_renames(tmp_path, monkeypatch):
    path = tmp_path / "g.npy"
    gallery("a").save(path)
    real_replace, calls = os.replace, []

    def replace_then_die(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the features were renamed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        gallery("b").save(path)
    monkeypatch.undo()
    with pytest.raises(IndexFileError, match=r"g\.npy, g\.paths\.txt and g\.json come from"):
        GalleryIndex.load(path)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_failed_single_file_save_keeps_the_old_index(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"g{suffix}"
    gallery("a").save(path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputError, match=rf"g\{suffix} \(No space left on device\)"):
        gallery("b").save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert_whole(GalleryIndex.load(path))
    assert sorted(os.listdir(tmp_path)) == [path.name]


def _manifest(path):
    return path.with_suffix(".json"), json.loads(path.with_suffix(".json").read_text())


def _rehash(path, manifest):
    files = manifest["files"]
    files["features"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    paths_file = path.with_suffix(".paths.txt")
    files["paths"]["sha256"] = hashlib.sha256(paths_file.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(manifest))


def test_corrupt_npy_indexes_name_the_file(tmp_path):
    path = tmp_path / "g.npy"
    gallery("a").save(path)
    paths_file = path.with_suffix(".paths.txt")
    paths_file.write_text("".join(f"b/{i}.jpg\n" for i in range(5)))
    _, manifest = _manifest(path)
    _rehash(path, manifest)  # consistent hashes, inconsistent content
    with pytest.raises(IndexFileError, match=r"g\.npy: inconsistent .*12 features but 5 paths"):
        GalleryIndex.load(path)
    np.save(path, np.zeros(12, np.float32))
    _rehash(path, manifest)
    with pytest.raises(IndexFileError, match=r"g\.npy: the features must be a 2-D float matrix"):
        GalleryIndex.load(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(IndexFileError, match=r"g\.json: not a readable gallery index"):
        GalleryIndex.load(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(IndexFileError, match=r"needs .*g\.json"):
        GalleryIndex.load(path)


@pytest.mark.parametrize(
    "suffix, damage",
    [
        (".npz", lambda b: b[: len(b) // 2]),  # BadZipFile
        (".npz", lambda b: b"PK\x03\x04" + bytes(200)),
        (".safetensors", lambda b: b[: len(b) // 2]),  # SafetensorError
        (".safetensors", lambda b: bytes(np.random.default_rng(0).integers(0, 256, 300))),
        (".npz", lambda b: b""),
    ],
)
def test_corrupt_single_file_indexes_name_the_file(tmp_path, suffix, damage):
    path = tmp_path / f"g{suffix}"
    gallery("a").save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(IndexFileError, match=rf"g\{suffix}: not a readable gallery index"):
        GalleryIndex.load(path)


def test_npz_with_mismatched_arrays_is_refused(tmp_path):
    path = tmp_path / "g.npz"
    gallery("a").save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["pids"] = arrays["pids"][:3]
    np.savez(path, **arrays)
    with pytest.raises(IndexFileError, match=r"g\.npz: inconsistent .*12 features but 3 pids"):
        GalleryIndex.load(path)
    desc = json.loads(arrays["metadata"].tobytes())
    desc["version"] = 99
    arrays["metadata"] = np.frombuffer(json.dumps(desc).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(IndexFileError, match="newer than this bdbnet"):
        GalleryIndex.load(path)


def test_errors_are_user_errors_and_keep_the_old_kinds(tmp_path):
    with pytest.raises(IndexFileError) as info:
        GalleryIndex.load(tmp_path / "missing.npz")
    assert isinstance(info.value, BDBNetError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(OutputError, match="end in"):
        gallery("a").save(tmp_path / "g.txt")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_index_files_and_exported_weights_follow_the_umask(tmp_path, mask):
    from bdbnet.models.weights import write_safetensors

    old = os.umask(mask)
    try:
        for suffix in FORMATS:
            gallery("a").save(tmp_path / f"gallery{suffix}")
        write_safetensors(tmp_path / "model.safetensors", {"w": torch.ones(2)}, {})
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert len(modes) == 6  # npz, safetensors, the three .npy files, the weights
    assert set(modes.values()) == {0o666 & ~mask}, modes
