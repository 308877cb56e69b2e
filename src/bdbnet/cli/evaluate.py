"""``bdbnet evaluate``: CMC/mAP/mINP (re-ID) or Recall@K (retrieval) of a checkpoint, with the
CMC curve and the worst queries' ranked lists on request."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bdbnet.cli.support import (
    AMP_CHOICES,
    AMP_HELP,
    DEVICE_HELP,
    MODEL_HELP,
    POSITIVE,
    CLIError,
    add_command,
    add_image_check_option,
    add_runtime_option,
    hidden_alias,
    int_at_least,
)

DEFAULT_FOLDER = "evaluation_plots"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command(
        subparsers,
        "evaluate",
        "CMC/mAP/mINP (re-ID) or Recall@K of a checkpoint",
        """
        Extract the features of the query and gallery splits and print the metrics: Rank-k,
        mAP (--ap-mode names the AP definition) and mINP for re-ID, Recall@K for retrieval.
        Accepts our checkpoints, exported .safetensors weights and the official BDB .pth.tar
        files. --output DIR gets cmc.png, and with --worst N the ranked lists of the N queries
        with the lowest AP (worst_queries.png).
        """,
        """
        bdbnet evaluate --checkpoint runs/market1501/last.pt --dataset market1501 \\
            --root /data --rerank --json metrics.json --output pictures/ --worst 8
        bdbnet evaluate --checkpoint runs/market1501/last.pt --root /data \\
            --dataset market1501 --dataset dukemtmcreid --json transfer.json
        """,
    )
    p.add_argument("--checkpoint", required=True, help=MODEL_HELP)
    p.add_argument(
        "--dataset",
        required=True,
        action="append",
        metavar="NAME[=ROOT]",
        help="dataset name (see `bdbnet datasets`); repeat it to evaluate on several test "
        "splits, a row each",
    )
    p.add_argument(
        "--root", default="", help="dataset folder (or its parent) of names given without =ROOT"
    )
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    p.add_argument("--flip", action="store_true", help="average with mirrored images")
    p.add_argument(
        "--ap-mode",
        default="full",
        choices=["full", "truncated", "trapezoid"],
        help="AP reported as mAP: full ranked list, truncated (the official BDB evaluator: cut "
        "at rank 50, divided by all positives) or trapezoid (Market-1501 MATLAB); --json has "
        "all three",
    )
    p.add_argument(
        "--aqe", action="store_true", help="alpha-query expansion (fast-reid's AQE) of both sets"
    )
    p.add_argument("--aqe-k", type=int, default=5, help="items averaged by --aqe, itself included")
    p.add_argument("--aqe-alpha", type=float, default=3.0, help="--aqe weight exponent")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the metrics here")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--amp", default="auto", choices=AMP_CHOICES, help=AMP_HELP)
    add_runtime_option(p)
    p.add_argument(
        "--batch-size",
        type=POSITIVE,
        default=None,
        help="images per forward pass (default: the checkpoint's data.test_batch_size)",
    )
    p.add_argument(
        "--workers",
        type=int_at_least(0),
        default=2,
        help="data-loading worker processes (decoding threads for an exported .onnx/.xml, "
        "or when the checkpoint's data.pipeline is tensor)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_image_check_option(p)
    p.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help=f"write cmc.png (and --worst) into this folder (default: none; {DEFAULT_FOLDER} "
        "with --worst)",
    )
    p.add_argument(
        "--worst",
        type=int_at_least(0),
        default=0,
        metavar="N",
        help="also draw the ranked lists of the N queries with the lowest AP into --output",
    )
    hidden_alias(p, "--plots", "output")
    hidden_alias(p, "--visualize", "worst", type=int_at_least(0))
    _add_save_run_argument(p)
    p.set_defaults(func=run)
    return p


def _add_save_run_argument(parser: argparse.ArgumentParser) -> None:
    """``evaluate --save-run DIR`` (what ``bdbnet serve --run DIR`` browses)."""
    from bdbnet.serve.settings import DEFAULT_RUN_TOPK as DEFAULT_TOPK

    parser.add_argument(
        "--save-run",
        default=None,
        metavar="DIR",
        help="keep the evaluation for `bdbnet serve --run DIR`: paths, labels, per-query AP and "
        f"each query's top-{DEFAULT_TOPK} ranking as scored (re-ranked with --rerank), "
        "in DIR/run.npz",
    )


def run(args: argparse.Namespace) -> int:
    from bdbnet.config import Config, validate
    from bdbnet.data import build_dataset
    from bdbnet.data.checks import check_test_split
    from bdbnet.data.sources import parse_sources, target_labels
    from bdbnet.errors import ConfigError
    from bdbnet.evaluation.report import AP_KEYS
    from bdbnet.files import atomic_write
    from bdbnet.inference.dataset_eval import evaluate_model
    from bdbnet.inference.runtimes import open_runtime
    from bdbnet.outputs import ensure_output_dir, ensure_output_file
    from bdbnet.reporting import AP_DEFINITIONS, format_table
    from bdbnet.runtime.device import resolve_device
    from bdbnet.serve.runs import check_run_output, save_run

    try:
        datasets = parse_sources(args.dataset, args.root, "--dataset")
    except ConfigError as err:
        raise CLIError(str(err)) from None
    several = len(datasets) > 1
    if several and (args.save_run or args.output or args.worst):
        raise CLIError(
            "--save-run, --output and --worst take one --dataset: evaluate the others apart"
        )
    if args.json:
        ensure_output_file(args.json, what="--json file")
    if args.output or args.worst:
        ensure_output_dir(args.output or DEFAULT_FOLDER, "--output folder")
    device = resolve_device(args.device)
    # The model in its runtime (an exported .onnx / .xml too), with the file's preprocessing;
    # the evaluation settings of the config it was trained with, where the file records it.
    model = open_runtime(args.checkpoint, args.runtime, device, args.amp)
    cfg = model.info.training_config() or Config()
    cfg.eval.rerank = args.rerank
    cfg.eval.flip = args.flip
    cfg.eval.ap_mode = args.ap_mode
    cfg.eval.aqe, cfg.eval.aqe_k, cfg.eval.aqe_alpha = args.aqe, args.aqe_k, args.aqe_alpha
    validate(cfg)
    if args.batch_size:
        cfg.data.test_batch_size = args.batch_size
    cfg.data.workers = args.workers
    labels = target_labels(datasets)  # NAME, or NAME=ROOT where two share a loader
    targets = [build_dataset(name, root) for name, root in datasets]
    progress = not args.quiet
    for splits in targets:
        check_test_split(splits, open_images=not args.skip_image_check, progress=progress)
    if args.save_run:
        check_run_output(args.save_run, targets[0])
    reports = [evaluate_model(model, t, cfg, device, progress=progress) for t in targets]
    shown = [r.headline() for r in reports]
    print(
        format_table(
            ["dataset", *map(reports[0].label, shown[0])],
            [[label] + [100 * v for v in s.values()] for label, s in zip(labels, shown)],
        )
    )
    report, splits = reports[0], targets[0]
    if report.ap_mode:
        others = ", ".join(
            f"{mode} {100 * report.metrics[key]:.1f}"
            for mode, key in AP_KEYS.items()
            if mode != report.ap_mode
        )
        more = "" if several else f"; other definitions: {others}"  # --json has every one
        print(f"AP: {AP_DEFINITIONS[report.ap_mode]}{more}")
    if args.json:
        settings = {
            "checkpoint": str(args.checkpoint),
            "rerank": args.rerank,
            "flip": args.flip,
            "aqe": args.aqe,
        }
        rows = [_json_row(label, r, AP_DEFINITIONS) for label, r in zip(labels, reports)]
        payload = {**settings, "targets": rows} if several else {**settings, **rows[0]}
        text = json.dumps(payload, indent=2).encode()
        atomic_write(args.json, lambda f: f.write(text))
        print(f"wrote {args.json}")
    if args.save_run:
        saved = save_run(report, splits, args.save_run, cfg=cfg, checkpoint=args.checkpoint)
        print(f"wrote {saved} (browse it with bdbnet serve --run {args.save_run})")
    if args.output or args.worst:
        _pictures(args, labels[0], report, splits, cfg.eval.metric)
    return 0


def _json_row(label: str, report: Any, definitions: dict[str, str]) -> dict[str, Any]:
    """One test split's entry of ``--json``: its name and every metric."""
    row = {"dataset": label, **report.metrics}
    if report.ap_mode:
        row["ap_definition"] = definitions[report.ap_mode]
    if report.rank is not None:
        row["cmc"] = report.cmc
        row["num_valid_queries"] = report.num_valid_queries
    return row


def _pictures(args: argparse.Namespace, dataset: str, report, splits, metric: str) -> None:
    """``--output DIR`` (the CMC curve) and ``--worst N`` (the N worst queries)."""
    from bdbnet.visualization import draw_worst_queries, plot_cmc

    if report.rank is None:
        print("note: pictures are drawn for re-ID evaluations only")
        return
    folder = Path(args.output or DEFAULT_FOLDER)
    label = f"{dataset} ({Path(args.checkpoint).name})"
    scoring = [name for name, on in (("rerank", args.rerank), ("flip", args.flip)) if on]
    label += f", {' + '.join(scoring)}" if scoring else ""
    try:
        path = plot_cmc({label: report.cmc}, folder / "cmc.png", title=f"CMC: {dataset}")
        print(f"wrote {path}")
    except ImportError as err:
        print(f"note: no CMC plot ({err})")
    if args.worst:
        result = report.rank
        path = draw_worst_queries(
            report.query_features,
            report.gallery_features,
            splits.query,
            splits.gallery,
            result.ap,
            result.first_match_rank,
            folder / "worst_queries.png",
            n=args.worst,
            metric=metric,
            rerank=args.rerank,
            annotate=True,
            ap_mode=result.ap_mode,
        )
        print(f"wrote {path} (the {args.worst} queries with the lowest AP, {result.ap_mode})")
