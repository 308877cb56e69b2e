"""α-query expansion: hand-computed cases and a dense reference (fast-reid's AQE semantics)."""

import numpy as np
import pytest
import torch

from bdbnet.evaluation import alpha_query_expansion


def dense_aqe(q: np.ndarray, g: np.ndarray | None, k: int, alpha: float):
    """The definition, with the full similarity matrix: joint set, top k incl. the item itself,
    weights cos**alpha (negative ones 0) on the original features, then L2-normalised."""
    x = q if g is None else np.concatenate([q, g])
    x = x.astype(np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, 1.0)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(sim, top, axis=1).clip(min=0.0) ** alpha
    mixed = (w[:, :, None] * x[top]).sum(axis=1)
    out = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return out[: len(q)], (None if g is None else out[len(q) :])


def test_hand_computed_weights():
    # q=(1,0); g0=(0,1); g1=(3,1): cos(q, g1) = 3/sqrt(10), cos(g0, g1) = 1/sqrt(10), cos(q, g0) = 0
    q = np.array([[1.0, 0.0]])
    g = np.array([[0.0, 1.0], [3.0, 1.0]])
    nq, ng = alpha_query_expansion(q, g, k=2, alpha=3.0)
    c = 3 / np.sqrt(10)
    expect_q = np.array([1.0, 0.0]) + c**3 * np.array([3.0, 1.0])  # itself (weight 1) + g1
    expect_g0 = np.array([0.0, 1.0]) + (1 / np.sqrt(10)) ** 3 * np.array([3.0, 1.0])
    expect_g1 = np.array([3.0, 1.0]) + c**3 * np.array([1.0, 0.0])
    for got, want in ((nq[0], expect_q), (ng[0], expect_g0), (ng[1], expect_g1)):
        np.testing.assert_allclose(got.numpy(), want / np.linalg.norm(want), rtol=1e-12)


def test_k1_only_normalises_and_k_is_capped_at_the_set_size():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    nq, ng = alpha_query_expansion(q, g, k=1)
    np.testing.assert_allclose(nq.numpy(), q / np.linalg.norm(q, axis=1, keepdims=True))
    np.testing.assert_allclose(ng.numpy(), g / np.linalg.norm(g, axis=1, keepdims=True))
    big_q, big_g = alpha_query_expansion(q, g, k=50, alpha=0.0)  # k > 5 items: all of them
    mean = np.concatenate([q, g]).sum(0)
    np.testing.assert_allclose(big_q.numpy(), np.tile(mean / np.linalg.norm(mean), (3, 1)))
    np.testing.assert_allclose(big_g.numpy(), np.tile(mean / np.linalg.norm(mean), (2, 1)))


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
@pytest.mark.parametrize(("k", "alpha"), [(5, 3.0), (3, 0.0), (8, 1.5)])
def test_chunked_equals_the_dense_reference(chunk_size, k, alpha):
    rng = np.random.default_rng(k)
    # clustered features (as a re-ID embedding), of unequal norms, so weights and norms matter
    centres = rng.normal(size=(6, 16))
    q = centres[rng.integers(0, 6, 25)] + 0.4 * rng.normal(size=(25, 16))
    g = centres[rng.integers(0, 6, 40)] + 0.4 * rng.normal(size=(40, 16))
    q *= rng.uniform(0.5, 3.0, size=(25, 1))
    want_q, want_g = dense_aqe(q, g, k, alpha)
    got_q, got_g = alpha_query_expansion(q, g, k, alpha, chunk_size=chunk_size)
    np.testing.assert_allclose(got_q.numpy(), want_q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_g.numpy(), want_g, rtol=0, atol=1e-12)
    f_q, f_g = alpha_query_expansion(
        torch.from_numpy(q).float(), torch.from_numpy(g).float(), k, alpha, chunk_size=chunk_size
    )
    assert f_q.dtype == torch.float32
    np.testing.assert_allclose(f_q.numpy(), want_q, atol=1e-5)
    np.testing.assert_allclose(f_g.numpy(), want_g, atol=1e-5)


def test_query_set_alone_is_expanded_against_itself():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 8))
    got, none = alpha_query_expansion(x, None, k=5, alpha=3.0, chunk_size=4)
    assert none is None
    np.testing.assert_allclose(got.numpy(), dense_aqe(x, None, 5, 3.0)[0], atol=1e-12)


def test_rejects_bad_arguments():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="k must be"):
        alpha_query_expansion(x, x, k=0)
    with pytest.raises(ValueError, match="alpha"):
        alpha_query_expansion(x, x, alpha=-1.0)
    with pytest.raises(ValueError, match="dims differ"):
        alpha_query_expansion(x, np.ones((2, 4)))
