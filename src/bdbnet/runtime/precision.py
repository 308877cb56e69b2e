"""Mixed precision: the ``amp`` choices, what ``auto`` means on this hardware, and autocast.

One list of choices (:data:`bdbnet.config.AMP_CHOICES`, importable without torch) serves the
config's ``train.amp``, every command's ``--amp`` and
:class:`~bdbnet.inference.FeatureExtractor`.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

from bdbnet.config import AMP_CHOICES

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

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
