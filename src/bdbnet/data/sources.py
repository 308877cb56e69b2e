"""Training on several datasets at once (``data.sources``): one training split over their union.

Why: a model trained on one camera network loses most of its accuracy on another; training on
several sources (torchreid's ``sources=[...]``) is the standard remedy. Each source keeps its own
identities and cameras (offsets make them distinct: person 1 of Market-1501 is not person 1 of
DukeMTMC-reID) and every record remembers its source. ``data.combine_all`` also trains on each
source's query and gallery images (torchreid's ``combineall``, a generalist model); junk (-1)
and distractor (0) images are left out of them. The test split stays the first source's.

A source is ``NAME`` (at ``data.root``) or ``NAME=ROOT``; two copies of the same loader at
different roots are two sources (two synthetic camera networks, say).

Example:
    >>> cfg.data.sources = ["market1501=/data/market", "dukemtmcreid=/data/duke"]  # doctest: +SKIP
    >>> splits = build_sources(cfg.data)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from bdbnet.data.records import DatasetSplits, ImageRecord, relabel
from bdbnet.data.registry import build_dataset, list_datasets
from bdbnet.errors import ConfigError

__all__ = ["build_sources", "parse_sources"]


def parse_sources(sources: list[str], default_root: str) -> list[tuple[str, str]]:
    """``(name, root)`` of each ``NAME[=ROOT]``, checked: known names, a root for each, no
    source twice, no root inside another's."""
    known = {n.lower(): n for n in list_datasets()}
    parsed = []
    for text in sources:
        name, _, root = text.partition("=")
        name, root = name.strip(), (root.strip() or default_root)
        if name.lower() not in known:
            raise ConfigError(
                f"data.sources: unknown dataset {name!r}; known: {', '.join(sorted(known))}"
            )
        if not root:
            raise ConfigError(f"data.sources: {name} has no root: write {name}=ROOT or give --root")
        parsed.append((known[name.lower()], root))
    for i, (name, root) in enumerate(parsed):
        for other, other_root in parsed[:i]:
            a, b = Path(os.path.abspath(root)), Path(os.path.abspath(other_root))
            if a == b:
                what = "given twice" if name == other else f"also the root of {other}"
                raise ConfigError(f"data.sources: {name}={root} is {what}")
            if a.is_relative_to(b) or b.is_relative_to(a):
                raise ConfigError(
                    f"data.sources: the roots of {other}={other_root} and {name}={root} "
                    "overlap (one holds the other): their images would be trained on twice"
                )
    return parsed


def build_sources(data: Any) -> DatasetSplits:
    """The splits ``data`` describes: ``data.dataset`` at ``data.root`` alone, or the union of
    ``data.sources`` for training (see the module documentation)."""
    if not data.sources and not data.combine_all:
        return build_dataset(data.dataset, data.root)
    sources = parse_sources(data.sources or [data.dataset], data.root)
    loaded = [build_dataset(name, root) for name, root in sources]
    tasks = {s.task for s in loaded}
    if len(tasks) > 1:
        raise ConfigError(
            "data.sources mixes re-ID and retrieval datasets: "
            + ", ".join(f"{n} ({s.task})" for (n, _), s in zip(sources, loaded))
        )
    train: list[ImageRecord] = []
    pid_offset = cam_offset = 0
    for (name, root), splits in zip(sources, loaded):
        label = f"{name}={root}" if len(sources) > 1 else name
        records = list(splits.train)
        if data.combine_all:
            lowest = 1 if splits.task == "reid" else 0  # re-ID: no junk (-1), no distractors (0)
            test = [r for r in (*splits.query, *splits.gallery) if r.pid >= lowest]
            records += [replace(r, pid=-1 - r.pid) for r in test]  # apart from training pids
        records = relabel(records)
        train += [
            replace(r, pid=r.pid + pid_offset, camid=r.camid + cam_offset, source=label)
            for r in records
        ]
        pid_offset += len({r.pid for r in records})
        cam_offset += 1 + max((r.camid for r in records), default=-1)
    first = loaded[0]
    return DatasetSplits(
        "+".join(name for name, _ in sources),
        first.root,
        train,
        first.query,
        first.gallery,
        first.task,
        {**first.extra, "sources": [f"{n}={r}" for n, r in sources]},
    )
