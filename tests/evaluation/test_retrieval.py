"""Recall@K and MAP@R: hand-worked cases, duplicates, a brute-force reference, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.evaluation import evaluate_retrieval, map_at_r, pairwise_distance, recall_at_k


def brute_force(q, ql, g=None, gl=None, ks=(1, 2, 4, 8)):
    """Per query: stable argsort of the distances, the query removed by index."""
    loo = g is None
    g, gl = (q, ql) if loo else (g, gl)
    d = pairwise_distance(q, g if not loo else None).astype(np.float64)
    ql, gl = np.asarray(ql), np.asarray(gl)
    hits = {k: 0 for k in ks}
    maps = []
    for i in range(len(ql)):
        order = np.argsort(d[i], kind="stable")
        if loo:
            order = order[order != i]
        rel = gl[order] == ql[i]
        for k in ks:
            hits[k] += bool(rel[:k].any())
        r = int(rel.sum())
        if r:
            top = rel[:r]
            maps.append(float((np.cumsum(top) / np.arange(1, r + 1) * top).sum() / r))
    return {k: v / len(ql) for k, v in hits.items()}, float(np.mean(maps))


def test_hand_recall_leave_one_out():
    x = np.array([[0.0], [0.1], [1.0], [5.0]], dtype=np.float32)
    # nearest same-label item: q0 -> item 3 (rank 3), q1 -> item 2 (rank 2),
    # q2 -> item 1 (rank 1), q3 -> item 0 (rank 3)
    assert recall_at_k(x, [0, 1, 1, 0], ks=(1, 2, 3)) == {1: 0.25, 2: 0.5, 3: 1.0}


def test_hand_map_at_r():
    x = np.array([[0.0], [0.1], [0.3], [1.0]], dtype=np.float32)
    # labels 0,0,1,1 -> R = 1 for all; q2's nearest (item 1) has the other label
    assert map_at_r(x, [0, 0, 1, 1]) == pytest.approx(0.75)
    # R = 2 for label 0 (items 0, 1, 2): q0 ranks 1, 2 -> 1; q1: ranks 1, 2 -> 1;
    # q2: neighbours 1 (d .2, lab 0), 0 (d .3, lab 0) -> 1; q3 (label 1) has R = 0: skipped
    assert map_at_r(x, [0, 0, 0, 1]) == pytest.approx(1.0)
    # q0: neighbours 1 (.1, label 1), 2 (.3, label 0): R = 1 -> precision@1 = 0
    x = np.array([[0.0], [0.1], [0.3], [5.0]], dtype=np.float32)
    assert map_at_r(x, [0, 1, 0, 1]) == pytest.approx((0 + 0 + 0 + 0) / 4)


def test_duplicates_are_excluded_by_index_not_by_distance():
    # Items 0 and 1 are identical images with the same label; item 2 is identical too but
    # labelled differently; item 3 is far away.
    x = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [9.0, 9.0]], dtype=np.float32)
    labels = [5, 5, 6, 6]
    r = recall_at_k(x, labels, ks=(1, 2))
    # q0: list (ties by index) 1 (hit), 2, 3 -> R@1 hit
    # q1: list 0 (hit) -> hit; q2: list 0, 1, 3 (hit at rank 3) -> miss at 1 and 2
    # q3: list 0, 1, 2 (hit at rank 3) -> miss
    assert r == {1: 0.5, 2: 0.5}
    # Excluding by distance (d == 0) would also drop the duplicates and give q0/q1 misses.
    brute, _ = brute_force(x, labels, ks=(1, 2))
    assert brute == r


def test_query_vs_gallery():
    q = np.array([[0.0], [1.0]], dtype=np.float32)
    g = np.array([[0.0], [0.9], [3.0]], dtype=np.float32)  # identical item 0 is NOT excluded
    assert recall_at_k(q, [1, 2], g, [1, 1, 2], ks=(1, 2)) == {1: 0.5, 2: 0.5}
    res = evaluate_retrieval(q, [1, 2], g, [1, 1, 2], ks=(3,))
    assert res["recall"] == {3: 1.0}
    # q0: R = 2, both at ranks 1, 2 -> 1;  q1: R = 1, rank 3 -> 0
    assert res["map_at_r"] == pytest.approx(0.5)


def test_query_without_positive_counts_as_miss():
    x = np.array([[0.0], [0.1], [0.2]], dtype=np.float32)
    assert recall_at_k(x, [1, 1, 2], ks=(1,)) == {1: pytest.approx(2 / 3)}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("loo", [True, False])
def test_matches_brute_force_with_ties(seed, loo):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 3, size=(60, 2)).astype(np.float32)  # heavy ties, duplicates
    ql = rng.integers(0, 5, 60)
    g, gl = (
        (None, None)
        if loo
        else (rng.integers(0, 3, size=(80, 2)).astype(np.float32), rng.integers(0, 5, 80))
    )
    ks = (1, 2, 4, 8, 100)
    exp_recall, exp_map = brute_force(q, ql, g, gl, ks)
    res = evaluate_retrieval(q, ql, g, gl, ks)
    assert res["recall"] == pytest.approx(exp_recall)
    assert res["map_at_r"] == pytest.approx(exp_map)
    assert recall_at_k(q, ql, g, gl, ks) == pytest.approx(exp_recall)


@pytest.mark.parametrize("chunk", [1, 5, 33])
def test_chunked_equals_unchunked(chunk):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(70, 8)).astype(np.float32)
    labels = rng.integers(0, 7, 70)
    a = evaluate_retrieval(x, labels, ks=(1, 4))
    b = evaluate_retrieval(x, labels, ks=(1, 4), chunk_size=chunk)
    assert a == b
    assert recall_at_k(x, labels, ks=(1, 4), chunk_size=chunk) == a["recall"]


def test_tensors_and_cosine():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    labels = rng.integers(0, 4, 40)
    a = recall_at_k(x, labels, metric="cosine")
    b = recall_at_k(torch.from_numpy(x), torch.from_numpy(labels), metric="cosine")
    assert a == b
    assert map_at_r(x, labels, metric="cosine") == map_at_r(
        torch.from_numpy(x), labels, metric="cosine"
    )


def test_errors():
    x = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="both"):
        recall_at_k(x, [0, 0, 1], x)
    with pytest.raises(ValueError, match="ks"):
        recall_at_k(x, [0, 0, 1], ks=(0,))
    with pytest.raises(ValueError, match="query_labels"):
        recall_at_k(x, [0, 1])


@pytest.mark.cuda
def test_cuda_matches_cpu():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    labels = rng.integers(0, 6, 50)
    a = evaluate_retrieval(x, labels)
    b = evaluate_retrieval(torch.from_numpy(x).cuda(), torch.from_numpy(labels).cuda())
    assert a["recall"] == pytest.approx(b["recall"])
    assert a["map_at_r"] == pytest.approx(b["map_at_r"])
