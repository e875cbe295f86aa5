"""Human-friendly numbers in job files: ``7B``, ``175M``, ``2T``, ``1.5e12``, ``$50k``, ``30d``.

Engineers write parameter and token counts the way papers do, so the job file
accepts the same. ``B`` is billion (1e9) because that is what "7B model" means;
``G`` is accepted as its SI synonym.
"""

from __future__ import annotations

import math
import re
import reprlib

_COUNT_SUFFIX = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "B": 1e9,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_DURATION_HOURS = {"s": 1 / 3600, "min": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0, "y": 8760.0}

_NUMBER = r"[+-]?(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_COUNT_RE = re.compile(rf"^\s*({_NUMBER})\s*([kKMBGTPE]?)\s*$")
_MONEY_RE = re.compile(rf"^\s*\$?\s*({_NUMBER})\s*([kKMBG]?)\s*(?:usd|USD)?\s*$")
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*(s|min|h|d|w|y)?\s*$")


class UnitError(ValueError):
    """A value that is not a number in any accepted notation."""


# Bounded repr for messages: a YAML alias bomb can hand us a list of 10^8 items.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 60, 60


def _show(value: object) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finite(value: float, text: object) -> float:
    if not math.isfinite(value):
        raise UnitError(f"must be a finite number (got {_show(text)})")
    return value


def _plain(value: object) -> float | None:
    if isinstance(value, bool):
        raise UnitError(f"must be a number, not a boolean (got {_show(value)})")
    if isinstance(value, (int, float)):
        return _finite(float(value), value)
    if not isinstance(value, str):
        raise UnitError(f"must be a number (got {type(value).__name__} {_show(value)})")
    return None


def _parse(value: object, pattern: re.Pattern[str], multipliers: dict[str, float], default_unit: str,
           examples: str) -> float:
    """A plain number passes through; text must match ``pattern`` (number, unit)."""
    plain = _plain(value)
    if plain is not None:
        return plain
    match = pattern.match(str(value))
    if not match:
        raise UnitError(f"must be {examples} (got {_show(value)})")
    unit = match.group(2) or default_unit
    return _finite(float(match.group(1).replace("_", "")) * multipliers[unit], value)


def parse_count(value: object) -> float:
    """``7B`` → 7e9; ``1.5e12`` → 1.5e12; plain numbers pass through."""
    return _parse(value, _COUNT_RE, _COUNT_SUFFIX, "", "a number like 7B, 175M, 2T or 1.5e12")


def parse_money(value: object) -> float:
    """``$50k`` → 50000.0; ``2.0e6`` → 2e6."""
    return _parse(value, _MONEY_RE, _COUNT_SUFFIX, "", "an amount in USD like 50000, $50k or 2.5M")


def parse_hours(value: object) -> float:
    """``30d`` → 720.0 hours; a plain number is already hours."""
    return _parse(value, _DURATION_RE, _DURATION_HOURS, "h", "a duration like 720, 720h, 30d, 2w or 90min")
