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
