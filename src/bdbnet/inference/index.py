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
    ``<stem>.json`` (the description, including the skipped files and labels, and the SHA-256
    of the two other files, so that files of two saves are never paired).

Every format is written atomically and checked when loaded (see
:mod:`bdbnet.inference.index_files`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bdbnet.errors import BDBNetError
from bdbnet.evaluation.distance import ArrayLike, Metric, as_tensor
from bdbnet.files import decode_lines, encode_lines
from bdbnet.inference.extractor import Extraction, ModelIdentity
from bdbnet.inference.gallery_filter import GalleryFilter
from bdbnet.inference.index_files import (
    SUFFIXES,
    IndexFileError,
    IndexOutputError,
    read_index_file,
    write_index_file,
)
from bdbnet.inference.projection import Projection
from bdbnet.inference.search import Hit, SearchResult, search

__all__ = [
    "FORMAT",
    "GalleryIndex",
    "IndexFileError",
    "IndexMismatchError",
    "IndexOutputError",
    "labels_from_paths",
]

FORMAT = "bdbnet-gallery-index"
VERSION = 1

_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


class IndexMismatchError(BDBNetError, ValueError):
    """Query features do not come from the model the index was built with."""


def common_folder(paths: Iterable[str], start: str | None = None) -> str:
    """The deepest folder holding ``start`` and every absolute path of ``paths`` ("" when
    there is none, or they are on different drives)."""
    folders = [os.path.dirname(p) for p in paths if os.path.isabs(p)]
    folders += [start] if start else []
    if not folders:
        return ""
    try:
        return os.path.commonpath(folders)
    except ValueError:
        return ""


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


@dataclass
class GalleryIndex:
    """Gallery features (row ``i`` is ``paths[i]``), optional labels, the model identity and
    the files skipped when the index was built. ``features`` may be float16 to halve memory;
    with a ``projection`` they are the model's features projected (PCA, see :meth:`compact`)
    and queries of the model are projected the same way before they are compared."""

    features: torch.Tensor
    paths: list[str]
    identity: ModelIdentity | None = None
    pids: torch.Tensor | None = None
    camids: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)
    projection: Projection | None = None

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
        if self.projection is not None and self.projection.out_dim != self.features.shape[1]:
            raise ValueError(
                f"features are {self.features.shape[1]}-d, the projection makes "
                f"{self.projection.out_dim}-d ones"
            )
        if self.identity is not None and self.identity.feature_dim != self.model_dim:
            raise ValueError(
                f"features are {self.model_dim}-d, the model identity says "
                f"{self.identity.feature_dim}"
            )

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def model_dim(self) -> int:
        """The dimension of the model's features (queries): :attr:`dim` unless projected."""
        return self.projection.in_dim if self.projection is not None else self.dim

    def compact(self, dtype: torch.dtype | None = None, dim: int | None = None) -> GalleryIndex:
        """This gallery in less memory: features stored as ``dtype`` (``torch.float16``
        halves them) and/or projected to ``dim`` by a PCA fitted on them (stored with the
        index; queries are projected too). The mAP each costs: ``benchmarks/bench_compact.py``."""
        if self.projection is not None and dim is not None:
            raise ValueError("this index is already projected; compact the original one")
        projection = Projection.fit(self.features, dim) if dim is not None else self.projection
        features = projection(self.features) if dim is not None else self.features
        return replace(self, features=features.to(dtype or features.dtype), projection=projection)

    def _queries(self, query: ArrayLike, identity: ModelIdentity | None) -> torch.Tensor:
        """Query rows checked against this index, projected when the index is."""
        q = as_tensor(query)
        q = q.unsqueeze(0) if q.dim() == 1 else q
        self.check_compatible(identity, int(q.shape[1]))
        return self.projection(q) if self.projection is not None else q

    @property
    def labelled(self) -> bool:
        """Whether identities and cameras are known (the re-ID protocol and label filters)."""
        return self.pids is not None and self.camids is not None

    def record(self, i: int) -> tuple[str, int | None, int | None] | None:
        """(path, pid, camid) of item ``i`` (a hit's ``index``); ``None`` when there is none."""
        if not 0 <= i < len(self):
            return None
        hit = self._hit(0, i, 0.0)
        return hit.path, hit.pid, hit.camid

    def common_folder(self) -> str:
        """The deepest folder holding every absolute path ("" when none is absolute)."""
        return common_folder(self.paths)

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
        if dim is not None and dim != self.model_dim:
            raise IndexMismatchError(
                f"query features are {dim}-d but the gallery index holds {self.model_dim}-d "
                "features" + (f" (projected to {self.dim})" if self.projection else "")
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
        return search(self._queries(query, identity), self.features, topk, metric, **kwargs)

    def search_hits(
        self,
        query: ArrayLike,
        topk: int = 10,
        identity: ModelIdentity | None = None,
        metric: Metric = "euclidean",
        *,
        where: GalleryFilter | None = None,
        exclude_same_camera: tuple[Sequence[int], Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[list[Hit]]:
        """The ``topk`` nearest items of each query row as :class:`Hit` lists, among the rows
        ``where`` keeps; ``exclude_same_camera`` = (query pids, query camids) leaves out the
        query's identity on the query's camera (the re-ID protocol). The interface of
        :class:`~bdbnet.inference.milvus_gallery.MilvusGallery` too."""
        q = self._queries(query, identity)
        columns = self.filter_columns()
        keep = where.mask(columns) if where is not None else np.ones(len(self), dtype=bool)
        if exclude_same_camera is not None and not self.labelled:
            raise IndexMismatchError(
                "leaving out the query's identity on its camera needs a gallery with labels"
            )
        groups: dict[tuple[int, int] | None, list[int]] = {}
        for i in range(q.shape[0]):
            key = None
            if exclude_same_camera is not None:
                key = (int(exclude_same_camera[0][i]), int(exclude_same_camera[1][i]))
            groups.setdefault(key, []).append(i)
        out: list[list[Hit]] = [[] for _ in range(q.shape[0])]
        for key, rows in groups.items():
            allowed = keep
            if key is not None:
                allowed = keep & ~((columns["pid"] == key[0]) & (columns["camid"] == key[1]))
            if allowed.all():  # no filter: the gallery itself, not a copy of it per call
                kept, gallery = None, self.features
            else:
                kept = np.flatnonzero(allowed)
                if kept.size == 0:
                    continue
                gallery = self.features[torch.from_numpy(kept)]
            result = search(q[rows], gallery, topk, metric, **kwargs)
            for row, idx, dist in zip(rows, result.indices.tolist(), result.distances.tolist()):
                out[row] = [
                    self._hit(r, i if kept is None else int(kept[i]), d)
                    for r, (i, d) in enumerate(zip(idx, dist), 1)
                ]
        return out

    def filter_columns(self) -> dict[str, np.ndarray | None]:
        """The fields ``--where`` may name, per row (``None``: not recorded in this index)."""
        return {
            "pid": None if self.pids is None else self.pids.numpy(),
            "camid": None if self.camids is None else self.camids.numpy(),
            "time": None,
            "source": None,
        }

    def _hit(self, rank: int, i: int, distance: float) -> Hit:
        pid = None if self.pids is None else int(self.pids[i])
        camid = None if self.camids is None else int(self.camids[i])
        return Hit(rank, i, self.paths[i], float(distance), pid, camid)

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
            "projection": None
            if self.projection is None
            else {"dim": self.projection.in_dim, "kept_variance": self.projection.kept},
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "features": self.features.detach().cpu().contiguous().numpy(),
            "paths": encode_lines(self.paths, IndexOutputError),
        }
        if self.pids is not None:
            arrays["pids"] = self.pids.numpy()
        if self.camids is not None:
            arrays["camids"] = self.camids.numpy()
        if self.projection is not None:
            arrays.update(self.projection.arrays())
        return arrays

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index atomically; the format follows the suffix (``.safetensors``,
        ``.npz``, ``.npy``), see the module documentation. Returns the main file's path."""
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES:
            raise IndexOutputError(f"index files end in {', '.join(SUFFIXES)}; got {path.name}")
        if self.projection is not None and path.suffix.lower() == ".npy":
            raise IndexOutputError(
                f"{path.name}: a .npy index holds the features alone; a projected index "
                "(its PCA stored with it) is written as .safetensors or .npz"
            )
        write_index_file(path, self._arrays(), self._description(), self.paths)
        return path

    @staticmethod
    def is_index_file(path: str | os.PathLike[str]) -> bool:
        p = Path(path)
        return p.is_file() and p.suffix.lower() in SUFFIXES

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GalleryIndex:
        """Read an index written by :meth:`save` (or by ``bdbnet extract``), checking every
        shape; a missing, corrupt or inconsistent file raises :class:`IndexFileError` naming it.
        """
        path = Path(path)
        arrays, desc, lines = read_index_file(path)
        if not isinstance(desc, dict) or desc.get("format") != FORMAT:
            raise IndexFileError(f"{path}: not a bdbnet gallery index")
        if not isinstance(desc.get("version", 0), int) or desc.get("version", 0) > VERSION:
            raise IndexFileError(
                f"{path}: index version {desc.get('version')!r} is newer than this bdbnet's "
                f"({VERSION}); upgrade bdbnet"
            )
        features = np.asarray(arrays["features"])
        if features.ndim != 2 or features.dtype.kind != "f":
            raise IndexFileError(
                f"{path}: the features must be a 2-D float matrix; found {features.dtype} "
                f"{features.shape}; rebuild it with bdbnet extract"
            )
        n = int(features.shape[0])
        for key, value in (("num_items", n), ("dim", int(features.shape[1]))):
            if key in desc and desc[key] != value:
                raise IndexFileError(
                    f"{path}: the description says {key} = {desc[key]!r} but the features are "
                    f"{features.shape}; the file is damaged: rebuild it with bdbnet extract"
                )
        try:
            paths = lines if lines is not None else decode_lines(arrays["paths"], n)
            labels = {}
            for key in ("pids", "camids"):
                if key in arrays:
                    value = np.asarray(arrays[key])
                    if value.dtype.kind not in "iu":
                        raise ValueError(f"{key} must be integers, found {value.dtype}")
                    labels[key] = torch.from_numpy(value.astype(np.int64).reshape(-1))
            model = desc.get("model")
            return cls(
                torch.from_numpy(np.ascontiguousarray(features)),
                paths,
                ModelIdentity.from_dict(model) if model else None,
                pids=labels.get("pids"),
                camids=labels.get("camids"),
                skipped=list(desc.get("skipped", [])),
                projection=Projection.from_arrays(
                    arrays, float((desc.get("projection") or {}).get("kept_variance", "nan"))
                ),
            )
        except (ValueError, TypeError, UnicodeDecodeError) as err:
            raise IndexFileError(
                f"{path}: inconsistent gallery index ({err}); rebuild it with bdbnet extract"
            ) from err
