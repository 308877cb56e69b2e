"""One training run per folder: a second run into a busy folder is refused with who holds it,
nothing is written, and a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES

from bdbnet.cli import main
from bdbnet.engine.run_lock import LOCK_NAME, RunBusyError, acquire_run_lock, release_run_lock
from bdbnet.errors import OutputError

pytest.importorskip("fcntl")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock until killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from bdbnet.engine.run_lock import acquire_run_lock
        acquire_run_lock({str(folder)!r})
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_the_lock_names_its_holder_and_is_reentrant(tmp_path):
    path = acquire_run_lock(tmp_path)
    assert acquire_run_lock(tmp_path) == path  # the same process may take it again
    assert path.read_text().startswith(f"pid {os.getpid()} on ")
    release_run_lock(tmp_path)
    assert not path.exists()
    release_run_lock(tmp_path)  # not held: nothing to do


def test_another_process_is_refused_until_the_holder_dies(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(
            RunBusyError, match=rf"in use by another training run \(pid {holder.pid} on "
        ):
            acquire_run_lock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists()  # a killed holder leaves its file, not its lock
    acquire_run_lock(tmp_path)
    release_run_lock(tmp_path)


def test_a_second_train_into_a_busy_folder_is_refused_and_writes_nothing(
    tiny_synthetic, tmp_path, capsys
):
    run = tmp_path / "run"
    run.mkdir()
    args = ["train", "--dataset", "synthetic", "--root", str(tiny_synthetic)]
    args += ["--preset", "synthetic-demo", "--output", str(run), *TINY_OVERRIDES, "optim.epochs=1"]
    holder = hold_lock(run)
    try:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{run} is in use by another training run (pid {holder.pid} on " in err
        assert "Traceback" not in err
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert main(args) == 0  # the holder's death freed the folder
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "last.pt", "metrics.jsonl"]


def test_a_full_disk_while_taking_the_lock_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    def no_space(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bdbnet.engine.run_lock.os.write", no_space)
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(OutputError, match=r"cannot write .*\.bdbnet-run\.lock \(No space left"):
        acquire_run_lock(run)
    assert os.listdir(run) == []
    monkeypatch.undo()
    release_run_lock(run)  # nothing held: a no-op
    assert acquire_run_lock(run).name == LOCK_NAME  # free for the next run
    release_run_lock(run)
