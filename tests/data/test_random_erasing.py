"""Random Erasing with the official BDB parameters: its distribution against the stated ones.

The reference numbers are integrals over the stated distribution (area fraction uniform in
[0.02, 0.4], aspect ratio h/w uniform in [0.3, 1/0.3], both rounded to pixels, kept when strictly
smaller than the image), computed on a fine grid; tolerances are 5 standard errors of the sample.
"""

import math

import numpy as np
import pytest
import torch

from bdbnet.data.transforms import RandomErasing

AREA, RATIO = (0.02, 0.4), (0.3, 1 / 0.3)


def stated(height: int, width: int, m: int = 1000) -> dict[str, np.ndarray | float]:
    """Per-attempt acceptance and the accepted boxes' statistics, by midpoint-rule integration."""
    a = AREA[0] + (np.arange(m) + 0.5) / m * (AREA[1] - AREA[0])
    r = RATIO[0] + (np.arange(m) + 0.5) / m * (RATIO[1] - RATIO[0])
    a, r = np.meshgrid(a, r, indexing="ij")
    target = a * height * width
    h, w = np.round(np.sqrt(target * r)), np.round(np.sqrt(target / r))
    ok = (h < height) & (w < width)
    frac = (h * w / (height * width))[ok]
    taller = (h > w)[ok]
    return {
        "p_accept": float(ok.mean()),
        "area_mean": float(frac.mean()),
        "area_std": float(frac.std()),
        "p_taller": float(taller.mean()),
    }


def draw(eraser: RandomErasing, height: int, width: int, n: int, seed: int):
    torch.manual_seed(seed)
    return [eraser.get_params(height, width) for _ in range(n)]


def test_distribution_matches_the_stated_parameters():
    n, size = 20000, 224
    ref = stated(size, size)
    boxes = draw(RandomErasing(p=1.0), size, size, n, seed=0)
    assert all(b is not None for b in boxes)  # 100 attempts at 95% acceptance never all fail
    top, left, h, w = (np.array(v, dtype=np.float64) for v in zip(*boxes))
    frac = h * w / size**2
    assert abs(frac.mean() - ref["area_mean"]) < 5 * ref["area_std"] / math.sqrt(n)
    p = ref["p_taller"]  # ~0.76; a log-uniform aspect ratio (torchvision) would give ~0.5
    assert abs((h > w).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # bounds: inside the image, strictly smaller than it, reachable by rounding the stated ranges
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= size).all() and (left + w <= size).all()
    assert (h < size).all() and (w < size).all()
    assert ((h - 0.5) * (w - 0.5) <= AREA[1] * size**2).all()
    assert ((h + 0.5) * (w + 0.5) >= AREA[0] * size**2).all()
    assert ((h + 0.5) / (w - 0.5) >= RATIO[0]).all() and ((h - 0.5) / (w + 0.5) <= RATIO[1]).all()
    # and the ranges are used up to their ends
    assert frac.min() < 0.025 and frac.max() > 0.38
    assert (h / w).min() < 0.35 and (h / w).max() > 3.0


@pytest.mark.parametrize("attempts", [1, 10, 100])
def test_up_to_attempts_tries_before_giving_up(attempts):
    # an 8 x 200 image accepts only ~3% of the draws: success = 1 - (1 - p) ** attempts
    n, height, width = 1000, 8, 200
    p = stated(height, width)["p_accept"]
    expected = 1 - (1 - p) ** attempts
    boxes = draw(RandomErasing(p=1.0, attempts=attempts), height, width, n, seed=attempts)
    rate = np.mean([b is not None for b in boxes])
    assert abs(rate - expected) < 5 * math.sqrt(expected * (1 - expected) / n) + 1e-3


def test_call_erases_the_drawn_box_with_zero_and_keeps_the_input():
    img = torch.full((3, 64, 48), 2.0)
    torch.manual_seed(5)
    out = RandomErasing(p=1.0)(img)
    torch.manual_seed(5)
    torch.rand(())  # the probability draw
    top, left, h, w = RandomErasing(p=1.0).get_params(64, 48)
    assert torch.equal(img, torch.full((3, 64, 48), 2.0))
    assert torch.equal(out[:, top : top + h, left : left + w], torch.zeros(3, h, w))
    assert int((out == 0).sum()) == 3 * h * w


def test_probability_and_invalid_arguments():
    img = torch.ones(1, 32, 32)
    torch.manual_seed(0)
    erased = sum(bool((RandomErasing(p=0.5)(img) == 0).any()) for _ in range(2000))
    assert abs(erased / 2000 - 0.5) < 5 * math.sqrt(0.25 / 2000)
    assert RandomErasing(p=0.0)(img) is img
    with pytest.raises(ValueError):
        RandomErasing(attempts=0)
    assert "attempts=100" in repr(RandomErasing())
