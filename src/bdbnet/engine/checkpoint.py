"""Checkpoints: everything needed to resume in one file, written atomically.

A checkpoint is a plain dict of tensors and Python primitives, so it loads with
``torch.load(weights_only=True)``; it is written to a temporary file in the same folder and
renamed over the target, so a run killed mid-write never leaves a truncated checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from bdbnet.engine.guard import non_finite_tensors
from bdbnet.errors import OutputError, TrainingError
from bdbnet.models.official import CheckpointError, load_weights, safe_torch_load

FORMAT = "bdbnet-checkpoint"
VERSION = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that writes of ``path`` killed mid-way left behind."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` via a temporary file and ``os.replace``: a reader sees the
    old file or the new one, never a half-written one. The file gets the usual permissions
    (0666 less the umask, like the run's other files), and temporaries of earlier writes that
    were killed are removed first.

    A failed write (disk full, read-only folder) raises :class:`~bdbnet.errors.OutputError`
    naming ``path``; the previous file at ``path`` is left as it was and the temporary removed.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports ENOSPC as "RuntimeError: [enforce fail"
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise OutputError(
            f"cannot write {path} ({reason}): is the disk full or the folder read-only? "
            f"{'The previous ' + path.name + ' is kept.' if path.exists() else ''}".rstrip()
        ) from err
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """:func:`atomic_save` of a training checkpoint, refused if any weight is NaN or infinite
    (the previous, good checkpoint stays in place)."""
    bad = non_finite_tensors(state["model"])
    if bad:
        raise TrainingError(
            f"refused to write {path}: {len(bad)} of {len(state['model'])} model tensors are "
            f"not finite (first: {bad[0]}); the previous checkpoint is kept"
        )
    return atomic_save(state, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load one of our checkpoints (safely) and check its format."""
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = (
            " (an official BDB .pth.tar? use load_official_checkpoint)"
            if "state_dict" in (obj if isinstance(obj, dict) else {})
            else ""
        )
        raise CheckpointError(f"{path}: not a bdbnet checkpoint{hint}")
    if obj.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {obj['version']} is newer than this bdbnet "
            f"({VERSION}); upgrade bdbnet"
        )
    return obj


def is_official_checkpoint(obj: Any) -> bool:
    """Official BDB files are ``{'state_dict': {...}, 'epoch': N}`` without our format tag."""
    return isinstance(obj, dict) and "state_dict" in obj and obj.get("format") != FORMAT


def load_trained_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Any]:
    """An eval-mode model and its :class:`~bdbnet.config.Config` from one of our checkpoints,
    exported ``.safetensors`` weights (``bdbnet export --format safetensors``) or an official
    BDB ``*.pth.tar`` (which gets the Market-1501 preset's test preprocessing, 384x128)."""
    from bdbnet.config import Config, apply_dict, load_config
    from bdbnet.models import create_model, load_official_checkpoint
    from bdbnet.models.weights import is_safetensors_file, read_safetensors

    if is_safetensors_file(path):
        weights, state = read_safetensors(path)
        state = {**state, "model": weights}
    else:
        obj = safe_torch_load(path)
        if is_official_checkpoint(obj):
            model = load_official_checkpoint(path)
            return model.to(device).eval(), load_config("market1501")
        state = load_checkpoint(path)
    missing = [k for k in ("config", "model", "model_kwargs", "num_classes") if k not in state]
    if missing:
        raise CheckpointError(
            f"{path}: incomplete bdbnet checkpoint, no {', '.join(missing)} entry; "
            "write it again with bdbnet train"
        )
    cfg = apply_dict(Config(), state["config"], f"{path} (config)")
    name = state.get("model_name", "bdb")  # checkpoints before the registry: BDB
    try:
        model = create_model(name, state["num_classes"], pretrained=None, **state["model_kwargs"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path}: model_kwargs do not describe a {name!r} model ({err})"
        ) from err
    load_weights(model, state["model"], path)
    return model.to(device).eval(), cfg
