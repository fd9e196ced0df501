"""Shared test settings: hypothesis without deadlines and one torch thread.

Tests use tiny tensors, where torch's intra-op threads only add contention on a shared 2-core machine
(the suite runs on 2 pytest-xdist workers). ``OMP_NUM_THREADS=1`` is set for the processes tests start
(a CLI run, torchrun's workers, a notebook kernel) unless the environment already sets it: with torch's
default of 2 threads, each such process competed with the other worker for the 2 cores.
"""

from __future__ import annotations

import os
import sys

# The test command installs with `pip install --no-compile` (compiling every installed file took about half of
# the install's time): Python then compiles a module the first time it is imported and caches it, unless
# PYTHONDONTWRITEBYTECODE is set, which would make every process the suite starts compile torch again.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# derandomize: the same examples on every run, so CI never meets an example a developer did not
settings.register_profile(
    "minidl", deadline=None, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("minidl")
