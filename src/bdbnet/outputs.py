"""Check that outputs can be written *before* any work starts.

An extraction or a training run that finishes and then cannot write its result wastes the work;
so the command line calls these first, and they raise :class:`~bdbnet.errors.OutputError` naming
the path and what to do. The check is a real write (a temporary file created and removed), which
also catches read-only mounts and permissions that ``os.access`` would not see.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ensure_output_file(f"{tmp}/index/feats.npz", suffixes=(".npz",)).name
    'feats.npz'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bdbnet.errors import OutputError

__all__ = ["PICTURE_FORMATS", "ensure_output_dir", "ensure_output_file"]

#: Picture suffix -> the format it is written in (ranked lists, activation maps, curves).
PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def ensure_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create ``path`` (and its parents) if needed and check that a file can be written in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} exists and is not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create the {what} {path} ({err.strerror or err}); choose a writable path"
        ) from err
    try:
        fd, probe = tempfile.mkstemp(prefix=".bdbnet-write-test.", dir=path)
    except OSError as err:
        raise OutputError(
            f"cannot write into the {what} {path} ({err.strerror or err}); check its "
            "permissions or choose another folder"
        ) from err
    os.close(fd)
    os.unlink(probe)
    return path


def ensure_output_file(
    path: str | os.PathLike[str],
    suffixes: Sequence[str] | None = None,
    what: str = "output file",
) -> Path:
    """Check that ``path`` can be written: an allowed suffix, not a folder, a writable parent
    (created if needed). Nothing is written at ``path`` itself."""
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{what} {path} must end in {', '.join(suffixes)} (the suffix chooses the format)"
        )
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file path")
    ensure_output_dir(path.parent if str(path.parent) else Path("."), f"folder of the {what}")
    return path
