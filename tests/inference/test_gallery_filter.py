"""``--where`` filters: one checked expression, the same rows kept in memory as by the engine's
expression, and a one-line error for anything outside the grammar."""

from __future__ import annotations

import numpy as np
import pytest

from bdbnet.errors import ConfigError
from bdbnet.inference.gallery_filter import GalleryFilterError, parse_where

COLUMNS = {
    "pid": np.array([1, 2, 2, 3, -1, 0]),
    "camid": np.array([0, 1, 2, 0, 1, 2]),
    "time": np.array([10, 20, 30, 40, 50, 60]),
    "source": np.array(["a", "b", "a", "b", "a", "c"]),
}


@pytest.mark.parametrize(
    ("text", "kept", "milvus"),
    [
        ("camid == 0", [0, 3], "camid == 0"),
        ("camid in [0, 2]", [0, 2, 3, 5], "camid in [0, 2]"),
        ("camid not in (0, 2)", [1, 4], "camid not in [0, 2]"),
        ("pid >= 2 and time < 40", [1, 2], "(pid >= 2 and time < 40)"),
        ("not (pid == 2 and camid == 1)", [0, 2, 3, 4, 5], "not ((pid == 2 and camid == 1))"),
        ("pid == -1 or source == 'c'", [4, 5], '(pid == -1 or source == "c")'),
        ('source != "a" and time > 15', [1, 3, 5], '(source != "a" and time > 15)'),
    ],
)
def test_rows_kept_and_the_engine_expression(text, kept, milvus):
    where = parse_where(text)
    assert np.flatnonzero(where.mask(COLUMNS)).tolist() == kept
    assert where.milvus() == milvus


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("camid = 1", "does not parse (invalid syntax"),
        ("camera == 1", "compares 'camera', which is not a field"),
        ("1 == camid", "compares '1', which is not a field"),
        ("0 < pid < 5", "chains comparisons"),
        ("camid in []", "needs a non-empty list after in"),
        ("camid == 'x'", "compares camid with 'x', not an integer"),
        ("camid == 1.5", "compares camid with 1.5, not an integer"),
        ("source == 3", "compares source with 3, not a quoted text"),
        ("source < 'b'", "orders the text field 'source'"),
        ("pid is 3", "uses the operator Is"),
        ("camid", "holds 'camid', which is not a comparison"),
        ("len('x') == 1", "compares \"len('x')\", which is not a field"),  # never called
    ],
)
def test_what_the_grammar_refuses_is_one_line(text, what):
    with pytest.raises(GalleryFilterError) as caught:
        parse_where(text)
    message = str(caught.value)
    assert message.startswith(f"--where {text!r} {what}"), message
    assert message.endswith("joined by and / or / not") and "\n" not in message
    assert isinstance(caught.value, ConfigError)  # a user error: one line, exit 2


def test_a_field_the_gallery_does_not_record_is_refused():
    where = parse_where("time > 5 and camid == 1")
    with pytest.raises(GalleryFilterError, match=r"uses time, which this gallery does not record"):
        where.mask({"pid": COLUMNS["pid"], "camid": COLUMNS["camid"], "time": None})
