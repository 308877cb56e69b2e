"""Writing the synthetic dataset: argument checks, the plan of every image, names, meta file."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

from bdbnet.data.synthetic.attributes import IdentityAttributes, sample_identities
from bdbnet.data.synthetic.domains import get_domain
from bdbnet.data.synthetic.pool import Job, render_all
from bdbnet.data.synthetic.seeds import (
    KIND_DISTRACTOR,
    KIND_JUNK,
    KIND_TEST,
    KIND_TRAIN,
    TAG_DISTRACTOR,
    TAG_FRAMES,
    TAG_JUNK,
    TAG_LAYOUT,
    TAG_TEST,
    TAG_TRAIN,
    domain_keys,
)
from bdbnet.data.synthetic.summary import SplitSummary, SyntheticSummary

__all__ = ["GENERATOR_VERSION", "META_FILE", "SPLIT_DIRS", "generate_synthetic_reid"]

GENERATOR_VERSION = 1
META_FILE = "synthetic_meta.json"
SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")
_NAME_RE = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")


def _name(pid: int, cam: int, seq: int, frame: int, bbox: int) -> str:
    p = "-1" if pid == -1 else f"{pid:04d}"
    return f"{p}_c{cam + 1}s{seq}_{frame:06d}_{bbox:02d}.jpg"


def _plan_identity(
    seed: int,
    split_tag: int,
    index: int,
    cameras: int,
    cameras_per_id: tuple[int, int],
    images_per_camera: tuple[int, int],
    min_per_camera: int,
    domain: int = 0,
) -> list[tuple[int, int, int, int]]:
    """(camera, sequence, frame, bbox) of each image of one identity, cameras sorted."""
    rng = np.random.default_rng(domain_keys([seed, TAG_LAYOUT, split_tag, index], domain))
    k = int(rng.integers(cameras_per_id[0], cameras_per_id[1] + 1))
    shots = []
    for cam in sorted(int(c) for c in rng.choice(cameras, size=k, replace=False)):
        n = max(int(rng.integers(images_per_camera[0], images_per_camera[1] + 1)), min_per_camera)
        seq = int(rng.integers(1, 7))
        frame = int(rng.integers(0, 150_000))
        for _ in range(n):
            frame += int(rng.integers(5, 80))  # strictly increasing: unique names per (pid, cam)
            shots.append((cam, seq, frame, int(rng.integers(1, 9))))
    return shots


def _prepare_root(root: Path, overwrite: bool) -> None:
    """Create the folders; refuse to mix with old files unless they are ours and overwrite."""
    existing = [p for d in SPLIT_DIRS if (root / d).is_dir() for p in (root / d).iterdir()]
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{root} already holds images; pass overwrite=True to regenerate it"
            )
        if not (root / META_FILE).is_file():
            raise FileExistsError(
                f"{root} holds images but no {META_FILE}: refusing to delete a dataset that the "
                "synthetic generator did not write"
            )
        for p in existing:
            if p.is_file() and _NAME_RE.match(p.name):
                p.unlink()
    for d in SPLIT_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)


def _range(name: str, value: int | tuple[int, int], lo: int) -> tuple[int, int]:
    a, b = (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
    if a < lo or b < a:
        raise ValueError(f"{name} must be an int or a (min, max) range with {lo} <= min <= max")
    return a, b


def generate_synthetic_reid(
    root: str | os.PathLike[str],
    train_ids: int = 200,
    test_ids: int = 200,
    cameras: int = 6,
    *,
    cameras_per_id: int | tuple[int, int] = (2, 6),
    images_per_camera: int | tuple[int, int] = (2, 4),
    distractors: int | None = None,
    junk: int | None = None,
    occlusion: float = 0.3,
    sibling_fraction: float = 0.4,
    height: int = 128,
    width: int = 64,
    seed: int = 0,
    domain: int = 0,
    jpeg_quality: int = 90,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SyntheticSummary:
    """Write a synthetic pedestrian re-ID dataset in the Market-1501 layout under ``root``.

    Args:
        root: output folder (``bounding_box_train/``, ``query/``, ``bounding_box_test/``).
        train_ids, test_ids: number of identities per split (pids 1..N and N+1..N+M).
        cameras: number of cameras (2..9), as ``c1..cK`` in the file names.
        cameras_per_id: how many cameras see an identity (clipped to ``[2, cameras]``).
        images_per_camera: images of an identity per camera (test identities get at least 2,
            one of which becomes the query).
        distractors: pid-0 gallery images of other people (default ``2 * test_ids``).
        junk: pid-(-1) gallery images: background, cut or zoomed boxes (default ``test_ids``).
        occlusion: probability that an image has an occluder.
        sibling_fraction: share of identities in sibling groups (same globals, see module doc).
        height, width: image size (Market-1501: 128 x 64).
        seed: everything is a function of it; same seed gives byte-identical files.
        domain: the camera network (:data:`~bdbnet.data.synthetic.domains.DOMAINS`): 0 is the
            original one; another differs in stated ways (scenes, light, colour cast,
            resolution, viewpoints) and shows other people than domain 0 at the same seed.
        jpeg_quality: Pillow JPEG quality.
        workers: processes for rendering (``None``: all cores for large datasets, else 1).
            The output does not depend on it.
        overwrite: replace an earlier synthetic dataset at ``root`` (never other files).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`SyntheticSummary`, also written to ``root/synthetic_meta.json``.
    """
    start = time.perf_counter()
    if train_ids < 1 or test_ids < 1:
        raise ValueError("train_ids and test_ids must be >= 1")
    if not 2 <= cameras <= 9:
        raise ValueError("cameras must be in [2, 9] (one digit in Market-1501 file names)")
    if not 0.0 <= occlusion <= 1.0:
        raise ValueError("occlusion must be in [0, 1]")
    if height < 32 or width < 16:
        raise ValueError("images must be at least 32 x 16 pixels")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    spec = get_domain(domain)  # an unknown domain: ValueError naming the known ones
    cpi = _range("cameras_per_id", cameras_per_id, 1)
    cpi = (min(max(cpi[0], 2), cameras), min(max(cpi[1], 2), cameras))
    ipc = _range("images_per_camera", images_per_camera, 1)
    n_distractors = 2 * test_ids if distractors is None else int(distractors)
    n_junk = test_ids if junk is None else int(junk)
    if n_distractors < 0 or n_junk < 0:
        raise ValueError("distractors and junk must be >= 0")
    if n_distractors + n_junk > 900_000:
        raise ValueError("at most 900000 distractor + junk images (6-digit frame numbers)")

    root_path = Path(root)
    _prepare_root(root_path, overwrite)
    # Mark the folder as ours before the first image: an interrupted run can then be replaced
    # with overwrite=True, and readers see "complete": false (no params) until the end.
    marker = {"generator": "bdbnet.data.synthetic", "version": GENERATOR_VERSION, "complete": False}
    (root_path / META_FILE).write_text(json.dumps(marker, indent=2) + "\n")

    def keys(*purpose: int) -> list[int]:  # domain 0: (seed, purpose...) as ever
        return domain_keys([seed, *purpose], domain)

    train_people = sample_identities(train_ids, keys(TAG_TRAIN), sibling_fraction)
    test_people = sample_identities(test_ids, keys(TAG_TEST), sibling_fraction)
    distractor_people = sample_identities(n_distractors, keys(TAG_DISTRACTOR), 0.0)
    junk_people = sample_identities(n_junk, keys(TAG_JUNK), 0.0)

    jobs: list[Job] = []
    for i, person in enumerate(train_people):
        pid = i + 1
        for k, (cam, seq, frame, bb) in enumerate(
            _plan_identity(seed, KIND_TRAIN, i, cameras, cpi, ipc, 1, domain)
        ):
            jobs.append(
                (SPLIT_DIRS[0], _name(pid, cam, seq, frame, bb), KIND_TRAIN, i, k, cam, person)
            )
    for i, person in enumerate(test_people):
        pid = train_ids + i + 1
        shots = _plan_identity(seed, KIND_TEST, i, cameras, cpi, ipc, 2, domain)
        qrng = np.random.default_rng(keys(TAG_LAYOUT, 99, i))
        queries: set[int] = set()
        for cam in sorted({s[0] for s in shots}):
            idx = [k for k, s in enumerate(shots) if s[0] == cam]
            queries.add(idx[int(qrng.integers(len(idx)))])
        for k, (cam, seq, frame, bb) in enumerate(shots):
            folder = SPLIT_DIRS[1] if k in queries else SPLIT_DIRS[2]
            jobs.append((folder, _name(pid, cam, seq, frame, bb), KIND_TEST, i, k, cam, person))
    frng = np.random.default_rng(keys(TAG_FRAMES))
    frames = frng.choice(1_000_000, size=n_distractors + n_junk, replace=False)
    for kind, pid, people, offset in (
        (KIND_DISTRACTOR, 0, distractor_people, 0),
        (KIND_JUNK, -1, junk_people, n_distractors),
    ):
        for i, person in enumerate(people):
            cam = int(frng.integers(cameras))
            name = _name(
                pid,
                cam,
                int(frng.integers(1, 7)),
                int(frames[offset + i]),
                int(frng.integers(1, 9)),
            )
            jobs.append((SPLIT_DIRS[2], name, kind, i, 0, cam, person))

    for d in SPLIT_DIRS:  # cheap guard: Market-1501 needs unique names per folder
        names = [j[1] for j in jobs if j[0] == d]
        if len(names) != len(set(names)):  # pragma: no cover - ruled out by construction
            raise RuntimeError(f"duplicate file names in {d}")

    render_all(
        jobs,
        root_path,
        seed,
        cameras,
        height,
        width,
        occlusion,
        jpeg_quality,
        workers,
        progress,
        domain=domain,
    )

    def split(folder: str) -> SplitSummary:
        sel = [j for j in jobs if j[0] == folder]
        ids = {(j[2], j[3]) for j in sel if j[2] in (KIND_TRAIN, KIND_TEST)}
        return SplitSummary(images=len(sel), identities=len(ids))

    def n_siblings(people: list[IdentityAttributes]) -> int:
        groups: dict[int, int] = {}
        for p in people:
            groups[p.group] = groups.get(p.group, 0) + 1
        return sum(n for n in groups.values() if n > 1)

    summary = SyntheticSummary(
        root=root_path,
        train=split(SPLIT_DIRS[0]),
        query=split(SPLIT_DIRS[1]),
        gallery=split(SPLIT_DIRS[2]),
        distractors=n_distractors,
        junk=n_junk,
        cameras=cameras,
        siblings={"train": n_siblings(train_people), "test": n_siblings(test_people)},
        seconds=round(time.perf_counter() - start, 3),
        domain=domain,
        domain_description=spec.description,
    )
    params = {
        "train_ids": train_ids,
        "test_ids": test_ids,
        "cameras": cameras,
        "cameras_per_id": list(cpi),
        "images_per_camera": list(ipc),
        "distractors": n_distractors,
        "junk": n_junk,
        "occlusion": occlusion,
        "sibling_fraction": sibling_fraction,
        "height": height,
        "width": width,
        "seed": seed,
        "domain": domain,
        "jpeg_quality": jpeg_quality,
    }
    counts = summary.to_dict()
    del counts["root"], counts["seconds"]  # keep the meta file itself deterministic
    del counts["domain"], counts["domain_description"]  # in "params" and "domain" below
    meta = {
        "generator": "bdbnet.data.synthetic",
        "version": GENERATOR_VERSION,
        "complete": True,
        "layout": "market1501",
        "params": params,
        "domain": spec.to_dict(),  # what this camera network shifts, as data and in words
        "counts": counts,
        "pids": {
            "train": [1, train_ids],
            "test": [train_ids + 1, train_ids + test_ids],
            "distractor": 0,
            "junk": -1,
        },
    }
    (root_path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return summary
