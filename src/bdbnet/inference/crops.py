"""Detection boxes of a video frame -> person crops: what a tracker hands a re-ID model.

Trackers hold the frame as an ``H x W x 3`` uint8 array, BGR when it comes from OpenCV, and the
boxes as ``(N, 4)`` pixel corners ``x1, y1, x2, y2`` (floats, possibly reaching outside the
frame). :func:`crop_boxes` turns them into RGB crops in box order; the model's own
preprocessing then resizes them (:meth:`bdbnet.inference.FeatureExtractor.get_features`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["crop_boxes"]


def crop_boxes(
    xyxy: np.ndarray | torch.Tensor | Sequence, frame: np.ndarray, bgr: bool = True
) -> list[np.ndarray]:
    """RGB ``h x w x 3`` crops of ``frame`` for each box, clipped to the frame.

    Corners are rounded outwards to whole pixels (``floor(x1)`` .. ``ceil(x2)``), so a box
    always covers the pixels it touches. A frame that is not ``H x W x 3`` uint8, boxes that
    are not ``(N, 4)`` or not finite, and a box with no area inside the frame raise
    :class:`ValueError` naming the problem.

    >>> frame = np.zeros((20, 10, 3), dtype=np.uint8); frame[..., 0] = 255  # blue in BGR
    >>> (crop,) = crop_boxes([[-5.0, 2.2, 4.0, 30.0]], frame)
    >>> crop.shape, crop[0, 0].tolist()
    ((18, 4, 3), [0, 0, 255])
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"frame must be an H x W x 3 uint8 image, got {frame.dtype} {tuple(frame.shape)}"
        )
    boxes = torch.as_tensor(xyxy).detach().cpu().double().numpy() if len(xyxy) else np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x1, y1, x2, y2 pixels, got {tuple(boxes.shape)}")
    if not np.isfinite(boxes).all():
        raise ValueError("boxes must be finite numbers")
    height, width = frame.shape[:2]
    crops = []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        left, top = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        right, bottom = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
        if right <= left or bottom <= top:
            raise ValueError(
                f"box {i} ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has no area inside the "
                f"{width}x{height} frame"
            )
        crop = frame[top:bottom, left:right]
        crops.append(np.ascontiguousarray(crop[..., ::-1] if bgr else crop))
    return crops
