"""Dataset registry: names map to loader classes, and users can add their own.

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
from typing import Any, TypeVar

from bdbnet.errors import ConfigError


class UnknownDatasetError(ConfigError, KeyError):
    """No dataset is registered under that name (a ``KeyError`` too, for older callers)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


_REGISTRY: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register_dataset(name: str) -> Callable[[T], T]:
    """Class decorator that makes a dataset available to ``build_dataset`` and the CLI."""

    def decorator(cls: T) -> T:
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"dataset name {name!r} is already registered by {_REGISTRY[key]!r}")
        _REGISTRY[key] = cls
        cls.name = key  # type: ignore[attr-defined]
        return cls

    return decorator


def list_datasets() -> list[str]:
    """Names of all registered datasets, sorted."""
    _import_builtin()
    return sorted(_REGISTRY)


def get_dataset_class(name: str) -> type:
    _import_builtin()
    key = name.lower()
    if key not in _REGISTRY:
        available = ", ".join(sorted(_REGISTRY))
        raise UnknownDatasetError(f"unknown dataset {name!r}; available: {available}")
    return _REGISTRY[key]


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


def _import_builtin() -> None:
    # Importing the package registers the built-in datasets via their decorators.
    from bdbnet.data import datasets  # noqa: F401
