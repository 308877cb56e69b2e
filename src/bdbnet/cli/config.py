"""``bdbnet config``: the resolved configuration as YAML, what ``bdbnet train`` would run."""

from __future__ import annotations

import argparse
from typing import Any

from bdbnet.cli.support import add_command


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "config",
        "print the resolved configuration (YAML)",
        """
        Resolve defaults < --preset < --config FILE < key=value overrides, check the result as
        training does, and print it as YAML. Without --preset and --config: the defaults alone.
        The output is a valid --config file.
        """,
        """
        bdbnet config --preset market1501 optim.epochs=120 train.amp=bf16 > my_recipe.yaml
        bdbnet train --dataset market1501 --root /data --config my_recipe.yaml
        """,
    )
    p.add_argument("--preset", default=None, help="recipe preset (see the README's table)")
    p.add_argument("--config", default=None, help="YAML file applied after the preset")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.epochs=60"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.config import load_config

    cfg = load_config(args.preset, args.config, list(args.overrides))
    print(cfg.to_yaml(), end="")
    return 0
