import pytest
import torch

from bdbnet.engine.guard import NonFiniteError
from bdbnet.engine.step import global_batch_gather, train_step
from bdbnet.losses import BDBLoss
from bdbnet.models import BDBNet
from bdbnet.runtime.distributed import DistContext

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


@pytest.mark.parametrize("chunks", [1, 2], ids=["torch generator", "drop plan"])
def test_the_training_forward_and_losses_trace_without_graph_breaks(chunks):
    """``train.compile``: Batch DropBlock (with or without a plan) and the losses hold no
    generator and take no Python number from a tensor, so dynamo captures one graph, and the
    traced forward drops the rectangle the eager one does."""
    import torch._dynamo as dynamo

    from bdbnet.engine.replicas import ReplicaForward

    model, _ = model_and_optimizer()
    net = ReplicaForward(model, 1, chunk_offset=chunks - 1, total_chunks=chunks)
    loss = BDBLoss()
    x = torch.randn(8, 3, 32, 16)
    net.plan_step(11)
    dynamo.reset()
    explained = dynamo.explain(lambda images, labels: loss(net(images), labels).total)(x, LABELS)
    assert explained.graph_break_count == 0, [str(r.reason) for r in explained.break_reasons]
    assert explained.graph_count == 1
    for m in model.modules():  # frozen statistics: eager and traced see the same network
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    traced = torch.compile(net, backend="aot_eager")
    for step in range(2):
        net.plan_step(20 + step)
        torch.manual_seed(step)
        eager = net(x).features["drop"].detach()
        torch.manual_seed(step)
        assert torch.equal(traced(x).features["drop"].detach(), eager)
    dynamo.reset()


@pytest.mark.cuda
def test_the_compiled_step_on_the_gpu_matches_eager_and_learns():
    """``train.compile`` with the default compiler (inductor, Triton kernels) on a GPU: the
    compiled forward gives the eager features, and compiled steps lower the loss."""
    from bdbnet.engine.replicas import ReplicaForward

    model, _ = model_and_optimizer()
    model = model.cuda().to(memory_format=torch.channels_last)
    for m in model.modules():  # frozen statistics: eager and compiled see the same network
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    net = ReplicaForward(model, 1)
    x = torch.randn(8, 3, 64, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    labels = LABELS.cuda()
    compiled = torch.compile(net)
    net.plan_step(3)
    torch.manual_seed(0)
    eager = net(x).features["drop"].detach()
    torch.manual_seed(0)
    traced = compiled(x).features["drop"].detach()
    scale = eager.norm(dim=1).mean()
    assert float((traced - eager).norm(dim=1).max() / scale) < 1e-2  # TF32 convolutions
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.1
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss = BDBLoss()
    losses = [
        train_step(compiled, x, labels, loss, optimizer, amp="bf16").total.detach()
        for _ in range(6)
    ]
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses)
    assert float(losses[-1]) < float(losses[0])
