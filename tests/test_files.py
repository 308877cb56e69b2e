"""bdbnet.files: atomic writes keep the previous file on any failure, fingerprints, path lists."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from bdbnet.errors import OutputError
from bdbnet.files import (
    atomic_write,
    decode_lines,
    encode_lines,
    file_sha256,
    remove_stale_temporaries,
    write_temporary,
)


def test_atomic_write_replaces_the_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    assert atomic_write(target, lambda f: f.write(b"one")) == target
    atomic_write(target, lambda f: f.write(b"two"))
    assert target.read_bytes() == b"two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert os.listdir(target.parent) == ["out.bin"]  # no temporary left


def test_a_failed_write_keeps_the_previous_file_and_names_it(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write(target, lambda f: f.write(b"good"))

    def full_disk(f):
        f.write(b"par")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError) as caught:
        atomic_write(target, full_disk)
    assert str(caught.value) == (
        f"cannot write {target} (No space left on device): is the disk full or the folder "
        "read-only? The previous out.bin is kept."
    )
    assert target.read_bytes() == b"good" and os.listdir(tmp_path) == ["out.bin"]


def test_an_interrupted_write_propagates_and_leaves_no_temporary(tmp_path):
    def interrupted(f):
        f.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.bin", interrupted)
    assert os.listdir(tmp_path) == []


def _ended_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_stale_temporaries_of_ended_writers_go_and_live_writers_keep_theirs(tmp_path):
    target = tmp_path / "last.pt"
    host = socket.gethostname()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ended = tmp_path / f".last.pt.{_ended_pid()}@{host}.k1ll3d.tmp"
        older = tmp_path / ".last.pt.abc123.tmp"  # an older bdbnet's name: no writer recorded
        running = tmp_path / f".last.pt.{live.pid}@{host}.wr1t1n.tmp"  # a concurrent writer
        mine = write_temporary(target, lambda f: f.write(b"half"))  # this process: alive
        remote = tmp_path / ".last.pt.77@other-host.abc.tmp"
        remote_old = tmp_path / ".last.pt.78@other-host.abc.tmp"
        another = tmp_path / f".last.pt.json.{_ended_pid()}@{host}.abc.tmp"  # last.pt.json's
        for tmp in (ended, older, running, remote, remote_old, another):
            tmp.write_bytes(b"half")
        day_and_more = time.time() - 25 * 3600
        os.utime(remote_old, (day_and_more, day_and_more))
        assert remove_stale_temporaries(target) == sorted([ended, older, remote_old])
        assert all(f.exists() for f in (running, mine, remote, another))
        assert mine.name.startswith(f".last.pt.{os.getpid()}@{host}.")
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temporaries(target) == [running]  # its writer has ended now


def test_atomic_write_removes_what_killed_writes_of_its_target_left(tmp_path):
    target = tmp_path / "config.yaml"
    stale = tmp_path / f".config.yaml.{_ended_pid()}@{socket.gethostname()}.abc.tmp"
    stale.write_bytes(b"half")
    atomic_write(target, lambda f: f.write(b"whole"))
    assert sorted(os.listdir(tmp_path)) == ["config.yaml"]


def test_file_sha256_of_a_path_and_of_an_open_file(tmp_path):
    data = os.urandom(3 * 1024 + 7)
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path, block=1024) == expected == file_sha256(io.BytesIO(data), block=100)


def test_lines_round_trip_and_refuse_newlines():
    lines = ["a.jpg", "dir/ü b.png", ""]
    assert decode_lines(encode_lines(lines), 3) == lines
    assert decode_lines(encode_lines([]), 0) == []
    with pytest.raises(OutputError, match=r"paths with a newline cannot be stored: 'a\\nb'"):
        encode_lines(["a\nb"], OutputError)
    with pytest.raises(ValueError, match="2 paths for 3 expected"):
        decode_lines(encode_lines(["a", "b"]), 3)


def test_a_checkpoint_on_a_full_disk_says_no_space_not_torchs_enforce_message(
    tmp_path, monkeypatch
):
    import torch

    from bdbnet.files import atomic_save

    real_fdopen = os.fdopen

    class FillsUp(io.RawIOBase):
        """The temporary file of a disk with 1000 bytes left."""

        def __init__(self, f):
            self.f, self.left = f, 1000

        def write(self, data):
            if len(data) > self.left:
                raise OSError(28, "No space left on device")
            self.left -= len(data)
            return self.f.write(data)

        def flush(self):
            self.f.flush()

        def fileno(self):
            return self.f.fileno()

        def close(self):
            self.f.close()

    monkeypatch.setattr("bdbnet.files.os.fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode)))
    target = tmp_path / "last.pt"
    target.write_bytes(b"the previous checkpoint")
    with pytest.raises(OutputError) as caught:
        atomic_save({"w": torch.ones(10_000)}, target)
    assert str(caught.value) == (
        f"cannot write {target} (No space left on device): is the disk full or the folder "
        "read-only? The previous last.pt is kept."
    )
    assert os.listdir(tmp_path) == ["last.pt"] and target.read_bytes() == b"the previous checkpoint"
