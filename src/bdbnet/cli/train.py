"""``bdbnet train``: a paper recipe (preset) plus overrides, on one process or under torchrun.

The handler checks the run on rank 0 before any work
(:func:`~bdbnet.runtime.distributed.on_main`), so every process stops together on a user error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bdbnet.cli.support import (
    DEVICE_HELP,
    POSITIVE,
    CLIError,
    add_command,
    add_image_check_option,
)
from bdbnet.errors import ConfigError

__all__ = ["add_parser", "default_preset", "final_report", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "train",
        "train with a paper recipe (preset) plus overrides",
        """
        Train on a dataset with a recipe: the preset (default: the one named like the dataset),
        then --config FILE, then key=value overrides (they may stand anywhere on the line).
        Writes config.yaml, last.pt, metrics.jsonl and TensorBoard events to --output. --resume
        continues from the run's own config.yaml and last.pt. `bdbnet config` prints the
        resolved recipe without training. Under `torchrun --nproc-per-node N -m bdbnet train`
        the same run is distributed.
        """,
        """
        bdbnet train --dataset market1501 --root /data --epochs 120 train.amp=bf16
        bdbnet train --dataset market1501 --root /data --resume optim.epochs=400
        bdbnet train --dataset market1501 --eval-dataset dukemtmcreid --root /data
        bdbnet train --preset generalist --root /data
        """,
    )
    p.add_argument(
        "--dataset",
        action="append",
        metavar="NAME[=ROOT]",
        help="dataset name (see `bdbnet datasets`); repeat it to train on several sources at "
        "once (data.sources), each at its own =ROOT or at --root (default: the datasets the "
        "--preset/--config names)",
    )
    p.add_argument(
        "--eval-dataset",
        action="append",
        metavar="NAME[=ROOT]",
        help="evaluate on this dataset's test split (eval.targets), each in its own row; "
        "repeatable (default: the first training dataset's own test split)",
    )
    p.add_argument(
        "--root", default="", help="dataset folder (or its parent) of names given without =ROOT"
    )
    p.add_argument(
        "--preset", default=None, help="recipe preset (default: the dataset's; `bdbnet config`)"
    )
    p.add_argument("--config", default=None, help="YAML file applied after the preset")
    p.add_argument("--output", default=None, help="run folder (default: runs/<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/last.pt")
    p.add_argument(
        "--epochs",
        type=POSITIVE,
        default=None,
        help="training epochs, the same as optim.epochs=N (default: the recipe's)",
    )
    p.add_argument(
        "--device",
        default=None,
        help=f"{DEVICE_HELP} (default: the config's train.device, auto in every preset)",
    )
    add_image_check_option(p)
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. optim.epochs=60 train.amp=bf16",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bdbnet.config import load_config
    from bdbnet.data.checks import check_training_run
    from bdbnet.data.sources import build_sources, build_targets, seen_in_training
    from bdbnet.engine.builders import best_target
    from bdbnet.engine.resume import resume_config
    from bdbnet.engine.run_lock import acquire_run_lock
    from bdbnet.engine.trainer import Trainer
    from bdbnet.runtime.distributed import (
        init_distributed,
        on_main,
        shutdown,
        torchrun_restart_count,
    )

    if not (args.dataset or args.preset or args.config or args.resume):
        raise CLIError("give --dataset NAME (or a --preset/--config that names the datasets)")
    names = [d.partition("=")[0] for d in args.dataset or []]
    if args.dataset:
        overrides = dataset_overrides(args.dataset, args.root)
    else:  # the recipe names the datasets; --root is where those without a root are
        overrides = [f"data.root={args.root}"] if args.root else []
    overrides += target_overrides(args.eval_dataset or [], args.root) + list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.epochs:
        overrides.append(f"optim.epochs={args.epochs}")
    # A group restarted by `torchrun --max-restarts` resumes by itself.
    resume = args.resume or torchrun_restart_count() > 0
    if resume and not (names or args.output):
        raise CLIError("--resume needs the run's --output DIR (or its --dataset)")
    output = Path(args.output or f"runs/{'+'.join(names)}")
    cfg = resume_config(output, overrides) if resume else None
    notes = []
    if cfg is not None and (args.preset or args.config):
        source = "config.yaml" if (output / "config.yaml").is_file() else "last.pt's config"
        notes.append(f"resuming with {output}'s {source}: --preset/--config not applied")
    if cfg is None:
        preset = args.preset
        if preset is None and args.config is None:
            if not names:
                raise CLIError(f"{output} holds no run to resume: give --dataset NAME")
            preset = default_preset(names[0])
            notes.append(f"preset: {preset}")
        cfg = load_config(preset, args.config, overrides)
        if not args.output:
            output = Path(f"runs/{'+'.join(recipe_names(cfg))}")
    ctx = init_distributed(cfg.train.device, cfg.train.dist_timeout)
    say = print if ctx.is_main else _silent
    try:
        for note in notes:
            say(note)
        splits = build_sources(cfg.data)
        targets = build_targets(cfg.data, cfg.eval.targets, splits)
        if len(cfg.data.sources) > 1 or cfg.data.combine_all or cfg.eval.targets:
            tested = ", ".join(t.label for t in targets)
            say(f"training on {splits.name}: {len(splits.train)} images, "
                f"{splits.num_train_pids} identities; testing on {tested}")  # fmt: skip
        if cfg.train.keep_best != "none" and len(targets) > 1:
            followed = best_target(cfg.train.keep_best_target, targets)
            say(f"best.pt: the best {cfg.train.keep_best} on the test split of {followed}")
        seen = seen_in_training(targets, splits)
        if seen:
            say(f"note: the test images of {', '.join(seen)} are training images here "
                "(data.combine_all): their rows are not benchmark results")  # fmt: skip

        # checked on rank 0 only (every image opened once), its error raised on every rank;
        # rank 0 also takes the folder's run lock here, so a busy folder stops every rank
        def check() -> None:
            check_training_run(
                splits,
                cfg.data,
                output,
                not args.skip_image_check,
                cfg.train.progress,
                others=[t.splits for t in targets if t.splits is not splits],
            )
            acquire_run_lock(output)

        on_main(ctx, check)
        trainer = Trainer.from_config(cfg, splits, output, resume=resume, ctx=ctx, targets=targets)
        if ctx.distributed:
            say(f"distributed: {ctx.world_size} processes on {ctx.device.type}")
        if trainer.start_epoch:
            say(f"resuming {output / 'last.pt'} after epoch {trainer.start_epoch}")
        elif resume:
            say(f"no checkpoint in {output}: starting from scratch")
        result = trainer.fit()
        if result.evaluations:
            say(final_report(result))
        say(f"checkpoint: {result.checkpoint}")
    finally:
        shutdown(ctx)
    return 0


def _silent(*args: object, **kwargs: object) -> None:
    """``print`` of the ranks other than 0."""


def final_report(result) -> str:
    """The last evaluation and, with ``train.keep_best``, the best one beside it, called what
    it is: selected on the test split. With several evaluation targets, a row per target and
    the column ``tested on`` (the best row's: the target it follows)."""
    from bdbnet.evaluation.report import AP_KEYS
    from bdbnet.reporting import format_table

    epoch = result.evaluations[-1]["epoch"]
    last = [e for e in result.evaluations if e["epoch"] == epoch]
    several = len(last) > 1
    extra = {"epoch", *AP_KEYS.values()}
    keys = [k for k, v in last[0].items() if isinstance(v, float) and k not in extra]

    def row(name: str, record: dict) -> list:
        where = [record.get("target", "")] if several else []
        return [name, *where] + [100 * record[k] for k in keys]

    rows = [row(f"last (epoch {epoch}, last.pt)", e) for e in last]
    if result.best is not None:
        best = result.best
        name = f"best {best['metric']} on the test split (epoch {best['epoch']}, best.pt)"
        rows.append(row(name, best))
    mode = last[0].get("ap_mode")
    headers = [f"mAP ({mode})" if k == "mAP" and mode else k for k in keys]
    return format_table(["model (%)", *(["tested on"] if several else []), *headers], rows)


def dataset_overrides(datasets: list[str], root: str) -> list[str]:
    """The config overrides of ``--dataset`` (repeatable, ``NAME[=ROOT]``) and ``--root``: one
    plain name is ``data.dataset``/``data.root`` as always; anything more is ``data.sources``."""
    from bdbnet.data.sources import parse_sources

    if len(datasets) == 1:
        name, _, own_root = datasets[0].partition("=")
        if not (own_root or root):
            raise CLIError(f"give the dataset's folder: --root DIR or --dataset {name}=DIR")
        return [f"data.dataset={name}", f"data.root={own_root or root}", "data.sources=[]"]
    try:
        sources = parse_sources(datasets, root)
    except ConfigError as err:
        raise CLIError(str(err).replace("data.sources: ", "--dataset: ")) from None
    listed = json.dumps([f"{n}={r}" for n, r in sources])  # a YAML flow list
    return [f"data.dataset={sources[0][0]}", f"data.root={sources[0][1]}", f"data.sources={listed}"]


def target_overrides(targets: list[str], root: str) -> list[str]:
    """``eval.targets`` of ``--eval-dataset NAME[=ROOT]`` (repeatable): names without a root
    are at ``--root``."""
    from bdbnet.data.sources import parse_sources

    if not targets:
        return []
    try:
        parsed = parse_sources(targets, root, key="--eval-dataset")
    except ConfigError as err:
        raise CLIError(str(err)) from None
    return [f"eval.targets={json.dumps([f'{n}={r}' for n, r in parsed])}"]


def recipe_names(cfg: Any) -> list[str]:
    """The training datasets' names a recipe holds (for the default run folder)."""
    return [s.partition("=")[0].strip() for s in cfg.data.sources] or [cfg.data.dataset]


def default_preset(dataset: str) -> str:
    """The recipe ``bdbnet train --dataset NAME`` uses without ``--preset``/``--config``: the
    preset named like the dataset, else the one its loader names (``preset``), else the paper's
    recipe for its task (Market-1501 for re-ID, CUB-200-2011 for retrieval)."""
    from bdbnet.config import list_presets
    from bdbnet.data import get_dataset_class

    presets = list_presets()
    if dataset.lower() in presets:
        return dataset.lower()
    cls = get_dataset_class(dataset)
    if getattr(cls, "preset", None) in presets:
        return cls.preset
    return "cub200" if getattr(cls, "task", "reid") == "retrieval" else "market1501"
