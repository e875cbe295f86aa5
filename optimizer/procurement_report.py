"""From a solution of the program to the plan's records: placements, units, periods and costs.

The program buys every unit in period 1 and knows jobs only as candidate indices; the report
turns that into what a reader acts on — each job's placement, purchases scheduled just in
time, commitments with their terms, GPU-hours per period, and the cost breakdown.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .capacity_sources import CapacitySource
from .portfolio import PURCHASE_PREFIX, RESERVED_PREFIX
from .portfolio_candidates import JobCandidates, PortfolioCandidates
from .procurement_result import Assignment, Commitment, CostBreakdown, PeriodUse, Purchase

__all__ = [
    "commitment_records",
    "cost_breakdown",
    "just_in_time",
    "make_assignment",
    "period_uses",
    "purchase_records",
    "units_on_hand",
    "used_by_source",
]


def make_assignment(jc: JobCandidates, c: int, use: np.ndarray) -> Assignment:
    """Where job ``jc`` runs when the solution picks its kept candidate ``c``."""
    row = jc.kept.iloc[c]
    source = str(row["source"])
    offer_id = str(row["offer_id"])
    resource: Literal["rental", "purchase", "reserved"] = (
        "purchase" if offer_id.startswith(PURCHASE_PREFIX) and source else
        "reserved" if offer_id.startswith(RESERVED_PREFIX) and source else "rental")
    return Assignment(
        job=jc.name, period=jc.pjob.period, offer_id=offer_id, option=source or None, resource=resource,
        provider=str(row["provider"]), kind=str(row["kind"]), gpu=str(row["gpu"]), gpu_count=int(row["gpu_count"]),
        instances=int(row["instances"]), precision=str(row["precision"]), scenario=str(row["scenario"]),
        hours=float(row["hours"]), cost_usd=float(row["cost_usd"]),
        periods=tuple(int(p) + 1 for p in np.flatnonzero(use > 0)),
        region=str(row.get("region", "") or ""),
    )


def just_in_time(cands: PortfolioCandidates, bought: dict[tuple[int, int], int], choice: list[int],
                  usage: list[np.ndarray]) -> dict[tuple[int, int], int]:
    """Purchases rescheduled to the latest period that still covers each unit's first use.

    The program buys every unit in period 1 (CapacitySource.acquire_periods); a unit
    costs the same in any period, so the plan reports it bought when it is first needed:
    units on hand in p = the most any period up to p needs, for capacity (2) and for the
    largest job (3). Units the program bought beyond any need stay in period 1.
    """
    horizon = cands.portfolio.horizon
    out = {key: n for key, n in bought.items() if cands.sources[key[0]].kind != "purchase"}
    for k, s in enumerate(cands.sources):
        if s.kind != "purchase":
            continue
        total = sum(n for (kk, _), n in bought.items() if kk == k)
        need = np.zeros(horizon.periods, dtype=int)
        gpu_hours = np.zeros(horizon.periods)
        for jc, c, use in zip(cands.jobs, choice, usage):
            if str(jc.kept["source"].iloc[c]) == s.name:
                gpu_hours += use[c]
                need = np.maximum(need, np.where(use[c] > 0, int(jc.kept["instances"].iloc[c]), 0))
        need = np.maximum(need, np.ceil(gpu_hours / (s.gpus_per_unit * horizon.period_hours) - 1e-9).astype(int))
        on_hand = np.maximum.accumulate(need)
        previous = 0
        for p, units in enumerate(on_hand.tolist(), start=1):
            if units > previous:
                out[(k, p - s.lead_time_periods)] = units - previous
                previous = units
        if total > previous:
            out[(k, 1)] = out.get((k, 1), 0) + total - previous
    return out


def units_on_hand(source: CapacitySource, bought: dict[tuple[int, int], int], k: int, period: int) -> int:
    """Units of source ``k`` usable in ``period``: signed ones plus those acquired in time (U_kp)."""
    acquired = sum(n for (kk, a), n in bought.items() if kk == k and source.available(a, period))
    return source.fixed_units(period) + acquired


def used_by_source(cands: PortfolioCandidates, choice: list[int], usage: list[np.ndarray]) -> dict[str, np.ndarray]:
    """GPU-hours used per period on each capacity source."""
    used = {s.name: np.zeros(cands.portfolio.horizon.periods) for s in cands.sources}
    for jc, c, use in zip(cands.jobs, choice, usage):
        source = str(jc.kept["source"].iloc[c])
        if source:
            used[source] += use[c]
    return used


def purchase_records(cands: PortfolioCandidates, bought: dict[tuple[int, int], int]) -> tuple[Purchase, ...]:
    """The purchases, in period order."""
    out = []
    for (k, a), n in sorted(bought.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s = cands.sources[k]
        if n and s.kind == "purchase":
            out.append(Purchase(period=a, option=s.name, count=n, capex_usd=n * s.unit_cost_usd, gpu=s.gpu,
                                gpus=s.gpus_per_unit, usable_from=a + s.lead_time_periods,
                                resale_usd=n * s.resale_usd))
    return tuple(out)


def commitment_records(cands: PortfolioCandidates, bought: dict[tuple[int, int], int]) -> tuple[Commitment, ...]:
    """Reserved commitments: chosen ones and those signed in the portfolio file."""
    periods = cands.portfolio.horizon.periods
    terms = [(a, k, n, False) for (k, a), n in bought.items() if n and cands.sources[k].kind == "reserved"]
    terms += [(int(s.fixed_start or 1), k, int(s.fixed_count), True) for k, s in enumerate(cands.sources)
              if s.fixed_count]
    out = []
    for a, k, n, signed in sorted(terms):
        s = cands.sources[k]
        first = a + s.lead_time_periods
        out.append(Commitment(period=a, option=s.name, count=n, cost_usd=n * s.unit_cost_usd, gpu=s.gpu,
                              gpus=s.gpus_per_unit, usable_from=first,
                              usable_until=min(periods, first + int(s.term_periods or 1) - 1), signed=signed))
    return tuple(out)


def _owned_gpus(cands: PortfolioCandidates, offer_id: str) -> float:
    """GPUs of an owned catalog offer: instances (max_instances, default 1) × GPUs per instance."""
    row = cands.catalog.offers[cands.catalog.offers["offer_id"] == offer_id].iloc[0]
    instances = row["max_instances"] if row["max_instances"] == row["max_instances"] else 1
    return float(instances) * float(row["gpus_per_instance"])


def period_uses(cands: PortfolioCandidates, assignments: tuple[Assignment, ...], bought: dict[tuple[int, int], int],
             used: dict[str, np.ndarray], choice: list[int], usage: list[np.ndarray]) -> tuple[PeriodUse, ...]:
    horizon = cands.portfolio.horizon
    rented = np.zeros(horizon.periods)
    on_owned = np.zeros(horizon.periods)   # jobs on owned machines of the catalog: owned, not rented
    owned_offers: dict[str, float] = {}    # owned catalog offer → its GPUs (capacity while used)
    for jc, c, use in zip(cands.jobs, choice, usage):
        if str(jc.kept["source"].iloc[c]):
            continue
        if str(jc.kept["kind"].iloc[c]) in ("owned", "edge"):
            on_owned += use[c]
            owned_offers[str(jc.kept["offer_id"].iloc[c])] = _owned_gpus(cands, str(jc.kept["offer_id"].iloc[c]))
        else:
            rented += use[c]
    owned_capacity = sum(owned_offers.values()) * horizon.period_hours
    out = []
    for p in range(1, horizon.periods + 1):
        units = {s.name: units_on_hand(s, bought, k, p) for k, s in enumerate(cands.sources)}
        own = [s for s in cands.sources if s.kind == "purchase"]
        res = [s for s in cands.sources if s.kind == "reserved"]
        out.append(PeriodUse(
            period=p,
            owned_gpu_hours=sum(units[s.name] * s.gpus_per_unit * horizon.period_hours for s in own)
            + owned_capacity,
            used_gpu_hours=float(sum(used[s.name][p - 1] for s in own)) + float(on_owned[p - 1]),
            reserved_gpu_hours=sum(units[s.name] * s.gpus_per_unit * horizon.period_hours for s in res),
            reserved_used_gpu_hours=float(sum(used[s.name][p - 1] for s in res)),
            rented_gpu_hours=float(rented[p - 1]),
            units=units,
            jobs_started=tuple(a.job for a in assignments if a.period == p),
        ))
    return tuple(out)


def cost_breakdown(cands: PortfolioCandidates, assignments: tuple[Assignment, ...],
           bought: dict[tuple[int, int], int]) -> CostBreakdown:
    rental = sum((a.cost_usd for a in assignments if a.resource == "rental"), 0.0)
    power = sum((a.cost_usd for a in assignments if a.resource == "purchase"), 0.0)
    capex = resale = reserved = 0.0
    for (k, _), n in bought.items():
        s = cands.sources[k]
        if s.kind == "purchase":
            capex += n * s.unit_cost_usd
            resale += n * s.resale_usd
        else:
            reserved += n * s.unit_cost_usd
    reserved += sum(s.unit_cost_usd * s.fixed_count for s in cands.sources if s.fixed_count)
    return CostBreakdown(rental_usd=rental, capex_usd=capex, power_usd=power, reserved_usd=reserved,
                         resale_usd=resale, total_usd=rental + capex + power + reserved - resale,
                         cash_usd=rental + capex + power + reserved)
