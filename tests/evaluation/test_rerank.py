"""k-reciprocal re-ranking against a straightforward dense implementation of the published steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.evaluation import (
    evaluate_features,
    evaluate_rank,
    iter_re_ranking_features,
    pairwise_distance,
    re_ranking,
    re_ranking_features,
)


def dense_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """The published algorithm (the authors' reference code's steps), one item at a time,
    dense, float32."""
    nq = q_g.shape[0]
    joint = np.block([[q_q, q_g], [q_g.T, g_g]])
    d = np.power(joint, 2).astype(np.float32)
    d = np.transpose(d / np.max(d, axis=0))  # column maxima, then transpose
    n = d.shape[0]
    rank = np.argsort(d, axis=1, kind="stable")  # ties by index

    def reciprocal(i, k):
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.nonzero((backward == i).any(axis=1))[0]]

    v = np.zeros_like(d)
    for i in range(n):
        rec = reciprocal(i, k1)
        expanded = list(rec)
        for j in rec:
            cand = reciprocal(j, int(np.around(k1 / 2)))
            if len(np.intersect1d(cand, rec)) > 2 / 3 * len(cand):
                expanded.extend(cand)
        expanded = np.unique(np.asarray(expanded, dtype=np.int64))
        w = np.exp(-d[i, expanded])
        v[i, expanded] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        shared = np.minimum(v[i][None, :], v).sum(axis=1)
        jaccard[i] = 1 - shared / (2 - shared)
    final = jaccard * (1 - lambda_value) + d[:nq] * lambda_value
    return final[:, nq:]


def clustered(seed, nq, ng, dim=8, ids=8, noise=0.6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, dim))
    q = centers[rng.integers(0, ids, nq)] + noise * rng.normal(size=(nq, dim))
    g = centers[rng.integers(0, ids, ng)] + noise * rng.normal(size=(ng, dim))
    return q.astype(np.float32), g.astype(np.float32)


def matrices(q, g, metric="euclidean"):
    return (
        pairwise_distance(q, g, metric=metric),
        pairwise_distance(q, metric=metric),
        pairwise_distance(g, metric=metric),
    )


@pytest.mark.parametrize(
    "seed,nq,ng,k1,k2,lam",
    [
        (0, 12, 90, 20, 6, 0.3),  # the paper's defaults
        (1, 25, 60, 7, 3, 0.5),
        (2, 5, 40, 4, 1, 0.0),  # k2 = 1: no query expansion; lambda 0: Jaccard only
        (3, 3, 10, 20, 6, 1.0),  # k1 + 1 > N: lists truncate; lambda 1: original only
        (4, 40, 40, 10, 12, 0.3),  # k2 > k1 + 1
    ],
)
def test_matches_dense_reference(seed, nq, ng, k1, k2, lam):
    q, g = clustered(seed, nq, ng)
    q_g, q_q, g_g = matrices(q, g)
    expected = dense_re_ranking(q_g, q_q, g_g, k1, k2, lam)
    got = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    assert got.shape == (nq, ng) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # From features: same numbers, no N x N matrix
    feats = re_ranking_features(q, g, k1=k1, k2=k2, lambda_value=lam, chunk_size=7)
    np.testing.assert_allclose(feats, expected, atol=1e-5, rtol=0)


def test_lambda_one_is_the_normalised_squared_distance():
    q, g = clustered(5, 6, 20)
    q_g, q_q, g_g = matrices(q, g)
    got = re_ranking(q_g, q_q, g_g, lambda_value=1.0)
    joint_max = np.maximum(q_q.max(1), q_g.max(1)) ** 2
    np.testing.assert_allclose(got, q_g**2 / joint_max[:, None], rtol=1e-6)


def test_ties_follow_index_order():
    # Integer distances: many exact ties everywhere, including at the k-th neighbour.
    rng = np.random.default_rng(6)
    pts = rng.integers(0, 4, size=(50, 2)).astype(np.float64)
    full = np.abs(pts[:, None, :] - pts[None, :, :]).sum(-1)  # Manhattan, symmetric, ties
    q_g, q_q, g_g = full[:10, 10:], full[:10, :10], full[10:, 10:]
    for k1, k2 in [(5, 3), (20, 6)]:
        expected = dense_re_ranking(q_g, q_q, g_g, k1, k2)
        got = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, chunk_size=4)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("tile", [4, 7, 64])
def test_the_symmetric_pass_over_many_tiles_matches_the_reference(monkeypatch, tile):
    """From features the joint matrix is computed tile by tile, each off-diagonal tile serving
    its rows and, transposed, its columns; the neighbour lists merge across tiles. Integer
    features give exact, tied distances, so the ties at the k-th neighbour (redone from whole
    rows) are exercised too."""
    from bdbnet.evaluation import rerank_sources

    monkeypatch.setattr(rerank_sources, "_TILE", tile)
    rng = np.random.default_rng(7)
    q = rng.integers(0, 3, size=(13, 3)).astype(np.float32)
    g = rng.integers(0, 3, size=(41, 3)).astype(np.float32)
    for k1, k2 in [(5, 3), (20, 6)]:
        expected = dense_re_ranking(*matrices(q, g), k1, k2)
        got = re_ranking_features(q, g, k1=k1, k2=k2, chunk_size=3)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    q, g = clustered(8, 30, 70, dim=16)
    expected = dense_re_ranking(*matrices(q, g))
    np.testing.assert_allclose(re_ranking_features(q, g), expected, atol=1e-5, rtol=0)


def test_asymmetric_inputs_follow_the_reference_transpose():
    q, g = clustered(7, 8, 30)
    q_g, q_q, g_g = matrices(q, g)
    rng = np.random.default_rng(0)
    q_q = q_q * (1 + 0.05 * rng.random(q_q.shape)).astype(np.float32)
    g_g = g_g * (1 + 0.05 * rng.random(g_g.shape)).astype(np.float32)
    expected = dense_re_ranking(q_g, q_q, g_g, 6, 3)
    np.testing.assert_allclose(re_ranking(q_g, q_q, g_g, k1=6, k2=3), expected, atol=1e-5)


def test_chunking_and_types():
    q, g = clustered(8, 20, 70)
    q_g, q_q, g_g = matrices(q, g)
    a = re_ranking(q_g, q_q, g_g)
    b = re_ranking(*(torch.from_numpy(x) for x in (q_g, q_q, g_g)), chunk_size=3)
    assert isinstance(b, torch.Tensor)
    np.testing.assert_allclose(a, b.numpy(), atol=1e-6)
    c = re_ranking(q_g.astype(np.float64), q_q.astype(np.float64), g_g.astype(np.float64))
    np.testing.assert_allclose(a, c, atol=1e-5)
    f = re_ranking_features(torch.from_numpy(q), torch.from_numpy(g))
    assert isinstance(f, torch.Tensor)
    np.testing.assert_allclose(f.numpy(), a, atol=1e-5)
    blocks = list(iter_re_ranking_features(q, g, chunk_size=6))
    assert [(s, e) for s, e, _ in blocks] == [(0, 6), (6, 12), (12, 18), (18, 20)]
    np.testing.assert_allclose(torch.cat([b for _, _, b in blocks]).numpy(), a, atol=1e-5)


def test_cosine_metric():
    q, g = clustered(9, 10, 40)
    expected = dense_re_ranking(*matrices(q, g, "cosine"), 8, 4)
    got = re_ranking_features(q, g, k1=8, k2=4, metric="cosine")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_evaluate_features_rerank_equals_evaluate_rank_on_reranked():
    rng = np.random.default_rng(10)
    q, g = clustered(10, 15, 80)
    qp, gp = rng.integers(0, 8, 15), rng.integers(0, 8, 80)
    qc, gc = rng.integers(0, 3, 15), rng.integers(0, 3, 80)
    final = re_ranking_features(q, g)
    a = evaluate_rank(final, qp, gp, qc, gc)
    b = evaluate_features(q, g, qp, gp, qc, gc, rerank=True, chunk_size=4)
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-9)


def test_bad_arguments():
    q, g = clustered(11, 3, 10)
    q_g, q_q, g_g = matrices(q, g)
    with pytest.raises(ValueError, match="shapes"):
        re_ranking(q_g, g_g, q_q)
    with pytest.raises(ValueError, match="k1"):
        re_ranking(q_g, q_q, g_g, k1=0)
    with pytest.raises(ValueError, match="lambda"):
        re_ranking(q_g, q_q, g_g, lambda_value=2.0)


def test_device_sort_path_on_cpu(monkeypatch):
    """The CUDA branch of the sort helpers (torch.sort), exercised on CPU."""
    from bdbnet.evaluation import rerank as rerank_module
    from bdbnet.evaluation import rerank_neighbours

    q, g = clustered(13, 10, 50)
    expected = re_ranking_features(q, g, k1=6, k2=3)
    device_sort = lambda k: torch.sort(k, dim=-1).values  # noqa: E731
    for module in (rerank_module, rerank_neighbours):  # the neighbour lists and the reductions
        monkeypatch.setattr(module, "sort_rows", device_sort)
    monkeypatch.setattr(
        rerank_module, "_argsort", lambda k, stable=False: torch.sort(k, stable=stable).indices
    )
    np.testing.assert_array_equal(re_ranking_features(q, g, k1=6, k2=3), expected)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    q, g = clustered(12, 20, 100)
    a = re_ranking_features(q, g)
    b = re_ranking_features(torch.from_numpy(q).cuda(), torch.from_numpy(g).cuda())
    assert b.is_cuda
    np.testing.assert_allclose(b.cpu().numpy(), a, atol=1e-5)
    q_g, q_q, g_g = matrices(q, g)
    c = re_ranking(*(torch.from_numpy(x).cuda() for x in (q_g, q_q, g_g)))
    np.testing.assert_allclose(c.cpu().numpy(), a, atol=1e-5)
