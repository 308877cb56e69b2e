"""The ground floor every other layer runs on: device, precision, seeding and the process group.

Training, evaluation, inference and serving all use these, so they sit below all of them and
import nothing of bdbnet but :mod:`bdbnet.errors`.
"""

from bdbnet.runtime.device import configure_backends, eval_mode, resolve_device
from bdbnet.runtime.distributed import DistContext, init_distributed
from bdbnet.runtime.precision import AMP_CHOICES, autocast, cpu_has_fast_bf16, resolve_amp
from bdbnet.runtime.seeding import rng_state, seed_everything, set_rng_state

__all__ = [
    "AMP_CHOICES",
    "DistContext",
    "autocast",
    "configure_backends",
    "cpu_has_fast_bf16",
    "eval_mode",
    "init_distributed",
    "resolve_amp",
    "resolve_device",
    "rng_state",
    "seed_everything",
    "set_rng_state",
]
