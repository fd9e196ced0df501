"""The errors minidl raises on bad input.

Every error that a user can cause is a ``MinidlError``, so the CLI can print it as one line and exit
non-zero. Subclasses also derive from the built-in exception that PyTorch would raise in the same place
(``ValueError`` for bad values and shapes), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class MinidlError(Exception):
    """Base class of every error caused by the user's input."""


class ShapeError(MinidlError, ValueError):
    """A tensor has a shape the operation cannot take."""


class ConfigError(MinidlError, ValueError):
    """A hyperparameter, flag or config value is invalid."""


class DataError(MinidlError, ValueError):
    """A data set or data file cannot be used."""


class StateDictError(MinidlError, KeyError):
    """A state_dict does not fit the module or optimizer it is loaded into."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(MinidlError):
    """A checkpoint file is missing, unreadable, corrupt or not a minidl checkpoint."""


class BackwardError(MinidlError, RuntimeError):
    """backward was called without the forward pass it needs."""
