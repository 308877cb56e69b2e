"""What compact gallery features cost in accuracy: float16 storage and PCA projections.

Usage::

    bdbnet demo --output demo/ --quiet          # the synthetic benchmark and its trained model
    python benchmarks/bench_compact.py --checkpoint demo/run/last.pt --root demo/data [--no-write]

The synthetic test split (queries and gallery) is extracted once with the checkpoint's own
preprocessing; every variant is then scored by :func:`bdbnet.evaluation.evaluate_features` (the
re-ID protocol, exact): the float32 features as they are, the gallery stored in float16
(:meth:`GalleryIndex.compact`), and PCA projections to K dimensions fitted on the gallery (the
queries projected with them), alone and with float16 storage. Bytes per image: what the
gallery's features take in memory and in the index file.

Rewrites the "## Compact gallery features" section of ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

import torch
from _common import cpu_model, write_section

SECTION = "## Compact gallery features"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bdbnet.data import build_dataset  # noqa: E402
from bdbnet.evaluation import evaluate_features  # noqa: E402
from bdbnet.inference import FeatureExtractor, GalleryIndex  # noqa: E402

DIMS = (768, 512, 256, 128, 64)


def features(extractor: FeatureExtractor, records: list) -> tuple[torch.Tensor, ...]:
    feats = extractor([r.path for r in records])
    pids = torch.tensor([r.pid for r in records])
    camids = torch.tensor([r.camid for r in records])
    return feats, pids, camids


def score(q: torch.Tensor, g: torch.Tensor, labels: tuple) -> tuple[float, float]:
    result = evaluate_features(q.float(), g.float(), *labels)
    return 100 * float(result.mAP), 100 * float(result.cmc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model trained on --root")
    parser.add_argument("--root", required=True, help="the synthetic dataset (bdbnet demo)")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    splits = build_dataset(args.dataset, args.root)
    extractor = FeatureExtractor(args.checkpoint, device="cpu", amp="none")
    qf, qp, qc = features(extractor, splits.query)
    gf, gp, gc = features(extractor, splits.gallery)
    labels = (qp, gp, qc, gc)
    index = GalleryIndex(gf, [r.path for r in splits.gallery], extractor.identity)
    rows = []

    def add(name: str, small: GalleryIndex) -> None:
        q = small.projection(qf) if small.projection is not None else qf
        m, r1 = score(q, small.features, labels)
        per_image = small.features.element_size() * small.dim
        kept = "" if small.projection is None else f"{100 * small.projection.kept:.1f}%"
        rows.append((name, small.dim, str(small.features.dtype)[6:], per_image, kept, m, r1))
        print(rows[-1], flush=True)

    add("as extracted", index)
    add("float16 storage", index.compact(torch.float16))
    for k in DIMS:
        if k < len(index):
            add(f"PCA to {k}", index.compact(dim=k))
    add("PCA to 256 + float16", index.compact(torch.float16, 256))
    base_map = rows[0][5]
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today()} on {cpu_model()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}: `python benchmarks/bench_compact.py --checkpoint "
        f"{Path(args.checkpoint).name} --root ...` with the model `bdbnet demo` trains "
        f"(presets/synthetic-demo.yaml) on the synthetic benchmark; its test split: "
        f"{len(qf)} queries, {len(gf)} gallery images, {extractor.feature_dim}-d features, "
        "fp32 extraction. Every row is scored by `evaluate_features` (exact re-ID protocol); "
        "the PCA is fitted on the gallery's features and the queries are projected with it "
        "(`GalleryIndex.compact`, `bdbnet extract --feature-dtype float16 --project-dim K`).",
        "",
        "| gallery features | dim | stored as | bytes / image | variance kept | mAP | "
        "Rank-1 | mAP change |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, dim, dtype, size, kept, m, r1 in rows:
        lines.append(
            f"| {name} | {dim} | {dtype} | {size:,} | {kept or '-'} | {m:.2f} | {r1:.2f} | "
            f"{m - base_map:+.2f} |"
        )
    lines += [
        "",
        "The synthetic gallery is small (a PCA of it has at most one direction fewer than it "
        "has images), so the cost of a projection on a real camera network's gallery must be "
        "measured on it: run this script with its checkpoint and dataset.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
