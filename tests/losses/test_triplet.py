import math

import pytest
import torch

from bdbnet.losses.triplet import BatchHardTripletLoss, euclidean_distances, hardest_pairs


def softplus(x):
    return math.log1p(math.exp(x))


def test_euclidean_distances_hand_computed():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    expected = torch.tensor([[0.0, 5.0, 10.0], [5.0, 0.0, 5.0], [10.0, 5.0, 0.0]])
    torch.testing.assert_close(euclidean_distances(x), expected, atol=1e-5, rtol=0)
    assert euclidean_distances(x)[0, 0].item() == pytest.approx(1e-6)  # sqrt(1e-12) clamp


def test_hardest_pairs():
    # points on a line; labels a a b b b
    x = torch.tensor([[0.0], [2.0], [3.0], [7.0], [10.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    d_ap, d_an = hardest_pairs(euclidean_distances(x), labels)
    torch.testing.assert_close(d_ap, torch.tensor([2.0, 2.0, 7.0, 4.0, 7.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(d_an, torch.tensor([3.0, 1.0, 1.0, 5.0, 8.0]), atol=1e-5, rtol=0)


def test_soft_margin_value():
    x = torch.tensor([[0.0], [2.0], [3.0], [7.0], [10.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    expected = sum(softplus(ap - an) for ap, an in [(2, 3), (2, 1), (7, 1), (4, 5), (7, 8)]) / 5
    assert BatchHardTripletLoss()(x, labels).item() == pytest.approx(expected, rel=1e-5)


def test_hinge_margin_value():
    x = torch.tensor([[0.0], [2.0], [3.0], [7.0], [10.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # max(0, ap - an + 0.5): 0, 1.5, 6.5, 0, 0
    assert BatchHardTripletLoss(margin=0.5)(x, labels).item() == pytest.approx(8.0 / 5, rel=1e-5)


def test_gradient_pulls_positives_and_pushes_negatives():
    x = torch.tensor([[0.0], [1.0], [1.5], [4.0]], requires_grad=True)
    BatchHardTripletLoss()(x, torch.tensor([0, 0, 1, 1])).backward()
    # point 1 (class 0) is pulled towards 0 and pushed away from 2: gradient > 0 means move left
    assert x.grad[1, 0] > 0
    assert torch.isfinite(x.grad).all()


def test_identical_points_have_finite_gradients():
    x = torch.zeros(4, 3, requires_grad=True)
    BatchHardTripletLoss()(x, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(x.grad).all()


def test_needs_two_identities():
    with pytest.raises(ValueError, match="two identities"):
        BatchHardTripletLoss()(torch.randn(4, 2), torch.zeros(4, dtype=torch.long))
