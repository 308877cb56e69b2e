"""The runtime tests (``runtimes_cases.py``) in an interpreter of their own.

With OpenVINO (its TBB thread pool), NNCF and ONNX Runtime sessions loaded into the suite's
process, a later test that starts a ``bdbnet serve`` subprocess and polls it died of SIGSEGV
in the suite's main thread (``tests/serve/test_serve_load.py`` after these cases, on a 2-core
Xeon with AMX; neither alone, nor any single case before it, crashed). Keeping those libraries
out of the suite's process keeps every other test independent of them. The cases run verbose
and unbuffered, so should one crash the interpreter, its name is the last line printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # exports of a ResNet-50, NNCF quantisation, a second interpreter

CASES = Path(__file__).with_name("runtimes_cases.py")
ROOT = Path(__file__).resolve().parents[2]


def test_runtime_cases_pass_in_their_own_interpreter():
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rs", str(CASES)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONUNBUFFERED"] = "1"
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    output = result.stdout[-8000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    print(output[-3000:])  # which cases ran or were skipped (and why), in -rs form
