"""``torchrun -m bdbnet extract``: the ranks share the images, rank 0 writes one index or
gallery with the features one process computes, in image order; a gallery already holding
some of the images gets the rest only (a killed run continues without duplicates or gaps)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import assert_rows_close
from torchrun_helpers import torchrun

from bdbnet.cli import main
from bdbnet.inference import GalleryIndex

pytestmark = pytest.mark.slow  # torchrun launches of 2 processes
# fp32 in every process (amp=auto may pick bf16 in the workers), 2 images a batch: 4 shards
MODEL_OPTIONS = ["--quiet", "--amp", "none", "--batch-size", "2", "--checkpoint"]


@pytest.fixture(scope="module")
def reference(tiny_checkpoint, person_images, tmp_path_factory):
    """One process, one thread: the index the ranks must reproduce."""
    out = tmp_path_factory.mktemp("one") / "one.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["extract", *MODEL_OPTIONS, str(tiny_checkpoint), *person_images,
                     "--output", str(out)]) == 0  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return GalleryIndex.load(out)


def test_two_ranks_write_the_index_one_process_writes(
    reference, tiny_checkpoint, person_images, tmp_path
):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in person_images:
        shutil.copy(path, folder)
    (folder / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "two.safetensors"
    done = torchrun(["extract", *MODEL_OPTIONS, str(tiny_checkpoint), str(folder),
                     "--output", str(out)])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    index = GalleryIndex.load(out)
    assert [p.rsplit("/", 1)[1] for p in index.paths] == [
        p.rsplit("/", 1)[1] for p in reference.paths
    ]
    assert_rows_close(index.features, reference.features)
    assert done.stdout.count("wrote 8 features") == 1  # rank 0 alone reports
    assert done.stderr.count("skipped unreadable image") == 1 and "broken.jpg" in done.stderr


def test_two_ranks_complete_a_gallery_without_duplicates(
    reference, tiny_checkpoint, person_images, tmp_path
):
    pytest.importorskip("pymilvus", reason="the Milvus gallery needs bdbnet[milvus]")
    pytest.importorskip("milvus_lite", reason="the embedded Milvus needs milvus-lite")
    from bdbnet.inference.milvus_gallery import MilvusGallery

    uri = str(tmp_path / "gallery.db")
    model = [*MODEL_OPTIONS, str(tiny_checkpoint)]
    assert main(["extract", *model, *person_images[:3], "--output", uri]) == 0  # "killed" here
    done = torchrun(["extract", *model, *person_images, "--output", uri])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "added 5 features (1536-d)" in done.stdout and "3 already there" in done.stdout
    gallery = MilvusGallery.open(uri)
    rows = gallery.client.query(
        gallery.collection, filter="id >= 0", output_fields=["path", "feature", "pid", "camid"]
    )
    assert sorted(r["path"] for r in rows) == sorted(person_images)  # no gap, no duplicate
    by_path = {r["path"]: r for r in rows}
    order = [reference.paths.index(p) for p in person_images]
    feats = torch.tensor(np.array([by_path[p]["feature"] for p in person_images]))
    assert_rows_close(feats, reference.features[order])
    assert [by_path[p]["pid"] for p in person_images] == reference.pids[order].tolist()


def test_two_ranks_fill_a_projected_gallery(reference, tiny_checkpoint, person_images, tmp_path):
    """``--project-dim`` under torchrun: both ranks extract the PCA's sample, rank 0 fits it,
    stores it in the engine and adds the projected rows, in image order."""
    pytest.importorskip("pymilvus", reason="the Milvus gallery needs bdbnet[milvus]")
    pytest.importorskip("milvus_lite", reason="the embedded Milvus needs milvus-lite")
    from bdbnet.inference.milvus_gallery import MilvusGallery

    uri = str(tmp_path / "small.db")
    done = torchrun(["extract", *MODEL_OPTIONS, str(tiny_checkpoint), *person_images,
                     "--output", uri, "--project-dim", "4"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("added 8 features (4-d, PCA of 1536-d keeping") == 1
    with MilvusGallery.open(uri) as gallery:
        rows = gallery.client.query(
            gallery.collection, filter="id >= 0", output_fields=["path", "feature"]
        )
        by_path = {r["path"]: r["feature"] for r in rows}
        order = [reference.paths.index(p) for p in person_images]
        stored = torch.tensor(np.array([by_path[p] for p in person_images]))
        assert_rows_close(stored, gallery.projection(reference.features[order]))
