"""Weight initialisation of the heads, as in the official BDB code."""

from __future__ import annotations

from torch import nn


def init_head(module: nn.Module) -> None:
    """Kaiming-normal weights (linear: fan_out, conv: fan_in) with zero bias, BN weight ~ N(1,
    0.02) with zero bias: the official ``weights_init_kaiming``. Use with ``module.apply``."""
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight, a=0, mode="fan_out")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
