import math

import pytest
import torch

from bdbnet.losses.cross_entropy import LabelSmoothingCrossEntropy


def test_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    log_z = math.log(math.exp(2) + 2)
    logp = [2 - log_z, -log_z, -log_z]
    eps = 0.1
    target = [(1 - eps) + eps / 3, eps / 3, eps / 3]
    expected = -sum(t * lp for t, lp in zip(target, logp))
    loss = LabelSmoothingCrossEntropy(eps)(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_epsilon_zero_is_plain_cross_entropy():
    torch.manual_seed(0)
    logits, labels = torch.randn(8, 5), torch.randint(0, 5, (8,))
    ours = LabelSmoothingCrossEntropy(0.0)(logits, labels)
    torch.testing.assert_close(ours, torch.nn.functional.cross_entropy(logits, labels))


def test_matches_torch_label_smoothing_and_averages_over_batch():
    torch.manual_seed(1)
    logits, labels = torch.randn(6, 7), torch.randint(0, 7, (6,))
    ref = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(LabelSmoothingCrossEntropy(0.1)(logits, labels), ref)


def test_bf16_logits_are_computed_in_float32():
    logits = torch.randn(4, 3).bfloat16()
    assert LabelSmoothingCrossEntropy()(logits, torch.tensor([0, 1, 2, 0])).dtype == torch.float32


def test_rejects_bad_epsilon():
    with pytest.raises(ValueError):
        LabelSmoothingCrossEntropy(1.0)


def test_equals_the_hand_written_formula_on_random_logits():
    torch.manual_seed(2)
    logits = 4 * torch.randn(32, 751)
    labels = torch.randint(0, 751, (32,))
    for eps in (0.0, 0.1, 0.5):
        log_p = torch.log_softmax(logits.double(), dim=1)
        nll = -log_p.gather(1, labels[:, None]).squeeze(1)
        hand = ((1 - eps) * nll - eps * log_p.mean(dim=1)).mean()
        ours = LabelSmoothingCrossEntropy(eps)(logits, labels)
        assert ours.item() == pytest.approx(hand.item(), rel=1e-6)
