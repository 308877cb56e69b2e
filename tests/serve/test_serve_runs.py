"""Saved evaluations: `evaluate --save-run` keeps the rankings as scored, the browser lists them."""

from __future__ import annotations

import numpy as np
import pytest

from bdbnet.cli import main
from bdbnet.data import build_dataset
from bdbnet.evaluation.ranked_lists import scored_rankings, scored_topk, worst_queries
from bdbnet.serve.runs import RUN_FILE, RunError, load_run, save_run


def evaluate(ckpt, root, out, *extra: str) -> int:
    return main(
        [
            "evaluate",
            "--checkpoint",
            str(ckpt),
            "--dataset",
            "synthetic",
            "--root",
            str(root),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--save-run",
            str(out),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def runs(tiny_checkpoint, tiny_synthetic, tmp_path_factory):
    """A plain and a re-ranked run of the tiny checkpoint, plus the evaluation's features."""
    from bdbnet.inference.dataset_eval import evaluate_model
    from bdbnet.models.loading import load_trained_model

    folder = tmp_path_factory.mktemp("runs")
    assert evaluate(tiny_checkpoint, tiny_synthetic, folder / "plain") == 0
    assert evaluate(tiny_checkpoint, tiny_synthetic, folder / "rerank", "--rerank") == 0
    model, cfg = load_trained_model(tiny_checkpoint, "cpu")
    cfg.data.workers = 0
    splits = build_dataset("synthetic", tiny_synthetic)
    report = evaluate_model(model, splits, cfg, model.global_reduction[0].weight.device, False)
    return folder, splits, report


def test_a_run_keeps_paths_labels_ap_and_the_ranking_as_scored(runs):
    folder, splits, report = runs
    run = load_run(folder / "plain")
    assert run.num_queries == len(splits.query)
    assert len(run.gallery_paths) == len(splits.gallery)
    assert run.query_pids.tolist() == [r.pid for r in splits.query]
    assert run.gallery_camids.tolist() == [r.camid for r in splits.gallery]
    result = report.rank
    np.testing.assert_allclose(run.ap, result.ap, rtol=1e-6)
    assert run.first_match_rank.tolist() == result.first_match_rank.tolist()
    meta = run.metadata
    assert meta["dataset"] == "synthetic" and meta["rerank"] is False and meta["topk"] == 20
    assert meta["metrics"]["mAP"] == pytest.approx(report.metrics["mAP"], rel=1e-6)
    assert len(meta["model"]["sha256"]) == 64
    picks = list(range(run.num_queries))
    expected = scored_rankings(
        report.query_features,
        report.gallery_features,
        splits.query,
        splits.gallery,
        picks,
        20,
    )
    for q in picks:
        assert [g for g, _ in run.ranking(q)] == expected[q]


@pytest.mark.parametrize("name", ["plain", "rerank"])
def test_the_first_correct_match_of_each_ranking_is_the_evaluations(runs, name):
    """The saved ranking is the one the metrics came from, re-ranked under --rerank: its first
    same-identity item sits where the evaluation found the first correct match."""
    run = load_run(runs[0] / name)
    checked = 0
    for q in range(run.num_queries):
        ranked = [g for g, _ in run.ranking(q)]
        dist = [d for _, d in run.ranking(q)]
        assert dist == sorted(dist)
        first = int(run.first_match_rank[q])
        if 0 < first <= len(ranked):
            same = [run.gallery_pids[g] == run.query_pids[q] for g in ranked]
            assert same.index(True) + 1 == first
            checked += 1
    assert checked > 0


def test_rerank_is_saved_as_reranked(runs):
    folder, splits, report = runs
    plain, rerank = load_run(folder / "plain"), load_run(folder / "rerank")
    assert rerank.metadata["rerank"] is True
    assert not np.allclose(plain.topk_distances, rerank.topk_distances, equal_nan=True)
    q = list(range(4))
    idx, dist = scored_topk(
        report.query_features,
        report.gallery_features,
        splits.query,
        splits.gallery,
        q,
        20,
        rerank=True,
    )
    for i in q:
        assert [g for g, _ in rerank.ranking(i)] == idx[i]
        np.testing.assert_allclose([d for _, d in rerank.ranking(i)], dist[i], rtol=1e-5)


def test_queries_are_listed_worst_ap_first(runs):
    run = load_run(runs[0] / "plain")
    order = run.worst_first()
    assert sorted(order) == list(range(run.num_queries))
    valid = worst_queries(run.ap, run.first_match_rank, run.num_queries)
    assert order[: len(valid)] == valid
    aps = [run.ap[q] for q in valid]
    assert aps == sorted(aps)


def test_scored_topk_blocks_agree_with_one_block(runs):
    _, splits, report = runs
    args = (
        report.query_features,
        report.gallery_features,
        splits.query,
        splits.gallery,
        list(range(len(splits.query)))[::-1],
        7,
    )
    small, large = scored_topk(*args, rows_per_block=3), scored_topk(*args, rows_per_block=10_000)
    assert small[0] == large[0]  # the same rankings; distances up to float rounding
    for a, b in zip(small[1], large[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_the_write_is_atomic(runs, tmp_path, monkeypatch):
    _, splits, report = runs
    target = save_run(report, splits, tmp_path)
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(Exception, match="No space left"):
        save_run(report, splits, tmp_path)
    assert target.read_bytes() == before  # the old run is intact
    assert [p.name for p in tmp_path.iterdir()] == [RUN_FILE]  # and no temporary file is left


def test_bad_runs_are_named(runs, tmp_path):
    with pytest.raises(RunError, match="no saved run at"):
        load_run(tmp_path)
    (tmp_path / RUN_FILE).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(RunError, match="not a readable saved run"):
        load_run(tmp_path)
    np.savez(tmp_path / RUN_FILE, metadata=np.frombuffer(b'{"format": "x"}', dtype=np.uint8))
    with pytest.raises(RunError, match="not a bdbnet evaluation run"):
        load_run(tmp_path / RUN_FILE)
    good = dict(np.load(runs[0] / "plain" / RUN_FILE))
    good["topk_indices"] = good["topk_indices"] + 10_000
    np.savez(tmp_path / RUN_FILE, **good)
    with pytest.raises(RunError, match="outside the gallery"):
        load_run(tmp_path)
    good = dict(np.load(runs[0] / "plain" / RUN_FILE))
    good["ap"] = good["ap"][:-1]
    np.savez(tmp_path / RUN_FILE, **good)
    with pytest.raises(RunError, match="inconsistent saved run"):
        load_run(tmp_path)


def test_save_run_refuses_a_retrieval_dataset_before_the_work(tiny_checkpoint, tmp_path, capsys):
    from bdbnet.data.records import DatasetSplits
    from bdbnet.serve.runs import check_run_output

    splits = DatasetSplits("cub200", str(tmp_path), [], [], [], task="retrieval")
    with pytest.raises(RunError, match="cub200 is a retrieval dataset"):
        check_run_output(tmp_path / "run", splits)
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic",
                 "--root", str(tmp_path), "--save-run", str(tmp_path / "f")]) == 2  # fmt: skip
    capsys.readouterr()


def test_the_service_browses_a_run(runs, tiny_checkpoint):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from serve_helpers import upload

    from bdbnet.inference import FeatureExtractor
    from bdbnet.serve.app import create_app

    folder, splits, _ = runs
    run = load_run(folder / "plain")
    app = create_app(FeatureExtractor(tiny_checkpoint, device="cpu"), run=run)
    with TestClient(app) as c:
        assert c.get("/v1/health").json()["mode"] == "run"
        summary = c.get("/v1/run").json()
        assert summary["num_queries"] == run.num_queries and summary["topk"] == 20
        assert summary["cameras"] == sorted({r.camid for r in splits.query})
        page = c.get("/v1/run/queries?limit=5").json()
        assert page["total"] == run.num_queries and len(page["queries"]) == 5
        assert [q["index"] for q in page["queries"]] == run.worst_first()[:5]
        first = page["queries"][0]
        assert [r["index"] for r in first["results"]] == [g for g, _ in run.ranking(first["index"])]
        assert all(r["match"] == (r["pid"] == first["pid"]) for r in first["results"])
        rest = c.get("/v1/run/queries?offset=5&limit=200").json()["queries"]
        assert [q["index"] for q in rest] == run.worst_first()[5:]
        pid, cam = splits.query[0].pid, splits.query[0].camid
        only = c.get(f"/v1/run/queries?pid={pid}&camid={cam}&limit=200").json()
        assert only["total"] == sum(r.pid == pid and r.camid == cam for r in splits.query)
        assert {(q["pid"], q["camid"]) for q in only["queries"]} == {(pid, cam)}
        assert c.get("/v1/run/queries?pid=99999").json() == {"total": 0, "offset": 0, "queries": []}
        r = c.get("/v1/run/queries/0/image?size=64")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert c.get("/v1/gallery/0/image").status_code == 200
        for path, status, message in (
            ("/v1/run/queries?limit=0", 400, "limit 1..200"),
            ("/v1/run/queries?offset=-1", 400, "offset must be >= 0"),
            ("/v1/run/queries?camid=x", 400, "camid: Input should be a valid integer"),
            (f"/v1/run/queries/{run.num_queries}/image", 404, "no query image"),
            (f"/v1/gallery/{len(run.gallery_paths)}/image", 404, "no gallery image"),
        ):
            r = c.get(path)
            assert r.status_code == status and message in r.json()["error"], r.text
        r = c.post("/v1/search", files=[upload(splits.query[0].path)])
        assert r.status_code == 404 and "holds no gallery index" in r.json()["error"]
        r = c.post("/v1/embed", files=[upload(splits.query[0].path)])
        assert r.status_code == 200 and r.json()["dim"] == 1536
