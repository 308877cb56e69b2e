"""Training on several datasets at once (``data.sources``): one training split over their union.

Why: a model trained on one camera network loses most of its accuracy on another; training on
several sources (torchreid's ``sources=[...]``) is the standard remedy. Each source keeps its own
identities and cameras (offsets make them distinct: person 1 of Market-1501 is not person 1 of
DukeMTMC-reID) and every record remembers its source. ``data.combine_all`` also trains on each
source's query and gallery images (torchreid's ``combineall``, a generalist model); junk (-1)
and distractor (0) images are left out of them. The test split stays the first source's unless
``eval.targets`` names others (:func:`build_targets`: a model trained on A, tested on B).

A source is ``NAME`` (at ``data.root``) or ``NAME=ROOT``; two copies of the same loader at
different roots are two sources (two synthetic camera networks, say).

Example:
    >>> cfg.data.sources = ["market1501=/data/market", "dukemtmcreid=/data/duke"]  # doctest: +SKIP
    >>> splits = build_sources(cfg.data)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bdbnet.data.records import DatasetSplits, ImageRecord, relabel
from bdbnet.data.registry import build_dataset, list_datasets
from bdbnet.errors import ConfigError, DataError

__all__ = [
    "EvalTarget",
    "build_sources",
    "build_targets",
    "parse_sources",
    "seen_in_training",
    "target_labels",
]


@dataclass(frozen=True)
class EvalTarget:
    """A test split to evaluate on, and the name its rows carry (``NAME``, or ``NAME=ROOT``
    where two targets share a loader)."""

    label: str
    splits: DatasetSplits


def parse_sources(
    sources: list[str], default_root: str, key: str = "data.sources"
) -> list[tuple[str, str]]:
    """``(name, root)`` of each ``NAME[=ROOT]``, checked: known names, a root for each, no
    source twice. ``key`` names the setting in messages (``data.sources``, ``eval.targets``)."""
    known = {n.lower(): n for n in list_datasets()}
    parsed = []
    for text in sources:
        name, _, root = text.partition("=")
        name, root = name.strip(), (root.strip() or default_root)
        if name.lower() not in known:
            raise ConfigError(f"{key}: unknown dataset {name!r}; known: {', '.join(sorted(known))}")
        if not root:
            raise ConfigError(f"{key}: {name} has no root: write {name}=ROOT or give --root")
        name = known[name.lower()]
        if any(n == name and _same(r, root) for n, r in parsed):
            raise ConfigError(f"{key}: {name}={root} is given twice")
        parsed.append((name, root))
    return parsed


def target_labels(parsed: list[tuple[str, str]]) -> list[str]:
    """The names test splits are reported under: the dataset's name, or ``NAME=ROOT`` where
    two of ``parsed`` share a loader (two synthetic camera networks)."""
    names = [name for name, _ in parsed]
    return [name if names.count(name) == 1 else f"{name}={root}" for name, root in parsed]


def _same(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def _check_apart(sources: list[tuple[str, str]], loaded: list[DatasetSplits]) -> None:
    """No two sources in one dataset folder, and none inside another's: checked on the folders
    the loaders found (a root may be the parent of several datasets' standard folders)."""
    for i, ((name, root), splits) in enumerate(zip(sources, loaded)):
        for (other, other_root), other_splits in zip(sources[:i], loaded[:i]):
            a, b = Path(os.path.abspath(splits.root)), Path(os.path.abspath(other_splits.root))
            if a == b:
                raise ConfigError(
                    f"data.sources: {name}={root} and {other}={other_root} are the same "
                    f"dataset folder {a}: its images would be trained on twice"
                )
            if a.is_relative_to(b) or b.is_relative_to(a):
                raise ConfigError(
                    f"data.sources: the folders of {other}={other_root} ({b}) and "
                    f"{name}={root} ({a}) overlap (one holds the other): their images would be "
                    "trained on twice"
                )


def build_sources(data: Any) -> DatasetSplits:
    """The splits ``data`` describes: ``data.dataset`` at ``data.root`` alone, or the union of
    ``data.sources`` for training (see the module documentation)."""
    if not data.sources and not data.combine_all:
        return build_dataset(data.dataset, data.root)
    sources = parse_sources(data.sources or [data.dataset], data.root)
    loaded = [build_dataset(name, root) for name, root in sources]
    _check_apart(sources, loaded)
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


def build_targets(data: Any, targets: list[str], trained: DatasetSplits) -> list[EvalTarget]:
    """The test splits ``eval.targets`` names (``NAME[=ROOT]``, names alone at ``data.root``),
    or, when it names none, the test split of ``trained`` (the first source's) under the first
    source's name.

    Raises:
        ConfigError: an unknown name, a target given twice, one of another task than the
            training data, or one without a test split (no query images).
    """
    if not targets:
        first = data.sources[0].partition("=")[0].strip() if data.sources else trained.name
        return [EvalTarget(first, trained)]
    parsed = parse_sources(targets, data.root, key="eval.targets")
    found = []
    for (name, root), label in zip(parsed, target_labels(parsed)):
        try:
            splits = build_dataset(name, root)
        except DataError as err:
            raise DataError(
                f"eval.targets: {err} (give the target's folder as {name}=ROOT, on the command "
                f"line --eval-dataset {name}=ROOT)"
            ) from None
        if splits.task != trained.task:
            raise ConfigError(
                f"eval.targets: {label} is a {splits.task} dataset and the run trains "
                f"{trained.task}: evaluate it with a model of its task"
            )
        if not splits.query:
            raise ConfigError(
                f"eval.targets: {label} at {splits.root} has no test split (no query images) "
                "to evaluate on"
            )
        found.append(EvalTarget(label, splits))
    return found


def seen_in_training(targets: list[EvalTarget], trained: DatasetSplits) -> list[str]:
    """Labels of the targets whose query or gallery images are training images (a source
    trained with ``data.combine_all``): their numbers are not benchmark results."""
    paths = {r.path for r in trained.train}
    return [
        t.label
        for t in targets
        if any(r.path in paths for r in (*t.splits.query, *t.splits.gallery))
    ]
