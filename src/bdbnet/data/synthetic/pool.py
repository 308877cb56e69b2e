"""Rendering and writing the planned images, in this process or in a pool of worker processes.

The output does not depend on the number of processes: each image's random stream is seeded by
which image it is (:mod:`bdbnet.data.synthetic.seeds`), not by the order of rendering.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bdbnet.data.synthetic.attributes import IdentityAttributes
from bdbnet.data.synthetic.render import Renderer
from bdbnet.data.synthetic.seeds import KIND_JUNK, TAG_IMAGE, domain_keys

__all__ = ["Job", "render_all", "render_jobs"]

# A job: (folder, file name, kind, owner index, image index, camera (0-based), identity)
Job = tuple[str, str, int, int, int, int, IdentityAttributes | None]
_WORKER: dict[str, Any] = {}


def render_jobs(r: Renderer, root: str, quality: int, seed: int, jobs: Sequence[Job]) -> int:
    """Render ``jobs`` with ``r`` and write them as JPEGs under ``root``; returns how many.

    Each image's random stream is keyed by ``seed``, which image it is and ``r``'s domain.
    """
    domain = r.domain.index
    for folder, name, kind, owner, index, cam, ident in jobs:
        rng = np.random.default_rng(domain_keys([seed, TAG_IMAGE, kind, owner, index], domain))
        arr = r.render(ident, cam, rng, junk=kind == KIND_JUNK)
        Image.fromarray(arr, "RGB").save(os.path.join(root, folder, name), "JPEG", quality=quality)
    return len(jobs)


def _worker_init(cfg: dict[str, Any]) -> None:
    _WORKER.update(cfg)
    _WORKER["renderer"] = Renderer(
        cfg["seed"], cfg["cameras"], cfg["height"], cfg["width"], cfg["occlusion"], cfg["domain"]
    )


def _worker_run(jobs: Sequence[Job]) -> int:
    return render_jobs(
        _WORKER["renderer"], _WORKER["root"], _WORKER["quality"], _WORKER["seed"], jobs
    )


def _chunks(jobs: Sequence[Job], size: int) -> Iterable[Sequence[Job]]:
    for i in range(0, len(jobs), size):
        yield jobs[i : i + size]


def render_all(
    jobs: list[Job],
    root: Path,
    seed: int,
    cameras: int,
    height: int,
    width: int,
    occlusion: float,
    quality: int,
    workers: int | None,
    progress: bool,
    domain: int = 0,
) -> None:
    """Render and write every job, in chunks of 64, in ``workers`` processes (``None``: auto).

    ``domain``: the camera network (:mod:`~bdbnet.data.synthetic.domains`; 0: the original).
    """
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(cores or 1, 8) if len(jobs) >= 1500 else 1
    workers = max(1, min(workers, len(jobs) // 64 or 1))
    chunks = list(_chunks(jobs, 64))
    with contextlib.ExitStack() as stack:
        if workers > 1:
            cfg = {
                "seed": seed,
                "cameras": cameras,
                "height": height,
                "width": width,
                "occlusion": occlusion,
                "domain": domain,
                "root": str(root),
                "quality": quality,
            }
            # fork where available: the workers need not re-import the package (or torch).
            # The pool starts before the progress bar, whose monitor thread would make the
            # process multi-threaded at fork time.
            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            pool = stack.enter_context(ctx.Pool(workers, initializer=_worker_init, initargs=(cfg,)))
            done: Iterable[int] = pool.imap_unordered(_worker_run, chunks)
        else:
            r = Renderer(seed, cameras, height, width, occlusion, domain)
            done = (render_jobs(r, str(root), quality, seed, c) for c in chunks)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = stack.enter_context(tqdm(total=len(jobs), desc="synthetic images", unit="img"))
        for n in done:
            if bar is not None:
                bar.update(n)
