"""Combining fresh rows with what was there: bundled ids, the merge, and the price diff.

Fresh rows take the bundled offer_id of the same machine, so a refreshed price replaces the
bundled one instead of sitting next to it; the merge keeps the previous rows of feeds that
failed (and, under ``--region``, of other regions); the diff compares the effective prices
(bundled overlaid with the cache, loader layers 1–2) before and after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .refresh_result import FeedOutcome, FeedStatus, OfferChange, RefreshDiff

__all__ = ["adopt_bundled_ids", "compute_diff", "effective_prices", "merge_rows"]


def effective_prices(
    bundled: Sequence[Mapping[str, str]], cache: Sequence[Mapping[str, str]]
) -> dict[str, float]:
    """offer_id → the instance-hour price ``solve`` uses now (bundled overlaid with the cache)."""
    prices: dict[str, float] = {}
    for row in [*bundled, *cache]:
        price = _price(row)
        if row.get("offer_id") and price is not None:
            prices[row["offer_id"]] = price
    return prices


def adopt_bundled_ids(rows: list[dict[str, str]], bundled: list[dict[str, str]]) -> None:
    """Give a refreshed row the bundled offer_id of the same VM/region/kind, so it replaces it."""
    by_key = {
        (
            b.get("provider", ""),
            b.get("instance_type", "").lower(),
            b.get("region", "").lower(),
            b.get("kind", ""),
        ): b["offer_id"]
        for b in bundled
        if b.get("kind") in ("on_demand", "spot") and b.get("offer_id")
    }
    for row in rows:
        key = (row["provider"], row["instance_type"].lower(), row["region"].lower(), row["kind"])
        if key in by_key:
            row["offer_id"] = by_key[key]


def _price(row: Mapping[str, str] | None) -> float | None:
    if row is None:
        return None
    try:
        return float(row.get("price_per_hour_usd", ""))
    except ValueError:
        return None


def compute_diff(
    bundled: list[dict[str, str]],
    old_cache: list[dict[str, str]],
    new_cache: list[dict[str, str]],
    user_ids: set[str],
    old_written_at: str | None,
) -> RefreshDiff:
    """Old vs new effective offers, each = bundled overlaid with the cache (loader layers 1–2)."""

    def effective(cache: list[dict[str, str]]) -> dict[str, dict[str, str]]:
        table = {r["offer_id"]: r for r in bundled if r.get("offer_id")}
        table.update({r["offer_id"]: r for r in cache if r.get("offer_id")})
        return table

    before, after = effective(old_cache), effective(new_cache)

    def change(offer_id: str) -> OfferChange:
        old, new = before.get(offer_id), after.get(offer_id)
        ref = new or old or {}
        return OfferChange(
            offer_id,
            ref.get("provider", ""),
            ref.get("gpu", ""),
            _price(old),
            _price(new),
            (old or {}).get("as_of") or None,
            (new or {}).get("as_of") or None,
            ref.get("region", ""),
        )

    added = tuple(change(i) for i in sorted(set(after) - set(before)))
    removed = tuple(change(i) for i in sorted(set(before) - set(after)))
    moves: list[OfferChange] = []
    unchanged = 0
    for offer_id in sorted(set(before) & set(after)):
        item = change(offer_id)
        old, new = item.old_price_per_hour_usd, item.new_price_per_hour_usd
        if (
            old is not None
            and new is not None
            and not math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-9)
        ):
            moves.append(item)
        else:
            unchanged += 1
    moves.sort(key=lambda m: (-abs(m.change_pct or 0.0), m.offer_id))
    old_dates = sorted(d for d in (m.old_as_of for m in [*moves, *removed]) if d)
    return RefreshDiff(
        added=added,
        removed=removed,
        moves=tuple(moves),
        unchanged=unchanged,
        replaced_as_of=(old_dates[0], old_dates[-1]) if old_dates else None,
        replaced_cache_written_at=old_written_at,
        shadowed_by_user=tuple(sorted({r["offer_id"] for r in new_cache} & user_ids)),
    )


def merge_rows(
    old_rows: list[dict[str, str]],
    state_feeds: Mapping[str, Any],
    outcomes: Sequence[FeedOutcome],
    region: str | None,
) -> tuple[dict[str, dict[str, str]], dict[str, str | None]]:
    """Previous rows minus the scopes that refreshed, plus the fresh rows (later feeds win)."""
    owner_of: dict[str, str] = {}
    for feed_name, info in state_feeds.items():
        for offer_id in (info or {}).get("offer_ids", []):
            owner_of[str(offer_id)] = feed_name
    replaced = {o.name for o in outcomes if o.status is FeedStatus.ok and o.offers}
    merged: dict[str, dict[str, str]] = {}
    owners: dict[str, str | None] = {}
    for row in old_rows:
        offer_id = row.get("offer_id", "")
        if not offer_id:
            continue
        owner = owner_of.get(offer_id) or _guess_feed(row)
        in_scope = region is None or row.get("region", "").lower() == region.lower()
        if owner in replaced and in_scope:
            continue
        merged[offer_id], owners[offer_id] = row, owner
    for outcome in outcomes:
        if outcome.status is FeedStatus.ok:
            for row in outcome.rows:
                merged[row["offer_id"]], owners[row["offer_id"]] = row, outcome.name
    return merged, owners


def _guess_feed(row: Mapping[str, str]) -> str | None:
    """Owner of a cached row when the sidecar is missing (e.g. a crash between the two writes)."""
    source, provider = row.get("source", ""), row.get("provider", "")
    if "vms.csv" in source:
        return f"skypilot:{provider}"
    if provider == "vast" and "bundles" in source:
        return "vast"
    if provider == "azure" and "armSkuName" in source:
        return "azure"
    return None
