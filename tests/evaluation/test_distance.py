"""pairwise_distance / iter_pairwise_distance: values, types, chunking, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.evaluation import as_tensor, iter_pairwise_distance, pairwise_distance


def brute(x, y, metric):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        yn = y / np.linalg.norm(y, axis=1, keepdims=True)
        return 1 - xn @ yn.T
    sq = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return sq if metric == "sqeuclidean" else np.sqrt(sq)


def test_hand_values():
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(pairwise_distance(x), [[0, 5], [5, 0]])
    np.testing.assert_allclose(pairwise_distance(x, metric="sqeuclidean"), [[0, 25], [25, 0]])
    y = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(pairwise_distance(y[:1], y, metric="cosine"), [[0, 1, 2]])


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(13, 5)), rng.normal(size=(21, 5))
    np.testing.assert_allclose(pairwise_distance(x, y, metric), brute(x, y, metric), atol=1e-10)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    got = pairwise_distance(x32, y32, metric)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, brute(x, y, metric), atol=2e-5)


def test_self_distance_has_an_exact_zero_diagonal():
    rng = np.random.default_rng(1)
    x = (100 + rng.normal(size=(40, 8))).astype(np.float32)  # large norms: cancellation
    for chunk in (None, 7):
        d = pairwise_distance(x, chunk_size=chunk)
        assert (np.diag(d) == 0).all()
        assert (d >= 0).all()


def test_types_follow_the_input():
    x = np.ones((2, 3), dtype=np.float32)
    assert isinstance(pairwise_distance(x), np.ndarray)
    t = pairwise_distance(torch.ones(2, 3))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert pairwise_distance(torch.ones(2, 3, dtype=torch.float64)).dtype == torch.float64
    assert pairwise_distance(torch.ones(2, 3, dtype=torch.float16)).dtype == torch.float32
    # mixed precision: float64 wins
    assert pairwise_distance(x, np.ones((1, 3))).dtype == np.float64


def test_chunks_cover_all_rows_and_match_the_dense_matrix():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(10, 4)), rng.normal(size=(6, 4))
    blocks = list(iter_pairwise_distance(x, y, chunk_size=4))
    assert [(s, e) for s, e, _ in blocks] == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_allclose(
        torch.cat([b for _, _, b in blocks]).numpy(), pairwise_distance(x, y), atol=1e-12
    )


def test_as_tensor_shares_numpy_memory():
    a = np.zeros((3, 2), dtype=np.float32)
    t = as_tensor(a)
    t[0, 0] = 5
    assert a[0, 0] == 5
    assert as_tensor([1, 2]).dtype == torch.int64


def test_errors():
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(np.ones((2, 2)), metric="manhattan")
    with pytest.raises(ValueError, match="dims"):
        pairwise_distance(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        pairwise_distance(np.ones(3))
    with pytest.raises(ValueError, match="chunk_size"):
        list(iter_pairwise_distance(np.ones((2, 2)), chunk_size=-1))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 16)).astype(np.float32), rng.normal(size=(50, 16))
    y = y.astype(np.float32)
    for metric in ("euclidean", "cosine"):
        a = pairwise_distance(x, y, metric)
        b = pairwise_distance(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), metric)
        assert b.is_cuda
        np.testing.assert_allclose(b.cpu().numpy(), a, atol=1e-4)
        c = pairwise_distance(x, y, metric, device="cuda")
        assert isinstance(c, np.ndarray)
