"""argparse value types that reject bad values with a message naming the value."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, noun: str, low: float, strict: bool) -> Callable[[str], float | int]:
    """A parser of ``kind`` values that are finite and ``> low`` (strict) or ``>= low``."""
    bound = f"{'>' if strict else '>='} {low:g}"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            what = "a finite number" if kind is float else "an integer"
            raise argparse.ArgumentTypeError(f"must be {what} {bound}, got {text}")
        return value

    return parse


positive_float = _number(float, "a number", 0, strict=True)
non_negative_float = _number(float, "a number", 0, strict=False)
positive_int = _number(int, "an integer", 1, strict=False)
non_negative_int = _number(int, "an integer", 0, strict=False)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")
