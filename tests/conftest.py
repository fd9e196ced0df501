"""Shared test settings: hypothesis without deadlines and one torch thread.

Tests use tiny tensors, where torch's intra-op threads only add contention on a shared 2-core machine.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

# derandomize: the same examples on every run, so CI never meets an example a developer did not
settings.register_profile(
    "minidl", deadline=None, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("minidl")
