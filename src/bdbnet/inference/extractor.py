"""Features of arbitrary images with a trained BDB model (``bdbnet.FeatureExtractor``).

The extractor applies the checkpoint's own test preprocessing (input size, normalisation,
padding for the retrieval recipe) -- the same transform ``bdbnet evaluate`` uses -- so features
from a demo, a tracker or an index always agree with the evaluated numbers.

Every input is turned into an RGB PIL image first and resized by that transform's own resize
(in threads, a few batches ahead of the forward passes); the ``uint8`` batch is normalised on the
device, through the loop evaluation uses (:func:`~bdbnet.inference.embed.embed_all`). So the same
picture given as a file, a PIL image, an ``HxWxC`` uint8 array or a ``CxHxW`` tensor gives the
same feature, and it equals the evaluated one:

* ``str`` / ``os.PathLike``: an image file, or a directory (its images, recursively, sorted);
* ``PIL.Image.Image``;
* ``numpy.ndarray``: ``HxW`` (grey) or ``HxWxC`` (C = 1, 3 or 4); ``NxHxWxC`` is a batch;
* ``torch.Tensor``: ``CxHxW`` (C = 1 or 3); ``NxCxHxW`` is a batch;
* a list or tuple of any of these.

Arrays and tensors of dtype uint8 are taken in ``[0, 255]``, floating ones in ``[0, 1]``
(quantised to 8 bits, as an image file would be). Channels are RGB.

Unreadable files: calling the extractor raises :class:`~bdbnet.data.images.
UnreadableImageError` naming the file; :meth:`FeatureExtractor.extract` with
``skip_unreadable=True`` instead skips them and returns the kept and the skipped paths, so the
rows of the feature matrix always map exactly onto the returned paths.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bdbnet.data.datasets.base import IMAGE_EXTENSIONS
from bdbnet.data.images import UnreadableImageError, to_rgb
from bdbnet.errors import DataError
from bdbnet.files import file_sha256

__all__ = [
    "IMAGE_EXTENSIONS",
    "Extraction",
    "FeatureExtractor",
    "ModelIdentity",
    "list_images",
    "to_pil",
]


@dataclass(frozen=True)
class ModelIdentity:
    """What makes two feature sets comparable: the same weights, the same feature dimension and
    the same flip averaging. The weights are told apart by ``weights_sha256``
    (:func:`~bdbnet.models.weights.state_dict_sha256`: the tensors, whatever file holds them,
    so a re-saved or exported copy of a model is the same model); identities written before it
    existed fall back to ``sha256``, the checkpoint file's hash. ``checkpoint`` (the file name)
    and ``preprocess`` are informative only."""

    sha256: str
    feature_dim: int
    flip: bool = False
    checkpoint: str = ""
    preprocess: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelIdentity:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def mismatch(self, other: ModelIdentity) -> str | None:
        """A sentence saying why features of ``other`` cannot be compared with ours, or None."""
        if self.feature_dim != other.feature_dim:
            return f"feature dimension {other.feature_dim} != {self.feature_dim}"
        by_weights = bool(self.weights_sha256 and other.weights_sha256)
        mine, theirs = (
            (self.weights_sha256, other.weights_sha256)
            if by_weights
            else (self.sha256, other.sha256)
        )
        if mine != theirs:
            what = "weights sha256" if by_weights else "file sha256"
            return (
                f"different model: checkpoint {other.checkpoint or '?'} "
                f"({what} {theirs[:12]}) vs {self.checkpoint or '?'} ({what} {mine[:12]})"
            )
        if self.flip != other.flip:
            return f"flip averaging {other.flip} != {self.flip}"
        return None


def list_images(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Expand files and directories into a list of image paths.

    Directories contribute their files with an image suffix (:data:`IMAGE_EXTENSIONS`,
    case-insensitive), recursively and sorted; files named explicitly are kept whatever their
    suffix (so that an unreadable one is reported rather than ignored). A missing path raises
    :class:`~bdbnet.errors.DataError`; broken symbolic links inside directories are skipped
    with a warning that names them.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            candidates = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
            out.extend(str(f) for f in candidates if f.is_file())
            broken = [str(f) for f in candidates if f.is_symlink() and not f.exists()]
            if broken:
                shown = ", ".join(broken[:3]) + (f" and {len(broken) - 3} more" * (len(broken) > 3))
                warnings.warn(
                    f"skipping {len(broken)} broken symbolic link(s): {shown}", stacklevel=2
                )
        elif p.exists() or p.is_symlink():
            out.append(str(p))  # a broken link named explicitly is reported as unreadable
        else:
            raise DataError(f"no such image or directory: {p}")
    return out


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    """``HxW`` or ``HxWxC`` uint8 ([0, 255]) or float ([0, 1]) array -> RGB PIL image."""
    if arr.dtype != np.uint8:
        if arr.dtype.kind != "f":
            raise TypeError(f"image arrays must be uint8 or floating, got {arr.dtype}")
        arr = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(arr), "L").convert("RGB")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        img = Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[2] == 3 else "RGBA")
        return to_rgb(img)
    raise ValueError(f"an image array must be HxW or HxWxC with C in 1, 3, 4; got {arr.shape}")


def to_pil(image: Image.Image | np.ndarray | torch.Tensor) -> Image.Image:
    """One in-memory image (PIL, ``HxWxC`` array or ``CxHxW`` tensor) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.dim() != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"an image tensor must be CxHxW with C in 1, 3; got {tuple(t.shape)}")
        if t.dtype != torch.uint8 and not t.is_floating_point():
            raise TypeError(f"image tensors must be uint8 or floating, got {t.dtype}")
        return _array_to_pil(t.permute(1, 2, 0).numpy())
    if isinstance(image, np.ndarray):
        return _array_to_pil(image)
    raise TypeError(f"not an image: {type(image).__name__}")


def _flatten(images: Any) -> list[str | Image.Image | np.ndarray | torch.Tensor]:
    """Inputs as a flat list of paths and single in-memory images (batches split)."""
    if isinstance(images, str | os.PathLike):
        return list(list_images(images))
    if isinstance(images, Image.Image):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, torch.Tensor):
        return list(images.unbind(0)) if images.dim() == 4 else [images]
    if isinstance(images, Sequence):
        out: list = []
        for item in images:
            if isinstance(item, list | tuple):
                raise TypeError("nested lists of images are not supported")
            out.extend(_flatten(item))
        return out
    raise TypeError(f"cannot extract features of {type(images).__name__}")


@dataclass
class Extraction:
    """Features and what they are of: row ``i`` of ``features`` belongs to ``paths[i]``
    (in-memory inputs are named ``<input N>`` by their position); ``skipped`` lists the files
    that could not be read, with the reason."""

    features: torch.Tensor
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)


class FeatureExtractor:
    """Callable feature extractor for a trained model, in any inference runtime.

    Args:
        checkpoint: One of our checkpoints (``last.pt``), exported ``.safetensors`` weights, an
            official BDB ``*.pth.tar``, or an exported graph: ``.onnx`` (ONNX Runtime) or an
            OpenVINO IR ``.xml`` (with its ``.bin``). The preprocessing comes from the file.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        batch_size: Images per forward pass.
        flip: Average each feature with that of the mirrored image.
        amp: ``"auto"`` (default): bf16 autocast only where the hardware computes it natively
            (GPUs, CPUs with AVX512-BF16/AMX), fp32 elsewhere, where bf16 would be *slower*
            (benchmarks/results.md); ``"none"`` forces fp32, ``"bf16"``/``"fp16"`` (GPU only)
            force autocast.
        channels_last: Run the convolutions in NHWC layout (faster on GPUs and oneDNN CPUs;
            the same features up to float rounding).
        progress: Show a progress bar over batches.
        workers: Image-decoding threads (0: one per core, at most 8). Files are decoded and
            resized a few batches ahead of the forward passes, and reach the device as
            ``uint8``, where they are normalised.
        runtime: ``"auto"`` (by the file: ``.onnx`` -> ``onnxruntime``, ``.xml`` ->
            ``openvino``, PyTorch weights -> ``torch``) or one of those names
            (:mod:`bdbnet.inference.runtimes`).

    Example:
        >>> extract = FeatureExtractor("run/last.pt", device="cpu")  # doctest: +SKIP
        >>> feats = extract(["a.jpg", "b.jpg"])  # (2, 1536)  # doctest: +SKIP
        >>> feats = extract.get_features(xyxy, frame)  # a tracker's boxes  # doctest: +SKIP
        >>> FeatureExtractor("bdb_int8.xml").runtime.info.precision  # doctest: +SKIP
        'int8'
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        device: str | torch.device = "auto",
        batch_size: int = 32,
        flip: bool = False,
        amp: str = "auto",
        channels_last: bool = True,
        progress: bool = False,
        workers: int = 0,
        runtime: str = "auto",
    ) -> None:
        from bdbnet.data.pipelines.tensor import TensorRecipe
        from bdbnet.data.transforms import inference_transform
        from bdbnet.inference.runtimes import open_runtime

        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.checkpoint = Path(checkpoint)
        self.runtime = open_runtime(self.checkpoint, runtime, device, amp, channels_last)
        self.device = self.runtime.device
        # The PyTorch module (torch runtime only: activation maps need it), and the training
        # config when the file records one.
        self.model: torch.nn.Module | None = getattr(self.runtime, "model", None)
        info = self.runtime.info
        self.config = info.training_config()
        self.spec = self.runtime.preprocess  # the file's own preprocessing spec
        self.transform = inference_transform(self.spec)
        self.recipe = TensorRecipe.from_preprocessing(self.spec)
        self.preprocess = self.spec.to_dict()
        self.batch_size = batch_size
        self.flip = flip
        self.amp = amp
        self.channels_last = channels_last
        self.progress = progress
        if workers < 0:
            raise ValueError("workers must be 0 (one per core, at most 8) or positive")
        self.workers = workers
        self.identity = ModelIdentity(
            sha256=file_sha256(self.checkpoint),
            feature_dim=int(self.runtime.feature_dim),
            flip=flip,
            checkpoint=str(self.checkpoint.resolve()),
            preprocess=self.preprocess,
            weights_sha256=info.weights_sha256,
        )

    @property
    def feature_dim(self) -> int:
        return self.identity.feature_dim

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return self.spec.size

    def preprocess_image(self, image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
        """The normalised ``CxHxW`` network input for one in-memory image."""
        return self.transform(to_pil(image))

    def embed_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` float32 features (on the CPU) of a stack of :meth:`preprocess_image`
        outputs: one forward pass, for callers that preprocess elsewhere (the server decodes in
        its request threads and batches the forward passes of many clients)."""
        return self._embed_all([inputs])

    def __call__(self, images: Any) -> torch.Tensor:
        """``(N, D)`` float32 features (on the CPU) of ``images``, in order.

        Raises :class:`UnreadableImageError` naming the first file that cannot be read.
        """
        return self.extract(images, skip_unreadable=False).features

    def extract(self, images: Any, skip_unreadable: bool = True) -> Extraction:
        """Features plus the paths they belong to; unreadable files are skipped (with a
        :class:`UserWarning` each) when ``skip_unreadable``, otherwise they raise."""
        from tqdm.auto import tqdm

        items = _flatten(images)
        paths: list[str] = []
        skipped: list[tuple[str, str]] = []
        batches = self._batches(items, skip_unreadable, paths, skipped)
        total = -(-len(items) // self.batch_size)
        shown = tqdm(batches, desc="extract", unit="batch", total=total, disable=not self.progress)
        return Extraction(self._embed_all(shown), paths, skipped)

    def _decode(self, item: Any) -> torch.Tensor:
        """One input at the network's input size as ``uint8`` (runs in a decoding thread)."""
        from bdbnet.data.pipelines.decode import decode_file, to_uint8

        if isinstance(item, str | os.PathLike):
            return decode_file(str(item), self.recipe.prepare)
        return to_uint8(self.recipe.prepare(to_pil(item)))

    def _batches(
        self, items: list, skip_unreadable: bool, paths: list[str], skipped: list[tuple[str, str]]
    ) -> Iterator[torch.Tensor]:
        """``uint8`` batches of the readable items, decoded in threads; appends their names to
        ``paths`` and the unreadable files to ``skipped`` as it goes."""
        from bdbnet.data.pipelines.decode import decoded_batches

        decoded = decoded_batches(items, self._decode, self.batch_size, self.workers or None)
        with contextlib.closing(decoded):  # an unreadable file raising here stops the decoding
            yield from self._kept(items, decoded, skip_unreadable, paths, skipped)

    def _kept(
        self,
        items: list,
        decoded: Iterator[list],
        skip_unreadable: bool,
        paths: list[str],
        skipped: list[tuple[str, str]],
    ) -> Iterator[torch.Tensor]:
        for number, results in enumerate(decoded):
            start = number * self.batch_size
            kept = []
            for offset, (item, result) in enumerate(zip(items[start:], results)):
                if isinstance(result, UnreadableImageError):
                    if not skip_unreadable:
                        raise result
                    warnings.warn(f"skipping unreadable image {item}", stacklevel=6)
                    skipped.append((str(item), str(result.__cause__ or result)))
                    continue
                paths.append(
                    str(item)
                    if isinstance(item, str | os.PathLike)
                    else f"<input {start + offset}>"
                )
                kept.append(result)
            if kept:
                yield torch.stack(kept)

    def get_features(
        self, xyxy: np.ndarray | torch.Tensor | Sequence, frame: np.ndarray, bgr: bool = True
    ) -> torch.Tensor:
        """``(N, D)`` features of the ``N`` boxes ``xyxy`` (pixels, ``x1, y1, x2, y2``) of one
        video ``frame`` (``H x W x 3`` uint8; ``bgr``: OpenCV's channel order, what trackers
        hold), in box order: the interface tracking libraries call.

        Boxes are clipped to the frame; each crop goes through the model's own preprocessing.
        No boxes give a ``(0, D)`` tensor; a box with no area inside the frame raises
        :class:`ValueError` naming it.
        """
        from bdbnet.inference.crops import crop_boxes

        crops = crop_boxes(xyxy, frame, bgr)
        if not crops:
            return torch.empty(0, self.feature_dim)
        return self.extract(crops, skip_unreadable=False).features

    def _embed_all(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """The evaluation's extraction loop with this extractor's settings."""
        from bdbnet.inference.embed import embed_all

        # amp and channels_last are the runtime's own (set when it was opened)
        return embed_all(
            self.runtime, batches, self.device, self.flip,
            mean=self.recipe.mean, std=self.recipe.std,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"FeatureExtractor({str(self.checkpoint)!r}, runtime={self.runtime.info.runtime!r}, "
            f"precision={self.runtime.info.precision!r}, device={str(self.device)!r}, "
            f"dim={self.feature_dim}, input={self.input_size}, flip={self.flip})"
        )
