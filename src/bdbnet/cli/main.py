"""``bdbnet`` (also ``python -m bdbnet``): the parser assembled from one module per command,
and the one place that turns user errors into a message and exit status 2.

Each command module owns its parser (``add_parser(subparsers)``) and its handler (``run``);
heavy imports happen inside the handlers so ``bdbnet --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bdbnet.cli import (
    config,
    datasets,
    demo,
    evaluate,
    export,
    extract,
    search,
    serve,
    synth,
    train,
    visualize,
)
from bdbnet.cli.support import HelpFormatter, parse_args, show_library_messages
from bdbnet.version import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

#: In the order ``bdbnet --help`` lists them.
COMMANDS = (
    demo,
    synth,
    train,
    evaluate,
    extract,
    datasets,
    search,
    visualize,
    export,
    config,
    serve,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bdbnet",
        description="Batch DropBlock Network for re-ID and metric learning.",
        epilog="`bdbnet COMMAND --help` describes a command, its defaults and an example.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bdbnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. User errors (:class:`~bdbnet.errors.BDBNetError`) print one line and
    return 2; anything else is a bug and keeps its traceback."""
    parser = build_parser()
    args = parse_args(parser, argv)
    from bdbnet.errors import BDBNetError

    show_library_messages()
    try:
        return args.func(args)
    except BDBNetError as err:
        text = str(err)
        if "Original Traceback" in text:  # re-raised from a DataLoader worker: its last line
            text = text.strip().splitlines()[-1].split(": ", 1)[-1]
        message, _, detail = text.partition("\n")
        print(f"bdbnet {args.command}: error: {message}", file=sys.stderr)
        if detail.strip():  # e.g. a dataset's expected layout, after the one-line message
            print(detail.rstrip(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted (a training run continues with --resume, an extraction into a file "
            "index or a Milvus gallery when run again)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
