"""Batched, gradient-free feature extraction: one loop (:func:`embed_all`) for evaluation,
``bdbnet extract`` / ``search`` and :class:`~bdbnet.inference.FeatureExtractor`, fed by one of
three batch sources: a DataLoader over the PIL transform, images decoded in threads
(:func:`~bdbnet.data.pipelines.decode.decoded_batches`), or an already decoded ``uint8``
tensor."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bdbnet.data.image_dataset import ImageDataset
from bdbnet.data.pipelines.decode import decode_file, decoded_batches
from bdbnet.data.pipelines.tensor import TensorRecipe, channel_statistics, normalise
from bdbnet.data.records import ImageRecord
from bdbnet.errors import CheckpointError
from bdbnet.inference.runtimes.base import InferenceRuntime, flip_average
from bdbnet.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from bdbnet.runtime.device import eval_mode
from bdbnet.runtime.precision import autocast, resolve_amp

__all__ = ["embed_all", "embed_batch", "extract_features", "stack_features"]

log = logging.getLogger(__name__)


@torch.inference_mode()
def embed_batch(
    model: torch.nn.Module,
    images: torch.Tensor,
    flip: bool = False,
    amp: str = "none",
    channels_last: bool = False,
) -> torch.Tensor:
    """Eval-mode features of one batch, in float32; ``flip`` averages with the mirrored image.

    A batch whose reduced-precision (``amp``) features are not finite is computed again in
    float32, with a warning (logger ``bdbnet.inference.embed``) the first time: bf16 has
    float32's range, so such values are a kernel's fault (seen on an AMX CPU with 4 x 2 feature
    maps, intermittently) or an fp16 overflow, and must not become NaN distances.
    """
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    amp = resolve_amp(images.device, amp)
    with autocast(images.device, amp):
        features = flip_average(lambda x: model(x).float(), images, flip)
    if amp == "none" or bool(torch.isfinite(features).all()):
        return features
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "%s autocast gave non-finite features for a batch of %d images; it was computed "
            "again in float32 (amp none computes every batch so)",
            amp,
            images.shape[0],
        )
    return flip_average(lambda x: model(x).float(), images, flip)


_warned = False  # the fallback above is reported once per process


def stack_features(
    chunks: list[torch.Tensor], model: torch.nn.Module | InferenceRuntime
) -> torch.Tensor:
    """The batches' features as one ``(N, D)`` tensor (``(0, D)`` for no images, ``D`` the
    model's ``feature_dim``: the model contract)."""
    if not chunks:
        return torch.empty(0, model.feature_dim)
    return torch.cat(chunks)


def embed_all(
    model: torch.nn.Module | InferenceRuntime,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    flip: bool = False,
    amp: str = "none",
    channels_last: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Features of every batch, in order, as one ``(N, D)`` float32 tensor on the CPU.

    A ``uint8`` batch (``B x 3 x H x W``) travels to the device as ``uint8`` (a quarter of the
    bytes; pinned for a GPU) and is converted and normalised there by ``mean``/``std``, by the
    operations of the PIL path's ``ToDtype`` and ``Normalize``, so its features equal the PIL
    path's; a floating batch is taken as already normalised.

    ``model`` is a PyTorch model (run in eval mode with ``amp`` and ``channels_last``) or any
    :class:`~bdbnet.inference.runtimes.InferenceRuntime` (ONNX Runtime, OpenVINO, ...), which
    runs each batch its own way.
    """
    statistics = None
    chunks = []
    if isinstance(model, torch.nn.Module):
        mode = eval_mode(model)
        embed = lambda batch: embed_batch(model, batch, flip, amp, channels_last)  # noqa: E731
    else:
        mode = contextlib.nullcontext()
        embed = lambda batch: model.embed(batch, flip)  # noqa: E731
    with mode:
        for batch in batches:
            if batch.dtype == torch.uint8:
                if device.type == "cuda" and batch.device.type == "cpu":
                    batch = batch.pin_memory()
                batch = batch.to(device, non_blocking=True)
                statistics = statistics or channel_statistics(mean, std, device)
                batch = normalise(batch, *statistics)
            else:
                batch = batch.to(device, non_blocking=True)
            chunks.append(_finite(embed(batch).cpu(), sum(len(c) for c in chunks)))
    return stack_features(chunks, model)


class NonFiniteFeaturesError(CheckpointError):
    """The model gave NaN or infinite features, in float32: its weights are broken (a NaN or
    inf, or values that overflow), which no metric or index should silently absorb."""

    def __init__(self, index: int, name: str | None = None) -> None:
        self.index = index
        what = name or f"image {index + 1} of the extraction"
        super().__init__(
            f"the model gave non-finite features (NaN or inf) for {what}: its weights hold "
            "NaN/inf values or overflow: check the checkpoint, or use "
            "an earlier checkpoint of its run"
        )


def _finite(features: torch.Tensor, offset: int) -> torch.Tensor:
    bad = ~torch.isfinite(features).all(dim=1)
    if bool(bad.any()):
        raise NonFiniteFeaturesError(offset + int(bad.nonzero()[0, 0]))
    return features


def extract_features(
    model: torch.nn.Module | InferenceRuntime,
    records: Sequence[ImageRecord] | torch.Tensor,
    transform: Callable[[Any], torch.Tensor] | None,
    device: torch.device,
    batch_size: int = 128,
    flip: bool = False,
    amp: str = "none",
    workers: int = 0,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "extract",
    decode: TensorRecipe | None = None,
) -> torch.Tensor:
    """Features of ``records`` (in order) as an ``(N, D)`` float32 tensor on the CPU.

    The images come, by what is given:

    * ``decode`` (a :class:`~bdbnet.data.pipelines.tensor.TensorRecipe`, ``data.pipeline=
      tensor``): decoded by its resize in ``workers`` threads (0: one per core, at most 8) a
      few batches ahead, normalised on the device; ``transform`` is unused;
    * ``records`` a ``uint8`` tensor ``N x 3 x H x W`` (already decoded, for example by
      :func:`~bdbnet.data.pipelines.decode.decode_split`): normalised on the device;
    * otherwise ``transform`` in a DataLoader with ``workers`` processes.

    All three give the same features for the same test recipe.
    """
    n = records.shape[0] if isinstance(records, torch.Tensor) else len(records)
    batches: Iterator[torch.Tensor] | DataLoader
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if isinstance(records, torch.Tensor):
        if records.dtype != torch.uint8 or records.ndim != 4 or records.shape[1] != 3:
            raise ValueError(
                f"need N x 3 x H x W uint8 images, got {records.dtype} {tuple(records.shape)}"
            )
        batches = (records[s : s + batch_size] for s in range(0, n, batch_size))
    elif decode is not None:
        batches = _decoded(records, decode, batch_size, workers or None)
        mean, std = decode.mean, decode.std
    else:
        batches = (
            images
            for images, *_ in DataLoader(
                ImageDataset(records, transform),
                batch_size=batch_size,
                shuffle=False,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                generator=torch.Generator(),  # leave the global RNG untouched (resume)
            )
        )
    total = -(-n // batch_size)
    shown = tqdm(batches, desc=desc, total=total, disable=not progress, leave=False)
    try:
        return embed_all(model, shown, device, flip, amp, channels_last, mean, std)
    except NonFiniteFeaturesError as err:
        if isinstance(records, torch.Tensor):
            raise
        raise NonFiniteFeaturesError(err.index, str(records[err.index].path)) from None


def _decoded(
    records: Sequence[ImageRecord], recipe: TensorRecipe, batch_size: int, threads: int | None
) -> Iterator[torch.Tensor]:
    """The records decoded in threads, batch by batch; a file that cannot be read stops the
    extraction with the error naming it (the splits were checked before)."""
    paths = [str(r.path) for r in records]
    decode = lambda path: decode_file(path, recipe.prepare)  # noqa: E731
    with contextlib.closing(decoded_batches(paths, decode, batch_size, threads)) as batches:
        for batch in batches:
            for item in batch:
                if isinstance(item, Exception):
                    raise item
            yield torch.stack(batch)  # type: ignore[arg-type]
