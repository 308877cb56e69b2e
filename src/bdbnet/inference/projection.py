"""A PCA projection of gallery features, fitted on the gallery and stored with its index.

Why: a gallery's memory is rows x dim x bytes. float16 halves it; projecting BDB's 1536-d features
on the gallery's leading principal directions divides it by 1536 / K, at a cost in mAP that
``benchmarks/bench_compact.py`` measures. Queries are projected with the same mean and
directions before they are compared, so Euclidean distances are those of the kept subspace.

Example:
    >>> projection = Projection.fit(gallery_features, 256)  # doctest: +SKIP
    >>> small = projection(gallery_features)                # (N, 256) float32  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bdbnet.evaluation.distance import ArrayLike, as_tensor

__all__ = ["Projection"]

FIT_ROWS = 65536  # rows per step of the covariance: memory stays dim x dim, whatever N


@dataclass(frozen=True)
class Projection:
    """``x -> (x - mean) @ components``: ``mean`` (D,), ``components`` (D, K) with orthonormal
    columns in order of decreasing gallery variance; ``kept`` is the fraction of the gallery's
    variance they hold."""

    mean: torch.Tensor
    components: torch.Tensor
    kept: float = float("nan")

    def __post_init__(self) -> None:
        if self.mean.dim() != 1 or self.components.dim() != 2:
            raise ValueError("a projection is a (D,) mean and (D, K) components")
        if self.components.shape[0] != self.mean.shape[0]:
            raise ValueError(
                f"mean is {self.mean.shape[0]}-d but components are {tuple(self.components.shape)}"
            )

    @property
    def in_dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, features: ArrayLike, dim: int) -> Projection:
        """The ``dim`` leading principal directions of ``features`` (N, D): the covariance is
        accumulated in float64 over chunks of rows, then diagonalised (``torch.linalg.eigh``);
        each direction's sign is fixed (largest entry positive) so a fit is reproducible."""
        x = as_tensor(features)
        n, d = int(x.shape[0]), int(x.shape[1])
        if not 1 <= dim <= d:
            raise ValueError(f"the projected dimension must be 1..{d}; got {dim}")
        if n < 2:
            raise ValueError(f"a projection is fitted on at least 2 gallery rows; got {n}")
        total = torch.zeros(d, dtype=torch.float64)
        for s in range(0, n, FIT_ROWS):
            total += x[s : s + FIT_ROWS].double().sum(0)
        mean = total / n
        cov = torch.zeros(d, d, dtype=torch.float64)
        for s in range(0, n, FIT_ROWS):
            c = x[s : s + FIT_ROWS].double() - mean
            cov += c.T @ c
        values, vectors = torch.linalg.eigh(cov / (n - 1))  # ascending
        values, vectors = values.flip(0), vectors.flip(1)
        top = vectors[:, :dim]
        signs = torch.sign(top.gather(0, top.abs().argmax(0, keepdim=True)))
        top = top * torch.where(signs == 0, torch.ones_like(signs), signs)
        kept = float(values[:dim].clamp_min(0).sum() / values.clamp_min(0).sum().clamp_min(1e-300))
        return cls(mean.float(), top.float().contiguous(), kept)

    def __call__(self, features: ArrayLike) -> torch.Tensor:
        x = as_tensor(features).float()
        return (x - self.mean) @ self.components

    def arrays(self) -> dict[str, np.ndarray]:
        """What an index file stores (:meth:`from_arrays` reads it back)."""
        return {
            "projection_mean": self.mean.numpy(),
            "projection_components": self.components.numpy(),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], kept: float) -> Projection | None:
        if "projection_components" not in arrays:
            return None
        mean = torch.from_numpy(np.asarray(arrays["projection_mean"], dtype=np.float32).copy())
        comps = np.asarray(arrays["projection_components"], dtype=np.float32)
        return cls(mean, torch.from_numpy(comps.copy()), kept)
