"""A saved gallery: features + image paths (+ optional labels) + the identity of the model.

Build it once (``bdbnet extract`` writes one), query it many times (``bdbnet search --gallery
INDEX``). Querying checks that the query features come from the same model (checkpoint SHA-256,
feature dimension, flip averaging) and refuses otherwise: distances between features of two
different models are meaningless.

File formats, chosen by the suffix:

``.safetensors`` (``pip install 'bdbnet[safetensors]'``)
    tensors ``features``, ``paths`` (UTF-8 of the newline-joined paths, uint8) and optionally
    ``pids`` / ``camids``; the JSON description (model identity, skipped files) in the header
    metadata under ``"bdbnet"``.
``.npz``
    the same arrays plus ``metadata`` (UTF-8 JSON as uint8); loads without pickle.
``.npy``
    the feature matrix alone, next to ``<stem>.paths.txt`` (one path per line, row order) and
    ``<stem>.json`` (the description, including the skipped files and labels).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bdbnet.evaluation.distance import ArrayLike, Metric, as_tensor
from bdbnet.inference.extractor import Extraction, ModelIdentity
from bdbnet.inference.search import SearchResult, search

__all__ = ["FORMAT", "GalleryIndex", "IndexMismatchError", "labels_from_paths"]

FORMAT = "bdbnet-gallery-index"
VERSION = 1
SUFFIXES = (".safetensors", ".npz", ".npy")

_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


class IndexMismatchError(ValueError):
    """Query features do not come from the model the index was built with."""


def labels_from_paths(paths: list[str]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Identities and 0-based cameras from Market-1501 / DukeMTMC-style file names
    (``0002_c1s1_000451_03.jpg``, ``0002_c1_f0046182.jpg``), or None if any name does not
    follow that pattern."""
    pids, cams = [], []
    for p in paths:
        m = _MARKET_NAME.match(Path(p).name)
        if m is None:
            return None
        pids.append(int(m.group(1)))
        cams.append(int(m.group(2)) - 1)
    return torch.tensor(pids, dtype=torch.int64), torch.tensor(cams, dtype=torch.int64)


def _encode_lines(lines: list[str]) -> np.ndarray:
    for line in lines:
        if "\n" in line:
            raise ValueError(f"paths with a newline cannot be stored: {line!r}")
    return np.frombuffer("\n".join(lines).encode("utf-8"), dtype=np.uint8).copy()


def _decode_lines(arr: np.ndarray | torch.Tensor, n: int) -> list[str]:
    raw = np.asarray(arr, dtype=np.uint8).tobytes().decode("utf-8")
    lines = raw.split("\n") if n else []
    if len(lines) != n:
        raise ValueError(f"index is corrupt: {len(lines)} paths for {n} features")
    return lines


@dataclass
class GalleryIndex:
    """Gallery features (row ``i`` is ``paths[i]``), optional labels, the model identity and
    the files skipped when the index was built. ``features`` may be float16 to halve memory."""

    features: torch.Tensor
    paths: list[str]
    identity: ModelIdentity | None = None
    pids: torch.Tensor | None = None
    camids: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.features = as_tensor(self.features)
        if self.features.dim() != 2:
            raise ValueError(f"features must be (N, D), got {tuple(self.features.shape)}")
        n = self.features.shape[0]
        if len(self.paths) != n:
            raise ValueError(f"{n} features but {len(self.paths)} paths")
        for name in ("pids", "camids"):
            value = getattr(self, name)
            if value is not None:
                value = as_tensor(value).long().reshape(-1)
                if value.shape[0] != n:
                    raise ValueError(f"{n} features but {value.shape[0]} {name}")
                setattr(self, name, value)
        if self.identity is not None and self.identity.feature_dim != self.features.shape[1]:
            raise ValueError(
                f"features are {self.features.shape[1]}-d, the model identity says "
                f"{self.identity.feature_dim}"
            )

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @classmethod
    def from_extraction(
        cls, extraction: Extraction, identity: ModelIdentity | None, labels: bool = True
    ) -> GalleryIndex:
        """An index of what :meth:`FeatureExtractor.extract` returned; with ``labels``, pids and
        cameras are parsed from Market-1501-style file names when every name has them."""
        parsed = labels_from_paths(extraction.paths) if labels and extraction.paths else None
        return cls(
            extraction.features,
            list(extraction.paths),
            identity,
            pids=parsed[0] if parsed else None,
            camids=parsed[1] if parsed else None,
            skipped=[p for p, _ in extraction.skipped],
        )

    # ------------------------------------------------------------------ querying
    def check_compatible(self, identity: ModelIdentity | None, dim: int | None = None) -> None:
        """Raise :class:`IndexMismatchError` if features of ``identity`` (or of dimension
        ``dim``) cannot be compared with this index's."""
        if dim is not None and dim != self.dim:
            raise IndexMismatchError(
                f"query features are {dim}-d but the gallery index holds {self.dim}-d features"
            )
        if identity is not None and self.identity is not None:
            why = self.identity.mismatch(identity)
            if why:
                raise IndexMismatchError(
                    f"the gallery index was built with another model ({why}); rebuild it with "
                    "this checkpoint (bdbnet extract) or query it with the one that built it"
                )

    def search(
        self,
        query: ArrayLike,
        topk: int = 10,
        identity: ModelIdentity | None = None,
        metric: Metric = "euclidean",
        **kwargs: Any,
    ) -> SearchResult:
        """Rank this gallery for each query feature row (see :func:`bdbnet.inference.search`),
        after checking that the query features are compatible."""
        q = as_tensor(query)
        if q.dim() == 1:
            q = q.unsqueeze(0)
        self.check_compatible(identity, int(q.shape[1]))
        return search(q, self.features, topk, metric, **kwargs)

    # ------------------------------------------------------------------ files
    def _description(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "num_items": len(self),
            "dim": self.dim,
            "dtype": str(self.features.dtype).replace("torch.", ""),
            "model": self.identity.to_dict() if self.identity else None,
            "skipped": list(self.skipped),
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "features": self.features.detach().cpu().contiguous().numpy(),
            "paths": _encode_lines(self.paths),
        }
        if self.pids is not None:
            arrays["pids"] = self.pids.numpy()
        if self.camids is not None:
            arrays["camids"] = self.camids.numpy()
        return arrays

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index; the format follows the suffix (``.safetensors``, ``.npz``,
        ``.npy``), see the module documentation. Returns the main file's path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise ValueError(f"index files end in {', '.join(SUFFIXES)}; got {path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        desc = self._description()
        if suffix == ".safetensors":
            try:
                from safetensors.numpy import save_file
            except ImportError as err:
                raise ImportError(
                    "writing .safetensors needs safetensors: pip install 'bdbnet[safetensors]' "
                    "(or write .npz / .npy)"
                ) from err
            save_file(self._arrays(), str(path), metadata={"bdbnet": json.dumps(desc)})
        elif suffix == ".npz":
            meta = np.frombuffer(json.dumps(desc).encode("utf-8"), dtype=np.uint8)
            with open(path, "wb") as f:
                np.savez(f, metadata=meta, **self._arrays())
        else:
            np.save(path, self.features.detach().cpu().contiguous().numpy())
            stem = path.with_suffix("")
            Path(f"{stem}.paths.txt").write_text(
                "".join(p + "\n" for p in self.paths), encoding="utf-8"
            )
            if self.pids is not None:
                desc["pids"] = self.pids.tolist()
            if self.camids is not None:
                desc["camids"] = self.camids.tolist()
            Path(f"{stem}.json").write_text(json.dumps(desc, indent=1))
        return path

    @staticmethod
    def is_index_file(path: str | os.PathLike[str]) -> bool:
        p = Path(path)
        return p.is_file() and p.suffix.lower() in SUFFIXES

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GalleryIndex:
        """Read an index written by :meth:`save` (or by ``bdbnet extract``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"gallery index not found: {path}")
        suffix = path.suffix.lower()
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
                raise ValueError(f"{path}: not a bdbnet gallery index (no 'bdbnet' metadata)")
            desc = json.loads(meta["bdbnet"])
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if "metadata" not in arrays:
                raise ValueError(f"{path}: not a bdbnet gallery index (no metadata)")
            desc = json.loads(arrays.pop("metadata").tobytes().decode("utf-8"))
        elif suffix == ".npy":
            stem = path.with_suffix("")
            paths_file, json_file = Path(f"{stem}.paths.txt"), Path(f"{stem}.json")
            for needed in (paths_file, json_file):
                if not needed.is_file():
                    raise FileNotFoundError(f"{path}: the index needs {needed} next to it")
            desc = json.loads(json_file.read_text())
            features = np.load(path, allow_pickle=False)
            lines = paths_file.read_text(encoding="utf-8").splitlines()
            arrays = {"features": features}
            for key in ("pids", "camids"):
                if desc.get(key) is not None:
                    arrays[key] = np.asarray(desc[key], dtype=np.int64)
        else:
            raise ValueError(f"index files end in {', '.join(SUFFIXES)}; got {path.name}")
        if desc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a bdbnet gallery index")
        if desc.get("version", 0) > VERSION:
            raise ValueError(f"{path}: index version {desc['version']} is newer than bdbnet's")
        features = torch.from_numpy(np.ascontiguousarray(arrays["features"]))
        n = int(features.shape[0])
        paths = lines if suffix == ".npy" else _decode_lines(arrays["paths"], n)
        model = desc.get("model")
        return cls(
            features,
            paths,
            ModelIdentity.from_dict(model) if model else None,
            pids=torch.from_numpy(np.asarray(arrays["pids"])) if "pids" in arrays else None,
            camids=torch.from_numpy(np.asarray(arrays["camids"])) if "camids" in arrays else None,
            skipped=list(desc.get("skipped", [])),
        )
