"""The synthetic pedestrian: body, clothes and local details drawn onto a :class:`Canvas`."""

from __future__ import annotations

import numpy as np

from bdbnet.data.synthetic.attributes import IdentityAttributes
from bdbnet.data.synthetic.canvas import Canvas

__all__ = ["draw_person"]


def draw_person(
    canvas: Canvas,
    img: np.ndarray,
    ident: IdentityAttributes,
    rng: np.random.Generator,
    cx: float,
    feet: float,
    h: float,
    back: bool,
) -> None:
    """Draw a pedestrian of height ``h`` px, feet at ``feet``, facing +x (front 3/4 view)."""
    g, loc = ident.global_attrs, ident.local_attrs
    col = {
        k: np.asarray(v, np.float32)
        for k, v in (
            ("up", g.upper_color),
            ("low", g.lower_color),
            ("skin", g.skin),
            ("shoe", loc.shoe_color),
            ("bag", loc.bag_color),
            ("logo", loc.logo_color),
            ("hat", loc.hat_color),
            ("hair", loc.hair_color),
        )
    }
    up_dark = col["up"] * 0.78
    b = g.build
    stride = float(rng.uniform(0.0, 1.0))
    front_leg = 1 if rng.random() < 0.5 else -1
    tilt = float(rng.uniform(-0.03, 0.03))
    top = feet - h

    def X(fx: float, fy: float) -> float:  # body frame -> image x
        return cx + fx * h + tilt * (fy - 1.0) * h

    def Y(fy: float) -> float:
        return top + fy * h

    facing = -1.0 if back else 1.0
    sh_hw, waist_hw, hip_hw = 0.112 * b, 0.094 * b, 0.098 * b
    leg_r, arm_r = 0.04 * b * h, 0.03 * b * h

    # shadow on the ground
    canvas.ellipse(
        img, X(0, 1), Y(0.985), 0.16 * h, 0.025 * h, np.zeros(3, np.float32), opacity=0.35
    )
    # a backpack seen from the front sticks out behind the shoulders
    if loc.bag == "backpack" and not back:
        canvas.trapezoid(
            img,
            Y(0.16),
            Y(0.44),
            X(-0.03 * facing, 0.16),
            X(-0.03 * facing, 0.44),
            (sh_hw + 0.03) * h,
            (waist_hw + 0.035) * h,
            col["bag"],
        )
    if loc.hair_length == "long" and not back:  # hair falling behind the neck
        canvas.trapezoid(
            img, Y(0.06), Y(0.24), X(0, 0.06), X(0, 0.24), 0.055 * h, 0.065 * h, col["hair"]
        )
    # legs: the back one first, then the front one, each with its shoe
    for leg in (-front_leg, front_leg):
        hip_x = leg * 0.045 * b
        ankle_x = leg * 0.035 * b + (stride * 0.075 if leg == front_leg else -stride * 0.06)
        ankle_y = 0.95 if leg == front_leg else 0.935
        hx, hy, ax_, ay_ = X(hip_x, 0.5), Y(0.5), X(ankle_x, ankle_y), Y(ankle_y)
        shade = 1.0 if leg == front_leg else 0.85
        if g.lower_style == "trousers":
            canvas.capsule(img, hx, hy, ax_, ay_, leg_r, col["low"] * shade)
        else:
            canvas.capsule(img, hx, hy, ax_, ay_, leg_r * 0.85, col["skin"] * shade)
            if g.lower_style == "shorts":
                kx, ky = hx + 0.45 * (ax_ - hx), hy + 0.45 * (ay_ - hy)
                canvas.capsule(img, hx, hy, kx, ky, leg_r * 1.08, col["low"] * shade)
        canvas.ellipse(
            img,
            ax_ + facing * 0.022 * h,
            ay_ + 0.014 * h,
            0.052 * h,
            0.026 * h,
            col["shoe"] * shade,
        )
    # hips / skirt
    if g.lower_style == "skirt":
        canvas.trapezoid(
            img, Y(0.47), Y(0.7), X(0, 0.47), X(0, 0.7), waist_hw * h, 0.15 * b * h, col["low"]
        )
    else:
        canvas.trapezoid(
            img, Y(0.47), Y(0.57), X(0, 0.47), X(0, 0.57), waist_hw * h, hip_hw * h, col["low"]
        )
    # torso, with a lighter panel on the lit side for some depth
    canvas.trapezoid(
        img, Y(0.14), Y(0.52), X(0, 0.14), X(0, 0.52), sh_hw * h, waist_hw * h, col["up"]
    )
    canvas.trapezoid(
        img,
        Y(0.17),
        Y(0.5),
        X(0.025, 0.17),
        X(0.02, 0.5),
        0.05 * b * h,
        0.04 * b * h,
        np.minimum(col["up"] * 1.12 + 8, 255),
    )
    if loc.logo != "none" and not back:
        lx, ly, r = X(0.035 * facing, 0.26), Y(0.26), 0.03 * h
        if loc.logo == "square":
            canvas.trapezoid(img, ly - r, ly + r, lx, lx, r, r, col["logo"])
        elif loc.logo == "circle":
            canvas.ellipse(img, lx, ly, r * 1.1, r * 1.1, col["logo"])
        elif loc.logo == "diamond":
            canvas.diamond(img, lx, ly, r * 1.35, col["logo"])
        else:  # a chest stripe across the shirt
            canvas.trapezoid(
                img,
                Y(0.25),
                Y(0.3),
                X(0, 0.25),
                X(0, 0.3),
                sh_hw * h * 0.97,
                sh_hw * h * 0.95,
                col["logo"],
            )
    if loc.bag == "backpack" and back:
        canvas.trapezoid(
            img,
            Y(0.17),
            Y(0.45),
            X(0, 0.17),
            X(0, 0.45),
            0.085 * b * h,
            0.09 * b * h,
            col["bag"],
        )
        canvas.trapezoid(
            img,
            Y(0.17),
            Y(0.24),
            X(0, 0.17),
            X(0, 0.24),
            0.085 * b * h,
            0.088 * b * h,
            col["bag"] * 0.75,
        )
    # arms at the sides, swinging against the legs
    swing = stride * 0.05
    for side in (-1, 1):
        sx, sy = X(side * (sh_hw - 0.022), 0.165), Y(0.165)
        hxf = side * (sh_hw + 0.012) + (-swing if side == front_leg else swing) * 0.6
        hx, hy = X(hxf, 0.49), Y(0.49)
        ex, ey = (sx + hx) / 2 + side * 0.006 * h, (sy + hy) / 2
        if g.upper_style == "long":
            canvas.capsule(img, sx, sy, hx, hy, arm_r, up_dark)
        else:
            canvas.capsule(img, ex, ey, hx, hy, arm_r * 0.85, col["skin"] * 0.92)
            canvas.capsule(img, sx, sy, ex, ey, arm_r * 1.1, up_dark)
        canvas.ellipse(img, hx, hy + 0.012 * h, arm_r * 0.9, arm_r * 1.0, col["skin"])
        if loc.bag == "handbag" and side == loc.bag_side:
            canvas.capsule(img, hx, hy, hx, hy + 0.04 * h, 0.006 * h, col["bag"] * 0.7)
            canvas.trapezoid(
                img, hy + 0.035 * h, hy + 0.13 * h, hx, hx, 0.045 * h, 0.05 * h, col["bag"]
            )
    if loc.bag == "shoulder":
        s = loc.bag_side
        canvas.capsule(
            img,
            X(-s * 0.07 * b, 0.15),
            Y(0.15),
            X(s * 0.09 * b, 0.47),
            Y(0.47),
            0.011 * h,
            col["bag"] * 0.8,
        )
        canvas.trapezoid(
            img,
            Y(0.43),
            Y(0.56),
            X(s * 0.12 * b, 0.43),
            X(s * 0.12 * b, 0.56),
            0.05 * h,
            0.055 * h,
            col["bag"],
        )
    if loc.bag == "backpack" and not back:  # straps over the shoulders
        for side in (-1, 1):
            canvas.capsule(
                img,
                X(side * 0.065 * b, 0.15),
                Y(0.15),
                X(side * 0.07 * b, 0.36),
                Y(0.36),
                0.012 * h,
                col["bag"] * 0.85,
            )
    # neck, head, hair, hat
    hcx, hcy, hrx, hry = X(0.004 * facing, 0.075), Y(0.075), 0.05 * h, 0.066 * h
    canvas.trapezoid(
        img, Y(0.11), Y(0.155), X(0, 0.11), X(0, 0.155), 0.022 * h, 0.024 * h, col["skin"] * 0.9
    )
    if back:
        canvas.ellipse(img, hcx, hcy, hrx, hry, col["hair"])
        if loc.hair_length == "long":
            canvas.trapezoid(img, hcy, Y(0.25), hcx, X(0, 0.25), hrx, 1.2 * hrx, col["hair"])
    else:
        canvas.ellipse(img, hcx, hcy - 0.006 * h, hrx * 1.06, hry, col["hair"])
        canvas.ellipse(
            img, hcx + facing * 0.006 * h, hcy + 0.012 * h, hrx * 0.88, hry * 0.8, col["skin"]
        )
        e, ey_ = max(1, round(0.01 * h)), int(hcy + 0.004 * h)
        for ex_ in (-0.016, 0.02):  # eyes: a darkened pixel block each, no shape needed
            ex0 = int(hcx + facing * ex_ * h)
            if 0 <= ey_ < canvas.h and 0 <= ex0 < canvas.w:
                img[:, ey_ : ey_ + e, ex0 : ex0 + e] *= 0.4
    if loc.hat == "cap":
        canvas.ellipse(
            img, hcx, hcy - 0.01 * h, hrx * 1.1, hry * 0.95, col["hat"], ymax=hcy - 0.022 * h
        )
        canvas.ellipse(
            img,
            hcx + facing * 0.04 * h,
            hcy - 0.024 * h,
            0.045 * h,
            0.011 * h,
            col["hat"] * 0.8,
        )
    elif loc.hat == "beanie":
        canvas.ellipse(
            img, hcx, hcy - 0.012 * h, hrx * 1.12, hry * 1.02, col["hat"], ymax=hcy - 0.005 * h
        )
        canvas.trapezoid(
            img,
            hcy - 0.022 * h,
            hcy - 0.002 * h,
            hcx,
            hcx,
            hrx * 1.12,
            hrx * 1.12,
            col["hat"] * 0.8,
        )
