"""The PCA projection of compact galleries: the principal directions of hand-made data, a
chunked fit equal to a one-shot fit, and an index that projects its queries and keeps its PCA
through a save and a load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.inference import GalleryIndex, IndexMismatchError, ModelIdentity
from bdbnet.inference import projection as projection_module
from bdbnet.inference.index_files import IndexOutputError
from bdbnet.inference.projection import Projection

MODEL = ModelIdentity("c" * 64, 8, weights_sha256="d" * 64, checkpoint="m.pt")


def anisotropic(n: int = 400, seed: int = 0) -> torch.Tensor:
    """Points whose variance per axis is 16, 9, 4, 1 on axes 5, 2, 7, 0 and ~0 elsewhere."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 8))
    for axis, sd in ((5, 4.0), (2, 3.0), (7, 2.0), (0, 1.0)):
        x[:, axis] = sd * rng.standard_normal(n)
    x += 1e-4 * rng.standard_normal((n, 8)) + np.arange(8)  # and a mean to remove
    return torch.from_numpy(x.astype(np.float32))


def test_the_leading_directions_are_the_axes_of_largest_variance():
    x = anisotropic()
    p = Projection.fit(x, 3)
    assert (p.in_dim, p.out_dim) == (8, 3)
    assert p.components.abs().argmax(0).tolist() == [5, 2, 7]
    # the right singular vectors of the centred data (numpy's SVD), up to their signs
    centred = x.double().numpy() - x.double().numpy().mean(0)
    reference = np.linalg.svd(centred, full_matrices=False)[2][:3].T
    cos = (p.components.double().numpy() * reference).sum(0)
    assert np.allclose(np.abs(cos), 1, atol=1e-5)
    assert torch.allclose(p.mean, x.mean(0), rtol=1e-5, atol=1e-5)
    singular = np.linalg.svd(centred, compute_uv=False) ** 2  # the variance along each
    assert p.kept == pytest.approx(singular[:3].sum() / singular.sum(), rel=1e-6)
    # within the kept subspace distances are unchanged: the 4-d data projected to 4 dims
    q = Projection.fit(x, 4)(x)
    d_full, d_proj = torch.cdist(x, x), torch.cdist(q, q)
    assert float((d_full - d_proj).abs().max()) <= 1e-3 * float(d_full.max())


def test_a_chunked_fit_equals_a_one_shot_fit(monkeypatch):
    x = anisotropic(n=301)
    whole = Projection.fit(x, 4)
    monkeypatch.setattr(projection_module, "FIT_ROWS", 64)
    chunked = Projection.fit(x, 4)
    assert torch.allclose(whole.components, chunked.components, atol=1e-5)
    assert torch.allclose(whole.mean, chunked.mean, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="the projected dimension must be 1..8; got 9"):
        Projection.fit(x, 9)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_a_compact_index_projects_its_queries_and_survives_a_round_trip(tmp_path, suffix):
    x = anisotropic()
    index = GalleryIndex(x, [f"/g/{i}.jpg" for i in range(len(x))], MODEL)
    small = index.compact(torch.float16, 4)
    assert small.features.dtype == torch.float16 and (small.dim, small.model_dim) == (4, 8)
    queries = x[:6] + 0.01
    expected = torch.cdist(small.projection(queries), small.features.float()).argsort(1)[:, :5]
    assert torch.equal(small.search(queries, 5, MODEL).indices, expected)
    back = GalleryIndex.load(small.save(tmp_path / f"g{suffix}"))
    assert torch.equal(back.features, small.features)
    assert torch.equal(back.projection.components, small.projection.components)
    assert back.projection.kept == pytest.approx(small.projection.kept)
    hits = back.search_hits(queries, 5, MODEL)
    assert [[h.index for h in row] for row in hits] == expected.tolist()
    with pytest.raises(IndexMismatchError, match=r"holds 8-d features \(projected to 4\)"):
        back.search(torch.zeros(1, 4), 5)


def test_a_projected_index_is_not_written_as_npy(tmp_path):
    x = anisotropic()
    small = GalleryIndex(x, [f"{i}.jpg" for i in range(len(x))], MODEL).compact(dim=2)
    with pytest.raises(IndexOutputError, match="written as .safetensors or .npz"):
        small.save(tmp_path / "g.npy")
    assert not list(tmp_path.iterdir())
