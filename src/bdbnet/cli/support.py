"""What every ``bdbnet`` command shares besides its handler: the help layout (defaults shown,
an example per command), argument types that refuse meaningless numbers at parse time,
``key=value`` overrides anywhere on the line, the model options of the inference commands, and
checks that run before any work."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from bdbnet.config import AMP_CHOICES, RUNTIME_CHOICES
from bdbnet.errors import BDBNetError, ImageError

__all__ = [
    "CLIError",
    "HelpFormatter",
    "add_command",
    "add_image_check_option",
    "add_model_options",
    "add_runtime_option",
    "bounded_float",
    "build_extractor",
    "check_index_output",
    "extract_paths",
    "float_above",
    "hidden_alias",
    "int_at_least",
    "parse_args",
    "require_readable",
    "show_library_messages",
]

_OVERRIDE = re.compile(r"[A-Za-z_]\w*\.[A-Za-z_]\w*=.*", re.DOTALL)
DEVICE_HELP = "cpu, cuda, cuda:N or auto (a GPU when there is one)"
AMP_HELP = "autocast precision (auto: bf16 where the hardware computes it natively; none: fp32)"
MODEL_HELP = (
    "the model file: our .pt, an exported .safetensors, an official BDB .pth.tar, an exported "
    ".onnx or an OpenVINO .xml (its preprocessing is read from the file)"
)
RUNTIME_HELP = (
    "inference runtime (auto: by the file: .onnx -> onnxruntime, .xml -> openvino, "
    "PyTorch weights -> torch)"
)


class CLIError(BDBNetError):
    """A user error found by the command line itself: printed without a traceback, exit 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with every meaningful default shown (not ``None``/``False``, and not twice
    where the help text already says it) and the description/example printed as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action) or text


def add_command(
    subparsers: Any, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A sub-command parser with the house layout: one-line ``summary`` in ``bdbnet --help``,
    a description and an ``example:`` epilog in ``bdbnet NAME --help``."""
    return subparsers.add_parser(
        name,
        help=summary,
        description="\n\n".join(
            textwrap.fill(" ".join(par.split()), 88) for par in description.strip().split("\n\n")
        ),
        epilog="example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  "),
        formatter_class=HelpFormatter,
    )


def hidden_alias(parser: argparse.ArgumentParser, old: str, dest: str, **kwargs: Any) -> None:
    """Accept an older spelling ``old`` of an option (scripts keep working) without listing it
    in ``--help``; it writes the same ``dest`` as the documented option."""
    parser.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= low`` (and ``<= high``; ``--topk 0`` fails at
    once, not later)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            within = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be an integer {within}; got {value}")
        return value

    parse.__name__ = f"integer >= {low}" if high is None else f"integer in [{low}, {high}]"
    return parse


POSITIVE = int_at_least(1)


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


def float_above(low: float, inclusive: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a number ``> low`` (``>= low`` when ``inclusive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= low if inclusive else value > low) or value != value:
            raise argparse.ArgumentTypeError(
                f"must be a number {'>=' if inclusive else '>'} {low:g}; got {text}"
            )
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


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (pytest's capture, a redirect)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        super().emit(record)


def show_library_messages(level: int = logging.INFO) -> None:
    """Print the library's ``logging`` messages (logger ``bdbnet``) as plain lines: info on
    stdout, warnings (``warning: ...``) on stderr. The library itself never configures logging."""
    logger = logging.getLogger("bdbnet")
    if not any(isinstance(h, _CurrentStdout) for h in logger.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(_PlainFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return f"warning: {text}" if record.levelno >= logging.WARNING else text


def add_image_check_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-image-check",
        action="store_true",
        help="do not open every image of the splits before starting (a bad file then fails "
        "the run when it is reached)",
    )


def add_model_options(p: argparse.ArgumentParser, batches: bool = True) -> None:
    """``--checkpoint`` and ``--device`` (every inference command); with ``batches`` also the
    options of feature extraction (``--batch-size``, ``--flip``, ``--amp``, ``--workers``,
    ``--quiet``)."""
    p.add_argument("--checkpoint", required=True, help=MODEL_HELP)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    if batches:
        add_runtime_option(p)
        p.add_argument("--batch-size", type=POSITIVE, default=32, help="images per forward pass")
        p.add_argument("--flip", action="store_true", help="average with mirrored images")
        p.add_argument("--amp", default="auto", choices=AMP_CHOICES, help=AMP_HELP)
        p.add_argument(
            "--workers",
            type=int_at_least(0),
            default=0,
            help="image-decoding threads (0: one per core, at most 8)",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_runtime_option(p: argparse.ArgumentParser) -> None:
    """``--runtime``: which inference runtime runs the model."""
    p.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES, help=RUNTIME_HELP)


def build_extractor(args: argparse.Namespace) -> Any:
    """The :class:`~bdbnet.inference.FeatureExtractor` the model options describe."""
    from bdbnet.inference import FeatureExtractor

    return FeatureExtractor(
        args.checkpoint,
        device=args.device,
        batch_size=getattr(args, "batch_size", 32),
        flip=getattr(args, "flip", False),
        amp=getattr(args, "amp", "auto"),
        progress=not getattr(args, "quiet", False),
        workers=getattr(args, "workers", 0),
        runtime=getattr(args, "runtime", "auto"),
    )


def extract_paths(extractor: Any, inputs: Sequence[str], what: str = "input") -> Any:
    """Features of image files/dirs, unreadable files skipped and reported on stderr."""
    import warnings

    from bdbnet.inference import list_images

    paths = list_images(inputs)
    if not paths:
        raise CLIError(f"no images found in {' '.join(inputs)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extraction = extractor.extract(paths, skip_unreadable=True)
    warn_skipped(extraction.skipped)
    require_readable(extraction, what, inputs)
    return extraction


def warn_skipped(skipped: Sequence[tuple[str, str]]) -> None:
    """One warning line on stderr per unreadable image an extraction left out."""
    for path, reason in skipped:
        print(f"warning: skipped unreadable image {path} ({reason})", file=sys.stderr)


def require_readable(extraction: Any, what: str, inputs: Sequence[str]) -> None:
    """Refuse an extraction that kept no image at all (every file unreadable)."""
    if len(extraction.paths) == 0:
        shown = "; ".join(f"{p} ({r})" for p, r in extraction.skipped[:5])
        more = f"; and {len(extraction.skipped) - 5} more" if len(extraction.skipped) > 5 else ""
        raise ImageError(
            f"none of the {len(extraction.skipped)} {what} image(s) in {' '.join(inputs)} can "
            f"be read: {shown}{more}"
        )


def add_engine_options(p: argparse.ArgumentParser, create: bool = False) -> None:
    """``--collection`` (and, where a gallery is made, ``--index-type``) of Milvus galleries."""
    from bdbnet.vector_engines import DEFAULT_COLLECTION, INDEX_TYPES

    p.add_argument(
        "--collection",
        default=DEFAULT_COLLECTION,
        help="the collection of a Milvus gallery (.db file or server URI)",
    )
    if create:
        p.add_argument(
            "--index-type",
            default="FLAT",
            choices=INDEX_TYPES,
            help="the vector index of a new Milvus gallery: FLAT (exact) or approximate "
            "(HNSW, IVF_FLAT; results re-scored exactly)",
        )


def check_index_output(path: str, projected: bool = False) -> None:
    """Before extracting anything: a known suffix (one that holds a PCA when ``projected``), a
    writable folder, safetensors installed."""
    import importlib.util

    from bdbnet.inference.index_files import SUFFIXES
    from bdbnet.outputs import ensure_output_file

    ensure_output_file(path, SUFFIXES, "index file")
    if projected and path.lower().endswith(".npy"):
        raise CLIError(
            f"{path}: a .npy index holds the features alone; write a projected index "
            "(its PCA stored with it) as .safetensors or .npz"
        )
    if path.lower().endswith(".safetensors") and importlib.util.find_spec("safetensors") is None:
        raise CLIError("writing .safetensors needs safetensors: pip install 'bdbnet[safetensors]'")
