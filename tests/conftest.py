"""Shared test settings: hypothesis without deadlines and one torch thread.

Tests use tiny tensors, where torch's intra-op threads only add contention on a shared 2-core machine
(the suite runs on 2 pytest-xdist workers). ``OMP_NUM_THREADS=1`` is set for the processes tests start
(a CLI run, torchrun's workers, a notebook kernel) unless the environment already sets it: with torch's
default of 2 threads, each such process competed with the other worker for the 2 cores.
"""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# derandomize: the same examples on every run, so CI never meets an example a developer did not
settings.register_profile(
    "minidl", deadline=None, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("minidl")
