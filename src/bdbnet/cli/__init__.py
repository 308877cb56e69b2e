"""The ``bdbnet`` command line: one module per command (``bdbnet.cli.train`` ...), each owning
its parser and handler; :mod:`bdbnet.cli.main` assembles them, :mod:`bdbnet.cli.support` holds
what they share."""

from bdbnet.cli.main import COMMANDS, build_parser, main
from bdbnet.cli.support import CLIError
from bdbnet.cli.train import default_preset

__all__ = ["COMMANDS", "CLIError", "build_parser", "default_preset", "main"]
