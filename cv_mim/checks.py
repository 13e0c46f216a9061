"""Argument checks shared by every stage (a leaf utility: imports nothing of cv_mim).

Each raises ``ValueError`` naming the argument, which the binaries turn into one ``error: ...`` line.
"""

import math
import numbers


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is an integer ≥ 1 (bools refused), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def non_negative_int(value, name: str) -> int:
    """``value`` as an int if it is an integer ≥ 0 (bools refused), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def positive_float(value, name: str) -> float:
    """``value`` as a float if it is a finite number > 0, else a ValueError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number
