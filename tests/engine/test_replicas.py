"""train.replicas: chunks forwarded separately, as nn.DataParallel's GPUs did."""

import pytest
import torch

from bdbnet.engine.replicas import ReplicaForward, drop_plan_seed
from bdbnet.models import BDBNet
from bdbnet.models.batch_drop import BatchDropBlock, DropPlan
from bdbnet.models.contract import TrainOutput


def small_model() -> BDBNet:
    torch.manual_seed(0)
    return BDBNet(4, pretrained=None, backbone="resnet18").train()


def running_stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


def test_chunks_are_normalised_separately_and_keep_the_first_chunks_statistics():
    x = torch.randn(8, 3, 32, 16)
    model = small_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = ReplicaForward(model, replicas=2, total_chunks=2)
    wrapped.plan_step(drop_plan_seed(0, 5))
    out = wrapped(x)
    after_replicas = running_stats(model)

    # The same, by hand: chunk 0 then chunk 1 with its own plan entry, fresh statistics.
    reference = small_model()
    reference.load_state_dict(start)
    drops = [m for m in reference.modules() if isinstance(m, BatchDropBlock)]
    parts = []
    for index, chunk in enumerate(x.chunk(2)):
        for drop in drops:
            drop.plan = DropPlan(drop_plan_seed(0, 5), chunks=2, index=index)
        parts.append(reference(chunk))
        if index == 0:
            first_chunk_stats = running_stats(reference)
    expected = TrainOutput.concat(parts)
    for name in expected.features:
        torch.testing.assert_close(out.features[name], expected.features[name])
        torch.testing.assert_close(out.logits[name], expected.logits[name])
    assert after_replicas.keys() == first_chunk_stats.keys()
    for key, value in first_chunk_stats.items():
        assert torch.equal(after_replicas[key], value), key  # chunk 0's statistics only
    # ... which differ from the statistics of the whole batch
    whole = small_model()
    whole.load_state_dict(start)
    whole(x)
    assert not torch.equal(
        running_stats(whole)["global_reduction.1.running_mean"],
        after_replicas["global_reduction.1.running_mean"],
    )


def test_gradients_flow_through_every_chunk():
    model = small_model()
    wrapped = ReplicaForward(model, replicas=4, total_chunks=4)
    wrapped.plan_step(1)
    out = wrapped(torch.randn(8, 3, 32, 16))
    out.features["global"][6:].sum().backward()  # rows of the last chunk only
    assert model.global_reduction[0].weight.grad.abs().sum() > 0


def rectangles(replicas: int, offset: int, total: int, seed: int) -> list[torch.Tensor]:
    """The drop masks each chunk of one process applies."""
    model = small_model()
    wrapped = ReplicaForward(model, replicas, chunk_offset=offset, total_chunks=total)
    wrapped.plan_step(seed)
    masks = []
    drop = model.batch_drop
    real = drop.make_mask

    def spy(*args):
        masks.append(real(*args))
        return masks[-1]

    drop.make_mask = spy
    wrapped(torch.randn(2 * replicas, 3, 64, 32))
    return masks


def test_any_layout_of_the_same_chunks_drops_the_same_rectangles():
    one_process = rectangles(replicas=4, offset=0, total=4, seed=77)
    two_processes = rectangles(2, 0, 4, 77) + rectangles(2, 2, 4, 77)
    four_processes = [m for r in range(4) for m in rectangles(1, r, 4, 77)]
    assert len(one_process) == 4
    for a, b, c in zip(one_process, two_processes, four_processes):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert len({tuple(m.flatten().tolist()) for m in one_process}) > 1  # chunks differ
    next_step = rectangles(4, 0, 4, 78)
    assert any(not torch.equal(a, b) for a, b in zip(one_process, next_step))  # steps differ


def test_one_chunk_in_all_draws_from_torchs_generator_as_the_official_code():
    model = small_model()
    ReplicaForward(model, replicas=1, total_chunks=1).plan_step(3)
    assert model.batch_drop.plan is None


def test_eval_mode_and_bad_batches():
    model = small_model()
    wrapped = ReplicaForward(model, replicas=2, total_chunks=2).eval()
    assert wrapped(torch.randn(3, 3, 32, 16)).shape == (3, 1536)  # eval: one forward
    wrapped.train()
    with pytest.raises(ValueError, match="cannot be cut into 2 equal replicas"):
        wrapped(torch.randn(3, 3, 32, 16))
    with pytest.raises(ValueError, match="replicas must be >= 1"):
        ReplicaForward(model, replicas=0)
