"""``bdbnet`` under torchrun with a fault injected, for tests/test_distributed.py.

``python -m torch.distributed.run ... tests/ddp_worker.py train ...`` runs the command line
like ``-m bdbnet``. With ``BDBNET_TEST_KILL_STEP=N`` the process of rank
``BDBNET_TEST_KILL_RANK`` (default 1) SIGKILLs itself at the start of its N-th training step,
on the group's first start only, as a crashed machine would. With ``BDBNET_TEST_STOP_STEP=N``
that rank is stopped (SIGSTOP) at its N-th step instead, and continued
``BDBNET_TEST_STOP_SECONDS`` later, as a suspended or swapped-out process would be.
"""

import os
import signal
import subprocess
import sys
import time

from bdbnet.cli import main
from bdbnet.engine import trainer as trainer_module


def inject_faults() -> None:
    kill_step = int(os.environ.get("BDBNET_TEST_KILL_STEP", "0"))
    stop_step = int(os.environ.get("BDBNET_TEST_STOP_STEP", "0"))
    first_start = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    victim = os.environ.get("RANK") == os.environ.get("BDBNET_TEST_KILL_RANK", "1")
    if stop_step and first_start and victim:
        real_step = trainer_module.train_step
        calls = {"n": 0}
        seconds = os.environ.get("BDBNET_TEST_STOP_SECONDS", "10")

        def stopped_step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == stop_step:
                pid = os.getpid()
                wake = f"kill -STOP {pid}; sleep {seconds}; kill -CONT {pid}"
                # its own session: torchrun's SIGTERM to this group must not end the waker
                subprocess.Popen(["sh", "-c", wake], start_new_session=True)
                time.sleep(2)  # stopped in here
            return real_step(*args, **kwargs)

        trainer_module.train_step = stopped_step
    if kill_step and first_start and victim:
        real_step = trainer_module.train_step
        calls = {"n": 0}

        def dying_step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_step(*args, **kwargs)

        trainer_module.train_step = dying_step


if __name__ == "__main__":
    inject_faults()
    sys.exit(main(sys.argv[1:]))
