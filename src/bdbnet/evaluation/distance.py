"""Pairwise distances between feature sets, computed block by block.

Every evaluator in :mod:`bdbnet.evaluation` consumes distances one block of query rows at a
time, so that a problem such as MSMT17 (11,659 x 82,161) never holds its full distance matrix.
The helpers here produce those blocks on whatever device the features live on (CPU or CUDA) and
accept NumPy arrays or torch tensors alike.

Metrics
-------
``"euclidean"``
    ``||x - y||`` (the square root is taken; ``bdbnet`` reports true Euclidean distances).
``"sqeuclidean"``
    ``||x - y||**2``: same ranking as ``"euclidean"`` and one operation cheaper.
``"cosine"``
    ``1 - cos(x, y)`` in ``[0, 2]``; rows are L2-normalised internally.

Squared Euclidean distances are computed as ``|x|^2 + |y|^2 - 2 x.y`` (one matrix product) and
clamped at zero; the distance of an item to itself (``y=None``) is set to exactly zero, so that an
item is always its own nearest neighbour, as re-ranking expects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch

__all__ = [
    "DEFAULT_BLOCK_ELEMENTS",
    "FEATURE_BLOCK_ELEMENTS",
    "ArrayLike",
    "Metric",
    "as_tensor",
    "auto_chunk_rows",
    "iter_pairwise_distance",
    "iter_squared_norm_parts",
    "pairwise_distance",
    "squared_norm_parts",
    "topk",
]

ArrayLike = np.ndarray | torch.Tensor | Sequence
Metric = Literal["euclidean", "sqeuclidean", "cosine"]

#: Elements of a distance block when no chunk size is given (8 Mi elements = 32 MiB in float32):
#: big enough for efficient matrix products, small enough to keep the extra memory of every
#: evaluator far below a gigabyte.
DEFAULT_BLOCK_ELEMENTS = 1 << 23

#: Elements of a distance block that evaluation computes from features by a matrix product
#: (64 Mi = 256 MiB in float32). The product's rows set its speed: at 1536-d and MSMT17's 82,161
#: gallery items, 100 rows (the 8 Mi block) reach about 80% of the machine's matmul rate, 800
#: rows about 95% (``benchmarks/bench_evaluation.py``).
FEATURE_BLOCK_ELEMENTS = 1 << 26

_METRICS = ("euclidean", "sqeuclidean", "cosine")


def as_tensor(
    x: ArrayLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Return ``x`` as a tensor without copying when possible.

    NumPy arrays share their memory with the result; tensors are detached (no autograd graph is
    kept alive by an evaluation) and only moved/cast when ``device``/``dtype`` ask for it.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if arr.dtype.kind in "fiub":
            if not arr.flags.writeable or any(st < 0 for st in arr.strides):
                arr = arr.copy()  # torch needs writeable memory and non-negative strides
            t = torch.from_numpy(arr)
        else:
            raise TypeError(f"cannot convert an array of dtype {arr.dtype} to a tensor")
    if device is not None or dtype is not None:
        t = t.to(device=device if device is not None else t.device, dtype=dtype or t.dtype)
    return t


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")


def prepare_features(
    x: ArrayLike,
    y: ArrayLike | None,
    metric: str,
    device: torch.device | str | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features as 2-D floating tensors on one device (float32 unless given float64)."""
    _check_metric(metric)
    xt = as_tensor(x, device=device)
    dev = xt.device
    yt = None if y is None else as_tensor(y, device=dev)
    out = []
    for t in (xt, yt):
        if t is None:
            out.append(None)
            continue
        if t.dim() != 2:
            raise ValueError(f"features must be 2-D (num_items, dim), got shape {tuple(t.shape)}")
        if t.dtype != torch.float64:
            t = t.float()
        out.append(t)
    xt, yt = out
    if yt is not None:
        if yt.shape[1] != xt.shape[1]:
            raise ValueError(f"feature dims differ: {xt.shape[1]} vs {yt.shape[1]}")
        if yt.dtype != xt.dtype:
            xt, yt = xt.double(), yt.double()
    if metric == "cosine":
        xt = torch.nn.functional.normalize(xt, dim=1)
        yt = None if yt is None else torch.nn.functional.normalize(yt, dim=1)
    return xt, yt


def auto_chunk_rows(num_cols: int, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> int:
    """Rows per block so that one block holds about ``block_elements`` distances."""
    return max(1, int(block_elements // max(1, num_cols)))


def squared_norm_parts(
    xs: torch.Tensor, y: torch.Tensor, y_sqnorm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|y|^2 - 2 x.y, |x|^2)``: a squared Euclidean block before its row norms are added
    and it is clamped at 0 (what :func:`distance_block` finishes, and what
    :class:`~bdbnet.evaluation.positive_ranks.SquaredNormBlock` ranks without finishing)."""
    raw = torch.addmm(y_sqnorm.unsqueeze(0), xs, y.T, beta=1.0, alpha=-2.0)
    return raw, xs.pow(2).sum(1)


def iter_squared_norm_parts(
    x: ArrayLike, y: ArrayLike, rows: int, device: torch.device | str | None = None
) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """``(start, stop, raw, x_sqnorm)`` of :func:`squared_norm_parts` for blocks of ``rows``
    rows of ``x`` against ``y``: the Euclidean blocks of :func:`iter_pairwise_distance`,
    unfinished."""
    xt, yt = prepare_features(x, y, "euclidean", device)
    assert yt is not None
    y_sqnorm = yt.pow(2).sum(1)
    for start in range(0, xt.shape[0], rows):
        stop = min(xt.shape[0], start + rows)
        raw, x_sqnorm = squared_norm_parts(xt[start:stop], yt, y_sqnorm)
        yield start, stop, raw, x_sqnorm


def distance_block(
    xs: torch.Tensor,
    y: torch.Tensor,
    metric: str,
    y_sqnorm: torch.Tensor | None,
    self_offset: int | None,
) -> torch.Tensor:
    """Distances between the rows ``xs`` and all rows of ``y`` (already prepared)."""
    if metric == "cosine":
        d = torch.mm(xs, y.T).neg_().add_(1.0).clamp_(min=0.0)
    else:
        assert y_sqnorm is not None
        # |x|^2 + |y|^2 - 2 x.y, with one fused matrix product and in-place updates only.
        d, x_sqnorm = squared_norm_parts(xs, y, y_sqnorm)
        d.add_(x_sqnorm.unsqueeze(1)).clamp_(min=0.0)
    if self_offset is not None:
        rows = torch.arange(xs.shape[0], device=d.device)
        cols = rows + self_offset
        ok = cols < d.shape[1]
        d[rows[ok], cols[ok]] = 0.0
    if metric == "euclidean":
        d.sqrt_()
    return d


def iter_pairwise_distance(
    x: ArrayLike,
    y: ArrayLike | None = None,
    metric: Metric = "euclidean",
    *,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, block)`` with ``block = dist(x[start:stop], y)`` as a tensor.

    Only one block is alive at a time (``chunk_size`` rows, by default about 32 MiB of
    distances), which is what lets the evaluators scale to MSMT17 and SOP. ``y=None`` means
    ``x`` against itself, with an exactly zero diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.eye(3, dtype=np.float32)
    >>> [(s, e, tuple(b.shape)) for s, e, b in iter_pairwise_distance(x, chunk_size=2)]
    [(0, 2, (2, 3)), (2, 3, (1, 3))]
    """
    xt, yt = prepare_features(x, y, metric, device)
    is_self = yt is None
    yt = xt if yt is None else yt
    y_sqnorm = None if metric == "cosine" else yt.pow(2).sum(1)
    rows = chunk_size if chunk_size is not None else auto_chunk_rows(yt.shape[0])
    if rows < 1:
        raise ValueError("chunk_size must be positive")
    for start in range(0, xt.shape[0], rows):
        stop = min(xt.shape[0], start + rows)
        block = distance_block(xt[start:stop], yt, metric, y_sqnorm, start if is_self else None)
        yield start, stop, block


def pairwise_distance(
    x: ArrayLike,
    y: ArrayLike | None = None,
    metric: Metric = "euclidean",
    *,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray | torch.Tensor:
    """Dense distance matrix between the rows of ``x`` and ``y`` (``y=None``: ``x`` with itself).

    The result follows the input: a NumPy array for NumPy ``x``, otherwise a tensor on the
    features' device (or ``device``). float64 inputs give float64 distances, anything else
    float32. Use :func:`iter_pairwise_distance` (or the evaluators directly) when the full matrix
    would not fit.

    Examples
    --------
    >>> import numpy as np
    >>> pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[0., 5.],
           [5., 0.]])
    >>> pairwise_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]), metric="cosine")
    array([[1.]])
    """
    xt, yt = prepare_features(x, y, metric, device)
    n_cols = xt.shape[0] if yt is None else yt.shape[0]
    out = torch.empty(xt.shape[0], n_cols, dtype=xt.dtype, device=xt.device)
    for start, stop, block in iter_pairwise_distance(
        xt, yt, metric, chunk_size=chunk_size, device=device
    ):
        out[start:stop] = block
    if isinstance(x, torch.Tensor):
        return out
    return out.cpu().numpy()


def topk(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, indices)`` of the ``k`` smallest entries of each row of ``d``, nearest first.

    Ties are broken by column (gallery) index, the smaller first: the result is the first ``k``
    of a stable argsort of every row, without sorting whole rows. ``k`` is capped at the number
    of columns. The one top-k of bdbnet (search, ranked lists, query expansion).

    Examples
    --------
    >>> vals, idx = topk(torch.tensor([[0.5, 0.1, 0.5, 0.5]]), 3)
    >>> idx.tolist(), vals.tolist()
    ([[1, 0, 2]], [[0.10000000149011612, 0.5, 0.5]])
    """
    k = min(k, d.shape[1])
    kth = torch.topk(d, k, dim=1, largest=False, sorted=True).values[:, -1:]
    below = d < kth
    at = d == kth
    need = k - below.sum(1, keepdim=True)
    if bool((at.sum(1, keepdim=True) > need).any()):
        # more items tie with the k-th value than fit: keep the ones with the smallest index
        at &= torch.cumsum(at, dim=1, dtype=torch.int32) <= need
    cols = (below | at).nonzero()[:, 1].view(d.shape[0], k)
    vals = d.gather(1, cols)
    vals, order = torch.sort(vals, dim=1, stable=True)
    return vals, cols.gather(1, order)
