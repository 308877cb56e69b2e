"""Pieces built from a Config: the optimiser follows the official code."""

import pytest
import torch

from bdbnet.config import load_config
from bdbnet.engine.builders import build_optimizer


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_09_and_nesterov_from_the_config(nesterov):
    cfg = load_config(overrides=["optim.optimizer=sgd", f"optim.nesterov={str(nesterov).lower()}"])
    opt = build_optimizer(torch.nn.Linear(3, 2), cfg)
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, nesterov, 5e-4)


def test_sgd_default_has_no_nesterov_as_the_official_code():
    cfg = load_config(overrides=["optim.optimizer=sgd"])
    assert build_optimizer(torch.nn.Linear(3, 2), cfg).param_groups[0]["nesterov"] is False


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizers_use_the_fused_kernel_on_cpu_parameters(name):
    cfg = load_config(overrides=[f"optim.optimizer={name}"])
    opt = build_optimizer(torch.nn.Linear(3, 2), cfg)
    assert opt.defaults["fused"] is True


def test_fused_adam_takes_the_loop_kernels_step():
    torch.manual_seed(0)
    cfg = load_config(overrides=["optim.lr=0.01"])
    fast, loop = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    loop.load_state_dict(fast.state_dict())
    opts = [
        build_optimizer(fast, cfg),
        torch.optim.Adam(loop.parameters(), lr=0.01, weight_decay=5e-4),
    ]
    x = torch.randn(16, 8)
    for _ in range(3):
        for model, opt in zip((fast, loop), opts):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(fast.parameters(), loop.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6 * b.abs().max().item())


def test_non_float_or_other_device_parameters_fall_back_to_foreach():
    from bdbnet.engine.builders import optimizer_kernel

    assert optimizer_kernel([torch.nn.Parameter(torch.zeros(2))]) == {"fused": True}
    assert optimizer_kernel([torch.nn.Parameter(torch.zeros(2, device="meta"))]) == {
        "foreach": True
    }
    assert optimizer_kernel([]) == {"foreach": True}
