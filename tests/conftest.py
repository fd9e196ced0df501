"""Shared test settings: hypothesis without deadlines (the machine is shared and noisy)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("minidl", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("minidl")
