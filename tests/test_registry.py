"""bdbnet.registry: the one name -> factory table behind models and datasets."""

from __future__ import annotations

import pytest

from bdbnet.errors import ConfigError
from bdbnet.registry import Registry


def make() -> Registry:
    return Registry(
        "widget", lambda name, known: ConfigError(f"no widget {name!r}; known: {known}"), str.lower
    )


def test_register_get_and_list():
    widgets = make()

    @widgets.register("Round")
    def round_widget():
        return "o"

    widgets.register("Square")(lambda: "#")
    assert widgets.get("ROUND") is round_widget and widgets.get("square")() == "#"
    assert widgets.names() == ["round", "square"]
    assert "Round" in widgets and "hexagon" not in widgets and 3 not in widgets


def test_unknown_names_raise_the_registrys_own_error():
    widgets = make()
    widgets.register("round")(object)
    with pytest.raises(ConfigError, match=r"no widget 'oval'; known: \['round'\]"):
        widgets.get("oval")


def test_a_taken_name_is_refused_but_registering_the_same_factory_again_is_not():
    widgets = make()
    widgets.register("round")(int)
    widgets.register("ROUND")(int)
    with pytest.raises(ValueError, match="widget 'round' is already registered"):
        widgets.register("round")(float)
    assert widgets.get("round") is int
