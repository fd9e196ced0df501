"""Devices and dtypes by name: ``resolve_device("auto")`` and ``resolve_dtype("float64")``.

The CLI's ``--device`` and ``--dtype`` go through these, so a device that is not present here is one clear
``ConfigError`` before any work starts, never a CUDA traceback halfway through training.
"""

from __future__ import annotations

import re

import torch

from minidl.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# --dtype name -> torch dtype; minidl trains in floating point only
DTYPES = {"float32": torch.float32, "float64": torch.float64}

_DEVICE_RE = re.compile(r"^(cpu|cuda|mps)(?::(\d+))?$")


def is_device_name(spec: object) -> bool:
    """True for the names ``resolve_device`` understands (``auto``, ``cpu``, ``cuda:1``, ...), present here or not."""
    if not isinstance(spec, str):
        return False
    text = spec.strip().lower()
    return text == "auto" or _DEVICE_RE.match(text) is not None


def mps_is_available() -> bool:
    """True where Apple's Metal backend is built and usable (never on Linux)."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` for ``spec``, checked to exist on this machine.

    ``"auto"`` picks ``cuda`` if available, then ``mps``, then ``cpu``. ``"cuda"``, ``"cuda:1"``, ``"mps"``
    and ``"cpu"`` are taken literally and raise ``ConfigError`` when the device is not available here.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_is_available() else torch.device("cpu")
    match = _DEVICE_RE.match(text)
    if match is None:
        raise ConfigError(f"unknown device {str(spec)!r}; choose from auto, cpu, cuda, cuda:N, mps")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {text!r} was requested but torch.cuda.is_available() is False")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise ConfigError(
                f"device {text!r} was requested but only {count} CUDA device(s) are visible "
                f"(torch.cuda.device_count() is {count})"
            )
    elif kind == "mps" and not mps_is_available():
        raise ConfigError(f"device {text!r} was requested but torch.backends.mps.is_available() is False")
    elif kind == "cpu" and index not in (None, "0"):
        raise ConfigError(f"unknown device {text!r}; the CPU has no index other than 0")
    return torch.device(text)


def resolve_dtype(spec: str | torch.dtype) -> torch.dtype:
    """``torch.float32`` or ``torch.float64`` from its name (``"float32"``, ``"float64"``) or itself."""
    if isinstance(spec, torch.dtype):
        if spec not in DTYPES.values():
            raise ConfigError(f"unsupported dtype {spec}; choose from {', '.join(DTYPES)}")
        return spec
    name = str(spec).strip().lower().removeprefix("torch.")
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {spec!r}; choose from {', '.join(DTYPES)}")
    return DTYPES[name]
