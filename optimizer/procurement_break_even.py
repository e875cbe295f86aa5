"""Buy-vs-rent break-even of every capacity source, from the catalog and from the plan.

The plan says what to buy; the break-even says how close that call is — the utilisation at
which owning (or reserving) a unit beats renting the same GPU — so a reader can judge it
against their own expected use. ``OptionBreakEven`` documents both views.
"""

from __future__ import annotations

import numpy as np

from ..catalogs.loader import Catalog, hourly_cost_usd
from .economics import unit_break_even
from .portfolio import REFERENCE_RENTAL_KINDS
from .portfolio_candidates import PortfolioCandidates
from .procurement_report import units_on_hand
from .procurement_result import Assignment, OptionBreakEven

__all__ = ["break_even"]


def _reference_rental(catalog: Catalog, gpu: str, rentable: frozenset[str]) -> tuple[str, float] | None:
    """The cheapest $/GPU-h of the same GPU among rentals some job of the portfolio may use
    (its allow-lists admit the offer); spot is left out (interruptible, another product)."""
    offers = catalog.offers
    mask = (offers["gpu"] == gpu) & offers["kind"].isin(REFERENCE_RENTAL_KINDS) & offers["offer_id"].isin(rentable)
    rentals = offers[mask]
    if rentals.empty:
        return None
    per_gpu = (hourly_cost_usd(rentals) / rentals["gpus_per_instance"]).to_numpy(float)
    best = int(np.argmin(per_gpu))
    return str(rentals["offer_id"].iloc[best]), float(per_gpu[best])


def break_even(cands: PortfolioCandidates, bought: dict[tuple[int, int], int] | None,
               used: dict[str, np.ndarray] | None,
               assignments: tuple[Assignment, ...] = ()) -> tuple[OptionBreakEven, ...]:
    """Buy-vs-rent break-even of every capacity source, with the plan's use of it when there is one."""
    horizon = cands.portfolio.horizon
    by_name = {jc.name: jc for jc in cands.jobs}
    out = []
    for k, s in enumerate(cands.sources):
        ref = _reference_rental(cands.catalog, s.gpu, cands.rentable)
        power = s.power_per_unit_hour_usd / s.gpus_per_unit
        net = s.unit_cost_usd - s.resale_usd
        if s.kind == "purchase":
            available = (horizon.periods - s.lead_time_periods) * horizon.period_hours
        else:
            available = float(s.term_periods or 1) * horizon.period_hours
        u_star, gpu_hours = (None, None) if ref is None else unit_break_even(
            net, ref[1], power, s.gpus_per_unit, available)
        units = capacity = use = 0.0
        if bought is not None and used is not None:
            units = float(sum(n for (kk, _), n in bought.items() if kk == k) + (s.fixed_count or 0))
            capacity = sum(units_on_hand(s, bought, k, p) for p in range(1, horizon.periods + 1)) * \
                s.gpus_per_unit * horizon.period_hours
            use = float(used[s.name].sum())
        planned = use / capacity if capacity > 0 else None
        verb = "owning" if s.kind == "purchase" else "reserving"
        cost_text = (f"${net:,.0f} net of ${s.resale_usd:,.0f} resale" if s.kind == "purchase"
                     else f"${net:,.0f} for the term")
        if ref is None:
            note = (f"{s.name}: no on-demand or reserved {s.gpu} offer the jobs may rent to compare with; "
                    "the plan still compares every job's candidates")
        elif u_star is None:
            note = (f"{s.name}: power alone (${power:,.2f}/GPU-h) costs more than renting {s.gpu} at "
                    f"${ref[1]:,.2f}/GPU-h ({ref[0]}): {verb} never pays off")
        else:
            note = (f"{s.name}: {verb} a unit ({cost_text}) beats renting {s.gpu} at ${ref[1]:,.2f}/GPU-h "
                    f"({ref[0]}) when it is busy ≥ {u_star:.0%} of its {available:,.0f} available hours "
                    f"({gpu_hours:,.0f} GPU-h)")
            if u_star > 1:
                note += " — more than it has: renting always wins"
        on_it = tuple(a for a in assignments if a.option == s.name)
        alternatives = [by_name[a.job].cheapest_rental_usd for a in on_it]   # what each would pay renting
        rent_instead = own_cost = plan_u = None
        if on_it and all(v is not None for v in alternatives):
            rent_instead = float(sum(v for v in alternatives if v is not None))
            power_cost = sum(a.cost_usd for a in on_it)
            acquired = sum(n for (kk, _), n in (bought or {}).items() if kk == k) + (s.fixed_count or 0)
            own_cost = acquired * net + power_cost
            rate = (rent_instead - power_cost) / use if use > 0 else 0.0
            plan_u = net / (rate * s.gpus_per_unit * available) if rate > 0 else None
        if bought is not None:
            note += (f"; planned: {int(units)} unit(s), busy {planned:.0%}" if planned is not None
                     else "; planned: none acquired")
        if rent_instead is not None and own_cost is not None:
            note += (f"; its {len(on_it)} job(s) would rent for ${rent_instead:,.0f} instead of "
                     f"${own_cost:,.0f} here")
            if plan_u is not None:
                note += f" (at their rental prices a unit pays off from {plan_u:.0%} busy)"
        out.append(OptionBreakEven(
            option=s.name, kind=s.kind, gpu=s.gpu, gpus_per_unit=s.gpus_per_unit,
            reference_offer_id=ref[0] if ref else None, rental_usd_per_gpu_hour=ref[1] if ref else None,
            power_usd_per_gpu_hour=power, net_cost_per_unit_usd=net, available_hours_per_unit=available,
            break_even_gpu_hours_per_unit=gpu_hours, break_even_utilization=u_star, units=int(units),
            capacity_gpu_hours=float(capacity), used_gpu_hours=use, planned_utilization=planned, note=note,
            jobs=tuple(a.job for a in on_it), rent_instead_usd=rent_instead, own_cost_usd=own_cost,
            plan_break_even_utilization=plan_u,
        ))
    return tuple(out)
