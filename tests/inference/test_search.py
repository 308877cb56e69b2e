import numpy as np
import pytest
import torch

from bdbnet.evaluation import pairwise_distance, re_ranking_features
from bdbnet.inference.search import search, topk_search


def brute_force(q, g, k, metric="euclidean"):
    """Full distance matrix + stable sort: ties broken by gallery index."""
    d = torch.as_tensor(pairwise_distance(q, g, metric))
    vals, idx = torch.sort(d, dim=1, stable=True)
    return idx[:, :k], vals[:, :k]


@pytest.mark.parametrize("chunk", [1, 3, 7, 50, 1000])
def test_chunked_search_equals_brute_force_with_many_ties(chunk):
    # small integer features: exact distances and lots of exact ties
    rng = np.random.default_rng(0)
    q = torch.from_numpy(rng.integers(-2, 3, size=(13, 4)).astype(np.float32))
    g = torch.from_numpy(rng.integers(-2, 3, size=(50, 4)).astype(np.float32))
    g[10:20] = g[5]  # a run of duplicates straddling chunk borders
    for k in (1, 5, 12, 50):
        res = topk_search(q, g, k, gallery_chunk=chunk)
        idx, vals = brute_force(q, g, k)
        assert torch.equal(res.indices, idx), (chunk, k)
        assert torch.equal(res.distances, vals), (chunk, k)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_chunked_search_equals_brute_force_on_random_features(metric):
    g_ = torch.Generator().manual_seed(1)
    q, g = torch.randn(20, 32, generator=g_), torch.randn(500, 32, generator=g_)
    res = topk_search(q, g, 10, metric, gallery_chunk=64)
    idx, vals = brute_force(q, g, 10, metric)
    assert torch.equal(res.indices, idx)
    torch.testing.assert_close(res.distances, vals)


def test_duplicates_of_the_k_th_item_keep_the_smallest_indices():
    q = torch.zeros(1, 2)
    g = torch.tensor([[3.0, 0], [1, 0], [2, 0], [2, 0], [2, 0], [1, 0], [2, 0]])
    res = topk_search(q, g, 4, gallery_chunk=2)
    assert res.indices.tolist() == [[1, 5, 2, 3]]
    assert res.distances.tolist() == [[1.0, 1.0, 2.0, 2.0]]


def test_k_larger_than_gallery_float16_storage_and_numpy_inputs():
    g_ = torch.Generator().manual_seed(2)
    q, g = torch.randn(3, 8, generator=g_), torch.randn(6, 8, generator=g_)
    res = topk_search(q.numpy(), g.half().numpy(), 100, gallery_chunk=4)
    idx, _ = brute_force(q, g.half().float(), 6)
    assert res.indices.shape == (3, 6)
    assert torch.equal(res.indices, idx)
    assert res.distances.dtype == torch.float32


def test_search_backends_and_errors():
    g_ = torch.Generator().manual_seed(3)
    q, g = torch.randn(4, 16, generator=g_), torch.randn(40, 16, generator=g_)
    with pytest.raises(ValueError, match="dims differ"):
        search(q, g[:, :8])
    with pytest.raises(ValueError, match="backend"):
        search(q, g, backend="annoy")
    pytest.importorskip("faiss")
    for metric in ("euclidean", "cosine"):
        exact = search(q, g, 5, metric)
        approx = search(q, g, 5, metric, backend="faiss")
        assert torch.equal(approx.indices, exact.indices)
        torch.testing.assert_close(approx.distances, exact.distances, rtol=1e-4, atol=1e-4)


def test_rerank_ranks_by_the_re_ranked_distance():
    g_ = torch.Generator().manual_seed(4)
    q, g = torch.randn(5, 16, generator=g_), torch.randn(60, 16, generator=g_)
    res = search(q, g, 7, rerank=True)
    final = torch.as_tensor(re_ranking_features(q, g))
    vals, idx = torch.sort(final, dim=1, stable=True)
    assert torch.equal(res.indices, idx[:, :7])
    torch.testing.assert_close(res.distances, vals[:, :7].float())
