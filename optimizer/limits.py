"""The job's limits, checked one way everywhere: deadline, budget and memory fit.

Floating-point noise must not turn a plan that meets a limit exactly into one that misses it
(720.0000000001 h against a 720 h deadline; a budget hit to the cent after a sum of products).
The tolerances are written once, here; every stage that asks "does this meet the limit?" calls
these functions, vectorised over numpy arrays or on plain floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HOURS_TOLERANCE = 1e-9            # absolute, hours
BUDGET_RELATIVE_TOLERANCE = 1e-12  # relative, of the budget
MEMORY_TOLERANCE_GB = 1e-9        # absolute, GB per GPU


def meets_deadline(hours: Any, deadline_hours: float | None) -> np.ndarray:
    """True where ``hours`` ≤ the deadline (always true without one); a 0-d array for a float."""
    values = np.asarray(hours, dtype=float)
    if deadline_hours is None or np.isinf(deadline_hours):
        return np.ones_like(values, dtype=bool)
    return np.asarray(values <= deadline_hours + HOURS_TOLERANCE)


def within_budget(cost_usd: Any, budget_usd: float | None) -> np.ndarray:
    """True where ``cost_usd`` ≤ the budget (always true without one)."""
    values = np.asarray(cost_usd, dtype=float)
    if budget_usd is None or np.isinf(budget_usd):
        return np.ones_like(values, dtype=bool)
    return np.asarray(values <= budget_usd * (1.0 + BUDGET_RELATIVE_TOLERANCE))


def fits_memory(need_gb_per_gpu: Any, memory_gb: Any) -> np.ndarray:
    """True where the job's bytes per GPU fit the GPU's memory."""
    return np.asarray(np.asarray(need_gb_per_gpu, dtype=float) <= np.asarray(memory_gb, dtype=float)
                      + MEMORY_TOLERANCE_GB)
