"""bdbnet.inference.embed: a reduced-precision batch that is not finite is computed again in
float32 (with one warning); features that are not finite in float32 stop the extraction with
an error naming the image."""

from __future__ import annotations

import logging

import pytest
import torch

import bdbnet.inference.embed as embed
from bdbnet.data.records import ImageRecord
from bdbnet.errors import CheckpointError
from bdbnet.inference.embed import NonFiniteFeaturesError, embed_all, embed_batch, extract_features


class FaultyUnderAutocast(torch.nn.Module):
    """A linear map whose bf16 output is NaN, as a faulty kernel's would be."""

    feature_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3 * 2 * 2, 4)
        self.calls = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.flatten(1))
        self.calls.append(torch.is_autocast_enabled("cpu"))
        return out * float("nan") if torch.is_autocast_enabled("cpu") else out


class NaNRows(torch.nn.Module):
    """Features of row ``bad`` are NaN whatever the precision (broken weights)."""

    feature_dim = 4

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1)[:, :4].clone()
        out[x.flatten(1)[:, 0] == self.bad] = float("nan")
        return out


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(embed, "_warned", False)


def test_a_non_finite_bf16_batch_is_computed_again_in_float32(fresh_warning, caplog):
    model = FaultyUnderAutocast().eval()
    images = torch.randn(5, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    reference = embed_batch(model, images, amp="none")
    with caplog.at_level(logging.WARNING, logger="bdbnet.inference.embed"):
        first = embed_batch(model, images, amp="bf16")
        second = embed_batch(model, images, flip=True, amp="bf16")
    assert torch.equal(first, reference)
    assert torch.isfinite(second).all()
    assert model.calls[:3] == [False, True, False]  # reference, bf16, float32 again
    assert model.calls[3] and not model.calls[-1]  # the flipped batch: the same
    assert [r.getMessage() for r in caplog.records] == [
        "bf16 autocast gave non-finite features for a batch of 5 images; it was computed again "
        "in float32 (amp none computes every batch so)"
    ]  # once per process


def test_float32_batches_are_not_checked_twice():
    model = FaultyUnderAutocast().eval()
    embed_batch(model, torch.zeros(2, 3, 2, 2), amp="none")
    assert model.calls == [False]


def test_features_not_finite_in_float32_name_the_image():
    images = torch.arange(7, dtype=torch.float32)[:, None, None, None].expand(7, 3, 2, 2)
    batches = [images[:3], images[3:]]
    with pytest.raises(NonFiniteFeaturesError) as caught:
        embed_all(NaNRows(bad=4), batches, torch.device("cpu"))
    assert caught.value.index == 4 and isinstance(caught.value, CheckpointError)
    assert str(caught.value).startswith(
        "the model gave non-finite features (NaN or inf) for image 5 of the extraction: its "
        "weights hold NaN/inf values or overflow"
    )


def test_extract_features_names_the_file(tmp_path):
    from PIL import Image

    records = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (2, 2), (i, i, i)).save(path)
        records.append(ImageRecord(str(path), 1, 0))
    to_tensor = lambda image: torch.full((3, 2, 2), float(image.getpixel((0, 0))[0]))  # noqa: E731
    with pytest.raises(NonFiniteFeaturesError, match=f"for {tmp_path / '2.png'}: its weights"):
        extract_features(NaNRows(bad=2), records, to_tensor, torch.device("cpu"), batch_size=3)
