"""What every price source shares: the shape of a VM, the offers.csv row it becomes, billing
terms, and the ``Adapted`` result a feed returns.

Each source module (``skypilot``, ``azure``, ``vast``) turns its own format into rows of
offers.csv; this module keeps those rows identical in form whatever the source, so a refreshed
row differs from a bundled one only in its numbers. Rows are strings in offers.csv's columns;
validating them is the caller's job (``refresh``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..fetch import Fetcher

__all__ = [
    "BILLING_HOURS",
    "DEFAULT_BILLING_HOURS",
    "SPOT_INTERRUPTION_OVERHEAD",
    "Adapted",
    "FeedRunner",
    "Machine",
    "VmShape",
    "offer_columns",
    "positive_float",
    "slug",
    "whole_count",
]


@dataclass(frozen=True)
class VmShape:
    """What one VM size holds: the gpus.csv id, how many, and how they are connected."""

    gpu: str
    gpus_per_instance: int
    interconnect: str


# Billing granularity per provider: (billing_increment_hours, min_hours), the same
# numbers as the bundled offers.csv. Unknown clouds get per-minute billing.
_PER_SECOND = 1 / 3600
_PER_MINUTE = 1 / 60
BILLING_HOURS: dict[str, tuple[float, float]] = {
    "aws": (_PER_SECOND, _PER_MINUTE),  # per second after a 60 s minimum
    "gcp": (_PER_SECOND, _PER_MINUTE),
    "azure": (_PER_SECOND, _PER_MINUTE),
    "lambda": (_PER_MINUTE, _PER_MINUTE),
    "runpod": (_PER_SECOND, 0.0),
    "vast": (_PER_SECOND, 0.0),
}
DEFAULT_BILLING_HOURS = (_PER_MINUTE, _PER_MINUTE)
# Extra hours lost to preemption (checkpoint + restart); an assumption, not provider
# data — the bundled catalog uses the same 0.15 for hyperscaler spot (vast bids: vast.py).
SPOT_INTERRUPTION_OVERHEAD = 0.15


def offer_columns() -> list[str]:
    """offers.csv's columns in schema order: every row a source makes has exactly these keys."""
    from .. import schema

    return [c.name for c in schema.OFFERS]


def _price_text(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _hours_text(value: float) -> str:
    return f"{value:.9g}"


def slug(text: str) -> str:
    """An offer_id part: lower case, no spaces or commas (ids end up in CSV cells and flags)."""
    return re.sub(r"[\s,]+", "_", text.strip().lower())


@dataclass(frozen=True)
class Machine:
    """What one offer rents, where, and who says so: every column but the price terms.

    ``as_of`` is the source's own date for the price (the API's effective date, the
    catalog file's commit or Last-Modified date); ``fetched_at`` is when flopopt read it.
    An old snapshot fetched today stays old.
    """

    provider: str
    region: str
    instance_type: str
    shape: VmShape
    source: str
    as_of: dt.date
    fetched_at: dt.date | None = None

    def row(
        self,
        offer_id: str,
        kind: str,
        price_per_hour_usd: float,
        *,
        billing: tuple[float, float] | None = None,
        interruption_overhead: float | None = None,
    ) -> dict[str, str]:
        """One offers.csv row (all columns, as text); ``billing`` = (increment, minimum) hours."""
        increment_hours, min_hours = billing or BILLING_HOURS.get(
            self.provider, DEFAULT_BILLING_HOURS
        )
        row = {name: "" for name in offer_columns()}
        row.update(
            offer_id=offer_id,
            provider=self.provider,
            kind=kind,
            region=self.region,
            instance_type=self.instance_type,
            gpu=self.shape.gpu,
            gpus_per_instance=str(self.shape.gpus_per_instance),
            price_per_hour_usd=_price_text(price_per_hour_usd),
            billing_increment_hours=_hours_text(increment_hours),
            min_hours=_hours_text(min_hours),
            interconnect=self.shape.interconnect,
            price_quality="primary",
            source=self.source,
            as_of=min(self.as_of, self.fetched_at or self.as_of).isoformat(),
            fetched_at=(self.fetched_at or self.as_of).isoformat(),
        )
        if interruption_overhead is not None:
            row["interruption_overhead"] = f"{interruption_overhead:g}"
        return row

    def on_demand_and_spot(
        self,
        id_base: str,
        on_demand_usd: float | None,
        spot_usd: float | None,
        *,
        spot_suffix: str,
        spot_overhead: float,
    ) -> list[dict[str, str]]:
        """The machine's ``<id_base>-ondemand`` and ``<id_base>-<spot_suffix>`` rows, for
        each price that is known (None = not offered that way)."""
        rows: list[dict[str, str]] = []
        if on_demand_usd is not None:
            rows.append(self.row(f"{id_base}-ondemand", "on_demand", on_demand_usd))
        if spot_usd is not None:
            rows.append(
                self.row(
                    f"{id_base}-{spot_suffix}",
                    "spot",
                    spot_usd,
                    interruption_overhead=spot_overhead,
                )
            )
        return rows


@dataclass
class Adapted:
    """One feed's rows plus how many source records were skipped, by reason."""

    rows: list[dict[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    pages: int = 1


# The source protocol: fetch with a Fetcher, adapt, return the rows. Arguments: fetcher, url,
# region (None = all), the fetch date, and a progress callback taking a short detail text.
FeedRunner = Callable[[Fetcher, str, "str | None", dt.date, Callable[[str], None]], Adapted]


def positive_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def whole_count(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value >= 1 and value == int(value) else None

