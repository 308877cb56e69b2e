"""Gallery index files on disk: written atomically, read with every shape checked.

Why: an index is written once and queried for a long time, often by another process; a crash, a
full disk or two saves at once must never leave a file that loads as a *different* gallery (the
features of one with the paths of another) or that fails with a decoder's traceback.

* ``.safetensors`` and ``.npz`` are one file each: written to a temporary file in the same
  folder, flushed to disk, then renamed over the target (``os.replace`` is atomic), so a reader
  sees the old index or the new one, whole.
* ``.npy`` is three files (``X.npy``, ``X.paths.txt``, ``X.json``). Each is written to a temporary
  file first; ``X.json``, the manifest, records a save id and the SHA-256 of the two others and is
  renamed last. The three renames happen under an exclusive ``flock`` of the folder (readers take
  a shared one while they open the files), so saves never interleave; a reader that still finds a
  manifest whose hashes do not match its companions (a save killed between two renames, or a
  system without ``flock``) retries briefly and then refuses with an error naming the files. It
  never pairs files of two saves.
* A save first removes the temporaries that killed saves of the same files left behind (a
  gallery's size each); those of a concurrent saver are left alone (a temporary's name holds its
  writer's pid and host: :func:`bdbnet.files.remove_stale_temporaries`).

Every problem raises :class:`IndexFileError` (a :class:`~bdbnet.errors.DataError`) naming the
broken file, or :class:`IndexOutputError` (an :class:`~bdbnet.errors.OutputError`) for saves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from bdbnet.errors import DataError, OutputError
from bdbnet.files import file_sha256, remove_stale_temporaries, write_temporary

__all__ = ["IndexFileError", "IndexOutputError", "read_index_file", "write_index_file"]

SUFFIXES = (".safetensors", ".npz", ".npy")
_READ_ATTEMPTS = 5


class IndexFileError(DataError, ValueError):
    """A gallery index file is missing, corrupt, incomplete or not an index."""


class IndexOutputError(OutputError, ValueError):
    """A gallery index cannot be written there (suffix, permissions, disk space)."""


def companions(path: Path) -> tuple[Path, Path]:
    """The ``.paths.txt`` and ``.json`` files of an ``.npy`` index."""
    stem = path.with_suffix("")
    return Path(f"{stem}.paths.txt"), Path(f"{stem}.json")


# ------------------------------------------------------------------------------ writing
class _HashingWriter:
    """A binary file wrapper that hashes what passes through (so nothing is read back)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.digest = f, hashlib.sha256()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        return self.f.write(view)


@contextlib.contextmanager
def _folder_lock(folder: Path, exclusive: bool) -> Iterator[None]:
    """``flock`` of ``folder`` (exclusive for saves, shared for loads); a no-op where the
    platform or the file system has none."""
    try:
        import fcntl
    except ImportError:  # Windows: manifest hashes still catch mixed files
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_index_file(
    path: Path, arrays: dict[str, np.ndarray], desc: dict[str, Any], lines: list[str]
) -> None:
    """Write one index (see the module documentation); ``lines`` are the image paths."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise IndexOutputError(f"index files end in {', '.join(SUFFIXES)}; got {path.name}")
    temps: list[Path] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target in (path, *companions(path)) if suffix == ".npy" else (path,):
            remove_stale_temporaries(target)  # what killed saves left; live savers' are kept
        if suffix == ".safetensors":
            try:
                from safetensors.numpy import save
            except ImportError as err:
                raise ImportError(
                    "writing .safetensors needs safetensors: pip install 'bdbnet[safetensors]' "
                    "(or write .npz / .npy)"
                ) from err
            blob = save(arrays, metadata={"bdbnet": json.dumps(desc)})
            temps.append(write_temporary(path, lambda f: f.write(blob)))
            os.replace(temps.pop(), path)
        elif suffix == ".npz":
            meta = np.frombuffer(json.dumps(desc).encode("utf-8"), dtype=np.uint8)
            temps.append(write_temporary(path, lambda f: np.savez(f, metadata=meta, **arrays)))
            os.replace(temps.pop(), path)
        else:
            _write_npy(path, arrays, desc, lines, temps)
    except OSError as err:
        raise IndexOutputError(
            f"cannot write the gallery index {path} ({err.strerror or err}); is the disk full "
            "or the folder read-only?"
        ) from err
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _write_npy(
    path: Path, arrays: dict[str, np.ndarray], desc: dict[str, Any], lines: list[str], temps: list
) -> None:
    paths_file, json_file = companions(path)
    hashed: dict[str, _HashingWriter] = {}

    def features(f: IO[bytes]) -> None:
        hashed["features"] = _HashingWriter(f)
        np.save(hashed["features"], arrays["features"], allow_pickle=False)  # type: ignore[arg-type]

    text = "".join(line + "\n" for line in lines).encode("utf-8")
    temps.append(write_temporary(path, features))
    temps.append(write_temporary(paths_file, lambda f: f.write(text)))
    manifest = dict(desc)
    for key in ("pids", "camids"):
        if key in arrays:
            manifest[key] = arrays[key].tolist()
    manifest["save_id"] = uuid.uuid4().hex
    manifest["files"] = {
        "features": {"name": path.name, "sha256": hashed["features"].digest.hexdigest()},
        "paths": {"name": paths_file.name, "sha256": hashlib.sha256(text).hexdigest()},
    }
    body = json.dumps(manifest, indent=1).encode("utf-8")
    temps.append(write_temporary(json_file, lambda f: f.write(body)))
    with _folder_lock(path.parent, exclusive=True):
        for tmp, target in zip(list(temps), (path, paths_file, json_file)):
            os.replace(tmp, target)  # the manifest last: it is what makes the save visible
            temps.remove(tmp)


# ------------------------------------------------------------------------------ reading
def _corrupt(path: Path, err: BaseException | str) -> IndexFileError:
    reason = err if isinstance(err, str) else (str(err) or type(err).__name__)
    return IndexFileError(
        f"{path}: not a readable gallery index ({reason}); rebuild it with bdbnet extract"
    )


def _decode_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
        UnicodeDecodeError,
    ]
    with contextlib.suppress(ImportError):
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    return tuple(errors)


def read_index_file(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str] | None]:
    """``(arrays, description, paths)`` of the index at ``path``; ``paths`` is None when they
    are in ``arrays["paths"]`` (single-file formats)."""
    if not path.is_file():
        raise IndexFileError(f"gallery index not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise IndexFileError(f"index files end in {', '.join(SUFFIXES)}; got {path.name}")
    if suffix == ".npy":
        return _read_npy(path)
    try:
        if suffix == ".safetensors":
            try:
                from safetensors import safe_open
            except ImportError as err:
                raise ImportError(
                    "reading .safetensors needs safetensors: pip install 'bdbnet[safetensors]'"
                ) from err
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            if "bdbnet" not in meta:
                raise IndexFileError(f"{path}: not a bdbnet gallery index (no 'bdbnet' metadata)")
            desc = json.loads(meta["bdbnet"])
        else:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if "metadata" not in arrays:
                raise IndexFileError(f"{path}: not a bdbnet gallery index (no metadata)")
            desc = json.loads(arrays.pop("metadata").tobytes().decode("utf-8"))
    except IndexFileError:
        raise
    except _decode_errors() as err:
        raise _corrupt(path, err) from err
    for key in ("features", "paths"):
        if key not in arrays:
            raise _corrupt(path, f"no {key!r} array")
    return arrays, desc, None


def _consistent_npy(
    path: Path, json_file: Path, fj: IO[bytes], fn: IO[bytes], fp: IO[bytes]
) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]] | None:
    """The index from three open files, or None when they are not of the same save."""
    try:
        desc = json.loads(fj.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise _corrupt(json_file, err) from err
    if not isinstance(desc, dict):
        raise _corrupt(json_file, "not a JSON object")
    expected = desc.get("files") or {}
    text = fp.read()
    if expected and (
        expected.get("features", {}).get("sha256") != file_sha256(fn)
        or expected.get("paths", {}).get("sha256") != hashlib.sha256(text).hexdigest()
    ):
        return None
    fn.seek(0)
    try:
        features = np.load(fn, allow_pickle=False)
        lines = text.decode("utf-8").splitlines()
    except _decode_errors() as err:
        raise _corrupt(path, err) from err
    arrays = {"features": features}
    for key in ("pids", "camids"):
        if desc.get(key) is not None:
            arrays[key] = np.asarray(desc[key])
    return arrays, desc, lines


def _read_npy(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]]:
    paths_file, json_file = companions(path)
    for needed in (paths_file, json_file):
        if not needed.is_file():
            raise IndexFileError(f"{path}: the index needs {needed} next to it")
    for attempt in range(_READ_ATTEMPTS):
        with contextlib.ExitStack() as stack:
            with _folder_lock(path.parent, exclusive=False):
                fj, fn, fp = (
                    stack.enter_context(open(p, "rb")) for p in (json_file, path, paths_file)
                )
            found = _consistent_npy(path, json_file, fj, fn, fp)
        if found is not None:
            return found
        time.sleep(0.02 * (attempt + 1))  # a save may be between its renames
    raise IndexFileError(
        f"{path}, {paths_file.name} and {json_file.name} come from different saves (a save was "
        f"interrupted or is still running; {json_file.name} is written last and lists the "
        "others' SHA-256); save the index again"
    )
