"""``bdbnet demo``: the whole product in minutes on a CPU (synthetic data, training,
evaluation, pictures)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bdbnet.cli.support import DEVICE_HELP, POSITIVE, add_command, int_at_least


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "demo",
        "synthesize data, train BDB, evaluate, plot (CPU, minutes)",
        """
        Generate the synthetic re-ID dataset, train BDB on it, evaluate it before and after
        training, print a results table and write the training curve, the CMC curve and ranked
        lists to --output. With --ablation: BDB against the global-branch baseline over seeds.
        """,
        """
        bdbnet demo --output demo_output --epochs 5
        bdbnet demo --ablation --seeds 0 1 2
        """,
    )
    p.add_argument("--output", default="demo_output", help="folder for data, run and pictures")
    p.add_argument(
        "--epochs", type=POSITIVE, default=None, help="training epochs (default: the preset's, 5)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument(
        "--amp",
        choices=("none", "bf16", "auto"),
        default="auto",
        help="precision: none (fp32), bf16 autocast, or auto (bf16 only where the CPU/GPU "
        "computes it natively, so the numbers depend on the machine)",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="compare BDB with the global-branch baseline over several seeds",
    )
    p.add_argument(
        "--all-variants",
        action="store_true",
        help="with --ablation: also no-drop and per-sample DropBlock",
    )
    p.add_argument(
        "--seeds", type=int_at_least(0), nargs="+", default=[0, 1, 2], help="--ablation seeds"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars (one line per epoch)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.demo import VARIANTS, run_ablation, run_demo
    from bdbnet.outputs import ensure_output_dir

    ensure_output_dir(args.output)
    overrides = [f"train.amp={args.amp}"]
    if args.ablation:
        variants = tuple(VARIANTS) if args.all_variants else tuple(list(VARIANTS)[:2])
        run_ablation(
            Path(args.output) / "ablation",
            tuple(args.seeds),
            variants,
            args.epochs,
            args.device,
            progress=not args.quiet,
            overrides=overrides,
        )
    else:
        run_demo(
            args.output, args.epochs, args.device, progress=not args.quiet, overrides=overrides
        )
    return 0
