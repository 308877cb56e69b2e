import random

import numpy as np
import pytest
import torch

from bdbnet.runtime import precision as runtime
from bdbnet.runtime.device import eval_mode, resolve_device
from bdbnet.runtime.precision import autocast, resolve_amp
from bdbnet.runtime.seeding import rng_state, set_rng_state

pytestmark = pytest.mark.usefixtures("real_bf16_detection")  # this module tests the detection


def test_rng_state_round_trip_through_a_safe_checkpoint(tmp_path):
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_autocast_choices():
    cpu = torch.device("cpu")
    with autocast(cpu, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(cpu, "none"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="fp16 autocast needs a GPU"):
        autocast(cpu, "fp16")
    with pytest.raises(ValueError, match="amp must be"):
        autocast(cpu, "int8")


def fake_cpuinfo(tmp_path, monkeypatch, flags: str) -> None:
    """Make /proc/cpuinfo report ``flags`` (and forget the cached answer)."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda f, *a, **k: real_open(cpuinfo if f == "/proc/cpuinfo" else f, *a, **k),
    )
    runtime.cpu_has_fast_bf16.cache_clear()


@pytest.mark.parametrize(
    ("cap", "expected"),
    [("AVX2", "none"), ("avx512_core", "none"), ("AVX512_CORE_BF16", "bf16"), ("ALL", "bf16")],
)
def test_auto_amp_honours_the_onednn_isa_cap(tmp_path, monkeypatch, cap, expected):
    # ONEDNN_MAX_CPU_ISA=AVX2 makes an AVX512-BF16 machine emulate bf16: auto must pick fp32.
    fake_cpuinfo(tmp_path, monkeypatch, "fpu avx2 avx512f avx512_bf16")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    try:
        assert resolve_amp("cpu", "auto") == expected
    finally:
        runtime.cpu_has_fast_bf16.cache_clear()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse avx2 fma", "none"),  # AVX2 only: emulated bf16 is slower than fp32
        ("fpu avx2 avx512f avx512_bf16", "bf16"),
        ("fpu avx2 avx512f amx_tile amx_bf16", "bf16"),
    ],
)
def test_auto_amp_on_cpu_follows_the_bf16_instructions(tmp_path, monkeypatch, flags, expected):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    fake_cpuinfo(tmp_path, monkeypatch, flags)
    try:
        assert resolve_amp("cpu", "auto") == expected
        # explicit choices are never second-guessed
        assert resolve_amp("cpu", "bf16") == "bf16"
        assert resolve_amp("cpu", "none") == "none"
        with autocast(torch.device("cpu"), "auto"):
            dtype = (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        assert dtype == (torch.bfloat16 if expected == "bf16" else torch.float32)
    finally:
        runtime.cpu_has_fast_bf16.cache_clear()


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="--device cpu"):
            resolve_device("cuda")


def test_eval_mode_restores_training_state():
    m = torch.nn.Linear(2, 2).train()
    with eval_mode(m):
        assert not m.training
    assert m.training


@pytest.mark.parametrize("deterministic", [False, True])
def test_cudnn_benchmark_on_gpus_unless_deterministic(monkeypatch, deterministic):
    from bdbnet.runtime.device import configure_backends

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    configure_backends(torch.device("cpu"), deterministic)
    assert torch.backends.cudnn.benchmark is False  # CPUs: untouched
    configure_backends(torch.device("cuda"), deterministic)
    assert torch.backends.cudnn.benchmark is (not deterministic)
