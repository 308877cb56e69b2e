import pytest
import torch

from bdbnet.losses import BatchHardTripletLoss, BDBLoss, LabelSmoothingCrossEntropy
from bdbnet.models import BDBTrainOutput


def make_output():
    torch.manual_seed(0)
    feats = {"global": torch.randn(8, 4), "drop": torch.randn(8, 6)}
    logits = {"global": torch.randn(8, 3), "drop": torch.randn(8, 3)}
    return BDBTrainOutput(feats, logits), torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])


def test_sum_over_branches_of_triplet_and_softmax():
    out, labels = make_output()
    tri, ce = BatchHardTripletLoss(), LabelSmoothingCrossEntropy(0.1)
    expected = sum(
        tri(out.features[b], labels) + ce(out.logits[b], labels) for b in ("global", "drop")
    )
    result = BDBLoss()(out, labels)
    assert result.total.item() == pytest.approx(expected.item(), rel=1e-6)
    floats = result.as_floats()
    assert set(floats) == {
        "global/triplet",
        "drop/triplet",
        "global/softmax",
        "drop/softmax",
        "total",
    }
    assert floats["global/triplet"] == pytest.approx(tri(out.features["global"], labels).item())


def test_weights_and_margin():
    out, labels = make_output()
    base = BDBLoss()(out, labels).as_floats()
    weighted = BDBLoss(triplet_weight=2.0, softmax_weight=0.5)(out, labels)
    expected = 2 * (base["global/triplet"] + base["drop/triplet"]) + 0.5 * (
        base["global/softmax"] + base["drop/softmax"]
    )
    assert weighted.total.item() == pytest.approx(expected, rel=1e-6)
    hinge = BDBLoss(triplet_margin=0.3)(out, labels).as_floats()
    assert hinge["drop/triplet"] == pytest.approx(
        BatchHardTripletLoss(0.3)(out.features["drop"], labels).item()
    )


def test_triplet_only_and_no_terms():
    out, labels = make_output()
    only = BDBLoss(softmax_weight=0.0)(out, labels)
    assert set(only.terms) == {"global/triplet", "drop/triplet", "total"}
    with pytest.raises(ValueError, match="no active term"):
        BDBLoss(triplet_weight=0.0, softmax_weight=0.0)(out, labels)


def test_gradients_flow_to_both_branches():
    out, labels = make_output()
    for t in (*out.features.values(), *out.logits.values()):
        t.requires_grad_(True)
    BDBLoss()(out, labels).total.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in out.features.values())


def test_injected_loss_modules_replace_the_defaults():
    out, labels = make_output()
    hinge = BatchHardTripletLoss(margin=0.3)
    injected = BDBLoss(triplet=hinge, softmax=LabelSmoothingCrossEntropy(0.0))
    assert injected.triplet is hinge
    expected = BDBLoss(triplet_margin=0.3, label_smoothing=0.0)(out, labels).as_floats()
    assert injected(out, labels).as_floats() == expected

    class Zero(torch.nn.Module):
        def forward(self, x, y):
            return x.sum() * 0

    terms = BDBLoss(triplet=Zero())(out, labels).as_floats()
    assert terms["global/triplet"] == 0.0 and terms["global/softmax"] > 0
