"""Anti-aliased drawing primitives of the synthetic renderer, on (3, H, W) float32 canvases.

Channel-first because numpy then loops along image rows rather than over 3 channels, which halves
the cost of blending the many small shapes. Every shape is evaluated on its bounding box only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Canvas", "clip"]


def clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """In-place clip of a temporary (np.clip's Python wrapper dominates on tiny arrays)."""
    np.maximum(x, lo, out=x)
    return np.minimum(x, hi, out=x)


class Canvas:
    """Pixel grid of an H x W image and the shapes drawn into it (blended in place)."""

    def __init__(self, height: int, width: int):
        self.h, self.w = height, width
        self.ys = np.arange(height, dtype=np.float32) + 0.5
        self.xs = np.arange(width, dtype=np.float32) + 0.5

    def _box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[int, int, int, int] | None:
        a, b = max(int(x0), 0), min(int(x1) + 2, self.w)
        c, d = max(int(y0), 0), min(int(y1) + 2, self.h)
        return None if a >= b or c >= d else (a, b, c, d)

    @staticmethod
    def _blend(
        img: np.ndarray, box: tuple[int, int, int, int], alpha: np.ndarray, color: np.ndarray
    ) -> None:
        x0, x1, y0, y1 = box
        sub = img[:, y0:y1, x0:x1]
        diff = color[:, None, None] - sub
        diff *= alpha
        sub += diff

    def capsule(
        self,
        img: np.ndarray,
        ax: float,
        ay: float,
        bx: float,
        by: float,
        r: float,
        color: np.ndarray,
        opacity: float = 1.0,
    ) -> None:
        box = self._box(min(ax, bx) - r - 1, max(ax, bx) + r, min(ay, by) - r - 1, max(ay, by) + r)
        if box is None:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        # distance to the segment in its own frame: along (s) and across (q) the axis
        ux, uy = bx - ax, by - ay
        length = math.hypot(ux, uy)
        cu, su = (ux / length, uy / length) if length > 1e-6 else (0.0, 1.0)
        dx, dy = xs - (ax + 0.5 * ux), ys - (ay + 0.5 * uy)
        s = dx * cu + dy * su
        np.abs(s, out=s)
        s -= 0.5 * length
        np.maximum(s, 0.0, out=s)
        q = dx * -su + dy * cu
        q *= q
        s *= s
        q += s
        np.sqrt(q, out=q)
        alpha = clip(np.subtract(r + 0.5, q, out=q), 0.0, opacity)
        self._blend(img, box, alpha, color)

    def ellipse(
        self,
        img: np.ndarray,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        color: np.ndarray,
        ymax: float | None = None,
        opacity: float = 1.0,
    ) -> None:
        y1 = cy + ry if ymax is None else min(cy + ry, ymax)
        box = self._box(cx - rx - 1, cx + rx, cy - ry - 1, y1)
        if box is None or rx <= 0 or ry <= 0:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        nx, ny = (xs - cx) * (1.0 / rx), (ys - cy) * (1.0 / ry)
        d = np.sqrt(nx * nx + ny * ny)  # normalised radius; the edge blurs over ~1 px
        m = min(rx, ry)
        d *= -m
        alpha = clip(np.add(d, m + 0.5, out=d), 0.0, opacity)
        if ymax is not None:
            alpha = alpha * clip(ymax - ys + 0.5, 0.0, 1.0)
        self._blend(img, box, alpha, color)

    def trapezoid(
        self,
        img: np.ndarray,
        yt: float,
        yb: float,
        cxt: float,
        cxb: float,
        hwt: float,
        hwb: float,
        color: np.ndarray,
        opacity: float = 1.0,
    ) -> None:
        """Vertical trapezoid: rows yt..yb, centre and half width interpolated top to bottom."""
        box = self._box(min(cxt - hwt, cxb - hwb) - 1, max(cxt + hwt, cxb + hwb), yt - 1, yb)
        if box is None or yb <= yt:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        f = clip((ys - yt) * (1.0 / (yb - yt)), 0.0, 1.0)
        cx, hw = cxt + (cxb - cxt) * f, hwt + (hwb - hwt) * f
        ax = xs - cx
        np.abs(ax, out=ax)
        ax = clip(np.subtract(hw + 0.5, ax, out=ax), 0.0, opacity)
        ax *= clip(np.minimum(ys - yt, yb - ys) + 0.5, 0.0, 1.0)
        self._blend(img, box, ax, color)

    def diamond(self, img: np.ndarray, cx: float, cy: float, r: float, color: np.ndarray) -> None:
        box = self._box(cx - r - 1, cx + r, cy - r - 1, cy + r)
        if box is None:
            return
        xs, ys = self.xs[box[0] : box[1]], self.ys[box[2] : box[3], None]
        alpha = clip((r - np.abs(xs - cx) - np.abs(ys - cy)) * 0.7 + 0.5, 0.0, 1.0)
        self._blend(img, box, alpha, color)

    # -- the pedestrian ------------------------------------------------------------------------
