"""Gallery filters (``search --where``, the service's ``where``): one small expression language,
checked once, evaluated on a file index's columns or handed to a vector engine.

Why one language: a user query ("cameras 1 and 3, after 8 am") must mean the same on a file
index searched in memory and on a Milvus collection filtered by the engine, and a typo must be a
one-line error before any search runs. The grammar is a subset of Python's and of Milvus's
boolean expressions::

    camid in [0, 2] and time >= 1700000000
    not (pid == 12 and camid == 3)
    source == "entrance" or pid < 0

Fields: ``pid``, ``camid``, ``time`` (integers; ``time`` in seconds) and ``source`` (a string).
Operators: ``== != < <= > >=`` (one per comparison, field on the left), ``in`` / ``not in`` a
list of constants, ``and``, ``or``, ``not`` and parentheses.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bdbnet.errors import ConfigError

__all__ = ["FIELDS", "GalleryFilter", "GalleryFilterError", "parse_where"]

FIELDS = {"pid": int, "camid": int, "time": int, "source": str}

_COMPARE: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", np.equal),
    ast.NotEq: ("!=", np.not_equal),
    ast.Lt: ("<", np.less),
    ast.LtE: ("<=", np.less_equal),
    ast.Gt: (">", np.greater),
    ast.GtE: (">=", np.greater_equal),
}


class GalleryFilterError(ConfigError):
    """A ``--where`` expression that does not parse or names what a gallery does not hold."""


@dataclass(frozen=True)
class GalleryFilter:
    """A checked ``--where`` expression (see the module documentation).

    Example:
        >>> f = parse_where("camid in [0, 2] and not pid == 5")
        >>> f.milvus()
        '(camid in [0, 2] and not (pid == 5))'
        >>> f.mask({"pid": np.array([5, 6, 7]), "camid": np.array([0, 2, 1])}).tolist()
        [False, True, False]
    """

    text: str
    tree: ast.expr

    @property
    def fields(self) -> set[str]:
        return {node.id for node in ast.walk(self.tree) if isinstance(node, ast.Name)}

    def mask(self, columns: Mapping[str, np.ndarray | None]) -> np.ndarray:
        """Which rows of ``columns`` (field -> 1-D array, ``None`` for a field the gallery does
        not have) the filter keeps."""
        missing = sorted(f for f in self.fields if columns.get(f) is None)
        if missing:
            held = ", ".join(sorted(k for k, v in columns.items() if v is not None)) or "no field"
            raise GalleryFilterError(
                f"--where {self.text!r} uses {', '.join(missing)}, which this gallery does not "
                f"record (it has {held})"
            )
        return np.asarray(_evaluate(self.tree, columns), dtype=bool)

    def milvus(self) -> str:
        """The same filter as a Milvus boolean expression."""
        return _milvus(self.tree)


def parse_where(text: str) -> GalleryFilter:
    """Check ``text`` against the grammar; raise :class:`GalleryFilterError` saying what is
    wrong and what is allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as err:
        raise _error(text, f"does not parse ({err.msg})") from None
    _check(tree, text)
    return GalleryFilter(text.strip(), tree)


def _error(text: str, what: str) -> GalleryFilterError:
    return GalleryFilterError(
        f"--where {text.strip()!r} {what}: write comparisons of {', '.join(FIELDS)} with "
        "== != < <= > >= or in [...], joined by and / or / not"
    )


def _check(node: ast.expr, text: str) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, text)
    elif isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise _error(text, "chains comparisons")
        field, op, value = node.left, node.ops[0], node.comparators[0]
        if not isinstance(field, ast.Name) or field.id not in FIELDS:
            name = field.id if isinstance(field, ast.Name) else ast.unparse(field)
            raise _error(text, f"compares {name!r}, which is not a field")
        kind = FIELDS[field.id]
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(value, ast.List | ast.Tuple) or not value.elts:
                word = "not in" if isinstance(op, ast.NotIn) else "in"
                raise _error(text, f"needs a non-empty list after {word}")
            for item in value.elts:
                _constant(item, kind, field.id, text)
        elif type(op) in _COMPARE:
            _constant(value, kind, field.id, text)
            if kind is str and not isinstance(op, ast.Eq | ast.NotEq):
                raise _error(text, f"orders the text field {field.id!r}")
        else:
            raise _error(text, f"uses the operator {type(op).__name__}")
    else:
        raise _error(text, f"holds {ast.unparse(node)!r}, which is not a comparison")


def _constant(node: ast.expr, kind: type, field: str, text: str) -> None:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = None
    if kind is str:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        want = "a quoted text" if kind is str else "an integer"
        raise _error(text, f"compares {field} with {ast.unparse(node)}, not {want}")


def _value(node: ast.expr) -> Any:
    return ast.literal_eval(node)


def _evaluate(node: ast.expr, columns: Mapping[str, Any]) -> np.ndarray:
    if isinstance(node, ast.BoolOp):
        parts = [_evaluate(v, columns) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = parts[0]
        for part in parts[1:]:
            out = combine(out, part)
        return out
    if isinstance(node, ast.UnaryOp):
        return np.logical_not(_evaluate(node.operand, columns))
    assert isinstance(node, ast.Compare)
    column = np.asarray(columns[node.left.id])  # type: ignore[attr-defined]
    op = node.ops[0]
    if isinstance(op, ast.In | ast.NotIn):
        inside = np.isin(column, [_value(item) for item in node.comparators[0].elts])  # type: ignore[attr-defined]
        return inside if isinstance(op, ast.In) else ~inside
    return _COMPARE[type(op)][1](column, _value(node.comparators[0]))


def _milvus(node: ast.expr) -> str:
    if isinstance(node, ast.BoolOp):
        word = " and " if isinstance(node.op, ast.And) else " or "
        return "(" + word.join(_milvus(v) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        return f"not ({_milvus(node.operand)})"
    assert isinstance(node, ast.Compare)
    field, op = node.left.id, node.ops[0]  # type: ignore[attr-defined]
    if isinstance(op, ast.In | ast.NotIn):
        items = ", ".join(json.dumps(_value(i)) for i in node.comparators[0].elts)  # type: ignore[attr-defined]
        return f"{field} {'in' if isinstance(op, ast.In) else 'not in'} [{items}]"
    return f"{field} {_COMPARE[type(op)][0]} {json.dumps(_value(node.comparators[0]))}"
