"""``extract --output gallery.db`` and ``search --gallery gallery.db`` on the real embedded Milvus,
against the file index: the same ranked lists (``--json``), ``--where`` filters, a resumed
extraction that adds only what is missing, and one-line errors."""

from __future__ import annotations

import json
import os

import pytest

from bdbnet.cli import main

pytest.importorskip("pymilvus", reason="the Milvus gallery needs bdbnet[milvus]")
pytest.importorskip("milvus_lite", reason="the embedded Milvus needs milvus-lite")

MODEL = ["--device", "cpu", "--quiet", "--batch-size", "4", "--amp", "none"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out = capsys.readouterr()
    return code, out.out, out.err


def search_json(capsys, checkpoint, gallery, queries, target, *extra: str) -> dict:
    code, _, err = run(
        capsys, "search", "--checkpoint", str(checkpoint), "--gallery", str(gallery),
        "--query", *queries, "--topk", "5", "--output", "", "--json", str(target), *MODEL, *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(target.read_text())


def test_an_engine_gallery_answers_like_the_file_index(
    tiny_checkpoint, person_images, tmp_path, capsys
):
    db, npz = tmp_path / "gallery.db", tmp_path / "gallery.npz"
    half = person_images[:5]
    args = ["extract", "--checkpoint", str(tiny_checkpoint), *MODEL]
    code, out, err = run(capsys, *args, *half, "--output", str(db))
    assert code == 0, err
    assert out.startswith(f"added 5 features (1536-d) to {db} (collection bdbnet_gallery: 5")
    code, out, err = run(capsys, *args, *person_images, "--output", str(db))  # resumed
    assert code == 0, err
    assert "added 3 features" in out and "8 images); 5 already there" in out
    assert run(capsys, *args, *person_images, "--output", str(npz))[0] == 0

    queries = person_images[:2]
    engine = search_json(capsys, tiny_checkpoint, db, queries, tmp_path / "e.json")
    file = search_json(capsys, tiny_checkpoint, npz, queries, tmp_path / "f.json")
    assert engine["queries"] == file["queries"] == queries
    paths = lambda r: [[h["path"] for h in row] for row in r["results"]]  # noqa: E731
    assert paths(engine) == paths(file)
    assert engine["results"][0][0]["path"] == queries[0]  # itself, nearest
    for e_row, f_row in zip(engine["results"], file["results"]):
        scale = max(h["distance"] for h in f_row)  # squared: near 0 the root amplifies rounding
        for e, f in zip(e_row, f_row):
            assert set(e) == {"rank", "index", "path", "distance", "pid", "camid"}
            assert (e["rank"], e["pid"], e["camid"]) == (f["rank"], f["pid"], f["camid"])
            assert abs(e["distance"] ** 2 - f["distance"] ** 2) <= 1e-5 * scale**2

    where = ["--where", "camid == 1"]
    engine = search_json(capsys, tiny_checkpoint, db, queries, tmp_path / "e.json", *where)
    file = search_json(capsys, tiny_checkpoint, npz, queries, tmp_path / "f.json", *where)
    assert paths(engine) == paths(file) and engine["where"] == "camid == 1"
    assert {h["camid"] for row in engine["results"] for h in row} == {1}


def test_engine_gallery_errors_are_one_line_and_write_nothing(
    tiny_checkpoint, person_images, tmp_path, capsys
):
    db = tmp_path / "gallery.db"
    base = ["--checkpoint", str(tiny_checkpoint), *MODEL]
    assert run(capsys, "extract", *base, *person_images[:3], "--output", str(db))[0] == 0
    query = ["--query", person_images[0], "--output", ""]
    cases = {
        "bad filter": (
            ["search", *base, "--gallery", str(db), *query, "--where", "camid = 1"],
            "--where 'camid = 1' does not parse",
        ),
        "another model": (
            ["search", *base, "--flip", "--gallery", str(db), *query],
            "was built with another model (flip averaging",
        ),
        "adding another model": (
            ["extract", *base, "--flip", *person_images[3:], "--output", str(db)],
            "was built with another model (flip averaging",
        ),
        "no such gallery": (
            ["search", *base, "--gallery", str(tmp_path / "none.db"), *query],
            f"no gallery at {tmp_path / 'none.db'}: build one with bdbnet extract",
        ),
        "unreachable": (
            ["search", *base, "--gallery", "http://127.0.0.1:9", *query],
            "cannot reach the Milvus gallery at http://127.0.0.1:9",
        ),
        "rerank": (
            ["search", *base, "--gallery", str(db), *query, "--rerank"],
            "a Milvus gallery is searched by the engine: --rerank",
        ),
    }
    for name, (args, message) in cases.items():
        code, _, err = run(capsys, *args)
        assert code == 2, (name, err)
        assert message in err and "Traceback" not in err, (name, err)
        assert len(err.strip().splitlines()) == 1, (name, err)
    assert not (tmp_path / "none.db").exists()
    code, out, _ = run(capsys, "search", *base, "--gallery", str(db), *query)
    assert code == 0 and "3 images" in out  # nothing was added by the refused extraction
    assert sorted(os.listdir(tmp_path)) == ["gallery.db"]


def test_a_projected_engine_gallery(tiny_checkpoint, person_images, tmp_path, capsys, monkeypatch):
    """``--project-dim`` into Milvus: the PCA is fitted on the first chunk (3 images here),
    stored in the engine, the rest projected with it; queries find themselves; a rerun adds
    nothing and another K is refused."""
    from bdbnet.inference import gallery_fill
    from bdbnet.inference.milvus_gallery import MilvusGallery

    monkeypatch.setattr(gallery_fill, "CHUNK_IMAGES", 3)
    db = tmp_path / "small.db"
    args = ["extract", "--checkpoint", str(tiny_checkpoint), *MODEL, *person_images]
    code, out, err = run(capsys, *args, "--output", str(db), "--project-dim", "2")
    assert code == 0, err
    assert out.startswith("added 8 features (2-d, PCA of 1536-d keeping ")
    with MilvusGallery.open(str(db)) as gallery:
        assert (len(gallery), gallery.dim, gallery.model_dim) == (8, 2, 1536)
        assert gallery.indexed_paths() == set(person_images)
    hits = search_json(capsys, tiny_checkpoint, db, person_images[:3], tmp_path / "h.json")
    assert [row[0]["path"] for row in hits["results"]] == person_images[:3]
    code, out, err = run(capsys, *args, "--output", str(db), "--project-dim", "2")
    assert code == 0 and "added 0 features" in out and "8 already there" in out, err
    code, out, err = run(capsys, *args, "--output", str(db), "--project-dim", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "holds 2-d features (a PCA to 2): add to it without --project-dim 1" in err
