"""vast.ai marketplace search (``vast``): live listings → one price per (GPU, count).

A marketplace of individual hosts, not a price list: a single listing is not a price, so the
adapter takes medians over verified listings, and the feed has no regions (``VAST_REGION``).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Callable
from typing import Any

from .. import mapping
from ..fetch import Fetcher, FetchError, decode_json, short_url
from .base import Adapted, Machine, VmShape, positive_float, whole_count

__all__ = [
    "VAST_INTERRUPTION_OVERHEAD",
    "VAST_QUERY",
    "VAST_REGION",
    "adapt_vast_offers",
    "fetch_vast",
]

# Extra hours lost to an outbid (interrupted) rental: checkpoint + restart; an assumption, not
# provider data — the bundled catalog uses the same 0.2 for vast bids (0.15 for hyperscaler spot).
VAST_INTERRUPTION_OVERHEAD = 0.2

# Verified, rentable machines; the search answers at most ``limit`` offers.
VAST_QUERY = {
    "verified": {"eq": True},
    "rentable": {"eq": True},
    "num_gpus": {"gte": 1},
    "type": "on-demand",
    "limit": 3000,
}
VAST_REGION = "marketplace"


def _vast_gpu(name: str, gpu_ram_mb: Any) -> str | None:
    """vast's ``gpu_name`` (and ``gpu_ram`` in MB, which tells 40 from 80 GB) → gpus.csv id."""
    ram = positive_float(gpu_ram_mb)
    found = mapping.resolve("vast", name, memory_gib=ram / 1024 if ram else None)
    return found.gpu if found else None


def adapt_vast_offers(
    payload: Any, *, source_url: str, fetched_at: dt.date, min_offers: int = 3
) -> Adapted:
    """vast.ai search results → one on-demand and one interruptible offer per (GPU, count).

    vast.ai is a marketplace of individual hosts whose prices move daily, so a single
    listing is not a price: the offer's price is the median ``dph_total`` ($/h for the
    whole machine, storage included) over at least ``min_offers`` verified listings, and
    the interruptible price the median ``min_bid`` (the lowest bid a host accepts — a
    lower bound) plus the same storage charge (``dph_total − dph_base``), which the bid
    does not include: otherwise interruptible looks cheaper by the storage alone.
    Region is "marketplace" (listings span the world) and interconnect "pcie": hosts
    rarely advertise NVLink topology, so the scale-out model stays conservative. The
    listings are live, so ``as_of`` is the fetch date.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("offers"), list):
        raise FetchError(
            f"malformed response from {short_url(source_url)}: expected a JSON object "
            "with an 'offers' list"
        )
    out = Adapted()
    on_demand: dict[tuple[str, int], list[float]] = {}
    bids: dict[tuple[str, int], list[float]] = {}
    for offer in payload["offers"]:
        if not isinstance(offer, dict):
            out.skipped["malformed offer"] += 1
            continue
        gpu = _vast_gpu(str(offer.get("gpu_name") or ""), offer.get("gpu_ram"))
        count = whole_count(str(offer.get("num_gpus") or ""))
        price = positive_float(offer.get("dph_total"))
        if gpu is None:
            out.skipped[f"unknown GPU {offer.get('gpu_name')}"] += 1
            continue
        if count is None or price is None:
            out.skipped["no GPU count or no positive price"] += 1
            continue
        on_demand.setdefault((gpu, count), []).append(price)
        bid = positive_float(offer.get("min_bid"))
        base = positive_float(offer.get("dph_base"))
        if bid is not None:
            storage = max(0.0, price - base) if base is not None else 0.0
            bids.setdefault((gpu, count), []).append(bid + storage)
    for (gpu, count), prices in sorted(on_demand.items()):
        if len(prices) < min_offers:
            out.skipped[f"fewer than {min_offers} listings for one GPU/count"] += len(prices)
            continue
        instance = f"{count}x_{gpu.lower()}"
        offered_bids = bids.get((gpu, count), [])
        machine = Machine(
            "vast", VAST_REGION, instance, VmShape(gpu, count, "pcie"), source_url, fetched_at,
            fetched_at,
        )
        out.rows += machine.on_demand_and_spot(
            f"vast-{instance}",
            statistics.median(prices),
            statistics.median(offered_bids) if len(offered_bids) >= min_offers else None,
            spot_suffix="interruptible",
            spot_overhead=VAST_INTERRUPTION_OVERHEAD,
        )
    return out


def fetch_vast(
    fetcher: Fetcher, url: str, region: str | None, fetched_at: dt.date,
    report: Callable[[str], None],
) -> Adapted:
    report("searching offers")
    response = fetcher.get(url, {"q": json.dumps(VAST_QUERY, separators=(",", ":"))})
    payload = decode_json(response, url)
    return adapt_vast_offers(
        payload,
        source_url=response.url or url,
        fetched_at=fetched_at,
        min_offers=fetcher.settings.vast_min_offers,
    )
