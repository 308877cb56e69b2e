import pytest
import torch

from bdbnet.engine.distributed import DistContext
from bdbnet.engine.guard import NonFiniteError
from bdbnet.engine.step import global_batch_gather, train_step
from bdbnet.losses import BDBLoss
from bdbnet.models import BDBNet

LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def model_and_optimizer():
    torch.manual_seed(0)
    model = BDBNet(4, pretrained=None, backbone="resnet18").train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def test_the_step_lowers_the_loss_on_a_fixed_batch():
    model, opt = model_and_optimizer()
    x = torch.randn(8, 3, 32, 16)
    first = train_step(model, x, LABELS, BDBLoss(), opt).total.item()
    for _ in range(4):
        last = train_step(model, x, LABELS, BDBLoss(), opt).total.item()
    assert last < first


def test_a_non_finite_loss_leaves_the_weights_untouched():
    model, opt = model_and_optimizer()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def poisoned(output, labels):
        loss = BDBLoss()(output, labels)
        loss.total = loss.total * float("nan")
        loss.terms["global/triplet"] = loss.terms["global/triplet"] * float("nan")
        return loss

    with pytest.raises(NonFiniteError, match="global/triplet = nan"):
        train_step(model, torch.randn(8, 3, 32, 16), LABELS, poisoned, opt)
    for key, value in model.state_dict().items():
        if value.is_floating_point() and "running" not in key:
            assert torch.equal(value, before[key]), key
    assert not opt.state  # the optimiser never stepped


def test_single_process_gather_is_the_identity():
    model, _ = model_and_optimizer()
    out = model(torch.randn(8, 3, 32, 16))
    gathered, labels = global_batch_gather(DistContext())(out, LABELS)
    assert torch.equal(labels, LABELS)
    assert torch.equal(gathered.features["drop"], out.features["drop"].float())
