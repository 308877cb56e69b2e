import pytest
import torch

from bdbnet.models.batch_drop import BatchDropBlock, block_size


def dropped_region(mask_2d: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero((mask_2d == 0).any(dim=1)).flatten()
    cols = torch.nonzero((mask_2d == 0).any(dim=0)).flatten()
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def test_block_size_rounds_like_the_official_code():
    assert block_size(24, 8, 0.3, 1.0) == (7, 8)  # 7.2 -> 7
    assert block_size(24, 8, 0.33, 1.0) == (8, 8)  # 7.92 -> 8
    assert block_size(14, 14, 0.5, 0.5) == (7, 7)
    assert block_size(5, 5, 0.5, 0.5) == (2, 2)  # round(2.5) == 2 (banker's rounding)
    assert block_size(4, 4, 1.0, 1.0) == (4, 4)


def test_same_rectangle_in_every_sample_and_channel():
    torch.manual_seed(0)
    drop = BatchDropBlock(0.3, 1.0).train()
    x = torch.rand(6, 5, 24, 8) + 0.5  # strictly positive: zeros come from the mask only
    y = drop(x)
    zero = y == 0
    assert torch.equal(zero, zero[:1, :1].expand_as(zero))
    top, bottom, left, right = dropped_region(y[0, 0])
    assert (bottom - top, right - left) == (7, 8)
    assert int(zero[0, 0].sum()) == 7 * 8
    kept = ~zero
    assert torch.equal(y[kept], x[kept])


def test_width_ratio_below_one_drops_a_block():
    torch.manual_seed(1)
    y = BatchDropBlock(0.5, 0.5).train()(torch.ones(3, 2, 14, 14))
    top, bottom, left, right = dropped_region(y[2, 1])
    assert (bottom - top, right - left) == (7, 7)
    assert int((y[0, 0] == 0).sum()) == 49


def test_identity_in_eval_mode():
    drop = BatchDropBlock(0.3, 1.0).eval()
    x = torch.randn(2, 3, 24, 8)
    assert drop(x) is x


def test_reproducible_by_seed_and_varies_between_steps():
    drop = BatchDropBlock(0.3, 1.0).train()
    x = torch.ones(2, 1, 24, 8)
    torch.manual_seed(123)
    a = [drop(x) for _ in range(5)]
    torch.manual_seed(123)
    b = [drop(x) for _ in range(5)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    tops = {dropped_region(t[0, 0])[0] for t in a}
    assert len(tops) > 1


def test_position_covers_all_offsets_uniformly():
    torch.manual_seed(0)
    drop = BatchDropBlock(0.3, 1.0).train()
    tops = [dropped_region(drop(torch.ones(1, 1, 24, 8))[0, 0])[0] for _ in range(900)]
    counts = torch.bincount(torch.tensor(tops), minlength=18)
    assert len(counts) == 18  # offsets 0..24-7
    assert counts.min() > 20  # expected 50 each


def test_per_sample_mode_draws_independent_rectangles():
    torch.manual_seed(0)
    y = BatchDropBlock(0.3, 1.0, mode="sample").train()(torch.ones(16, 2, 24, 8))
    regions = {dropped_region(y[i, 0]) for i in range(16)}
    assert len(regions) > 1
    assert torch.equal(y[:, 0], y[:, 1])  # still shared across channels
    assert all(int((y[i, 0] == 0).sum()) == 56 for i in range(16))


def test_none_mode_and_zero_ratio_keep_everything():
    x = torch.randn(2, 3, 8, 4)
    assert torch.equal(BatchDropBlock(0.3, 1.0, mode="none").train()(x), x)
    assert torch.equal(BatchDropBlock(0.0, 1.0).train()(x), x)


def test_keeps_dtype_and_memory_format():
    x = torch.randn(2, 4, 8, 4).to(memory_format=torch.channels_last).bfloat16()
    y = BatchDropBlock(0.5, 1.0).train()(x)
    assert y.dtype == torch.bfloat16
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kwargs", [dict(height_ratio=1.5), dict(width_ratio=-0.1), dict(mode="x")])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        BatchDropBlock(**kwargs)
