"""Files written so that nothing is ever half-written, their fingerprints, and path lists.

Every file bdbnet writes that a later step relies on (checkpoints, gallery indexes, saved
evaluation runs) goes through :func:`write_temporary`: the bytes land in a temporary file in the
target's folder, flushed and fsynced, and only then is it renamed over the target
(``os.replace`` is atomic). A reader sees the old file or the new one, and a failed or killed
write leaves the previous file as it was. Temporaries are named after their writer
(``.NAME.PID@HOST.XXXX.tmp``), so that what a killed write left behind can be told from the live
temporary of a concurrent writer (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Any

import numpy as np

from bdbnet.errors import OutputError

__all__ = [
    "atomic_save",
    "atomic_write",
    "decode_lines",
    "encode_lines",
    "file_sha256",
    "remove_stale_temporaries",
    "temporary_prefix",
    "write_temporary",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_temporary(target: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """``write(f)`` into a temporary file next to ``target`` (flushed, fsynced, with the usual
    permissions: 0666 less the umask); returns its path. On any failure the temporary is
    removed and the error propagates; renaming it over ``target`` is the caller's step."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(target), suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


OTHER_HOST_STALE_AFTER = 24 * 3600.0  # seconds: a writer on another host is not asked


def temporary_prefix(target: str | os.PathLike[str]) -> str:
    """``.NAME.PID@HOST.``: the start of this process's temporaries for ``target`` (files, or
    the folder a library writes several files into), ended by ``XXXX.tmp``."""
    return f".{Path(target).name}.{os.getpid()}@{_host()}."


def _host() -> str:
    return socket.gethostname().replace("/", "_")[:64] or "localhost"


_OWNED = re.compile(r"(\d+)@(.+)\.[A-Za-z0-9_]+")  # PID@HOST.XXXX (mkstemp's letters)


def _writer_is_gone(tmp: Path, prefix: str) -> bool:
    """Whether the process that named ``tmp`` cannot be writing it any more: it has ended (on
    this host), or it is on another host and the file is a day old. Names of older bdbnet
    versions (``.NAME.XXXX.tmp``) count as gone; other names (another target's) do not."""
    rest = tmp.name[len(prefix) : -len(".tmp")]
    owned = _OWNED.fullmatch(rest)
    if owned is None:
        return "." not in rest and "@" not in rest
    pid, host = int(owned[1]), owned[2]
    if host != _host():
        try:
            return time.time() - tmp.stat().st_mtime > OTHER_HOST_STALE_AFTER
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another account's
        return False
    return False


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that writes of ``path`` killed mid-way left behind; those of
    writers still running (another process saving the same file) are left alone."""
    path = Path(path)
    prefix = f".{path.name}."
    found = sorted(path.parent.glob(f"{glob_escape(prefix)}*.tmp")) if path.parent.is_dir() else []
    stale = [tmp for tmp in found if _writer_is_gone(tmp, prefix)]
    for tmp in stale:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    return stale


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], Any],
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> Path:
    """Write ``path`` through :func:`write_temporary` and ``os.replace``, creating its folder.

    Temporaries that killed writes of ``path`` left behind are removed first. A failure of
    type ``errors`` (a full disk, a read-only folder) raises
    :class:`~bdbnet.errors.OutputError` naming ``path`` and saying that the previous file, if
    any, is kept.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        os.replace(write_temporary(path, write), path)
    except errors as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        reason = getattr(err, "strerror", None) or reason
        kept = f" The previous {path.name} is kept." if path.exists() else ""
        raise OutputError(
            f"cannot write {path} ({reason}): is the disk full or the folder read-only?{kept}"
        ) from err
    return path


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` of ``obj`` by :func:`atomic_write`.

    A failed write raises :class:`~bdbnet.errors.OutputError` naming ``path``; the previous file
    is left as it was.
    """
    import torch

    def save(f: IO[bytes]) -> None:
        recorded = _RecordingWriter(f)
        try:
            torch.save(obj, recorded)
        except RuntimeError:
            # torch turns a failed write into "[enforce fail ...] unexpected pos": the
            # file's own error (ENOSPC: "No space left on device") says what happened
            if recorded.error is not None:
                raise recorded.error from None
            raise

    return atomic_write(path, save, errors=(OSError, RuntimeError))


class _RecordingWriter:
    """A binary file that remembers the ``OSError`` its ``write`` raised."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.f.flush()


def file_sha256(file: str | os.PathLike[str] | IO[bytes], block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (a path, or a binary file read from where it stands), in blocks."""
    digest = hashlib.sha256()
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as f:
            while chunk := f.read(block):
                digest.update(chunk)
    else:
        while chunk := file.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def encode_lines(lines: list[str], error: type[Exception] = ValueError) -> np.ndarray:
    """Lines (image paths) as one ``uint8`` array of their UTF-8 text joined by newlines, for
    array files (``.npz``, safetensors) that hold no strings; a line holding a newline raises
    ``error`` naming it.

    >>> decode_lines(encode_lines(["a.jpg", "b/c.jpg"]), 2)
    ['a.jpg', 'b/c.jpg']
    """
    for line in lines:
        if "\n" in line:
            raise error(f"paths with a newline cannot be stored: {line!r}")
    return np.frombuffer("\n".join(lines).encode("utf-8"), dtype=np.uint8).copy()


def decode_lines(array: Any, count: int) -> list[str]:
    """Inverse of :func:`encode_lines`; ``count`` lines are expected (a mismatch raises
    :class:`ValueError`)."""
    text = np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8")
    lines = text.split("\n") if count else []
    if len(lines) != count:
        raise ValueError(f"{len(lines)} paths for {count} expected")
    return lines
