"""One name -> factory table for everything users extend by name (models, datasets), so
registration, lookup, listing and their errors behave the same everywhere.

Example:
    >>> from bdbnet.errors import ConfigError
    >>> colours = Registry("colour", lambda name, known: ConfigError(f"no colour {name!r}"))
    >>> @colours.register("red")
    ... def red():
    ...     return "#f00"
    >>> colours.get("red")(), colours.names()
    ('#f00', ['red'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories of one ``kind`` under their names.

    Args:
        kind: What is registered (``"model"``, ``"dataset"``), for messages.
        unknown: Builds the error for a name nobody registered, given the name and the
            registered names (each registry's own user error and wording).
        normalise: Maps a name to its key (datasets: case-insensitive).
    """

    def __init__(
        self,
        kind: str,
        unknown: Callable[[str, list[str]], Exception],
        normalise: Callable[[str], str] = str,
    ) -> None:
        self.kind = kind
        self.unknown = unknown
        self.normalise = normalise
        self.entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated factory (class or function) as ``name``;
        registering another one under a taken name is a :class:`ValueError`."""

        def add(factory: T) -> T:
            key = self.normalise(name)
            existing = self.entries.get(key)
            if existing is not None and existing is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered ({existing!r})")
            self.entries[key] = factory
            return factory

        return add

    def get(self, name: str) -> T:
        """The factory registered as ``name``, or the registry's ``unknown`` error."""
        key = self.normalise(name)
        if key not in self.entries:
            raise self.unknown(name, self.names())
        return self.entries[key]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.normalise(name) in self.entries
