"""A tracker's boxes of a frame -> crops (bdbnet.inference.crops), without any model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdbnet.inference.crops import crop_boxes

FRAME = np.arange(20 * 10 * 3, dtype=np.uint8).reshape(20, 10, 3)  # H=20, W=10


def test_boxes_are_clipped_and_rounded_outwards_in_box_order():
    crops = crop_boxes(np.array([[2.5, 3.2, 6.0, 9.9], [-4.0, -1.0, 3.0, 30.0]]), FRAME, bgr=False)
    np.testing.assert_array_equal(crops[0], FRAME[3:10, 2:6])
    np.testing.assert_array_equal(crops[1], FRAME[0:20, 0:3])


def test_bgr_frames_give_rgb_crops_and_tensors_are_accepted():
    (rgb,) = crop_boxes(torch.tensor([[0, 0, 4, 4]]), FRAME, bgr=True)
    np.testing.assert_array_equal(rgb, FRAME[0:4, 0:4, ::-1])
    assert rgb.flags["C_CONTIGUOUS"]


def test_no_boxes_give_no_crops():
    assert crop_boxes(np.zeros((0, 4)), FRAME) == []
    assert crop_boxes([], FRAME) == []


@pytest.mark.parametrize(
    "boxes, frame, message",
    [
        ([[12, 0, 15, 5]], FRAME, r"box 0 \(12, 0, 15, 5\) has no area inside the 10x20 frame"),
        ([[3, 3, 3, 8]], FRAME, r"box 0 \(3, 3, 3, 8\) has no area"),
        ([1, 2, 3, 4], FRAME, r"boxes must be \(N, 4\) x1, y1, x2, y2 pixels, got \(4,\)"),
        ([[0, 0, float("nan"), 4]], FRAME, "boxes must be finite numbers"),
        ([[0, 0, 4, 4]], FRAME[..., 0], "frame must be an H x W x 3 uint8 image"),
        ([[0, 0, 4, 4]], FRAME.astype(np.float32), "frame must be an H x W x 3 uint8 image"),
    ],
    ids=["outside", "zero width", "flat list", "nan", "grey frame", "float frame"],
)
def test_bad_boxes_and_frames_are_errors_naming_them(boxes, frame, message):
    with pytest.raises(ValueError, match=message):
        crop_boxes(boxes, frame)
