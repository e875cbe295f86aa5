"""Capacity sources: a portfolio's purchase and reserved options as offers of the catalog.

Each option becomes one synthetic offer (``buy:…`` / ``reserve:…``) that jobs are priced on
like any other; its units are paid for in the procurement integer program, so per busy hour
the offer costs only what using it adds (power for bought hardware, nothing for reserved).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .errors import InputError, Problem
from .portfolio import PURCHASE_PREFIX, RESERVED_PREFIX, Portfolio

# ---------------------------------------------------------------------------
# Capacity sources: purchase and reserved options resolved against the catalog


@dataclass(frozen=True)
class CapacitySource:
    """Bought or reserved GPUs: capacity per period, paid per unit, used by jobs for free
    (reserved) or for their power (bought).

    A unit acquired in period q is usable in period p when ``available(q, p)``; purchases
    are usable from q + lead time to the horizon's end, commitments for their term.
    """

    name: str
    kind: Literal["purchase", "reserved"]
    where: str                     # field path of the option in the portfolio file
    offer_id: str                  # the synthetic offer jobs see ("buy:<name>" / "reserve:<name>")
    provider: str
    gpu: str
    gpus_per_unit: int
    interconnect: str
    unit_cost_usd: float           # capex, or price × term hours of a commitment
    resale_usd: float              # recovered per unit at the horizon's end (purchases)
    power_kw: float                # per unit (purchases; reserved capacity bills no power)
    electricity_usd_per_kwh: float
    lead_time_periods: int
    term_periods: int | None       # reserved only
    max_count: int | None          # units on hand at once
    fixed_count: int | None        # reserved: a signed commitment
    fixed_start: int | None
    price_per_hour_usd: float | None = None    # reserved: per unit-hour
    source_note: str | None = None

    @property
    def power_per_unit_hour_usd(self) -> float:
        return self.power_kw * self.electricity_usd_per_kwh

    def acquire_periods(self, periods: int) -> list[int]:
        """Periods in which the integer program may buy / commit units.

        Commitments: any period whose term starts inside the horizon. Purchases: period 1
        only. A bought unit costs the same whenever it is bought (no discounting, resale
        independent of age, one budget for the horizon) and an earlier unit is usable in
        every period a later one is, so buying in period 1 is never worse; letting the
        program also choose the period would only add equivalent solutions for it to
        search (it made the 200-job benchmark 50% slower). The report then schedules each
        unit just in time (procurement_report.just_in_time).
        """
        if self.fixed_count is not None or self.lead_time_periods >= periods:
            return []
        if self.kind == "purchase":
            return [1]
        return [q for q in range(1, periods + 1) if q + self.lead_time_periods <= periods]

    def available(self, acquired: int, period: int) -> bool:
        first = acquired + self.lead_time_periods
        if self.kind == "purchase":
            return period >= first
        return first <= period < first + int(self.term_periods or 1)

    def fixed_units(self, period: int) -> int:
        """Units of a signed commitment usable in ``period``."""
        if self.fixed_count is None:
            return 0
        return self.fixed_count if self.available(int(self.fixed_start or 1), period) else 0


def capacity_sources(portfolio: Portfolio, catalog: Catalog) -> tuple[CapacitySource, ...]:
    """Purchase and reserved options, completed from the catalog and checked against it."""
    file = portfolio.source_file
    problems: list[Problem] = []
    known_gpus = sorted(str(g) for g in catalog.gpus.index)
    offers = catalog.offers.set_index("offer_id", drop=False)
    hours = portfolio.horizon.period_hours
    sources: list[CapacitySource] = []

    def offer_row(where: str, offer_id: str | None, kinds: tuple[str, ...] | None) -> dict[str, Any] | None:
        if offer_id is None:
            return None
        if offer_id not in offers.index:
            close = difflib.get_close_matches(offer_id, [str(o) for o in offers.index], n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(Problem(file, f"{where}.offer", f"no offer {offer_id!r} in the catalog; {hint}"
                                    "see `flopopt catalog list`"))
            return None
        row = dict(offers.loc[offer_id])
        if kinds is not None and row["kind"] not in kinds:
            problems.append(Problem(file, f"{where}.offer", f"offer {offer_id!r} is {row['kind']}; a purchase "
                                    f"option takes its capex and power from an offer of kind {' or '.join(kinds)}"))
            return None
        return row

    def need(where: str, name: str, value: Any, row: dict[str, Any] | None, column: str) -> Any:
        if value is not None:
            return value
        if row is not None and _present(row.get(column)):
            return row[column]
        problems.append(Problem(file, f"{where}.{name}", "required field is missing (or give 'offer' to take it "
                                "from a catalog offer)"))
        return None

    def check_gpu(where: str, gpu: Any) -> None:
        if gpu is not None and str(gpu) not in known_gpus:
            close = difflib.get_close_matches(str(gpu), known_gpus, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(Problem(file, f"{where}.gpu", f"unknown gpu {gpu!r}; {hint}known: {', '.join(known_gpus)}"))

    for i, o in enumerate(portfolio.purchase_options):
        where = f"purchase_options[{i}]"
        row = offer_row(where, o.offer, ("owned", "edge"))
        gpu = need(where, "gpu", o.gpu, row, "gpu")
        gpus = need(where, "gpus", o.gpus, row, "gpus_per_instance")
        capex = need(where, "capex_usd", o.capex_usd, row, "capex_usd")
        power = need(where, "power_kw", o.power_kw, row, "power_kw")
        price = need(where, "electricity_usd_per_kwh", o.electricity_usd_per_kwh, row, "electricity_usd_per_kwh")
        check_gpu(where, gpu)
        if None in (gpu, gpus, capex, power, price):
            continue
        sources.append(CapacitySource(
            name=o.option, kind="purchase", where=where, offer_id=PURCHASE_PREFIX + o.option, provider="owned",
            gpu=str(gpu), gpus_per_unit=int(gpus),
            interconnect=o.interconnect or (str(row["interconnect"]) if row else _default_fabric(int(gpus))),
            unit_cost_usd=float(capex), resale_usd=float(capex) * o.resale_fraction, power_kw=float(power),
            electricity_usd_per_kwh=float(price), lead_time_periods=o.lead_time_periods, term_periods=None,
            max_count=o.max_count, fixed_count=None, fixed_start=None,
            source_note=o.source or (f"catalog offer {o.offer}" if o.offer else None)))
    for i, r in enumerate(portfolio.reserved):
        where = f"reserved[{i}]"
        row = offer_row(where, r.offer, None)
        gpu = need(where, "gpu", r.gpu, row, "gpu")
        gpus = need(where, "gpus", r.gpus, row, "gpus_per_instance")
        provider = need(where, "provider", r.provider, row, "provider")
        price = need(where, "price_per_hour_usd", r.price_per_hour_usd, row, "price_per_hour_usd")
        check_gpu(where, gpu)
        if None in (gpu, gpus, provider, price):
            continue
        sources.append(CapacitySource(
            name=r.option, kind="reserved", where=where, offer_id=RESERVED_PREFIX + r.option, provider=str(provider),
            gpu=str(gpu), gpus_per_unit=int(gpus),
            interconnect=r.interconnect or (str(row["interconnect"]) if row else _default_fabric(int(gpus))),
            unit_cost_usd=float(price) * r.term_periods * hours, resale_usd=0.0, power_kw=0.0,
            electricity_usd_per_kwh=0.0, lead_time_periods=r.lead_time_periods, term_periods=r.term_periods,
            max_count=r.max_count if r.count is None else r.count, fixed_count=r.count,
            fixed_start=(r.start_period or 1) if r.count is not None else None,
            price_per_hour_usd=float(price),
            source_note=r.source or (f"catalog offer {r.offer}" if r.offer else None)))
    for offer_id in portfolio.quotas:
        if offer_id not in offers.index:
            close = difflib.get_close_matches(offer_id, [str(o) for o in offers.index], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(Problem(file, f"quotas.{offer_id}", f"no offer {offer_id!r} in the catalog{hint}"))
    if problems:
        raise InputError(problems)
    return tuple(sources)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _default_fabric(gpus: int) -> str:
    # 8-GPU boards are NVLink/NVSwitch servers (HGX/DGX); smaller boxes talk over PCIe.
    return "nvlink" if gpus >= 8 else "pcie"


def catalog_with_sources(catalog: Catalog, sources: tuple[CapacitySource, ...], quotas: dict[str, int]) -> Catalog:
    """The catalog plus one synthetic offer per capacity source, quotas overridden.

    A source's offer costs only what using it adds per busy hour — power for bought
    hardware, nothing for reserved capacity — because its units are paid for in the
    integer program. Bought hardware is kind ``owned`` so the performance model treats it
    as the lab/cluster scenario, exactly like an owned catalog offer.
    """
    offers = catalog.offers
    if quotas:
        offers = offers.copy()
        for offer_id, quota in quotas.items():
            offers.loc[offers["offer_id"] == offer_id, "max_instances"] = float(quota)
    if not sources:
        return replace(catalog, offers=offers)
    rows = []
    for s in sources:
        rows.append({
            "offer_id": s.offer_id, "provider": s.provider, "kind": "owned" if s.kind == "purchase" else "reserved",
            "region": "portfolio", "instance_type": s.name, "gpu": s.gpu, "gpus_per_instance": float(s.gpus_per_unit),
            "price_per_hour_usd": 0.0, "billing_increment_hours": 0.0, "min_hours": 0.0,
            "max_instances": float(s.max_count) if s.max_count is not None else np.nan,
            "interconnect": s.interconnect, "interruption_overhead": np.nan,
            # capex is paid in the MILP; per busy hour only power is charged (1 year, full use: no amortisation)
            "capex_usd": 0.0 if s.kind == "purchase" else np.nan,
            "amortization_years": 1.0 if s.kind == "purchase" else np.nan,
            "utilization": 1.0 if s.kind == "purchase" else np.nan,
            "power_kw": s.power_kw, "electricity_usd_per_kwh": s.electricity_usd_per_kwh, "sunk": False,
            "source": s.source_note or "portfolio file", "as_of": "", "origin_file": "portfolio", "origin_row": 0,
        })
    extra = pd.DataFrame(rows, columns=list(offers.columns)).astype(offers.dtypes.to_dict())
    return replace(catalog, offers=pd.concat([offers, extra], ignore_index=True),
                   layers=catalog.layers + ("portfolio options",))


