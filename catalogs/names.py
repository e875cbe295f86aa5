"""One rule for names the user types — GPU, provider, offer kind — in job files and on the CLI.

An exact name (any case) means itself; otherwise a name stands for every known name it is a
prefix of (``H100`` → H100-NVL, H100-PCIe, H100-SXM), so ``constraints.gpus: [H100]`` selects
what ``flopopt catalog list --gpu H100`` lists. A name that matches nothing is an error that
lists the closest known names: silently matching nothing would turn a typo into
"infeasible" or an empty table.
"""

from __future__ import annotations

import difflib
from typing import Iterable

from ..optimizer.errors import InputError


def matches(value: str, known: Iterable[str]) -> list[str]:
    """The known names ``value`` stands for: itself if exact (any case), else those it prefixes."""
    names = sorted({str(k) for k in known})
    lowered = value.strip().lower()
    exact = [n for n in names if n.lower() == lowered]
    if exact:
        return exact
    return [n for n in names if n.lower().startswith(lowered)] if lowered else []


def resolve(values: Iterable[str], known: Iterable[str], *, file: str, field: str, what: str) -> list[str]:
    """Every known name the given ones stand for; an unmatched name raises InputError with suggestions."""
    names = sorted({str(k) for k in known})
    out: list[str] = []
    for value in values:
        found = matches(str(value), names)
        if not found:
            close = difflib.get_close_matches(str(value), names, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise InputError.at(file, field, f"unknown {what} {str(value)!r}; {hint}known: {', '.join(names)}")
        out.extend(n for n in found if n not in out)
    return out
