"""``bdbnet datasets`` and ``bdbnet train`` on fake copies of the benchmarks."""

import json

import pytest
import yaml
from fakes import make_cub, make_folders, make_market, make_sop

from bdbnet.cli import default_preset, main
from bdbnet.data import list_datasets, register_dataset, registry
from bdbnet.data.datasets import ReIDDataset

FAST = [
    "model.pretrained=null",
    "data.workers=0",
    "data.num_identities=2",
    "data.num_instances=2",
    "data.test_batch_size=16",
    "optim.epochs=1",
    "optim.warmup_epochs=0",
    "optim.warmup_step=1",
    "optim.milestones=[1]",
    "train.tensorboard=false",
    "train.progress=false",
    "train.device=cpu",
    "train.eval_every=0",
]


def _eval_records(run):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["kind"] == "eval"]


def test_train_on_fake_cub_uses_the_retrieval_recipe_and_recall_at_k(tmp_path, capsys):
    make_cub(tmp_path / "data" / "CUB_200_2011", {1: 2, 2: 2, 101: 2, 150: 2, 200: 2}, (40, 30))
    run = tmp_path / "run"
    args = ["train", "--dataset", "cub200", "--root", str(tmp_path / "data")]
    args += ["--output", str(run), *FAST]
    args += ["data.height=32", "data.width=32", "data.resize=40", "data.test_resize=32"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("preset: cub200\n")
    lines = out.splitlines()
    assert any(line.startswith("epoch 1/1: loss ") for line in lines)  # progress bars off
    at = next(i for i, line in enumerate(lines) if line.startswith("| model (%)"))
    header, _, last = lines[at : at + 3]
    assert [c.strip() for c in header.split("|")[2:-1]] == [
        "R@1",
        "R@2",
        "R@4",
        "R@8",
        "R@16",
        "R@32",
    ]
    (record,) = _eval_records(run)
    assert last.startswith("| last (epoch 1, last.pt) |")
    assert last.split("|")[2].strip() == f"{100 * record['R@1']:.1f}"
    assert all(0.0 <= record[k] <= 1.0 for k in ("R@1", "R@2", "R@4", "R@8", "R@16", "R@32"))
    assert record["R@8"] == 1.0  # 6 test images: every other image is within the 8 nearest
    assert "mAP" not in record
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["recipe"] == "retrieval"
    assert cfg["data"]["erasing_prob"] == 0.5
    assert (cfg["model"]["drop_height_ratio"], cfg["model"]["drop_width_ratio"]) == (0.5, 0.5)
    assert cfg["eval"]["recall_ks"] == [1, 2, 4, 8, 16, 32]


def test_train_on_fake_market_uses_the_reid_recipe_and_cmc_map(tmp_path, capsys):
    make_market(tmp_path / "Market-1501-v15.09.15")
    run = tmp_path / "run"
    args = ["train", "--dataset", "market1501", "--root", str(tmp_path), "--output", str(run)]
    args += [*FAST, "data.height=32", "data.width=16", "data.cutout_size=8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("preset: market1501\n")
    lines = out.splitlines()
    assert any(line.startswith("epoch 1/1: loss ") for line in lines)  # progress bars off
    at = next(i for i, line in enumerate(lines) if line.startswith("| model (%)"))
    header, _, last = lines[at : at + 3]
    assert [c.strip() for c in header.split("|")[2:-1]] == [
        "mAP (full)",
        "Rank-1",
        "Rank-5",
        "Rank-10",
        "mINP",
    ]
    (record,) = _eval_records(run)
    assert last.split("|")[2].strip() == f"{100 * record['mAP']:.1f}"
    assert record["ap_mode"] == "full" and record["mAP"] == record["mAP_full"]
    assert {"mAP_truncated", "mAP_trapezoid"} <= set(record)  # all three definitions kept
    # both queries have a gallery match in another camera: Rank-10 over 3 gallery images is 1
    assert record["Rank-10"] == 1.0
    assert "R@1" not in record
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["recipe"] == "reid"
    assert (cfg["model"]["drop_height_ratio"], cfg["model"]["drop_width_ratio"]) == (0.3, 1.0)


@pytest.mark.parametrize("name", sorted(set(list_datasets()) - {"synthetic"}))
def test_every_dataset_has_its_own_preset(name):
    assert default_preset(name) == name
    assert default_preset(name.upper()) == name


def test_synthetic_and_user_datasets_fall_back_to_their_task_recipe():
    assert default_preset("synthetic") == "market1501"
    saved = dict(registry._REGISTRY)
    try:

        @register_dataset("my-products")
        class MyProducts(ReIDDataset):
            task = "retrieval"

        @register_dataset("my-cams")
        class MyCams(ReIDDataset):
            pass

        assert default_preset("my-products") == "cub200"
        assert default_preset("my-cams") == "market1501"
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)


def test_datasets_without_root_prints_layout_and_published_statistics(capsys):
    assert main(["datasets", "msmt17"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("msmt17: expected layout under --root\n")
    assert "list_train.txt, list_val.txt, list_query.txt, list_gallery.txt" in out
    assert "| gallery | 82161  | 3060       | 15      |" in out
    assert "bdbnet datasets msmt17 --root DIR" in out


def test_datasets_list_names_every_loader(capsys):
    assert main(["datasets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == list_datasets()
    assert {"market1501", "dukemtmcreid", "cuhk03-np-labeled", "cuhk03-np-detected", "msmt17",
            "cub200", "cars196", "sop", "inshop", "folder"} <= set(names)  # fmt: skip


def test_datasets_reports_a_partial_copy(tmp_path, capsys):
    make_sop(tmp_path / "Stanford_Online_Products")
    assert main(["datasets", "sop", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"sop at {tmp_path / 'Stanford_Online_Products'}" in out
    assert "| train   | 4      | 3          | 1       |" in out
    assert "query = gallery: the test split, leave-one-out (Recall@K)" in out
    assert (
        "warning: train: found 4 images / 3 identities, the published sop has 59551 / 11318 "
        "(a partial copy?)"
    ) in out
    assert "warning: gallery: found 3 images / 2 identities" in out


def test_datasets_missing_folder_is_an_error_naming_it(tmp_path, capsys):
    make_folders(tmp_path, {"bounding_box_train": [], "query": []})
    assert main(["datasets", "dukemtmcreid", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bdbnet datasets: error: dukemtmcreid: ")
    assert "is missing bounding_box_test" in err
    assert "PPPP_cC_fFFFFFFF.jpg" in err


def test_datasets_folder_without_published_statistics(tmp_path, capsys):
    make_folders(tmp_path, {"train/1": ["a.jpg"], "query/1": ["b.jpg"], "gallery/1": ["c.jpg"]})
    assert main(["datasets", "folder", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out and "published" not in out
