"""What every ``bdbnet`` command shares besides its handler: argument types that refuse
meaningless numbers at parse time, ``key=value`` overrides anywhere on the line, and checks that
run before any work.

Kept apart from :mod:`bdbnet.cli` so the handlers stay thin.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence

from bdbnet.errors import BDBNetError, ImageError

__all__ = [
    "CLIError",
    "bounded_float",
    "check_index_output",
    "int_at_least",
    "parse_args",
    "require_readable",
]

_OVERRIDE = re.compile(r"[A-Za-z_]\w*\.[A-Za-z_]\w*=.*", re.DOTALL)


class CLIError(BDBNetError):
    """A user error found by the command line itself: printed without a traceback, exit 2."""


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= low`` (``--topk 0`` fails at once, not later)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def bounded_float(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a number in ``[low, high]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}; got {value}")
        return value

    return parse


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``section.key=value`` words that argparse could not place (overrides
    given after an option, e.g. ``train optim.epochs=1 --root D data.height=64``) join the
    command's ``overrides``; anything else unknown is an error as usual."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all(_OVERRIDE.fullmatch(word) for word in extra):
            args.overrides = [*(args.overrides or []), *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def require_readable(extraction, what: str, inputs: Sequence[str]) -> None:
    """Refuse an extraction that kept no image at all (every file unreadable)."""
    if len(extraction.paths) == 0:
        shown = "; ".join(f"{p} ({r})" for p, r in extraction.skipped[:5])
        more = f"; and {len(extraction.skipped) - 5} more" if len(extraction.skipped) > 5 else ""
        raise ImageError(
            f"none of the {len(extraction.skipped)} {what} image(s) in {' '.join(inputs)} can "
            f"be read: {shown}{more}"
        )


def check_index_output(path: str) -> None:
    """Before extracting anything: a known suffix, a writable folder, safetensors installed."""
    import importlib.util

    from bdbnet.inference.index_files import SUFFIXES
    from bdbnet.outputs import ensure_output_file

    ensure_output_file(path, SUFFIXES, "index file")
    if path.lower().endswith(".safetensors") and importlib.util.find_spec("safetensors") is None:
        raise CLIError("writing .safetensors needs safetensors: pip install 'bdbnet[safetensors]'")
