"""Weights files and the fingerprint of a model's weights.

``.safetensors`` weights (``bdbnet export --format safetensors``) hold the state dict and, in
the header's ``"bdbnet"`` entry, what is needed to rebuild the model and feed it: model name and
arguments, number of classes, the run's config (whose ``data`` section is the preprocessing)
and the weights' fingerprint. No optimiser state, so a fraction of a training checkpoint.

:func:`state_dict_sha256` fingerprints the tensors themselves (names, dtypes, shapes, bytes),
not a file: the same weights re-saved, exported or copied keep their identity.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import torch

from bdbnet.files import atomic_write
from bdbnet.models.official import CheckpointError

__all__ = [
    "WEIGHTS_FORMAT",
    "is_safetensors_file",
    "read_safetensors",
    "read_safetensors_metadata",
    "state_dict_sha256",
    "write_safetensors",
]

WEIGHTS_FORMAT = "bdbnet-weights"
WEIGHTS_VERSION = 1
METADATA_KEY = "bdbnet"


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hex SHA-256 over the tensors of ``state`` in key order: each key, dtype, shape and the
    raw bytes. Independent of the file format, the device and the dict's order.

    >>> a = {"w": torch.ones(2, 2), "b": torch.zeros(2)}
    >>> state_dict_sha256(a) == state_dict_sha256({"b": torch.zeros(2), "w": torch.ones(2, 2)})
    True
    >>> state_dict_sha256(a) == state_dict_sha256({**a, "b": torch.tensor([0.0, 1e-7])})
    False
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _safetensors() -> Any:
    try:
        import safetensors.torch
    except ImportError as err:
        raise ImportError(
            "reading or writing .safetensors weights needs safetensors: "
            "pip install 'bdbnet[safetensors]'"
        ) from err
    return safetensors


def is_safetensors_file(path: str | os.PathLike[str]) -> bool:
    """By name: what ``bdbnet export --format safetensors`` writes."""
    return str(path).lower().endswith(".safetensors")


def write_safetensors(
    path: str | os.PathLike[str], state: Mapping[str, torch.Tensor], meta: dict[str, Any]
) -> dict[str, Any]:
    """Write ``state`` with ``meta`` (JSON-serialisable) plus the format tag, tensor count and
    ``weights_sha256``; returns the metadata written."""
    st = _safetensors()
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    meta = {
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        **meta,
        "tensors": len(tensors),
        "weights_sha256": state_dict_sha256(tensors),
    }
    blob = st.torch.save(tensors, metadata={METADATA_KEY: json.dumps(meta)})
    atomic_write(path, lambda f: f.write(blob))
    return meta


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``"bdbnet"`` header entry of a weights file, without reading the tensors."""
    st = _safetensors()
    try:
        with st.safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (OSError, ValueError, RuntimeError, st.SafetensorError) as err:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({err})") from err
    if METADATA_KEY not in header:
        raise CheckpointError(
            f"{path}: a .safetensors file without bdbnet metadata (not written by bdbnet "
            "export --format safetensors)"
        )
    meta = json.loads(header[METADATA_KEY])
    if meta.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{path}: not bdbnet weights (format {meta.get('format')!r})")
    if meta.get("version", 0) > WEIGHTS_VERSION:
        raise CheckpointError(
            f"{path}: weights format version {meta['version']} is newer than this bdbnet "
            f"({WEIGHTS_VERSION}); upgrade bdbnet"
        )
    return meta


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, metadata)`` of a weights file; the tensors are checked against the
    recorded fingerprint, so a damaged or edited file is refused by name."""
    meta = read_safetensors_metadata(path)
    st = _safetensors()
    state = st.torch.load_file(str(path), device="cpu")
    if meta.get("weights_sha256") not in (None, state_dict_sha256(state)):
        raise CheckpointError(f"{path}: the weights do not match their recorded sha256")
    return state, meta
