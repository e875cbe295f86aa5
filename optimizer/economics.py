"""Owning against renting: the break-even family, written once.

Bottom layer (plain arithmetic, no flopopt imports), so the catalog loader's hourly cost of owned
hardware and the optimiser's break-even reports use the same constants and formulas.

    amortised capex per busy hour   capex / (years · HOURS_PER_YEAR · utilisation)
    utilisation break-even (hourly) own(u) = K / u + R  equals renting V per hour at u* = K / (V − R)
    unit break-even (over a plan)   owning U busy GPU-hours costs F − R + p·U, renting r·U:
                                    U* = (F − R) / (r − p), u* = U* / (G · available hours)
"""

from __future__ import annotations

HOURS_PER_YEAR = 8760.0


def utilization_break_even(capex_per_hour_usd: float, running_per_hour_usd: float,
                           rental_equivalent_per_hour_usd: float) -> float | None:
    """The utilisation u at which owning costs the same as renting the same throughput.

    Owning charges capex over the hours the machine is busy, so one busy hour costs
        own(u) = K / u + R          K = capex / (years · 8,760 h)   [USD per calendar hour]
                                    R = power_kw · USD/kWh + fee     [USD per busy hour]
    while renting the same work costs V per hour (the cheapest rental's USD per PFLOP ×
    the machine's PFLOP per hour). own(u) ≤ V  ⇔  u ≥ K / (V − R).
    Returns None when V ≤ R (running the machine alone costs more than renting: never);
    a value above 1 means owning cannot win at any achievable utilisation.
    """
    margin = rental_equivalent_per_hour_usd - running_per_hour_usd
    if margin <= 0:
        return None
    return capex_per_hour_usd / margin


def unit_break_even(net_cost_per_unit_usd: float, rental_usd_per_gpu_hour: float, running_usd_per_gpu_hour: float,
                    gpus_per_unit: int, available_hours: float) -> tuple[float | None, float | None]:
    """(utilisation, GPU-hours) at which a bought unit costs the same as renting its busy GPU-hours.

    Owning U busy GPU-hours costs F − R + p·U; renting them costs r·U. Equal at
    U* = (F − R) / (r − p); as a share of the unit's available GPU-hours u* = U* / (G·hours).
    None when r ≤ p (running the unit costs more than renting: never pays off).
    """
    margin = rental_usd_per_gpu_hour - running_usd_per_gpu_hour
    if margin <= 0:
        return None, None
    gpu_hours = net_cost_per_unit_usd / margin
    return gpu_hours / (gpus_per_unit * available_hours), gpu_hours
