"""Launch ``bdbnet`` (or the fault-injecting worker) under torchrun with 2 CPU processes of one
thread each (gloo), as the distributed tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent  # tests/: the worker and the shared helpers
WORKER = TESTS / "ddp_worker.py"


def torchrun(args: list[str], *torchrun_args: str, module: bool = True, **env: str):
    """Run ``bdbnet`` (or :data:`WORKER`) under torchrun with 2 CPU processes."""
    target = ["-m", "bdbnet"] if module else [str(WORKER)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", *torchrun_args, *target, *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(TESTS), *filter(None, [environment.get("PYTHONPATH")])]
    )
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
