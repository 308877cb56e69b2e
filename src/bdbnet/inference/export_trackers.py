"""Files a tracking package reads beside an exported model, so that it loads the model with no
option written by hand: ``bdbnet export --for boxmot``.

boxmot (the tracking package that consumes re-ID models) runs an ``.onnx`` or OpenVINO ``.xml``
itself, but cannot read bdbnet's metadata: it needs the embedding width and the crop size
declared, and its preprocessing named. Two files say it, both written from the model's one
preprocessing spec:

* ``<artifact>.metadata.json``: boxmot's artifact sidecar (schema 1): the crop size
  (``model_kwargs.img_size``), the preprocessing (``resize``: a bilinear resize to the input
  size, then ImageNet mean/std, as bdbnet's re-ID recipe) and the source checkpoint;
* ``<artifact stem>.boxmot.yaml``: a ReID component config (backend, artifact and its SHA-256,
  preprocessing, ``options: embedding_dim, image_size``) to pass as boxmot's ReID reference.

Only what boxmot can reproduce is written: a recipe that pads to a square, or other mean/std
than ImageNet's, is refused (boxmot's own preprocessing would feed the model other pixels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from bdbnet.errors import ConfigError
from bdbnet.files import atomic_write, file_sha256
from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

__all__ = ["TRACKERS", "check_tracker", "tracker_files", "write_tracker_files"]

TRACKERS = ("boxmot",)
_BACKENDS = {".onnx": "onnx", ".xml": "openvino"}


def check_tracker(tracker: str, spec: Preprocessing, artifact: Path) -> None:
    """Refuse, before anything is written, a tracker bdbnet writes no files for, or a model
    the tracker cannot run as bdbnet does."""
    if tracker not in TRACKERS:
        raise ConfigError(f"--for must be one of {', '.join(TRACKERS)}; got {tracker!r}")
    if artifact.suffix.lower() not in _BACKENDS:
        raise ConfigError("--for boxmot needs --format onnx or --format openvino")
    same_stats = all(
        abs(a - b) < 1e-6 for a, b in zip((*spec.mean, *spec.std), (*IMAGENET_MEAN, *IMAGENET_STD))
    )
    if spec.pad_to_square or not same_stats or spec.color != "RGB":
        raise ConfigError(
            "--for boxmot: boxmot resizes crops without padding and normalises with ImageNet's "
            f"mean/std; this model's preprocessing ({spec.to_dict()}) differs, so its "
            "features there would not be the evaluated ones"
        )


def tracker_files(tracker: str, artifact: Path) -> list[Path]:
    """The files :func:`write_tracker_files` writes for ``artifact``."""
    return [
        artifact.with_suffix(f"{artifact.suffix}.metadata.json"),
        artifact.with_name(f"{artifact.stem}.boxmot.yaml"),
    ]


def write_tracker_files(tracker: str, artifact: Path, meta: dict[str, Any]) -> list[Path]:
    """Write the files ``tracker`` reads beside ``artifact`` (an exported ``.onnx`` or
    ``.xml``) from its bdbnet metadata ``meta``; returns their paths."""
    spec = Preprocessing.from_dict(meta["preprocess"], str(artifact))
    check_tracker(tracker, spec, artifact)
    height, width = spec.size
    dim = int(meta["output"]["shape"][-1])
    sidecar, config = tracker_files(tracker, artifact)
    metadata = {
        "schema_version": 1,
        "source": meta.get("checkpoint"),
        "source_sha256": meta.get("checkpoint_sha256"),
        "preprocess": "resize",
        "model_kwargs_schema_version": 1,
        "model_kwargs": {"img_size": [height, width]},
        "img_size": [height, width],
        "embedding_dim": dim,
        "bdbnet": meta,
    }
    component = {
        "backend": _BACKENDS[artifact.suffix.lower()],
        "artifact": {"path": artifact.name, "sha256": file_sha256(artifact)},
        "device": "cpu",
        "precision": "fp32",  # the graph's input and output type (boxmot: fp32, fp16, bf16)
        "preprocessing": "resize",
        "options": {"embedding_dim": dim, "image_size": [height, width]},
    }
    atomic_write(sidecar, lambda f: f.write(json.dumps(metadata, indent=2).encode()))
    atomic_write(config, lambda f: f.write(yaml.safe_dump(component, sort_keys=False).encode()))
    return [sidecar, config]
