"""Files written so that nothing is ever half-written, their fingerprints, and path lists.

Every file bdbnet writes that a later step relies on (checkpoints, gallery indexes, saved
evaluation runs) goes through :func:`write_temporary`: the bytes land in a temporary file in the
target's folder, flushed and fsynced, and only then is it renamed over the target
(``os.replace`` is atomic). A reader sees the old file or the new one, and a failed or killed
write leaves the previous file as it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that writes of ``path`` killed mid-way left behind."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], Any],
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> Path:
    """Write ``path`` through :func:`write_temporary` and ``os.replace``, creating its folder.

    A failure of type ``errors`` (a full disk, a read-only folder) raises
    :class:`~bdbnet.errors.OutputError` naming ``path`` and saying that the previous file, if
    any, is kept.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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
    """``torch.save`` of ``obj`` by :func:`atomic_write`; temporaries of earlier writes of
    ``path`` that were killed are removed first.

    A failed write raises :class:`~bdbnet.errors.OutputError` naming ``path``; the previous file
    is left as it was.
    """
    import torch

    remove_stale_temporaries(path)
    # torch reports ENOSPC as "RuntimeError: [enforce fail ..."
    return atomic_write(path, lambda f: torch.save(obj, f), errors=(OSError, RuntimeError))


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
