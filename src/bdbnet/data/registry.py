"""Dataset registry: names map to loader classes, and users can add their own.

A leaf: it imports no loader. The built-in loaders register themselves when
:mod:`bdbnet.data` imports :mod:`bdbnet.data.datasets`, which happens before this module can be
reached (``bdbnet.data.registry`` imports its package first).

Example:
    >>> from bdbnet.data import register_dataset, ReIDDataset
    >>> @register_dataset("my-cams")
    ... class MyCams(ReIDDataset):
    ...     def load(self):
    ...         ...
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import Any, Protocol, TypeVar

from bdbnet.errors import ConfigError
from bdbnet.registry import Registry


class UnknownDatasetError(ConfigError, KeyError):
    """No dataset is registered under that name (a ``KeyError`` too, for older callers)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class DatasetLoader(Protocol):
    """What the registry needs of a loader class: built from a root, it has ``splits``."""

    name: str

    def __call__(self, root: str | PathLike[str], **kwargs: Any) -> Any: ...


DATASETS: Registry[DatasetLoader] = Registry(
    "dataset",
    lambda name, known: UnknownDatasetError(
        f"unknown dataset {name!r}; available: {', '.join(known)}"
    ),
    normalise=str.lower,
)
_REGISTRY = DATASETS.entries  # the table itself, for code that saved and restored it

T = TypeVar("T", bound=type)


def register_dataset(name: str) -> Callable[[T], T]:
    """Class decorator that makes a dataset available to ``build_dataset`` and the CLI."""

    def decorator(cls: T) -> T:
        DATASETS.register(name)(cls)  # type: ignore[arg-type]
        cls.name = name.lower()  # type: ignore[attr-defined]
        return cls

    return decorator


def list_datasets() -> list[str]:
    """Names of all registered datasets, sorted."""
    return DATASETS.names()


def get_dataset_class(name: str) -> Any:
    """The loader class registered as ``name`` (case-insensitive)."""
    return DATASETS.get(name)


def build_dataset(name: str, root: str | PathLike[str], **kwargs: Any) -> Any:
    """Load dataset ``name`` from ``root`` and return its splits (``.train``, ``.query``,
    ``.gallery``).

    ``root`` may be the dataset folder itself or its parent holding the standard folder name.

    Example:
        >>> ds = build_dataset("market1501", root="/data/market1501")  # doctest: +SKIP
        >>> len(ds.train), ds.num_train_pids  # doctest: +SKIP
        (12936, 751)
    """
    return get_dataset_class(name)(root, **kwargs).splits
