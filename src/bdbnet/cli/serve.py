"""``bdbnet serve``: the HTTP service (:mod:`bdbnet.serve`) on a model and a gallery index or a
saved evaluation.

Heavy imports (torch, FastAPI, uvicorn) happen in the handler, so ``bdbnet --help`` stays
instant and a missing ``[serve]`` extra is a one-line error, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from bdbnet.cli.support import (
    AMP_CHOICES,
    AMP_HELP,
    DEVICE_HELP,
    MODEL_HELP,
    POSITIVE,
    CLIError,
    add_command,
    add_engine_options,
    add_runtime_option,
    float_above,
    int_at_least,
)

__all__ = ["ENV_API_KEY", "add_parser", "run"]

ENV_API_KEY = "BDBNET_API_KEY"
PORT = int_at_least(0, 65535)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from bdbnet.serve.settings import ServeConfig

    d = ServeConfig()
    p = add_command(
        subparsers,
        "serve",
        "HTTP embedding/search service and web page (extra [serve])",
        "Serve a model over HTTP: /v1/embed, /v1/search, gallery images and a web page at /. "
        "With --run, browse a saved evaluation (bdbnet evaluate --save-run).",
        """
        bdbnet serve --checkpoint runs/market1501/last.pt --index gallery.safetensors --port 8000
        bdbnet serve --checkpoint runs/market1501/last.pt --index http://milvus:19530
        """,
    )
    p.add_argument("--checkpoint", required=True, help=MODEL_HELP)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--index",
        help="gallery to search (bdbnet extract --output): an index file, a Milvus Lite .db "
        "or a Milvus server URI",
    )
    source.add_argument("--run", metavar="DIR", help="saved evaluation to browse")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=PORT, default=8000, help="default 8000 (0: any free)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name this server answers to besides localhost, 127.0.0.1 and ::1 "
        "(repeatable); a non-loopback bind without it answers any name",
    )
    p.add_argument(
        "--api-key",
        default=None,
        help=f"require this key ('X-API-Key: KEY' or 'Authorization: Bearer KEY') on every "
        f"route but / and /v1/health (default: ${ENV_API_KEY}, else none)",
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with mirrored images (default: as the index was built)",
    )
    p.add_argument(
        "--amp",
        default="auto",
        choices=AMP_CHOICES,
        help=AMP_HELP,
    )
    add_runtime_option(p)
    group = p.add_argument_group("batching")
    group.add_argument(
        "--max-batch",
        type=POSITIVE,
        default=d.max_batch,
        help=f"largest forward pass shared by concurrent requests (default {d.max_batch})",
    )
    group.add_argument(
        "--max-wait-ms",
        type=float_above(0, inclusive=True),
        default=d.max_wait_ms,
        help=f"how long the first image of a batch waits for others (default {d.max_wait_ms:g} ms)",
    )
    group.add_argument(
        "--max-queue",
        type=POSITIVE,
        default=d.max_queue,
        help=f"images waiting for the model before requests get 503 (default {d.max_queue})",
    )
    limits = p.add_argument_group("limits (over one: a 4xx JSON error, the server goes on)")
    limits.add_argument(
        "--max-upload-mb",
        type=float_above(0),
        default=d.max_upload_bytes / 2**20,
        help=f"request body size (default {d.max_upload_bytes / 2**20:g} MiB)",
    )
    limits.add_argument(
        "--max-images",
        type=POSITIVE,
        default=d.max_images,
        help=f"images per request (default {d.max_images})",
    )
    limits.add_argument(
        "--max-pixels",
        type=POSITIVE,
        default=d.max_pixels,
        help=f"pixels per image, checked from its header (default {d.max_pixels})",
    )
    limits.add_argument(
        "--max-topk", type=POSITIVE, default=d.max_topk, help=f"default {d.max_topk}"
    )
    limits.add_argument(
        "--max-rerank-gallery",
        type=POSITIVE,
        default=d.max_rerank_gallery,
        help=f"largest gallery searched with rerank=true (default {d.max_rerank_gallery})",
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="uvicorn's log level (requests are logged from info)",
    )
    add_engine_options(p)
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace):
    from bdbnet.serve.settings import ServeConfig

    return ServeConfig(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_images=args.max_images,
        max_pixels=args.max_pixels,
        max_topk=args.max_topk,
        max_rerank_gallery=args.max_rerank_gallery,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
    )


def check_port_free(host: str, port: int) -> None:
    """A one-line error, before the model loads, when ``host:port`` cannot be bound."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            reason = err.strerror or str(err)
            raise CLIError(
                f"cannot serve on {host}:{port} ({reason}): pick another --port "
                "(0: any free one) or --host"
            ) from None


def run(args: argparse.Namespace) -> int:
    """Load the model and the gallery (or run), then serve until interrupted."""
    from bdbnet.inference import FeatureExtractor, GalleryIndex, open_gallery
    from bdbnet.serve.runs import load_run
    from bdbnet.serve.settings import LOOPBACK_HOSTS, is_loopback
    from bdbnet.vector_engines import is_engine_target

    try:
        import uvicorn

        from bdbnet.serve.app import create_app
    except ImportError as err:
        raise CLIError(
            f"bdbnet serve needs its extra: pip install 'bdbnet[serve]' ({err})"
        ) from err
    try:  # mistakes in the options before minutes of model loading
        config = config_from_args(args)
    except ValueError as err:
        raise CLIError(str(err)) from err
    check_port_free(args.host, args.port)
    # DNS rebinding: a loopback server answers its loopback names (and --allowed-host) only
    allowed_hosts = list(args.allowed_host)
    if allowed_hosts or is_loopback(args.host):
        allowed_hosts += LOOPBACK_HOSTS
    index = run = None
    if args.index and is_engine_target(args.index):
        try:
            index = open_gallery(args.index, collection=args.collection)
        except ImportError as err:
            raise CLIError(str(err)) from err
    elif args.index:
        if not GalleryIndex.is_index_file(args.index):
            kind = "a file" if os.path.isfile(args.index) else None
            kind = kind or ("a folder" if os.path.isdir(args.index) else None)
            raise CLIError(
                f"{args.index} is {kind}, not a gallery index (.safetensors, .npz or .npy; "
                "write one with bdbnet extract)"
                if kind
                else f"no gallery index at {args.index} (write one with bdbnet extract)"
            )
        index = GalleryIndex.load(args.index)
    else:
        run = load_run(args.run)
    flip = args.flip
    if flip is None:
        flip = bool(index is not None and index.identity is not None and index.identity.flip)
    extractor = FeatureExtractor(
        args.checkpoint, device=args.device, flip=flip, amp=args.amp, runtime=args.runtime
    )
    if run is not None:
        saved = (run.metadata.get("model") or {}).get("sha256")
        if saved and saved != extractor.identity.sha256:
            print(
                f"warning: {args.run} was evaluated with another checkpoint "
                f"({run.metadata['model'].get('checkpoint')}); /v1/embed uses {args.checkpoint}",
                file=sys.stderr,
            )
    api_key = args.api_key or os.environ.get(ENV_API_KEY) or None
    if not is_loopback(args.host) and not api_key:
        print(
            f"warning: serving on {args.host} without --api-key: anyone who reaches this "
            "address can use the model and see the gallery",
            file=sys.stderr,
        )
    try:
        app = create_app(extractor, index, run, config, api_key, allowed_hosts or None)
    except ValueError as err:
        raise CLIError(str(err)) from err
    what = f"gallery of {len(index)} images" if index is not None else f"run {args.run}"
    info = extractor.runtime.info
    print(
        f"bdbnet serve: {what}, model {extractor.checkpoint.name} ({extractor.feature_dim}-d, "
        f"{info.runtime} {info.precision})"
    )
    print(f"bdbnet serve: http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
