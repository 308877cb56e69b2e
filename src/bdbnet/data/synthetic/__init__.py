"""Procedural synthetic pedestrians in the Market-1501 layout.

Why it exists: the real re-ID benchmarks cannot be downloaded on every machine (and not in CI), yet
the whole pipeline -- Market-1501 loader, P x K sampler, BDB training, the Market evaluation
protocol, the ranked-list pictures -- should run end to end on something that behaves like a
re-ID dataset. ``generate_synthetic_reid`` writes such a dataset in seconds.

Layout (exactly Market-1501's, so the real loader and protocol run unchanged)::

    root/bounding_box_train/0001_c3s2_004512_01.jpg   train identities 1..N
    root/query/0203_c1s5_000451_03.jpg                one image per camera per test identity
    root/bounding_box_test/0203_c4s1_010034_02.jpg    the other images of the test identities,
    root/bounding_box_test/0000_c2s3_777123_05.jpg    distractors (pid 0: other people)
    root/bounding_box_test/-1_c6s1_004001_04.jpg      junk (pid -1: background, cut or zoomed boxes)
    root/synthetic_meta.json                          parameters and counts (loaders ignore it)

Train pids are ``1..train_ids`` and test pids ``train_ids+1..train_ids+test_ids`` (disjoint).
Each identity appears in ``cameras_per_id`` cameras with ``images_per_camera`` images each; a
test identity has at least two cameras and two images per camera, so every query has a
same-camera gallery image (removed by the protocol) and a cross-camera true match.

What makes it a BDB benchmark. BDB (Dai et al., ICCV 2019) drops one horizontal stripe of the
feature map for the whole batch so that the network must also learn *local, less salient*
details. Here an identity is

* global appearance (:class:`GlobalAttributes`): upper/lower clothing colour and style, skin tone,
  body height and build, and
* local details (:class:`LocalAttributes`): shoe colour, bag (type, colour, side), a small logo on
  the shirt (shape, colour), hat (type, colour), hair (colour, length).

A share of the identities (``sibling_fraction``, 40 % by default) come in *sibling groups* of 2-3
that share every global attribute and differ only in one or two local details (the same details
for the whole group, each member with a visibly different value). A model that only looks at the
global colours cannot tell siblings apart; it has to look at the shoes, the bag or the hat.

Nuisances, as in real surveillance data: per camera brightness, colour cast, background, noise
and blur (:class:`CameraStyle`); per image pose (stride, arm swing, lean, front/back view,
left/right mirror), scale and position jitter, bounding-box misalignment that cuts the person,
and with probability ``occlusion`` an occluder (pole, car, bush or another pedestrian).

Domains (:mod:`~bdbnet.data.synthetic.domains`): ``domain=N`` (``bdbnet synth --domain N``) writes
another camera network that differs in stated, controlled ways -- the scenes, the lighting (gain
range), a colour cast, the resolution (rendered small, resized up) and the viewpoint mix -- and
shows other people, so that the gap between camera networks (as Market-1501 -> DukeMTMC-reID) can
be measured: train on domain 0, evaluate on domain 1. Domain 0 is the generator as it always was,
byte for byte; ``synthetic_meta.json`` records the domain and what it shifts.

Determinism: every random draw comes from a ``numpy.random.Generator`` seeded by
``(seed, purpose, ...)`` keys, so an image only depends on the seed and on which image it is --
not on the processing order or the number of worker processes. Same seed, same bytes.

Speed: vectorised numpy on small bounding boxes (anti-aliased ellipses, capsules and
trapezoids), per-camera backgrounds and noise banks computed once, JPEG through Pillow, and a
process pool for large datasets: about 2,000 128x64 images per second on two cores
(``benchmarks/bench_synthetic.py``), so the default dataset (~5,300 images) takes seconds.

Modules: :mod:`~bdbnet.data.synthetic.attributes` (identities, palettes, siblings),
:mod:`~bdbnet.data.synthetic.cameras` (camera styles and backgrounds),
:mod:`~bdbnet.data.synthetic.domains` (the camera networks and what each one shifts),
:mod:`~bdbnet.data.synthetic.canvas` (anti-aliased shapes),
:mod:`~bdbnet.data.synthetic.person` (the pedestrian), :mod:`~bdbnet.data.synthetic.render`
(one image), :mod:`~bdbnet.data.synthetic.pool` (rendering and writing the images, in worker
processes for large datasets), :mod:`~bdbnet.data.synthetic.write` (``generate_synthetic_reid``:
plan, names, meta file), :mod:`~bdbnet.data.synthetic.summary` (what was written) and
:mod:`~bdbnet.data.synthetic.seeds` (the keys of the random streams).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bdbnet.data.synthetic.domains import DOMAINS, Domain, get_domain

if TYPE_CHECKING:
    from bdbnet.data.synthetic.attributes import (
        DETAILS,
        RGB,
        GlobalAttributes,
        IdentityAttributes,
        LocalAttributes,
        sample_identities,
    )
    from bdbnet.data.synthetic.cameras import CameraStyle, sample_camera_styles
    from bdbnet.data.synthetic.render import Renderer, render_person
    from bdbnet.data.synthetic.summary import SplitSummary, SyntheticSummary
    from bdbnet.data.synthetic.write import (
        GENERATOR_VERSION,
        META_FILE,
        SPLIT_DIRS,
        generate_synthetic_reid,
    )

__all__ = [
    "DETAILS",
    "DOMAINS",
    "GENERATOR_VERSION",
    "META_FILE",
    "RGB",
    "SPLIT_DIRS",
    "CameraStyle",
    "Domain",
    "GlobalAttributes",
    "IdentityAttributes",
    "LocalAttributes",
    "Renderer",
    "SplitSummary",
    "SyntheticSummary",
    "generate_synthetic_reid",
    "get_domain",
    "render_person",
    "sample_camera_styles",
    "sample_identities",
]

# Name -> submodule. Imported on first use, so that reading the domain table (``bdbnet synth
# --help`` lists it) does not import numpy and Pillow.
_LAZY = {
    **dict.fromkeys(
        (
            "DETAILS",
            "RGB",
            "GlobalAttributes",
            "IdentityAttributes",
            "LocalAttributes",
            "sample_identities",
        ),
        "attributes",
    ),
    **dict.fromkeys(("CameraStyle", "sample_camera_styles"), "cameras"),
    **dict.fromkeys(("Renderer", "render_person"), "render"),
    **dict.fromkeys(("SplitSummary", "SyntheticSummary"), "summary"),
    **dict.fromkeys(
        ("GENERATOR_VERSION", "META_FILE", "SPLIT_DIRS", "generate_synthetic_reid"), "write"
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
