"""``extract --feature-dtype float16 --project-dim K``: a compact file index that ``search``
queries with the model's own features, and one-line refusals before any image is read."""

from __future__ import annotations

import json

import torch

from bdbnet.cli import main
from bdbnet.inference import GalleryIndex

MODEL = ["--device", "cpu", "--quiet", "--batch-size", "4", "--amp", "none"]


def test_a_compact_index_is_written_and_searched(tiny_checkpoint, person_images, tmp_path, capsys):
    out = tmp_path / "small.safetensors"
    base = ["--checkpoint", str(tiny_checkpoint), *MODEL]
    compact = ["--feature-dtype", "float16", "--project-dim", "4"]
    assert main(["extract", *base, *person_images, *compact, "--output", str(out)]) == 0
    said = capsys.readouterr().out
    index = GalleryIndex.load(out)
    assert index.features.dtype == torch.float16 and (index.dim, index.model_dim) == (4, 1536)
    kept = f"{100 * index.projection.kept:.1f}%"
    assert said.startswith(f"wrote 8 features (4-d, PCA of 1536-d keeping {kept} of the var")
    target = tmp_path / "hits.json"
    args = ["search", *base, "--gallery", str(out), "--query", *person_images[:3], "--topk", "3"]
    assert main([*args, "--output", "", "--json", str(target)]) == 0
    results = json.loads(target.read_text())["results"]
    assert [row[0]["path"] for row in results] == person_images[:3]  # each finds itself


def test_compact_options_are_refused_where_they_cannot_apply(
    tiny_checkpoint, person_images, tmp_path, capsys
):
    base = ["extract", "--checkpoint", str(tiny_checkpoint), *MODEL, *person_images]
    cases = [
        (["--project-dim", "8", "--output", str(tmp_path / "g.npz")],
         "--project-dim 8: a PCA of 8 images of 1536-d features has at most 7 dimensions"),
        (["--project-dim", "4", "--output", str(tmp_path / "g.npy")],
         "a .npy index holds the features alone; write a projected index"),
        (["--feature-dtype", "float16", "--output", str(tmp_path / "g.db")],
         "--feature-dtype applies to file indexes (Milvus Lite has no float16 vectors); make a "
         "Milvus gallery smaller with --project-dim K"),
        (["--project-dim", "8", "--output", str(tmp_path / "g.db")],
         "--project-dim 8: a PCA of 8 images of 1536-d features has at most 7 dimensions"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_killed_file_index_extraction_continues(
    tiny_checkpoint, person_images, tmp_path, capsys, monkeypatch
):
    """Chunks of 3 images: the run dies in its third chunk; the next run extracts only what is
    left and writes the same index as one uninterrupted run."""
    from bdbnet.inference import gallery_fill
    from bdbnet.inference.extract_journal import journal_folder
    from bdbnet.inference.extractor import FeatureExtractor

    base = ["extract", "--checkpoint", str(tiny_checkpoint), *MODEL, *person_images]
    whole = tmp_path / "whole.safetensors"
    assert main([*base, "--output", str(whole)]) == 0
    monkeypatch.setattr(gallery_fill, "CHUNK_IMAGES", 3)
    real, calls = FeatureExtractor.extract, []

    def dies_in_the_third_chunk(self, paths, *args, **kwargs):
        calls.append(list(paths))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, paths, *args, **kwargs)

    monkeypatch.setattr(FeatureExtractor, "extract", dies_in_the_third_chunk)
    out = tmp_path / "g.safetensors"
    assert main([*base, "--output", str(out)]) == 130  # Ctrl-C
    assert "an extraction into a file index or a Milvus gallery when run again" in (
        capsys.readouterr().err
    )
    assert not out.exists() and len(list(journal_folder(out).glob("part-*.npz"))) == 2
    calls.clear()
    capsys.readouterr()
    monkeypatch.setattr(FeatureExtractor, "extract", real)
    extracted = []
    monkeypatch.setattr(
        FeatureExtractor,
        "extract",
        lambda self, paths, *a, **k: extracted.append(list(paths)) or real(self, paths, *a, **k),
    )
    assert main([*base, "--output", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"continuing the extraction kept in {journal_folder(out)}: 6 of 8 images" in said
    assert extracted == [person_images[6:]]
    index, reference = GalleryIndex.load(out), GalleryIndex.load(whole)
    assert index.paths == reference.paths
    assert torch.allclose(
        index.features,
        reference.features,
        rtol=1e-5,
        atol=1e-6 * float(reference.features.abs().max()),
    )
    assert not journal_folder(out).exists()
