"""The ranked lists as the evaluation scored them (bdbnet.evaluation.ranked_lists): order,
exclusions, ties, and which queries are the worst. The pictures drawn from them are tested in
tests/visualization/test_ranked_list.py; the saved runs in tests/serve/test_serve_runs.py."""

import numpy as np
import torch

from bdbnet.evaluation.ranked_lists import rank_gallery, worst_queries

# ---------------------------------------------------------------- rank_gallery

QUERY = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
GALLERY = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.5], [9.0, 0.0], [20.0, 0.0]])
# distances of query 0: 1, 3, 2.5, 9, 20          -> order 0, 2, 1, 3, 4
# distances of query 1: 9, 7, 10.31, 1, 10        -> order 3, 1, 0, 4, 2


def test_rank_gallery_orders_by_euclidean_distance():
    ranked = rank_gallery(QUERY, GALLERY, topk=3)
    assert ranked.tolist() == [[0, 2, 1], [3, 1, 0]]
    assert rank_gallery(QUERY, GALLERY, topk=5).tolist() == [[0, 2, 1, 3, 4], [3, 1, 0, 4, 2]]


def test_rank_gallery_topk_larger_than_gallery_is_clamped():
    ranked = rank_gallery(QUERY, GALLERY, topk=50)
    assert ranked.shape == (2, 5)
    assert ranked.tolist() == [[0, 2, 1, 3, 4], [3, 1, 0, 4, 2]]


def test_rank_gallery_exclude_mask_skips_items():
    exclude = torch.zeros(2, 5, dtype=torch.bool)
    exclude[0, 0] = True  # query 0 loses its nearest item
    exclude[1, 3] = True  # query 1 loses its nearest item
    exclude[1, 1] = True  # ... and its second
    ranked = rank_gallery(QUERY, GALLERY, topk=2, exclude=exclude)
    assert ranked.tolist() == [[2, 1], [0, 4]]


def test_rank_gallery_accepts_integer_features():
    q = torch.tensor([[0, 0]])
    g = torch.tensor([[5, 5], [1, 1], [-2, 0]])
    assert rank_gallery(q, g, topk=3).tolist() == [[1, 2, 0]]


def test_rank_gallery_never_returns_excluded_items():
    exclude = torch.zeros(2, 5, dtype=torch.bool)
    exclude[0, :3] = True  # query 0 has only gallery items 3 and 4 left
    ranked = rank_gallery(QUERY, GALLERY, topk=10, exclude=exclude)
    assert ranked.shape == (2, 2)
    assert set(ranked[0].tolist()) == {3, 4}


# ---------------------------------------------------------------- worst queries


def test_worst_queries_order_and_skipped_queries():
    ap = np.array([0.9, np.nan, 0.2, 0.2, 0.5])
    first = np.array([1, 0, 3, 7, 2])
    assert worst_queries(ap, first, 10) == [3, 2, 4, 0]  # ties in AP: later first match first
    assert worst_queries(ap, first, 2) == [3, 2]
