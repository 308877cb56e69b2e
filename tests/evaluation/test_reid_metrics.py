"""evaluate_rank / evaluate_features: hand-worked cases, a textbook reference, chunking, CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.evaluation import (
    RankResults,
    evaluate_features,
    evaluate_rank,
    pairwise_distance,
)

# ----------------------------------------------------------------------------------------------
# A straightforward per-query reference: stable argsort, filter, walk the list.
# ----------------------------------------------------------------------------------------------


def reference_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank):
    dist = np.asarray(dist, dtype=np.float64)
    cmcs, aps = [], {"full": [], "trapezoid": [], "truncated": []}
    inps = []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        junk = (g_pids[order] == -1) | ((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
        match = g_pids[order][~junk] == q_pids[i]
        if not match.any():
            continue
        hit = np.cumsum(match)
        cmc = np.ones(max_rank)
        cmc[: min(max_rank, len(hit))] = hit[:max_rank] > 0
        cmcs.append(cmc)
        n = match.sum()
        full = trap = trunc = 0.0
        old_prec, j = 1.0, 0
        for pos, m in enumerate(match, start=1):  # MATLAB-style walk for the trapezoid
            prec = hit[pos - 1] / pos
            if m:
                full += prec
                trap += (old_prec + prec) / 2
                if pos <= max_rank:
                    trunc += prec
                j += 1
            old_prec = prec
        aps["full"].append(full / n)
        aps["trapezoid"].append(trap / n)
        aps["truncated"].append(trunc / n)
        inps.append(n / (np.nonzero(match)[0][-1] + 1))
    return (
        np.mean(cmcs, axis=0),
        {k: float(np.mean(v)) for k, v in aps.items()},
        float(np.mean(inps)),
        len(inps),
    )


def random_problem(seed, nq=40, ng=300, ids=12, cams=4, ties=True):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, ids, nq)
    q_pids[:2] = 99  # queries without any match
    g_pids = rng.integers(-1, ids, ng)  # includes junk (-1) and distractors (0)
    q_cams, g_cams = rng.integers(0, cams, nq), rng.integers(0, cams, ng)
    dist = rng.random((nq, ng)).astype(np.float32)
    if ties:
        dist = np.round(dist * 8) / 8  # many exact ties
    dist[g_pids[None, :] == q_pids[:, None]] *= 0.6  # some signal
    return dist, q_pids, g_pids, q_cams, g_cams


# ----------------------------------------------------------------------------------------------
# Hand-worked examples
# ----------------------------------------------------------------------------------------------

# One query (pid 7, camera 0). Gallery, closest first after sorting by distance:
#   idx 1 (pid 3, d .1)  negative
#   idx 2 (pid 7, cam 0, d .2)  same pid and camera -> removed
#   idx 0 (pid 7, cam 1, d .3)  positive, rank 2
#   idx 3 (pid 7, cam 2, d .4)  positive, rank 3
HAND = dict(
    distmat=np.array([[0.3, 0.1, 0.2, 0.4]]),
    q_pids=[7],
    g_pids=[7, 3, 7, 7],
    q_camids=[0],
    g_camids=[1, 1, 0, 2],
)


def test_hand_example_all_ap_modes():
    r = evaluate_rank(**HAND, max_rank=4)
    assert r.num_valid_queries == 1
    np.testing.assert_array_equal(r.cmc, [0, 1, 1, 1])
    # full: (1/2 + 2/3) / 2
    assert r.mAP == pytest.approx(7 / 12)
    # trapezoid: [(1/2 + 0/1)/2 + (2/3 + 1/2)/2] / 2
    assert r.map_by_mode["trapezoid"] == pytest.approx((0.25 + 7 / 12) / 2)
    # truncated at max_rank=4 keeps both positives -> equals full
    assert r.map_by_mode["truncated"] == pytest.approx(7 / 12)
    # mINP: 2 positives, the last at rank 3
    assert r.mINP == pytest.approx(2 / 3)
    assert r.first_match_rank.tolist() == [2]


def test_truncated_ap_only_counts_the_first_max_rank_positions():
    r = evaluate_rank(**HAND, max_rank=2, ap_mode="truncated")
    assert r.mAP == pytest.approx((1 / 2) / 2)  # rank 3 falls outside; still divided by 2
    assert r.map_by_mode["full"] == pytest.approx(7 / 12)  # full AP is never cut
    np.testing.assert_array_equal(r.cmc, [0, 1])


def test_ap_modes_agree_when_positives_lead():
    dist = np.array([[0.1, 0.2, 0.5, 0.9, 0.3]])
    r = evaluate_rank(dist, [1], [1, 1, 2, 2, 1], [0], [1, 2, 1, 1, 3], max_rank=3)
    for mode in ("full", "trapezoid", "truncated"):
        assert r.map_by_mode[mode] == pytest.approx(1.0)
    assert r.mINP == 1.0


def test_trapezoid_first_position():
    # A single positive at rank 1: old precision is 1, so the trapezoid also gives 1.
    r = evaluate_rank(np.array([[0.0, 1.0]]), [1], [1, 2], [0], [1, 1], ap_mode="trapezoid")
    assert r.mAP == 1.0
    # A single positive at rank 2: (1/2 + 0/1) / 2
    r = evaluate_rank(np.array([[1.0, 0.0]]), [1], [1, 2], [0], [1, 1], ap_mode="trapezoid")
    assert r.mAP == pytest.approx(0.25)
    assert r.map_by_mode["full"] == pytest.approx(0.5)


def test_ties_are_broken_by_gallery_index():
    # All distances equal: the order is the gallery order.
    dist = np.full((1, 4), 0.5)
    r = evaluate_rank(dist, [1], [2, 1, 0, 1], [0], [1, 1, 1, 1], max_rank=4)
    assert r.first_match_rank.tolist() == [2]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    # The same positive before the tied negative ranks first.
    r = evaluate_rank(dist, [1], [1, 2, 0, 1], [0], [1, 1, 1, 1], max_rank=4)
    assert r.first_match_rank.tolist() == [1]
    assert r.mAP == pytest.approx((1 + 2 / 4) / 2)


def test_ties_with_removed_items():
    # A removed (same pid, same camera) item tied with a positive does not count either way.
    dist = np.array([[0.5, 0.5, 0.5, 0.1]])
    r = evaluate_rank(dist, [1], [1, 1, 2, 2], [0], [0, 1, 0, 0], max_rank=4)
    # order: idx3 (neg), idx0 (removed), idx1 (pos), idx2 (neg) -> positive at rank 2
    assert r.first_match_rank.tolist() == [2]
    assert r.mAP == pytest.approx(0.5)


def test_same_camera_removal_only_for_same_pid():
    # The closest item is another person seen by the query's own camera: it stays (negative).
    dist = np.array([[0.1, 0.2, 0.3]])
    r = evaluate_rank(dist, [5], [6, 5, 5], [2], [2, 2, 3], max_rank=3)
    # idx1 (same pid, same cam) removed -> order idx0 (neg), idx2 (pos)
    assert r.first_match_rank.tolist() == [2]
    np.testing.assert_array_equal(r.cmc, [0, 1, 1])


def test_distractors_count_and_junk_is_ignored():
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    pids = [-1, 0, 4, 4]  # junk, distractor, positives
    r = evaluate_rank(dist, [4], pids, [0], [1, 1, 1, 2], max_rank=4)
    # junk removed; the distractor precedes both positives -> ranks 2 and 3
    assert r.first_match_rank.tolist() == [2]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r.mINP == pytest.approx(2 / 3)


def test_queries_without_a_match_are_skipped():
    dist = np.array([[0.1, 0.2], [0.2, 0.1], [0.3, 0.4]])
    # q0: positive first; q1: pid 9 absent from the gallery; q2: its only match is filtered.
    r = evaluate_rank(dist, [1, 9, 2], [1, 2], [0, 0, 1], [1, 1], max_rank=2)
    assert r.num_valid_queries == 1
    assert r.num_queries == 3
    np.testing.assert_array_equal(r.cmc, [1, 1])
    assert r.mAP == 1.0
    assert np.isnan(r.ap[1]) and np.isnan(r.ap[2])
    assert r.first_match_rank.tolist() == [1, 0, 0]


def test_no_valid_query_warns_and_returns_zeros():
    with pytest.warns(RuntimeWarning, match="no query"):
        r = evaluate_rank(np.ones((1, 2)), [1], [2, 3], [0], [0, 0], max_rank=2)
    assert r.num_valid_queries == 0 and r.mAP == 0.0
    np.testing.assert_array_equal(r.cmc, [0, 0])


def test_max_rank_beyond_gallery_saturates():
    r = evaluate_rank(np.array([[0.2, 0.1]]), [1], [1, 2], [0], [1, 1], max_rank=5)
    np.testing.assert_array_equal(r.cmc, [0, 1, 1, 1, 1])


def test_multiple_queries_cmc_average():
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    r = evaluate_rank(dist, [1, 1], [1, 2, 3], [0, 0], [1, 1, 1], max_rank=3)
    np.testing.assert_allclose(r.cmc, [0.5, 0.5, 1.0])
    assert r.mAP == pytest.approx((1 + 1 / 3) / 2)
    assert r.mINP == pytest.approx((1 + 1 / 3) / 2)


# ----------------------------------------------------------------------------------------------
# Against the reference, chunking, dtypes, devices
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_rank", [1, 10, 400])
def test_matches_reference_with_ties(seed, max_rank):
    dist, qp, gp, qc, gc = random_problem(seed)
    cmc, aps, minp, nvalid = reference_rank(dist, qp, gp, qc, gc, max_rank)
    r = evaluate_rank(dist, qp, gp, qc, gc, max_rank=max_rank)
    assert r.num_valid_queries == nvalid
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    for mode, value in aps.items():
        assert r.map_by_mode[mode] == pytest.approx(value, abs=1e-12)
    assert r.mINP == pytest.approx(minp, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_dtypes_agree(dtype):
    dist, qp, gp, qc, gc = random_problem(3)
    dist = (dist * 8).astype(dtype)  # exact in every dtype: ties stay ties
    ref = evaluate_rank(dist.astype(np.float64), qp, gp, qc, gc)
    r = evaluate_rank(dist, qp, gp, qc, gc)
    np.testing.assert_array_equal(r.cmc, ref.cmc)
    assert r.map_by_mode == ref.map_by_mode
    assert r.mINP == ref.mINP


def test_float64_distinct_values_that_collide_in_float32():
    # 1 + 1e-12 and 1 are equal in float32 but not in float64: float64 must rank exactly.
    dist = np.array([[1.0 + 1e-12, 1.0]])
    r = evaluate_rank(dist, [1], [1, 2], [0], [1, 1], max_rank=2)
    assert r.first_match_rank.tolist() == [2]


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_equals_unchunked(chunk):
    dist, qp, gp, qc, gc = random_problem(4, nq=50)
    a = evaluate_rank(dist, qp, gp, qc, gc)
    b = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=chunk)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.map_by_mode == b.map_by_mode and a.mINP == b.mINP
    np.testing.assert_array_equal(a.ap, b.ap)


def test_torch_inputs():
    dist, qp, gp, qc, gc = random_problem(5)
    a = evaluate_rank(dist, qp, gp, qc, gc)
    b = evaluate_rank(*(torch.from_numpy(np.asarray(x)) for x in (dist, qp, gp, qc, gc)))
    assert a.map_by_mode == b.map_by_mode
    np.testing.assert_array_equal(a.cmc, b.cmc)


def features_problem(seed=0, nq=30, ng=200, dim=16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(10, dim))
    qp, gp = rng.integers(0, 10, nq), rng.integers(-1, 10, ng)
    qf = centers[qp] + 0.8 * rng.normal(size=(nq, dim))
    gf = centers[np.clip(gp, 0, None)] + 0.8 * rng.normal(size=(ng, dim))
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    return qf.astype(np.float32), gf.astype(np.float32), qp, gp, qc, gc


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("chunk", [None, 3])
def test_evaluate_features_equals_evaluate_rank(metric, chunk):
    qf, gf, qp, gp, qc, gc = features_problem()
    dist = pairwise_distance(qf, gf, metric=metric)
    a = evaluate_rank(dist, qp, gp, qc, gc)
    b = evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, chunk_size=chunk)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.map_by_mode == b.map_by_mode and a.mINP == b.mINP


def test_evaluate_features_accepts_tensors():
    qf, gf, qp, gp, qc, gc = features_problem(1)
    a = evaluate_features(qf, gf, qp, gp, qc, gc)
    b = evaluate_features(*(torch.as_tensor(x) for x in (qf, gf, qp, gp, qc, gc)))
    assert a.map_by_mode == b.map_by_mode


# ----------------------------------------------------------------------------------------------
# CUHK03 single-gallery-shot protocol
# ----------------------------------------------------------------------------------------------


def test_cuhk03_one_image_per_identity_equals_multi_shot():
    dist, qp, gp, qc, gc = random_problem(6, ng=11, ids=12)
    gp = np.arange(11)  # every identity once (0 is a distractor identity)
    qp = np.random.default_rng(0).integers(0, 11, 40)
    gc = np.full(11, 9)  # no camera conflicts
    r = evaluate_rank(dist, qp, gp, qc, gc, max_rank=5, protocol="cuhk03")
    np.testing.assert_allclose(r.cmc, r.cmc_multi_shot)
    assert r.protocol == "cuhk03"


def test_cuhk03_sampling_statistics_and_seed():
    # Positive images at d=.1 and d=.9, the other identity's images at .5 and .6: the sampled
    # positive ranks first half of the time, second otherwise.
    dist = np.array([[0.1, 0.9, 0.5, 0.6]])
    args = ([1], [1, 1, 2, 2], [0], [1, 2, 1, 1])
    r = evaluate_rank(dist, *args, max_rank=2, protocol="cuhk03", num_repeats=400)
    assert r.cmc[0] == pytest.approx(0.5, abs=0.08)
    assert r.cmc[1] == 1.0
    again = evaluate_rank(dist, *args, max_rank=2, protocol="cuhk03", num_repeats=400)
    np.testing.assert_array_equal(r.cmc, again.cmc)
    # mAP and the multi-shot CMC do not depend on the protocol
    m = evaluate_rank(dist, *args, max_rank=2)
    assert r.mAP == m.mAP
    np.testing.assert_array_equal(r.cmc_multi_shot, m.cmc)


def test_cuhk03_through_evaluate_features_matches_evaluate_rank():
    qf, gf, qp, gp, qc, gc = features_problem(2)
    a = evaluate_rank(pairwise_distance(qf, gf), qp, gp, qc, gc, protocol="cuhk03")
    b = evaluate_features(qf, gf, qp, gp, qc, gc, protocol="cuhk03", chunk_size=4)
    np.testing.assert_allclose(a.cmc, b.cmc)


# ----------------------------------------------------------------------------------------------
# Results object and argument checks
# ----------------------------------------------------------------------------------------------


def test_results_helpers():
    r = evaluate_rank(**HAND, max_rank=4)
    assert isinstance(r, RankResults)
    assert r.max_rank == 4 and r.rank(2) == 1.0
    assert r.as_dict(ranks=(1, 2, 99)) == {
        "mAP": pytest.approx(7 / 12),
        "mINP": pytest.approx(2 / 3),
        "rank1": 0.0,
        "rank2": 1.0,
    }
    assert "mAP 58.33" in str(r) and "RankResults(" in repr(r)
    with pytest.raises(ValueError):
        r.rank(0)


@pytest.mark.parametrize(
    "kwargs",
    [{"ap_mode": "interpolated"}, {"protocol": "viper"}, {"max_rank": 0}],
)
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        evaluate_rank(**HAND, **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_rank(np.ones((1, 3)), [1], [1, 2], [0], [0, 0, 0])
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(np.ones(3), [1], [1, 2, 3], [0], [0, 0, 0])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(np.array([[np.nan, 1.0]]), [1], [1, 2], [0], [1, 1])


@pytest.mark.cuda
def test_cuda_matches_cpu():
    dist, qp, gp, qc, gc = random_problem(7)
    a = evaluate_rank(dist, qp, gp, qc, gc, protocol="cuhk03")
    args = [torch.as_tensor(np.asarray(x)).cuda() for x in (dist, qp, gp, qc, gc)]
    b = evaluate_rank(*args, protocol="cuhk03")
    np.testing.assert_allclose(a.cmc, b.cmc)
    for mode in a.map_by_mode:
        assert a.map_by_mode[mode] == pytest.approx(b.map_by_mode[mode], abs=1e-12)
    qf, gf, qp, gp, qc, gc = features_problem(3)
    c = evaluate_features(qf, gf, qp, gp, qc, gc)
    d = evaluate_features(qf, gf, qp, gp, qc, gc, device="cuda")
    assert c.mAP == pytest.approx(d.mAP, abs=1e-6)


def test_device_code_path_on_cpu(monkeypatch):
    """The CUDA branch of the block reader (torch compare + nonzero), exercised on CPU."""
    from bdbnet.evaluation import reid as rank_module

    dist, qp, gp, qc, gc = random_problem(8)
    expected = evaluate_rank(dist, qp, gp, qc, gc, protocol="cuhk03")
    original_init = rank_module._Block.__init__

    def torch_only(self, d, scratch):
        original_init(self, d, scratch)
        self.np = None

    monkeypatch.setattr(rank_module._Block, "__init__", torch_only)
    got = evaluate_rank(dist, qp, gp, qc, gc, protocol="cuhk03")
    np.testing.assert_array_equal(got.cmc, expected.cmc)
    assert got.map_by_mode == expected.map_by_mode and got.mINP == expected.mINP
    got64 = evaluate_rank(dist.astype(np.float64), qp, gp, qc, gc)
    assert got64.map_by_mode == evaluate_rank(dist, qp, gp, qc, gc).map_by_mode


def test_non_contiguous_distmat():
    dist, qp, gp, qc, gc = random_problem(9)
    t = np.ascontiguousarray(dist.T)
    a = evaluate_rank(dist, qp, gp, qc, gc)
    b = evaluate_rank(t.T, qp, gp, qc, gc, chunk_size=5)  # a strided view, read in place
    assert a.map_by_mode == b.map_by_mode
    np.testing.assert_array_equal(a.cmc, b.cmc)


# ----------------------------------------------------------------------------------------------
# Unfinished Euclidean blocks (SquaredNormBlock): the finished blocks' metrics, bit for bit
# ----------------------------------------------------------------------------------------------


def finished_blocks(qf, gf, metric, rows):
    from bdbnet.evaluation.distance import iter_pairwise_distance

    return iter_pairwise_distance(qf, gf, metric, chunk_size=rows)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
@pytest.mark.parametrize("protocol", ["market1501", "cuhk03"])
@pytest.mark.parametrize("integer", [False, True], ids=["real", "integer (ties, zeros)"])
def test_unfinished_blocks_give_the_finished_blocks_metrics(monkeypatch, metric, protocol, integer):
    """Ranking on ``|y|^2 - 2 x.y`` with thresholds carried back through the row norm, the clamp
    and the root equals ranking the finished distances, ties and exact zeros included."""
    from bdbnet.evaluation import reid

    qf, gf, qp, gp, qc, gc = features_problem(3, nq=40, ng=300, dim=24)
    if integer:  # duplicates and exact ties: integer features, a few copies of the queries
        qf, gf = np.round(qf * 2), np.round(gf * 2)
        gf[:10] = qf[:10]
    args = (qf, gf, qp, gp, qc, gc)
    kwargs = dict(metric=metric, protocol=protocol, chunk_size=7, max_rank=20)
    got = evaluate_features(*args, **kwargs)
    monkeypatch.setattr(reid, "feature_blocks", finished_blocks)
    want = evaluate_features(*args, **kwargs)
    np.testing.assert_array_equal(got.cmc, want.cmc)
    np.testing.assert_array_equal(got.first_match_rank, want.first_match_rank)
    assert got.map_by_mode == want.map_by_mode and got.mINP == want.mINP


def test_the_raw_bound_is_the_largest_raw_value_within_the_threshold():
    from bdbnet.evaluation.positive_ranks import SquaredNormBlock

    rng = np.random.default_rng(4)
    norms = (rng.random(500) * 10.0 ** rng.integers(-3, 4, 500)).astype(np.float32)
    thr = np.abs(rng.normal(size=500) * norms).astype(np.float32)
    thr[:5] = [0.0, np.inf, -np.inf, 1e-30, 0.0]
    for root in (True, False):
        raw = torch.zeros(500, 1)
        block = SquaredNormBlock(raw, torch.from_numpy(norms), root, {})
        bound = block._raw_bounds(thr)

        def finish(r, n, root=root):
            s = np.maximum(r + n, np.float32(0.0))
            return np.sqrt(s) if root else s

        has = np.isfinite(bound)
        assert np.all(finish(bound[has], norms[has]) <= thr[has])
        above = np.nextafter(bound[has], np.float32(np.inf))
        assert np.all(finish(above, norms[has]) > thr[has])
        assert bound[1] == np.inf and bound[2] == -np.inf  # no positive: nothing ranks


def test_large_blocks_scanned_in_threads_give_the_same_metrics(monkeypatch):
    from bdbnet.evaluation import positive_ranks

    dist, qp, gp, qc, gc = random_problem(9, ng=300, ids=12)
    want = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=13)
    monkeypatch.setattr(positive_ranks, "_THREADED_ELEMENTS", 0)  # every block in row ranges
    monkeypatch.setattr(positive_ranks.os, "cpu_count", lambda: 4)
    got = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=13)
    np.testing.assert_array_equal(got.cmc, want.cmc)
    assert got.map_by_mode == want.map_by_mode and got.mINP == want.mINP


def test_a_forked_child_scans_in_threads_of_its_own(monkeypatch):
    """The row-range threads live in the process that started them: a child forked after an
    evaluation (a multiprocessing pool, say) starts its own instead of waiting forever."""
    import multiprocessing

    from bdbnet.evaluation import positive_ranks

    monkeypatch.setattr(positive_ranks, "_THREADED_ELEMENTS", 0)
    monkeypatch.setattr(positive_ranks.os, "cpu_count", lambda: 4)
    dist, qp, gp, qc, gc = random_problem(10, ng=300, ids=12)
    want = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=13).mAP  # starts the parent's threads
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_map, (dist, qp, gp, qc, gc)).get(timeout=60)
    assert got == want


def _child_map(dist, qp, gp, qc, gc):
    return evaluate_rank(dist, qp, gp, qc, gc, chunk_size=13).mAP
