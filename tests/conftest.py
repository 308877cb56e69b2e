"""Shared fixtures: a tiny synthetic re-ID dataset and a fast training config."""

from __future__ import annotations

import os

import pytest

from bdbnet.config import Config, load_config
from bdbnet.runtime.precision import cpu_has_fast_bf16 as REAL_CPU_HAS_FAST_BF16


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# On the Intel CPUs with AMX that CI may run on, oneDNN's AMX bf16 kernels gave non-finite
# gradients intermittently in these VMs (a bf16 resume test: 2 of 4 runs failed with AMX, 4 of 4
# passed capped at AVX512_CORE_BF16). Tests run bf16 through AVX512-BF16 there: still native
# bf16 (runtime.precision.cpu_has_fast_bf16 stays true), without the AMX tiles. oneDNN reads it
# when it creates its first primitive (importing torch creates none); subprocesses inherit it.
if "amx_bf16" in _cpu_flags():
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip where no GPU is visible (CI); ``pytest -m cuda`` on a GPU
    machine runs exactly them (benchmarks/gpu_check.sh)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A small dataset in the Market-1501 layout (generated once per test session)."""
    from bdbnet.data.synthetic import generate_synthetic_reid

    root = tmp_path_factory.mktemp("tiny") / "synthetic"
    generate_synthetic_reid(root, train_ids=8, test_ids=6, seed=0, distractors=6, junk=3)
    return root


# The demo recipe shrunk for unit tests: 32x16 inputs, P x K = 4 x 2, deterministic.
TINY_OVERRIDES = (
    "data.height=32",
    "data.width=16",
    "data.cutout_size=8",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.test_batch_size=16",
    "train.amp=none",
    "train.channels_last=false",
    "train.deterministic=true",
    "train.tensorboard=false",
    "train.progress=false",
    "train.device=cpu",
    "train.eval_every=0",
    "train.log_every=1",
    "optim.epochs=2",
    "optim.warmup_epochs=0",
    "optim.warmup_step=1",
    "optim.milestones=[1]",
)


# Features of one image differ slightly between batch compositions, precisions and CPU kinds
# (oneDNN picks other fp32 kernels on AVX-512 than on AVX2): measured up to 7e-5 relative per
# row on the tiny checkpoint. Comparisons are relative to the features' scale, never absolute.
BATCH_NOISE = 1e-3  # relative L2 difference of one feature row across batch compositions


def _native_bf16() -> bool:
    from bdbnet.runtime.precision import cpu_has_fast_bf16

    return cpu_has_fast_bf16()


# Tests of the bf16 path where the CPU computes it natively (AVX512-BF16/AMX, and oneDNN not
# capped below it); elsewhere bf16 is emulated, many times slower, and not what `auto` picks.
needs_native_bf16 = pytest.mark.skipif(
    not _native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16/AMX)"
)


def assert_rows_close(actual, expected, rel: float = BATCH_NOISE) -> None:
    """Each row of ``actual`` is within ``rel`` (relative L2 distance) of the same row of
    ``expected``: a tolerance that scales with the features, whatever their norm."""
    import torch

    actual, expected = torch.as_tensor(actual).float(), torch.as_tensor(expected).float()
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = (actual - expected).norm(dim=-1) / expected.norm(dim=-1).clamp_min(1e-12)
    assert float(diff.max()) <= rel, f"rows differ by up to {float(diff.max()):.2e} relative"


def feature_scale(features) -> float:
    """The root-mean-square L2 norm of the rows: the natural unit of Euclidean distances
    between them (an image's own copy lies within a few 1e-4 of it, measured; other images of
    the tiny checkpoint lie at about 0.6 of it)."""
    import torch

    return float(torch.as_tensor(features).float().pow(2).sum(-1).mean().sqrt())


def tiny_config(*overrides: str) -> Config:
    """The demo recipe shrunk for unit tests (:data:`TINY_OVERRIDES`), then ``overrides``."""
    return load_config("synthetic-demo", overrides=[*TINY_OVERRIDES, *overrides])


def calibrated_bdbnet(num_classes: int = 4, seed: int = 0, calibrate: bool = True, **model_kwargs):
    """A random-weight BDBNet with eval-mode features of a realistic scale (a few units).

    ``calibrate``: estimate the BatchNorm statistics on random 32x16 images, as training would.
    Otherwise keep the initial statistics (mean 0, variance 1) and scale the two embedding
    BatchNorms' affine parameters down instead: the same scale without the very small variances
    that an estimate on random data gives some channels, which amplify float32 rounding
    (export-parity tests use this one).
    """
    import torch

    from bdbnet.models import BDBNet

    torch.manual_seed(seed)
    model = BDBNet(num_classes, pretrained=None, **model_kwargs)
    if calibrate:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None  # cumulative average
        model.train()
        with torch.no_grad():
            model(torch.randn(16, 3, 32, 16, generator=torch.Generator().manual_seed(seed)))
    else:
        with torch.no_grad():
            for bn in (model.global_reduction[1], model.drop_reduction[1]):
                bn.weight.mul_(0.5)
                bn.bias.mul_(0.5)
    return model.eval()


def write_tiny_checkpoint(path, seed: int = 0, calibrate: bool = True):
    """One of our checkpoints of a calibrated random model with the 32x16 test recipe."""
    from bdbnet.engine.builders import model_kwargs
    from bdbnet.files import atomic_save
    from bdbnet.models.loading import FORMAT, VERSION

    cfg = tiny_config("model.backbone=resnet50")  # the paper's network, not the demo's ResNet-18
    kwargs = model_kwargs(cfg)
    model = calibrated_bdbnet(4, seed, calibrate, **kwargs)
    state = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": 1,
        "model": model.state_dict(),
        "model_kwargs": kwargs,
        "num_classes": 4,
        "config": cfg.to_dict(),
    }
    atomic_save(state, path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Path of a small checkpoint (ResNet-50 BDB, random calibrated weights, 32x16 inputs)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def person_images(tmp_path_factory):
    """Eight distinct 48x24 RGB images named like Market-1501 files (pids 1-4, cameras 1-2)."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("people")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        arr = rng.integers(0, 256, size=(48, 24, 3), dtype=np.uint8)
        path = folder / f"{i // 2 + 1:04d}_c{i % 2 + 1}s1_{i:06d}_00.png"
        Image.fromarray(arr).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session", autouse=True)
def auto_precision_is_fp32():
    """``amp="auto"`` (the inference default) resolves to fp32 in tests, whatever the CPU: its
    bf16 choice on AVX512-BF16/AMX CPUs would make fp32 comparisons depend on the CI machine.
    Session-scoped, so that module-scoped fixtures (an extractor's gallery index, say) are
    built under it too. The bf16 tests ask for ``amp="bf16"`` explicitly; ``test_runtime.py``
    puts the real detection back (:func:`real_bf16_detection`) to test it."""
    from bdbnet.runtime import precision as runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
        yield


@pytest.fixture
def real_bf16_detection(monkeypatch):
    """Undo :func:`auto_precision_is_fp32` for one test."""
    from bdbnet.runtime import precision as runtime

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", REAL_CPU_HAS_FAST_BF16)
    REAL_CPU_HAS_FAST_BF16.cache_clear()
    yield
    REAL_CPU_HAS_FAST_BF16.cache_clear()
