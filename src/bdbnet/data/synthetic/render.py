"""The synthetic renderer: scene, pedestrian, occluders and camera effects of one image."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image

from bdbnet.data.synthetic.attributes import CLOTHING, SKIN, IdentityAttributes, pick
from bdbnet.data.synthetic.cameras import camera_background, sample_camera_styles
from bdbnet.data.synthetic.canvas import Canvas, clip
from bdbnet.data.synthetic.domains import get_domain
from bdbnet.data.synthetic.person import draw_person
from bdbnet.data.synthetic.seeds import TAG_NOISE, as_rng, domain_keys

__all__ = ["Renderer", "render_person"]


class Renderer(Canvas):
    """Draws people into (3, H, W) float32 canvases; precomputes what all images share.

    The shapes come from :class:`~bdbnet.data.synthetic.canvas.Canvas`, the pedestrian from
    :func:`~bdbnet.data.synthetic.person.draw_person`; per camera the background texture and a
    bank of sensor noise are computed once.

    ``domain`` (:mod:`~bdbnet.data.synthetic.domains`) picks the camera network; a domain with a
    resolution below 1 draws on a smaller canvas (``self.h x self.w``) and :meth:`render` resizes
    each image up to ``height x width``.
    """

    def __init__(
        self, seed: int, cameras: int, height: int, width: int, occlusion: float, domain: int = 0
    ):
        self.domain = get_domain(domain)
        self.out_size = (height, width)
        height, width = self.domain.render_size(height, width)
        super().__init__(height, width)
        self.seed, self.occlusion = seed, occlusion
        self.cams = sample_camera_styles(cameras, seed, domain)
        self.backgrounds = [camera_background(s, seed, height, width, domain) for s in self.cams]
        nrng = np.random.default_rng(domain_keys([seed, TAG_NOISE], domain))
        noise = nrng.standard_normal((3, 2 * height, 2 * width), dtype=np.float32)
        # per-camera banks, pre-scaled and with the +0.5 of rounding folded in
        self.noise = [noise * np.float32(s.noise) + np.float32(0.5) for s in self.cams]

    # -- scene ---------------------------------------------------------------------------------
    def _occluder(self, img: np.ndarray, rng: np.random.Generator) -> None:
        h, w = self.h, self.w
        kind = int(rng.integers(4))
        color = np.asarray(pick(rng, CLOTHING, 20), np.float32)
        if kind == 0:  # a pole / tree trunk / sign post
            x, hw = rng.uniform(0.1, 0.9) * w, rng.uniform(0.04, 0.09) * w
            grey = np.full(3, rng.uniform(60, 170), np.float32)
            self.trapezoid(img, -1, h + 1, x, x, hw, hw, grey)
            self.trapezoid(
                img,
                -1,
                h + 1,
                x - 0.3 * hw,
                x - 0.3 * hw,
                0.3 * hw,
                0.3 * hw,
                np.minimum(grey * 1.25, 255),
            )
        elif kind == 1:  # a car or a bench in the foreground
            yt = rng.uniform(0.6, 0.8) * h
            x0, x1 = sorted(rng.uniform(-0.3, 1.3, size=2) * w)
            x1 = max(x1, x0 + 0.5 * w)
            cxm, hw = (x0 + x1) / 2, (x1 - x0) / 2
            self.trapezoid(img, yt, h + 1, cxm, cxm, hw * 0.9, hw, color)
            self.trapezoid(
                img,
                yt + 0.02 * h,
                yt + 0.09 * h,
                cxm,
                cxm,
                hw * 0.75,
                hw * 0.8,
                np.array([160, 190, 210], np.float32),
            )
        elif kind == 2:  # a bush
            self.ellipse(
                img,
                rng.uniform(0, 1) * w,
                h * rng.uniform(0.85, 1.05),
                rng.uniform(0.3, 0.6) * w,
                rng.uniform(0.2, 0.35) * h,
                np.array([50, rng.uniform(90, 140), 45], np.float32),
            )
        else:  # another pedestrian passing at the box edge
            side = -1 if rng.random() < 0.5 else 1
            x = w / 2 + side * rng.uniform(0.45, 0.65) * w
            yt, hw = rng.uniform(0.15, 0.3) * h, rng.uniform(0.16, 0.26) * w
            self.trapezoid(img, yt, h + 1, x, x, hw, hw * 0.85, color)
            skin = np.asarray(pick(rng, SKIN, 8), np.float32)
            self.ellipse(img, x, yt - 0.07 * h, 0.55 * hw, 0.08 * h, skin)

    def render(
        self,
        ident: IdentityAttributes | None,
        camera: int,
        rng: np.random.Generator,
        junk: bool = False,
    ) -> np.ndarray:
        """One image (H, W, 3) uint8 of ``ident`` seen by ``camera``; ``junk`` spoils the box.

        (H, W) is the renderer's output size, also for a low-resolution domain.
        """
        h, w = self.h, self.w
        cam = self.cams[camera]
        ox = int(rng.integers(0, w))
        img = self.backgrounds[camera][:, :, ox : ox + w] * np.float32(rng.uniform(0.9, 1.1))
        if rng.random() < 0.4:  # background clutter (sign, window, parked bike...)
            c = np.asarray(pick(rng, CLOTHING, 30), np.float32)
            x, y = rng.uniform(0, w), rng.uniform(0.05, 0.6) * h
            self.trapezoid(
                img,
                y,
                y + rng.uniform(0.08, 0.3) * h,
                x,
                x,
                rng.uniform(0.05, 0.2) * w,
                rng.uniform(0.05, 0.2) * w,
                c,
                opacity=0.7,
            )
        # person placement: scale/position jitter, sometimes a badly aligned box
        scale = rng.uniform(0.88, 1.08)
        dx = float(np.clip(rng.normal(0.0, 0.06), -0.18, 0.18)) * w
        dy = float(np.clip(rng.normal(0.0, 0.02), -0.05, 0.05)) * h
        if rng.random() < 0.12:
            if rng.random() < 0.5:
                dx += (1 if rng.random() < 0.5 else -1) * rng.uniform(0.15, 0.3) * w
            else:
                dy += (1 if rng.random() < 0.5 else -1) * rng.uniform(0.08, 0.18) * h
        back = bool(rng.random() < cam.back_view)
        mirror = bool(rng.random() < 0.5)
        occluded = bool(rng.random() < self.occlusion)
        junk_kind = int(rng.integers(3)) if junk else -1
        if junk_kind == 1:  # a sliver of a person at the box edge, or only the legs / the head
            if rng.random() < 0.5:
                dx = (1 if rng.random() < 0.5 else -1) * rng.uniform(0.45, 0.6) * w
            else:
                dy = (1 if rng.random() < 0.5 else -1) * rng.uniform(0.45, 0.6) * h
        elif junk_kind == 2:  # zoomed into a body part
            scale = rng.uniform(2.0, 3.2)
            dy = rng.uniform(0.2, 1.4) * h
            dx = rng.uniform(-0.3, 0.3) * w
        if ident is not None and junk_kind != 0:
            height = ident.global_attrs.height * scale * h
            draw_person(self, img, ident, rng, w / 2 + dx, 0.975 * h + dy, height, back)
        if mirror:
            img = img[:, :, ::-1]
        if occluded or junk_kind == 0:
            self._occluder(img, rng)
        # camera: brightness, colour cast, softness, sensor noise
        img = img * (np.asarray(cam.cast, np.float32) * np.float32(cam.gain))[:, None, None]
        if cam.blur:
            img[:, 1:-1] = (img[:, :-2] + img[:, 2:] + 2.0 * img[:, 1:-1]) * 0.25
            img[:, :, 1:-1] = (img[:, :, :-2] + img[:, :, 2:] + 2.0 * img[:, :, 1:-1]) * 0.25
        ny, nx = int(rng.integers(0, h)), int(rng.integers(0, w))
        img += self.noise[camera][:, ny : ny + h, nx : nx + w]
        clip(img, 0.0, 255.0)
        out = np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))
        if (h, w) != self.out_size:  # a low-resolution camera network: upsampled, soft
            size = (self.out_size[1], self.out_size[0])
            out = np.asarray(Image.fromarray(out, "RGB").resize(size, Image.Resampling.BILINEAR))
        return out


@lru_cache(maxsize=8)
def _renderer(
    seed: int, cameras: int, height: int, width: int, occlusion: float, domain: int
) -> Renderer:
    return Renderer(seed, cameras, height, width, occlusion, domain)


def render_person(
    identity: IdentityAttributes | None,
    camera: int = 0,
    *,
    seed: int = 0,
    image_seed: int | Sequence[int] = 0,
    cameras: int = 6,
    height: int = 128,
    width: int = 64,
    occlusion: float = 0.0,
    junk: bool = False,
    domain: int = 0,
) -> np.ndarray:
    """Render one (height, width, 3) uint8 image of ``identity`` as seen by ``camera`` (0-based).

    For previews and figures; ``generate_synthetic_reid`` uses the same renderer. ``seed`` picks
    the camera styles (as in the dataset), ``image_seed`` the pose, jitter and occlusion.
    ``identity=None`` renders an empty scene. ``domain`` picks the camera network
    (:data:`~bdbnet.data.synthetic.domains.DOMAINS`; 0: the original one).
    """
    if not 0 <= camera < cameras:
        raise ValueError(f"camera must be in [0, {cameras})")
    get_domain(domain)  # an unknown domain: a ValueError naming the known ones
    r = _renderer(seed, cameras, height, width, float(occlusion), int(domain))
    return r.render(identity, camera, as_rng(image_seed), junk=junk)
