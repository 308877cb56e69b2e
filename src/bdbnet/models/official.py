"""Load the released official BDB checkpoints (class ``BFE`` of daizuozhuo/batch-dropblock-network).

The official files are ``torch.save({'state_dict': ..., 'epoch': N})`` archives named
``*.pth.tar``, sometimes saved from ``nn.DataParallel`` (keys prefixed ``module.``). Only the
module names differ from ours, so loading is a prefix rename.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from bdbnet.errors import CheckpointError, CheckpointNotFoundError
from bdbnet.models.bdb import BDBNet
from bdbnet.models.registry import create_model

# official prefix -> our prefix (longest first so "backbone.4" never matches "backbone.40").
OFFICIAL_TO_OURS: dict[str, str] = {
    "backbone.0.": "backbone.conv1.",
    "backbone.1.": "backbone.bn1.",
    "backbone.4.": "backbone.layer1.",
    "backbone.5.": "backbone.layer2.",
    "backbone.6.": "backbone.layer3.",
    "res_part.": "layer4.",
    "global_reduction.": "global_reduction.",
    "global_softmax.": "global_classifier.",
    "res_part2.": "drop_bottleneck.",
    "reduction.": "drop_reduction.",
    "softmax.": "drop_classifier.",
}


_UNPICKLER_DETAIL = re.compile(
    r"(Trying to load unsupported GLOBAL[^\n]*|Unsupported global[^\n]*|Unsupported operand"
    r"[^\n]*|Unsupported class[^\n]*)"
)


def _refusal(path: Path, err: pickle.UnpicklingError) -> CheckpointError:
    """Tell a pickle that wanted to import code apart from a file that is simply not a
    checkpoint (torch says "could run code" for both)."""
    found = _UNPICKLER_DETAIL.search(str(err))
    detail = found.group(1).strip() if found else str(err).splitlines()[0]
    if "global" in detail.lower() or "class" in detail.lower():
        return CheckpointError(
            f"{path}: refused to load: the file contains Python objects other than tensors and "
            f"plain containers, which could run code when unpickled ({detail}). Load only "
            "checkpoints written by bdbnet or the official BDB code"
        )
    return CheckpointError(
        f"{path}: not a PyTorch checkpoint (corrupt, truncated or another kind of file: "
        f"{detail}); give a checkpoint written by bdbnet train or an official .pth.tar"
    )


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` with ``weights_only=True`` and an error that names the file.

    A pickle that would need to import or call arbitrary code is refused, never executed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(path, err) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else f"{type(err).__name__}: empty file?"
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({reason}); it may be truncated or "
            "corrupt: copy or write it again"
        ) from err


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: Any) -> None:
    """``model.load_state_dict(state)`` with shape or key mismatches reported as a
    :class:`CheckpointError` naming ``path`` (torch raises a long ``RuntimeError``)."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = "; ".join(lines[1:4]) or lines[0] if lines else type(err).__name__
        raise CheckpointError(
            f"{path}: the weights do not fit the model its config describes ({detail}); the "
            "file was written by another model or edited"
        ) from err


def _rename(key: str, table: dict[str, str]) -> str | None:
    for src in sorted(table, key=len, reverse=True):
        if key.startswith(src):
            return table[src] + key[len(src) :]
    return None


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official ``BFE`` keys (with or without ``module.``) to :class:`BDBNet` keys."""
    converted = {}
    unknown = []
    for key, value in state.items():
        bare = key[len("module.") :] if key.startswith("module.") else key
        new = _rename(bare, OFFICIAL_TO_OURS)
        if new is None:
            unknown.append(key)
        else:
            converted[new] = value
    if unknown:
        raise CheckpointError(f"unexpected keys for an official BDB checkpoint: {unknown[:5]}")
    return converted


def to_official_state_dict(model: BDBNet) -> dict[str, torch.Tensor]:
    """Our weights under the official key names (for tools written for the official code)."""
    ours_to_official = {v: k for k, v in OFFICIAL_TO_OURS.items()}
    return {_rename(k, ours_to_official) or k: v for k, v in model.state_dict().items()}


def load_official_checkpoint(path: str | os.PathLike[str], **model_kwargs: Any) -> BDBNet:
    """Build a :class:`BDBNet` from an official ``*.pth.tar`` checkpoint.

    The number of classes is read from the classifier; ``model_kwargs`` go to ``BDBNet`` (e.g.
    ``drop_height_ratio`` if you want to fine-tune). The model is returned in eval mode, and its
    output equals the official model's for the same input.

    Example:
        >>> model = load_official_checkpoint("market_953.pth.tar")  # doctest: +SKIP
        >>> model(images).shape  # doctest: +SKIP
        torch.Size([B, 1536])
    """
    obj = safe_torch_load(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: expected {{'state_dict': ..., 'epoch': ...}}")
    state = convert_official_state_dict(state)
    if "drop_classifier.weight" not in state or "global_classifier.weight" not in state:
        raise CheckpointError(f"{path}: missing the classifiers (softmax / global_softmax)")
    if not isinstance(state["drop_classifier.weight"], torch.Tensor):
        raise CheckpointError(f"{path}: softmax.weight is not a tensor")
    num_classes = state["drop_classifier.weight"].shape[0]
    model = create_model("bdb", num_classes=num_classes, pretrained=None, **model_kwargs)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and getattr(state[k], "shape", None) != v.shape
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path}: does not match the BDB architecture (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]})"
        )
    load_weights(model, state, path)
    return model.eval()
