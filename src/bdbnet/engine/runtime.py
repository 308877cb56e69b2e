"""Device, precision and seeding helpers shared by training, evaluation and inference."""

from __future__ import annotations

import contextlib
import functools
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from bdbnet.errors import DeviceError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available; an explicit ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
AMP_CHOICES = ("none", "bf16", "fp16", "auto")

# CPU flags of the instructions that make bf16 matrix work fast; without them oneDNN emulates
# bf16 and autocast is several times *slower* than fp32 (measured 6.7x on an AVX2-only AMD EPYC).
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA) under which it still uses native bf16 instructions.
_ONEDNN_BF16_ISAS = (
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "ALL",
)


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16), read from /proc/cpuinfo.

    ``ONEDNN_MAX_CPU_ISA`` is honoured: capped below AVX512-BF16 (for example ``AVX2``, which
    makes an AVX-512 machine compute like an AVX2-only one), oneDNN emulates bf16, so the
    answer is no.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", ""))
    if cap and cap.strip().upper() not in _ONEDNN_BF16_ISAS:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in _CPU_BF16_FLAGS)
    except OSError:
        pass
    return False


def resolve_amp(device: torch.device | str, amp: str = "auto") -> str:
    """Turn ``"auto"`` into the fastest safe precision for ``device``.

    ``auto`` means bf16 on a GPU that supports it and on a CPU with native bf16 instructions,
    fp32 (``"none"``) everywhere else; explicit choices are returned unchanged.
    """
    if amp != "auto":
        return amp
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "none"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "none"
    return "none"


def autocast(device: torch.device, amp: str = "none") -> contextlib.AbstractContextManager:
    """Autocast context for ``amp`` in {none, bf16, fp16, auto}; fp16 is GPU-only."""
    amp = resolve_amp(device, amp)
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in _AMP_DTYPES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}; got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a GPU; use bf16 on the CPU")
    return torch.autocast(device_type=device.type, dtype=_AMP_DTYPES[amp])


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def configure_backends(device: torch.device, deterministic: bool = False) -> None:
    """Let cuDNN pick the fastest convolution algorithms on GPUs (fixed input sizes make the
    search pay off after the first steps), unless the run asked for deterministic kernels."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic


def rng_state() -> dict:
    """Every global RNG state, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # a run resumed on a machine with fewer GPUs restores the devices it has
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Temporarily switch to eval mode and restore the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
