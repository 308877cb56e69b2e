"""One training run per folder: an exclusive lock on ``<output>/.bdbnet-run.lock``.

Two runs writing one folder would each overwrite the other's ``last.pt``, ``config.yaml`` and
``metrics.jsonl`` and delete each other's temporary files. Rank 0 of a run takes the lock before
it writes anything and holds it until training ends; a second ``bdbnet train`` (``--resume``
included) into the folder is refused with who holds it. The lock is an ``flock`` on an open
file, so the kernel releases it when its process ends, however it ends: a killed run leaves no
stale lock (a restarted torchrun group takes it again). The file names the holder (pid, host,
start time) for the message and is removed on release. Within one process the lock is
re-entrant (a script may build several trainers on one folder). Where the platform or the file
system has no ``flock``, runs are not locked.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

from bdbnet.errors import OutputError

__all__ = ["LOCK_NAME", "RunBusyError", "acquire_run_lock", "release_run_lock"]

LOCK_NAME = ".bdbnet-run.lock"
_HELD: dict[str, int] = {}  # lock path -> open descriptor, for the locks this process holds


class RunBusyError(OutputError):
    """Another process is training into the same folder."""


def acquire_run_lock(folder: str | os.PathLike[str]) -> Path:
    """Take ``folder``'s run lock (the folder must exist); raise :class:`RunBusyError` naming
    the holder when another process has it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock, no lock
        return Path(folder) / LOCK_NAME
    path = (Path(folder) / LOCK_NAME).resolve()
    if str(path) in _HELD:
        return path
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise _unwritable(path, err) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunBusyError(
                f"{Path(folder)} is in use by another training run ({holder}): wait for it to "
                "finish or stop it, or choose another --output"
            ) from None
        except OSError:  # a file system without flock: run unlocked
            os.close(fd)
            return path
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed while we opened it
            break
        os.close(fd)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}".encode())
    except OSError as err:  # a full disk: give the lock back, leave no file
        path.unlink(missing_ok=True)
        os.close(fd)
        raise _unwritable(path, err) from err
    _HELD[str(path)] = fd
    return path


def _unwritable(path: Path, err: OSError) -> OutputError:
    reason = err.strerror or str(err)
    return OutputError(
        f"cannot write {path} ({reason}): is the disk full or the folder read-only? "
        "Nothing of the run was written"
    )


def release_run_lock(folder: str | os.PathLike[str]) -> None:
    """Give ``folder``'s run lock back (a no-op when this process does not hold it)."""
    path = (Path(folder) / LOCK_NAME).resolve()
    fd = _HELD.pop(str(path), None)
    if fd is None:
        return
    path.unlink(missing_ok=True)  # while still locked: nobody can take the removed file
    os.close(fd)
