"""Price guards: the one place that decides whether a new price is believable.

A single poisoned row decides a plan (a feed offering H100s at $0.0001/h planned a whole
job for $0.48), so every price that enters from outside the bundled catalog — ``catalog
refresh``, ``catalog import`` and quote files — passes these checks first. A row that
fails is *held back*: it is listed with every reason it failed and never reaches
``solve``. The checks, each a documented setting (environment variable in brackets):

* **plausible band** per GPU: the $/GPU-h must lie within [cheapest / factor, dearest ×
  factor] of the reference offers for that GPU (the catalog's own rented offers), and
  always within the absolute floor and ceiling [``FLOPOPT_GUARD_BAND_FACTOR``,
  ``FLOPOPT_GUARD_FLOOR_USD``, ``FLOPOPT_GUARD_CEILING_USD``];
* **spot vs on-demand** for the same provider, instance type and region: spot must be
  below on-demand, above a floor fraction of it, and not exactly a placeholder fraction
  (SkyPilot's AWS catalog fills unknown spot prices with exactly 10% of on-demand; GCP's
  real TPU spot is exactly 40%, so only 10% is flagged by default)
  [``FLOPOPT_GUARD_SPOT_FLOOR``, ``FLOPOPT_GUARD_PLACEHOLDER_FRACTIONS``];
* **change** against the previous price of the same offer: a move beyond the threshold
  is held back unless the user accepts it (``--accept-changes``)
  [``FLOPOPT_GUARD_MAX_CHANGE_PCT``].

Owned and edge hardware is not priced per hour by a market (its cost is capex and
power), so only rented kinds are guarded. Library only: nothing here prints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .fetch import _env_number

__all__ = [
    "GUARDED_KINDS",
    "GuardReport",
    "GuardSettings",
    "HeldRow",
    "PriceRow",
    "check_prices",
    "price_rows",
]

GUARDED_KINDS = frozenset({"on_demand", "spot", "reserved", "cluster_quote"})
ENV_BAND_FACTOR = "FLOPOPT_GUARD_BAND_FACTOR"
ENV_FLOOR = "FLOPOPT_GUARD_FLOOR_USD"
ENV_CEILING = "FLOPOPT_GUARD_CEILING_USD"
ENV_SPOT_FLOOR = "FLOPOPT_GUARD_SPOT_FLOOR"
ENV_MAX_CHANGE = "FLOPOPT_GUARD_MAX_CHANGE_PCT"
ENV_PLACEHOLDERS = "FLOPOPT_GUARD_PLACEHOLDER_FRACTIONS"
_EXACT = 1e-6  # relative tolerance for "exactly": real spot prices are not round to 6 digits


@dataclass(frozen=True)
class GuardSettings:
    """Thresholds of the price guards; ``from_env`` reads the documented variables.

    Defaults: a band factor of 4 (the reference H100 offers span $2.18–12.29/GPU-h, so
    $0.55–49 is plausible), an absolute floor of $0.05 and ceiling of $150 per GPU-hour,
    spot at least 5% of on-demand, and a 30% limit on a price move between two looks.
    """

    band_factor: float = 4.0
    floor_usd_per_gpu_hour: float = 0.05
    ceiling_usd_per_gpu_hour: float = 150.0
    spot_floor_fraction: float = 0.05
    max_change_pct: float = 30.0
    # spot / on-demand ratios that are placeholders, not market prices, when exact
    placeholder_fractions: tuple[float, ...] = (0.1,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GuardSettings:
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            band_factor=_env_number(env, ENV_BAND_FACTOR, d.band_factor, low=1),
            floor_usd_per_gpu_hour=_env_number(env, ENV_FLOOR, d.floor_usd_per_gpu_hour, low=0),
            ceiling_usd_per_gpu_hour=_env_number(
                env, ENV_CEILING, d.ceiling_usd_per_gpu_hour, above=0
            ),
            spot_floor_fraction=_env_number(env, ENV_SPOT_FLOOR, d.spot_floor_fraction, low=0),
            max_change_pct=_env_number(env, ENV_MAX_CHANGE, d.max_change_pct, above=0),
            placeholder_fractions=_fractions(env, d.placeholder_fractions),
        )


def _fractions(env: Mapping[str, str], default: tuple[float, ...]) -> tuple[float, ...]:
    """``FLOPOPT_GUARD_PLACEHOLDER_FRACTIONS=0.1,0.5`` → (0.1, 0.5); empty string = none."""
    if ENV_PLACEHOLDERS not in env:
        return default
    out: list[float] = []
    for part in env[ENV_PLACEHOLDERS].split(","):
        if part.strip():
            out.append(_env_number({ENV_PLACEHOLDERS: part}, ENV_PLACEHOLDERS, 0.0, above=0))
    return tuple(out)


@dataclass(frozen=True)
class PriceRow:
    """What the guards need of one offer: identity, where, what, and the instance-hour price."""

    offer_id: str
    provider: str
    kind: str
    region: str
    instance_type: str
    gpu: str
    gpus_per_instance: int
    price_per_hour_usd: float

    @property
    def per_gpu_hour_usd(self) -> float:
        return self.price_per_hour_usd / max(self.gpus_per_instance, 1)

    @property
    def machine(self) -> tuple[str, str, str]:
        """Same machine, same place: spot and on-demand of one instance type and region."""
        return (self.provider.lower(), self.instance_type.lower(), self.region.lower())


@dataclass(frozen=True)
class HeldRow:
    """A row the guards held back, with every reason (not only the first)."""

    offer_id: str
    provider: str
    kind: str
    region: str
    gpu: str
    price_per_hour_usd: float | None
    reasons: tuple[str, ...]
    source: str = ""  # feed or file the row came from

    @property
    def change_only(self) -> bool:
        """Held only for moving too far: ``--accept-changes`` would adopt it."""
        return all(r.startswith(CHANGE_PREFIX) for r in self.reasons)


CHANGE_PREFIX = "price moved"


@dataclass(frozen=True)
class GuardReport:
    kept: tuple[int, ...]  # positions of the rows that passed
    held: tuple[HeldRow, ...] = field(default=())


def finite_number(value: Any) -> float | None:
    """A cell as a finite float, or None (empty, text, NaN, inf)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def price_rows(records: Iterable[Mapping[str, Any]]) -> list[PriceRow | None]:
    """offers.csv records (text or typed cells) → PriceRow, or None where a cell is unusable
    (schema validation reports those; the guards only judge rows that parse)."""
    out: list[PriceRow | None] = []
    for r in records:
        price = finite_number(r.get("price_per_hour_usd"))
        count = finite_number(r.get("gpus_per_instance"))
        if price is None or count is None or count < 1:
            out.append(None)
            continue
        out.append(PriceRow(
            offer_id=str(r.get("offer_id", "")),
            provider=str(r.get("provider", "")),
            kind=str(r.get("kind", "")),
            region=str(r.get("region", "")),
            instance_type=str(r.get("instance_type", "")),
            gpu=str(r.get("gpu", "")),
            gpus_per_instance=int(count),
            price_per_hour_usd=price,
        ))
    return out


def usd_text(value: float) -> str:
    """Cents always, up to 4 decimals below $10 (0.0001 and 0.4988 are the point of a message)."""
    if value >= 10:
        return f"${value:,.2f}"
    text = f"{value:,.4f}".rstrip("0")
    return "$" + text + "0" * max(0, 2 - len(text.split(".")[1]))


def _bands(reference: Sequence[PriceRow], settings: GuardSettings) -> dict[str, tuple[float, float]]:
    by_gpu: dict[str, list[float]] = {}
    for row in reference:
        if row.kind in GUARDED_KINDS and row.price_per_hour_usd > 0:
            by_gpu.setdefault(row.gpu, []).append(row.per_gpu_hour_usd)
    return {
        gpu: (
            max(settings.floor_usd_per_gpu_hour, min(prices) / settings.band_factor),
            min(settings.ceiling_usd_per_gpu_hour, max(prices) * settings.band_factor),
        )
        for gpu, prices in by_gpu.items()
    }


def check_prices(
    rows: Sequence[PriceRow | None],
    *,
    reference: Sequence[PriceRow],
    previous: Mapping[str, float],
    settings: GuardSettings,
    accept_changes: bool = False,
    extra_reasons: Mapping[int, Sequence[str]] | None = None,
    sources: Sequence[str] | None = None,
) -> GuardReport:
    """Judge every row; a row with any reason is held back with all of them.

    ``reference``: the offers a plausible band is built from (bundled and previously
    adopted rented offers); ``previous``: offer_id → the instance-hour price in effect
    now; ``extra_reasons``: defects found elsewhere (schema) to report with the guards'
    own, so a row with a negative price and an unknown GPU names both.
    """
    bands = _bands(reference, settings)
    on_demand: dict[tuple[str, str, str], float] = {
        r.machine: r.price_per_hour_usd for r in reference if r.kind == "on_demand"
    }
    on_demand.update({
        r.machine: r.price_per_hour_usd for r in rows if r is not None and r.kind == "on_demand"
    })
    kept: list[int] = []
    held: list[HeldRow] = []
    for position, row in enumerate(rows):
        reasons = list((extra_reasons or {}).get(position, ()))
        if row is not None and row.kind in GUARDED_KINDS:
            reasons += _band_reasons(row, bands, settings)
            reasons += _spot_reasons(row, on_demand, settings)
            if not accept_changes:
                reasons += _change_reasons(row, previous, settings)
        if not reasons:
            kept.append(position)
            continue
        held.append(HeldRow(
            offer_id=row.offer_id if row else "?",
            provider=row.provider if row else "",
            kind=row.kind if row else "",
            region=row.region if row else "",
            gpu=row.gpu if row else "",
            price_per_hour_usd=row.price_per_hour_usd if row else None,
            reasons=tuple(reasons),
            source=sources[position] if sources else "",
        ))
    return GuardReport(kept=tuple(kept), held=tuple(held))


def _band_reasons(
    row: PriceRow, bands: Mapping[str, tuple[float, float]], settings: GuardSettings
) -> list[str]:
    per_gpu = row.per_gpu_hour_usd
    low, high = bands.get(
        row.gpu, (settings.floor_usd_per_gpu_hour, settings.ceiling_usd_per_gpu_hour)
    )
    basis = "the catalog's offers for this GPU" if row.gpu in bands else "the absolute limits"
    if per_gpu < low:
        return [f"{usd_text(per_gpu)}/GPU-h is below the plausible band {usd_text(low)}–{usd_text(high)} "
                f"for {row.gpu} (from {basis}; {ENV_BAND_FACTOR}, {ENV_FLOOR})"]
    if per_gpu > high:
        return [f"{usd_text(per_gpu)}/GPU-h is above the plausible band {usd_text(low)}–{usd_text(high)} "
                f"for {row.gpu} (from {basis}; {ENV_BAND_FACTOR}, {ENV_CEILING})"]
    return []


def _spot_reasons(
    row: PriceRow, on_demand: Mapping[tuple[str, str, str], float], settings: GuardSettings
) -> list[str]:
    if row.kind != "spot" or row.machine not in on_demand or on_demand[row.machine] <= 0:
        return []
    od = on_demand[row.machine]
    ratio = row.price_per_hour_usd / od
    if ratio >= 1:
        return [f"spot {usd_text(row.price_per_hour_usd)} is not below on-demand {usd_text(od)} "
                "for the same instance and region"]
    if ratio < settings.spot_floor_fraction:
        return [f"spot is {ratio:.1%} of on-demand {usd_text(od)}, below the floor "
                f"{settings.spot_floor_fraction:.0%} ({ENV_SPOT_FLOOR})"]
    for fraction in settings.placeholder_fractions:
        if math.isclose(ratio, fraction, rel_tol=_EXACT):
            return [f"spot is exactly {fraction:.0%} of on-demand {usd_text(od)}: a placeholder, "
                    "not a market price"]
    return []


def _change_reasons(
    row: PriceRow, previous: Mapping[str, float], settings: GuardSettings
) -> list[str]:
    old = previous.get(row.offer_id)
    if old is None or old <= 0:
        return []
    change = (row.price_per_hour_usd - old) / old * 100.0
    if abs(change) <= settings.max_change_pct:
        return []
    return [f"{CHANGE_PREFIX} {change:+.0f}% against the previous {usd_text(old)}/h (more than "
            f"{settings.max_change_pct:g}%, {ENV_MAX_CHANGE}); --accept-changes adopts it"]
