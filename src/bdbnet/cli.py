"""The ``bdbnet`` command line (also ``python -m bdbnet``).

Each sub-command is a thin layer over the Python API: parse arguments, call the library, print.
Heavy imports happen inside the handlers so ``bdbnet --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bdbnet import __version__
from bdbnet.cli_support import (
    CLIError,
    bounded_float,
    check_index_output,
    int_at_least,
    parse_args,
    require_readable,
)
from bdbnet.serve.command import add_save_run_argument, add_serve_command

__all__ = ["CLIError", "build_parser", "main"]


# ---------------------------------------------------------------------------------- handlers
def cmd_demo(args: argparse.Namespace) -> int:
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


def cmd_synth(args: argparse.Namespace) -> int:
    from bdbnet.data.synthetic import generate_synthetic_reid
    from bdbnet.outputs import ensure_output_dir

    ensure_output_dir(args.root, "dataset folder")
    summary = generate_synthetic_reid(
        args.root,
        train_ids=args.train_ids,
        test_ids=args.test_ids,
        cameras=args.cameras,
        occlusion=args.occlusion,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=True,
    )
    print(summary)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bdbnet.config import load_config
    from bdbnet.data import build_dataset
    from bdbnet.engine.distributed import init_distributed, shutdown, torchrun_restart_count
    from bdbnet.engine.resume import resume_config
    from bdbnet.engine.trainer import Trainer

    output = Path(args.output or f"runs/{args.dataset}")
    overrides = [f"data.dataset={args.dataset}", f"data.root={args.root}", *args.overrides]
    if args.device:
        overrides.append(f"train.device={args.device}")
    # A group restarted by `torchrun --max-restarts` resumes by itself.
    resume = args.resume or torchrun_restart_count() > 0
    cfg = resume_config(output, overrides) if resume else None
    notes = []
    if cfg is not None and (args.preset or args.config):
        notes.append(f"resuming with {output / 'config.yaml'}: --preset/--config not applied")
    if cfg is None:
        preset = args.preset
        if preset is None and args.config is None:
            preset = default_preset(args.dataset)
            notes.append(f"preset: {preset}")
        cfg = load_config(preset, args.config, overrides)
    ctx = init_distributed(cfg.train.device)
    say = print if ctx.is_main else _silent
    try:
        for note in notes:
            say(note)
        splits = build_dataset(cfg.data.dataset, cfg.data.root)
        on_main(ctx, lambda: _check_run(args, cfg, splits, output))
        trainer = Trainer.from_config(cfg, splits, output, resume=resume, ctx=ctx)
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


def _check_run(args: argparse.Namespace, cfg, splits, output: Path) -> None:
    """What a training run checks before its first step: a writable run folder, enough
    identities for P, every image readable (unless --skip-image-check)."""
    from bdbnet.data.checks import check_splits
    from bdbnet.outputs import ensure_output_dir

    ensure_output_dir(output, "run folder")
    if splits.num_train_pids < cfg.data.num_identities:
        raise CLIError(
            f"data.num_identities={cfg.data.num_identities} but the train split of "
            f"{splits.root} has only {splits.num_train_pids} identities; lower "
            "data.num_identities (P of the P x K batch)"
        )
    check_splits(
        splits,
        ("train", "query", "gallery"),
        open_images=not args.skip_image_check,
        progress=cfg.train.progress,
    )


def on_main(ctx, check) -> None:
    """Run ``check`` on rank 0 only (opening every image once, not once per process) and
    raise its user error on every rank, so all processes stop together."""
    from bdbnet.engine.distributed import broadcast_object
    from bdbnet.errors import BDBNetError

    problem = None
    if ctx.is_main:
        try:
            check()
        except BDBNetError as err:
            problem = err
    problem = broadcast_object(problem, ctx)
    if problem is not None:
        raise problem


def _silent(*args: object, **kwargs: object) -> None:
    """``print`` of the ranks other than 0."""


def final_report(result) -> str:
    """The last evaluation and, with ``train.keep_best``, the best one beside it, called what
    it is: selected on the test split."""
    from bdbnet.engine.evaluator import AP_KEYS
    from bdbnet.reporting import format_table

    last = result.evaluations[-1]
    extra = {"epoch", *AP_KEYS.values()}
    keys = [k for k, v in last.items() if isinstance(v, float) and k not in extra]
    rows = [[f"last (epoch {last['epoch']}, last.pt)"] + [100 * last[k] for k in keys]]
    if result.best is not None:
        best = result.best
        name = f"best {best['metric']} on the test split (epoch {best['epoch']}, best.pt)"
        rows.append([name] + [100 * best[k] for k in keys])
    mode = last.get("ap_mode")
    headers = [f"mAP ({mode})" if k == "mAP" and mode else k for k in keys]
    return format_table(["model (%)", *headers], rows)


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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bdbnet.config import validate
    from bdbnet.data import build_dataset
    from bdbnet.data.checks import check_splits
    from bdbnet.engine.checkpoint import load_trained_model
    from bdbnet.engine.evaluator import AP_KEYS, evaluate_model
    from bdbnet.engine.runtime import resolve_device
    from bdbnet.outputs import ensure_output_dir, ensure_output_file
    from bdbnet.reporting import AP_DEFINITIONS, format_table
    from bdbnet.serve.runs import check_run_output, save_run

    if args.json:
        ensure_output_file(args.json, what="--json file")
    if args.plots or args.visualize:
        ensure_output_dir(args.plots or "evaluation_plots", "--plots folder")
    device = resolve_device(args.device)
    model, cfg = load_trained_model(args.checkpoint, device)
    cfg.eval.rerank = args.rerank
    cfg.eval.flip = args.flip
    cfg.eval.ap_mode = args.ap_mode
    cfg.eval.aqe, cfg.eval.aqe_k, cfg.eval.aqe_alpha = args.aqe, args.aqe_k, args.aqe_alpha
    validate(cfg)
    cfg.train.amp = args.amp
    if args.batch_size:
        cfg.data.test_batch_size = args.batch_size
    cfg.data.workers = args.workers
    splits = build_dataset(args.dataset, args.root)
    names = ("query",) if splits.gallery is splits.query else ("query", "gallery")
    check_splits(splits, names, open_images=not args.skip_image_check)
    if args.save_run:
        check_run_output(args.save_run, splits)
    report = evaluate_model(model, splits, cfg, device)
    shown = report.headline()
    print(
        format_table(
            ["dataset", *map(report.label, shown)],
            [[args.dataset] + [100 * v for v in shown.values()]],
        )
    )
    if report.ap_mode:
        others = ", ".join(
            f"{mode} {100 * report.metrics[key]:.1f}"
            for mode, key in AP_KEYS.items()
            if mode != report.ap_mode
        )
        print(f"AP: {AP_DEFINITIONS[report.ap_mode]}; other definitions: {others}")
    if args.json:
        payload = {
            "checkpoint": str(args.checkpoint),
            "dataset": args.dataset,
            "rerank": args.rerank,
            "flip": args.flip,
            "aqe": args.aqe,
            **report.metrics,
        }
        if report.ap_mode:
            payload["ap_definition"] = AP_DEFINITIONS[report.ap_mode]
        if "cmc" in report.details:
            payload["cmc"] = report.details["cmc"]
            payload["num_valid_queries"] = report.details["num_valid_queries"]
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    if args.save_run:
        saved = save_run(report, splits, args.save_run, cfg=cfg, checkpoint=args.checkpoint)
        print(f"wrote {saved} (browse it with bdbnet serve --run {args.save_run})")
    if args.plots or args.visualize:
        _evaluation_pictures(args, report, splits, cfg.eval.metric)
    return 0


def _evaluation_pictures(args: argparse.Namespace, report, splits, metric: str) -> None:
    """``evaluate --plots DIR`` (CMC curve) and ``--visualize N`` (the N worst queries)."""
    from bdbnet.visualization import draw_worst_queries, plot_cmc

    if "rank_results" not in report.details:
        print("note: pictures are drawn for re-ID evaluations only")
        return
    folder = Path(args.plots or "evaluation_plots")
    details = report.details
    label = f"{args.dataset} ({Path(args.checkpoint).name})"
    try:
        path = plot_cmc({label: details["cmc"]}, folder / "cmc.png", title=f"CMC: {args.dataset}")
        print(f"wrote {path}")
    except ImportError as err:
        print(f"note: no CMC plot ({err})")
    if args.visualize:
        result = details["rank_results"]
        path = draw_worst_queries(
            details["query_features"],
            details["gallery_features"],
            splits.query,
            splits.gallery,
            result.ap,
            result.first_match_rank,
            folder / "worst_queries.png",
            n=args.visualize,
            metric=metric,
            rerank=args.rerank,
        )
        print(f"wrote {path} (the {args.visualize} queries with the lowest AP, {result.ap_mode})")


def cmd_datasets(args: argparse.Namespace) -> int:
    from bdbnet.data import get_dataset_class, list_datasets
    from bdbnet.reporting import format_table

    if args.name is None:
        for name in list_datasets():
            cls = get_dataset_class(name)
            print(f"{name:22s} {(cls.__doc__ or '').strip().splitlines()[0]}")
        return 0
    header = ["split", "images", "identities", "cameras"]
    cls = get_dataset_class(args.name)
    if args.root is None:
        print(f"{args.name}: expected layout under --root\n{cls.layout}")
        if cls.expected_stats:
            rows = [[k, s.images, s.identities, s.cameras] for k, s in cls.expected_stats.items()]
            print("published statistics:")
            print(format_table(header, rows))
        print(f"validate a copy with: bdbnet datasets {args.name} --root DIR")
        return 0
    dataset = cls(args.root)
    stats = dataset.splits.stats()
    rows = [[split, s.images, s.identities, s.cameras] for split, s in stats.items()]
    print(f"{args.name} at {dataset.root}")
    print(format_table(header, rows))
    if dataset.splits.task == "retrieval" and dataset.splits.gallery is dataset.splits.query:
        print("query = gallery: the test split, leave-one-out (Recall@K)")
    problems = dataset.compare_with_published()
    for line in problems:
        print(f"warning: {line}")
    if not problems and dataset.expected_stats:
        print("counts match the published statistics")
    if not args.skip_image_check:
        from bdbnet.data.checks import report_unreadable

        report_unreadable(dataset.splits)
    return 0


def _extractor(args: argparse.Namespace):
    from bdbnet.inference import FeatureExtractor

    return FeatureExtractor(
        args.checkpoint,
        device=args.device,
        batch_size=args.batch_size,
        flip=args.flip,
        amp=args.amp,
        progress=not args.quiet,
    )


def _extract_paths(extractor, inputs: Sequence[str], what: str = "input"):
    """Features of image files/dirs, unreadable files skipped and reported on stderr."""
    import warnings

    from bdbnet.inference import list_images

    paths = list_images(inputs)
    if not paths:
        raise CLIError(f"no images found in {' '.join(inputs)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extraction = extractor.extract(paths, skip_unreadable=True)
    for path, reason in extraction.skipped:
        print(f"warning: skipped unreadable image {path} ({reason})", file=sys.stderr)
    require_readable(extraction, what, inputs)
    return extraction


def cmd_extract(args: argparse.Namespace) -> int:
    from bdbnet.inference import GalleryIndex

    check_index_output(args.output)
    extractor = _extractor(args)
    extraction = _extract_paths(extractor, args.images)
    index = GalleryIndex.from_extraction(extraction, extractor.identity)
    try:
        path = index.save(args.output)
    except ImportError as err:
        raise CLIError(str(err)) from err
    print(
        f"wrote {len(index)} features ({index.dim}-d) to {path}"
        + (f"; skipped {len(index.skipped)} unreadable image(s)" if index.skipped else "")
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from bdbnet.data.records import ImageRecord
    from bdbnet.inference import GalleryIndex, IndexMismatchError, labels_from_paths
    from bdbnet.outputs import ensure_output_file
    from bdbnet.visualization import draw_ranked_list

    if args.save_index:
        check_index_output(args.save_index)
    if args.picture:
        ensure_output_file(args.picture, what="--picture file")
    extractor = _extractor(args)
    if len(args.gallery) == 1 and GalleryIndex.is_index_file(args.gallery[0]):
        index = GalleryIndex.load(args.gallery[0])
        print(f"gallery index {args.gallery[0]}: {len(index)} images")
    else:
        index = GalleryIndex.from_extraction(
            _extract_paths(extractor, args.gallery, "gallery"), extractor.identity
        )
        if args.save_index:
            print(f"saved the gallery index to {index.save(args.save_index)}")
    query = _extract_paths(extractor, args.query, "query")
    try:
        result = index.search(
            query.features,
            args.topk,
            identity=extractor.identity,
            backend=args.backend,
            rerank=args.rerank,
        )
    except (IndexMismatchError, ImportError) as err:
        raise CLIError(str(err)) from err
    q_labels = labels_from_paths(query.paths)
    labelled = q_labels is not None and index.pids is not None

    def record(path: str, pids, camids, i: int) -> ImageRecord:
        if pids is None:
            return ImageRecord(path, -1, 0)
        return ImageRecord(path, int(pids[i]), int(camids[i]))

    queries, ranked = [], []
    for qi, qpath in enumerate(query.paths):
        q_rec = record(qpath, *(q_labels or (None, None)), qi)
        print(f"query {qpath}")
        row = []
        for rank, (gi, dist) in enumerate(
            zip(result.indices[qi].tolist(), result.distances[qi].tolist()), start=1
        ):
            g_rec = record(index.paths[gi], index.pids, index.camids, gi)
            mark = ""
            if labelled:
                mark = "  same id" if g_rec.pid == q_rec.pid else "  different id"
            print(f"  {rank:3d}  {dist:9.4f}  {g_rec.path}{mark}")
            row.append(g_rec)
        queries.append(q_rec)
        ranked.append(row)
    if args.picture and queries:
        h, w = extractor.input_size
        cell = (128, max(8, round(128 * w / h)))
        path = draw_ranked_list(queries, ranked, args.picture, cell=cell, show_labels=labelled)
        print(f"wrote {path}")
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    from bdbnet.data.images import UnreadableImageError, read_image
    from bdbnet.inference import list_images
    from bdbnet.outputs import ensure_output_dir
    from bdbnet.visualization import draw_activation_maps

    ensure_output_dir(args.output)
    extractor = _extractor(args)
    images, names = [], []
    for path in list_images(args.images):
        try:
            images.append(read_image(path))
            names.append(path)
        except UnreadableImageError as err:
            print(f"warning: skipped {err}", file=sys.stderr)
    if not images:
        raise CLIError("no readable images")
    out = draw_activation_maps(
        extractor.model,
        images,
        extractor.transform,
        Path(args.output) / "activation_maps.png",
        preprocess=extractor.preprocess,
        names=names,
    )
    print(f"wrote {out} ({len(images)} image(s): input, global branch, dropping branch)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bdbnet.inference.export import export_checkpoint, read_export_metadata
    from bdbnet.outputs import ensure_output_file

    size = None
    if args.height or args.width:
        if not (args.height and args.width):
            raise CLIError("give both --height and --width (or neither)")
        size = (args.height, args.width)
    ensure_output_file(args.output, (".onnx",) if args.format == "onnx" else None)
    try:
        path = export_checkpoint(args.checkpoint, args.output, args.format, size, args.opset)
        meta = read_export_metadata(path)
    except ImportError as err:
        raise CLIError(str(err)) from err
    print(
        f"wrote {path} ({args.format}): input {meta['input']['shape']} -> output "
        f"{meta['output']['shape']}; preprocessing: {json.dumps(meta['preprocess'])}"
    )
    return 0


# ---------------------------------------------------------------------------------- parser
POSITIVE = int_at_least(1)


def _image_check_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-image-check",
        action="store_true",
        help="do not open every image of the splits before starting (a bad file then fails "
        "the run when it is reached)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bdbnet", description="Batch DropBlock Network for re-ID and metric learning."
    )
    parser.add_argument("--version", action="version", version=f"bdbnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="synthesize data, train BDB, evaluate, plot (CPU, minutes)")
    p.add_argument("--output", default="demo_output", help="folder for data, run and pictures")
    p.add_argument("--epochs", type=POSITIVE, default=None, help="training epochs (preset: 5)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument(
        "--amp",
        choices=("none", "bf16", "auto"),
        default="auto",
        help="precision: none (fp32), bf16 autocast, or auto (default: bf16 only where the "
        "CPU/GPU computes it natively, so the numbers depend on the machine)",
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
    p.add_argument("--seeds", type=int_at_least(0), nargs="+", default=[0, 1, 2])
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="write the synthetic re-ID dataset (Market-1501 layout)")
    p.add_argument("--root", required=True)
    p.add_argument("--train-ids", type=POSITIVE, default=200)
    p.add_argument("--test-ids", type=POSITIVE, default=200)
    p.add_argument("--cameras", type=POSITIVE, default=6)
    p.add_argument(
        "--occlusion", type=bounded_float(0, 1), default=0.3, help="probability of an occluder"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train with a paper recipe (preset) plus overrides")
    p.add_argument("--dataset", required=True, help="dataset name (see `bdbnet datasets`)")
    p.add_argument("--root", required=True, help="dataset folder (or its parent)")
    p.add_argument("--preset", default=None, help="recipe preset (default: the dataset's)")
    p.add_argument("--config", default=None, help="YAML file applied after the preset")
    p.add_argument("--output", default=None, help="run folder (default runs/<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/last.pt")
    p.add_argument("--device", default=None)
    _image_check_option(p)
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. optim.epochs=60 train.amp=bf16",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="CMC/mAP/mINP (re-ID) or Recall@K of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="our .pt or an official .pth.tar")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    p.add_argument("--flip", action="store_true", help="average with mirrored images")
    p.add_argument(
        "--ap-mode",
        default="full",
        choices=["full", "truncated", "trapezoid"],
        help="AP reported as mAP: full ranked list (default), truncated (the official BDB "
        "evaluator: cut at rank 50, divided by all positives) or trapezoid (Market-1501 MATLAB); "
        "--json has all three",
    )
    p.add_argument(
        "--aqe", action="store_true", help="alpha-query expansion (fast-reid's AQE) of both sets"
    )
    p.add_argument("--aqe-k", type=int, default=5, help="items averaged by --aqe, itself included")
    p.add_argument("--aqe-alpha", type=float, default=3.0, help="--aqe weight exponent")
    p.add_argument("--json", default=None, help="also write the metrics to this file")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16", "auto"])
    p.add_argument("--batch-size", type=POSITIVE, default=None)
    p.add_argument("--workers", type=int_at_least(0), default=2)
    _image_check_option(p)
    p.add_argument(
        "--visualize",
        type=int_at_least(0),
        default=0,
        metavar="N",
        help="draw the ranked lists of the N worst queries (lowest AP) into --plots",
    )
    p.add_argument(
        "--plots", default=None, metavar="DIR", help="write cmc.png (and --visualize) here"
    )
    add_save_run_argument(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("datasets", help="list datasets; with NAME --root: validate a copy")
    p.add_argument("name", nargs="?")
    p.add_argument("--root", default=None)
    p.add_argument(
        "--skip-image-check", action="store_true", help="count the files without opening them"
    )
    p.set_defaults(func=cmd_datasets)
    _add_inference_parsers(sub)
    add_serve_command(sub)
    return parser


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="our .pt or an official .pth.tar")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--batch-size", type=POSITIVE, default=32)
    p.add_argument("--flip", action="store_true", help="average with mirrored images")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16", "auto"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_inference_parsers(sub) -> None:
    p = sub.add_parser("extract", help="features of images (.npy/.npz/.safetensors + paths)")
    _model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIRS")
    p.add_argument(
        "--output",
        required=True,
        help="FILE.safetensors, FILE.npz, or FILE.npy (+ FILE.paths.txt, FILE.json); "
        "a gallery index for `bdbnet search`",
    )
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("search", help="rank a gallery (folder or saved index) for queries")
    _model_options(p)
    p.add_argument(
        "--gallery", required=True, nargs="+", help="image folders/files, or one saved index"
    )
    p.add_argument("--query", required=True, nargs="+", help="query images or folders")
    p.add_argument("--topk", type=POSITIVE, default=10)
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    p.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "faiss"],
        help="exact chunked search in torch (default) or a faiss flat index (bdbnet[faiss])",
    )
    p.add_argument("--save-index", default=None, help="save the gallery index built from images")
    p.add_argument("--picture", default="ranked_list.png", help="ranked-list picture ('' for none)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("visualize", help="activation maps of both branches (paper's Figure 1)")
    _model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--output", required=True, help="folder for activation_maps.png")
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("export", help="ONNX or TorchScript, dynamic batch, eval-mode graph")
    p.add_argument("--checkpoint", required=True, help="our .pt or an official .pth.tar")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    p.add_argument("--output", required=True)
    p.add_argument(
        "--height",
        type=POSITIVE,
        default=None,
        help="input height, a multiple of 16 (default: the recipe's)",
    )
    p.add_argument(
        "--width",
        type=POSITIVE,
        default=None,
        help="input width, a multiple of 16 (default: the recipe's)",
    )
    p.add_argument("--opset", type=int_at_least(7), default=17, help="ONNX opset")
    p.set_defaults(func=cmd_export)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. User errors (:class:`~bdbnet.errors.BDBNetError`) print one line and
    return 2; anything else is a bug and keeps its traceback."""
    parser = build_parser()
    args = parse_args(parser, argv)
    from bdbnet.errors import BDBNetError

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
        print("interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
