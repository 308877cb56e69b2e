"""The one top-k (bdbnet.evaluation.topk): nearest first, ties by gallery index."""

import importlib
import inspect

import numpy as np
import torch

from bdbnet.evaluation import iter_re_ranking_features, re_ranking, re_ranking_features, topk
from bdbnet.evaluation.ranked_lists import rank_gallery
from bdbnet.evaluation.rerank import iter_re_ranking

search_module = importlib.import_module("bdbnet.inference.search")


def test_ties_are_broken_by_index_like_a_stable_argsort():
    rng = np.random.default_rng(0)
    d = torch.from_numpy(rng.integers(0, 4, size=(7, 40)).astype(np.float32))
    for k in (1, 3, 10, 40, 50):
        vals, idx = topk(d, k)
        order = np.argsort(d.numpy(), axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(idx.numpy(), order)
        np.testing.assert_array_equal(vals.numpy(), np.take_along_axis(d.numpy(), order, 1))


def test_search_and_ranked_lists_use_it():
    rng = np.random.default_rng(1)
    q = torch.from_numpy(rng.normal(size=(5, 8)).astype(np.float32))
    g = torch.cat([q, q])  # exact ties: each query's twin at index i and i + 5
    ranked = rank_gallery(q, g, topk=2)
    assert ranked[:, 0].tolist() == list(range(5)) and ranked[:, 1].tolist() == list(range(5, 10))
    assert search_module.topk is topk
    res = search_module.topk_search(q, g, k=2, gallery_chunk=3)
    # chunks compute the twins' distances apart (float rounding may order them either way)
    assert [sorted(r) for r in res.indices.tolist()] == [[i, i + 5] for i in range(5)]


def test_dense_re_ranking_shares_the_iterator_signatures():
    assert inspect.signature(re_ranking).parameters == inspect.signature(iter_re_ranking).parameters
    assert (
        inspect.signature(re_ranking_features).parameters
        == inspect.signature(iter_re_ranking_features).parameters
    )
    assert re_ranking.__name__ == "re_ranking" and "Examples" in re_ranking.__doc__
