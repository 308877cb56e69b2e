"""The inference sub-commands of the CLI: extract, search, visualize, export, evaluate pictures."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import assert_rows_close, feature_scale
from PIL import Image

from bdbnet.cli import main
from bdbnet.inference import GalleryIndex

MODEL = ["--device", "cpu", "--quiet", "--batch-size", "4"]


@pytest.fixture
def gallery_dir(person_images, tmp_path):
    folder = tmp_path / "gallery"
    (folder / "cam2").mkdir(parents=True)
    for i, p in enumerate(person_images):
        shutil.copy(p, folder / ("cam2" if i % 2 else ".") / p.split("/")[-1])
    (folder / "0009_c1s1_000000_00.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    return folder


def test_extract_skips_unreadable_images_and_keeps_the_mapping(
    tiny_checkpoint, gallery_dir, tmp_path, capsys
):
    out = tmp_path / "feats.npy"
    assert (
        main(
            [
                "extract",
                "--checkpoint",
                str(tiny_checkpoint),
                str(gallery_dir),
                "--output",
                str(out),
                *MODEL,
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "skipped unreadable image" in captured.err and "0009_c1s1" in captured.err
    assert "wrote 8 features (1536-d)" in captured.out
    feats = np.load(out)
    paths = (tmp_path / "feats.paths.txt").read_text().splitlines()
    meta = json.loads((tmp_path / "feats.json").read_text())
    assert feats.shape == (8, 1536) and len(paths) == 8
    assert meta["skipped"] == [str(gallery_dir / "0009_c1s1_000000_00.jpg")]
    assert meta["model"]["feature_dim"] == 1536
    # row i is the features of paths[i]
    from bdbnet.inference import FeatureExtractor

    extract = FeatureExtractor(tiny_checkpoint, device="cpu")
    assert_rows_close(torch.from_numpy(feats[5:6]), extract(paths[5]))

    # ... and the saved features are a gallery index: search it
    picture = tmp_path / "ranked.png"
    query = paths[2]
    assert (
        main(
            [
                "search",
                "--checkpoint",
                str(tiny_checkpoint),
                "--gallery",
                str(out),
                "--query",
                query,
                "--topk",
                "3",
                "--picture",
                str(picture),
                *MODEL,
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"query {query}"
    first = lines[2].split()
    assert first[0] == "1" and first[2] == query  # an image's nearest neighbour is itself
    second = lines[3].split()
    scale = feature_scale(feats)  # distances are judged relative to the features' norm
    assert float(first[1]) < 5e-3 * scale < 0.1 * scale < float(second[1])
    assert lines[2].endswith("same id") and len(lines) == 6
    with Image.open(picture) as img:
        # query + 3 results; cells of 128 x 64 (the 32 x 16 input's aspect) + borders, at
        # least 330 px wide for the legend; title 22 + image 136 + rank, distance and the
        # wrapped name 3 x 12 + 4 + legend 22
        assert img.size == (330, 22 + 136 + 40 + 22)
    assert picture.stat().st_size > 1000


def test_search_a_folder_saves_an_index_and_refuses_another_model(
    tiny_checkpoint, gallery_dir, person_images, tmp_path, capsys
):
    saved = tmp_path / "idx.safetensors"
    assert (
        main(
            [
                "search",
                "--checkpoint",
                str(tiny_checkpoint),
                "--gallery",
                str(gallery_dir),
                "--query",
                person_images[0],
                "--topk",
                "2",
                "--picture",
                "",
                "--save-index",
                str(saved),
                *MODEL,
            ]
        )
        == 0
    )
    assert len(GalleryIndex.load(saved)) == 8
    capsys.readouterr()
    # flip-averaged features are another embedding: refused, as another checkpoint would be
    args = ["--checkpoint", str(tiny_checkpoint), "--gallery", str(saved), "--flip"]
    assert main(["search", *args, "--query", person_images[0], *MODEL]) == 2
    assert "another model (flip averaging" in capsys.readouterr().err


def test_visualize_writes_activation_maps(tiny_checkpoint, person_images, tmp_path, capsys):
    assert (
        main(
            [
                "visualize",
                "--checkpoint",
                str(tiny_checkpoint),
                *person_images[:2],
                "--output",
                str(tmp_path / "viz"),
                *MODEL[:2],
                "--batch-size",
                "1",
            ]
        )
        == 0
    )
    out = tmp_path / "viz" / "activation_maps.png"
    assert out.stat().st_size > 1000
    with Image.open(out) as img:
        assert img.size[1] > 2 * 192


def test_export_argument_errors(tiny_checkpoint, tmp_path, capsys):
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(tiny_checkpoint),
                "--format",
                "onnx",
                "--output",
                str(tmp_path / "m.onnx"),
                "--height",
                "64",
            ]
        )
        == 2
    )
    assert "--width" in capsys.readouterr().err


def test_evaluate_writes_cmc_and_worst_queries(tiny_checkpoint, tiny_synthetic, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--root",
                str(tiny_synthetic),
                "--device",
                "cpu",
                "--workers",
                "0",
                "--visualize",
                "3",
                "--plots",
                str(plots),
            ]
        )
        == 0
    )
    for name in ("cmc.png", "worst_queries.png"):
        assert (plots / name).stat().st_size > 1000
    with Image.open(plots / "worst_queries.png") as img:
        assert img.size[1] == 22 + 3 * (136 + 40) + 22  # title, three rows (the worst), legend


def test_evaluate_names_the_ap_definition_and_writes_all_three(
    tiny_checkpoint, tiny_synthetic, tmp_path, capsys
):
    base = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic"]
    base += ["--root", str(tiny_synthetic), "--device", "cpu", "--workers", "0"]
    runs = {}
    for name, extra in {"plain": [], "aqe": ["--aqe", "--aqe-k", "3"]}.items():
        out = tmp_path / f"{name}.json"
        assert main([*base, "--ap-mode", "truncated", *extra, "--json", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "| mAP (truncated) |" in printed
        assert "AP: truncated = ranked list cut at eval.max_rank (50)" in printed
        assert "other definitions: full " in printed
        runs[name] = json.loads(out.read_text())
    payload = runs["plain"]
    assert payload["ap_mode"] == "truncated" and payload["aqe"] is False
    assert payload["mAP"] == payload["mAP_truncated"] <= payload["mAP_full"]
    assert 0.0 <= payload["mAP_trapezoid"] <= 1.0
    assert payload["ap_definition"].startswith("truncated = ")
    assert runs["aqe"]["aqe"] is True
    # AQE changes the features, so (for this model) the ranking: the numbers differ
    assert runs["aqe"]["mAP_full"] != payload["mAP_full"]


def test_evaluate_refuses_a_bad_aqe_k(tiny_checkpoint, tiny_synthetic, capsys):
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic"]
    args += ["--root", str(tiny_synthetic), "--device", "cpu", "--aqe", "--aqe-k", "0"]
    assert main(args) == 2
    assert "eval.aqe_k must be >= 1" in capsys.readouterr().err
