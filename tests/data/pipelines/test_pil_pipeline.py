import torch
from conftest import tiny_config

from bdbnet.data import build_dataset
from bdbnet.data.pipelines.pil import LoaderBatchSource
from bdbnet.data.pipelines.source import BatchSource
from bdbnet.engine.builders import build_batch_source
from bdbnet.runtime.distributed import DistContext


def epoch_batches(source, epoch):
    source.set_epoch(epoch)
    return [(images.clone(), labels.clone()) for images, labels in source]


def test_batches_are_a_function_of_the_epoch_only(tiny_synthetic):
    splits = build_dataset("synthetic", tiny_synthetic)
    source = build_batch_source(splits, tiny_config(), DistContext())
    assert isinstance(source, LoaderBatchSource) and isinstance(source, BatchSource)
    assert len(source) == 2 and source.state_dict() == {}
    torch.manual_seed(0)
    first = epoch_batches(source, 1)
    torch.manual_seed(123)  # the global generator does not drive the augmentation
    torch.rand(7)
    again = epoch_batches(source, 1)
    for (a, la), (b, lb) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(la, lb)
    other = epoch_batches(source, 2)
    assert any(not torch.equal(a, b) for (a, _), (b, _) in zip(first, other))
    assert first[0][0].shape == (8, 3, 32, 16)  # P x K = 4 x 2


def test_ranks_load_their_share_of_the_global_batch_augmented_alike(tiny_synthetic):
    splits = build_dataset("synthetic", tiny_synthetic)
    cfg = tiny_config()
    whole = epoch_batches(build_batch_source(splits, cfg, DistContext()), 0)
    shares = [
        epoch_batches(build_batch_source(splits, cfg, DistContext(rank, 2)), 0) for rank in range(2)
    ]
    for step, (images, labels) in enumerate(whole):
        assert torch.equal(torch.cat([s[step][0] for s in shares]), images)
        assert torch.equal(torch.cat([s[step][1] for s in shares]), labels)
