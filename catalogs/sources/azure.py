"""Azure Retail Prices API (``azure``): paged JSON → offers.csv rows for the GPU VM sizes.

The direct API, not a mirror: it carries on-demand, Spot and reservation prices with each
price's own effective date, so its rows win over SkyPilot's Azure rows (see ``registry``).
``AZURE_GPU_VMS`` (from accelerators.csv) is also what tells SkyPilot's Azure rows their exact
board and count.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import mapping
from ..fetch import ENV_MAX_PAGES, Fetcher, FetchError, redirect_refusal, short_url
from .base import SPOT_INTERRUPTION_OVERHEAD, Adapted, Machine, VmShape, positive_float, slug

__all__ = [
    "AZURE_API_VERSION",
    "AZURE_GPU_VMS",
    "AZURE_RESERVATION_HOURS",
    "adapt_azure_items",
    "azure_filter",
    "fetch_azure",
]

# Every source name → gpus.csv id lives in accelerators.csv (see ``mapping``): whole-GPU
# Azure VM sizes, SkyPilot accelerator names (with GpuInfo memory), vast GPU names.
AZURE_GPU_VMS: dict[str, VmShape] = {
    size: VmShape(m.gpu, m.gpus_per_instance or 1, m.interconnect)
    for size, m in mapping.azure_sizes().items()
}
AZURE_RESERVATION_HOURS = {"1 Year": 8760.0, "3 Years": 26280.0}

AZURE_API_VERSION = "2023-01-01-preview"


def azure_filter(skus: Iterable[str], region: str | None) -> str:
    """OData filter for the GPU VM sizes (values are case-sensitive since 2023-01-01-preview)."""
    any_sku = " or ".join(f"armSkuName eq '{sku}'" for sku in skus)
    text = f"serviceName eq 'Virtual Machines' and ({any_sku})"
    if region:
        text += f" and armRegionName eq '{region}'"
    return text


def _effective_date(value: Any) -> dt.date | None:
    """Azure's ``effectiveStartDate`` (``2024-03-01T00:00:00Z``) as a date: the price's own date."""
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def adapt_azure_items(items: Sequence[Any], *, base_url: str, fetched_at: dt.date) -> Adapted:
    """Azure price items → offers: Linux consumption (on-demand), Spot, and reservations.

    Rules (reference B1): Windows products carry a licence fee → skipped; "Low Priority"
    meters are the legacy Batch tier → skipped; "Spot" in meterName/skuName → spot;
    ``type == 'Reservation'`` prices are the total for the term → divided by 8,760 h
    (1 year) or 26,280 h (3 years), with min_hours = the term, because a reservation is
    paid whether used or not. Several items for one offer (non-primary meters, tiers)
    keep the lowest price. ``source`` is the API query that returns exactly that VM's
    price in that region, so a reader can check the number. ``as_of`` is the item's
    ``effectiveStartDate`` (the fetch date only when the item has none).
    """
    out = Adapted()
    best: dict[str, dict[str, str]] = {}
    for item in items:
        if not isinstance(item, dict):
            out.skipped["malformed item"] += 1
            continue
        sku = str(item.get("armSkuName") or "")
        shape = AZURE_GPU_VMS.get(sku)
        if shape is None:
            out.skipped["not a mapped GPU VM size"] += 1
            continue
        product, meter = str(item.get("productName") or ""), str(item.get("meterName") or "")
        sku_name, price_type = str(item.get("skuName") or ""), str(item.get("type") or "")
        region = str(item.get("armRegionName") or "").strip()
        price = positive_float(item.get("retailPrice"))
        if "Windows" in product:
            out.skipped["Windows (licence included)"] += 1
            continue
        if "Low Priority" in meter or "Low Priority" in sku_name:
            out.skipped["low priority (legacy Batch tier)"] += 1
            continue
        if item.get("isPrimaryMeterRegion") is False:
            out.skipped["non-primary meter"] += 1
            continue
        if str(item.get("currencyCode") or "USD") != "USD":
            out.skipped["not priced in USD"] += 1
            continue
        if not region or price is None:
            out.skipped["no region or no positive price"] += 1
            continue
        billing: tuple[float, float] | None = None
        overhead: float | None = None
        if price_type == "Reservation":
            term_hours = AZURE_RESERVATION_HOURS.get(str(item.get("reservationTerm") or ""))
            if term_hours is None:
                out.skipped["unknown reservation term"] += 1
                continue
            kind, suffix = "reserved", f"reserved-{round(term_hours / 8760)}y"
            price_per_hour_usd = price / term_hours
            billing = (term_hours, term_hours)
        elif price_type == "Consumption":
            unit = re.fullmatch(r"(\d+) Hours?", str(item.get("unitOfMeasure") or "").strip())
            if unit is None or int(unit.group(1)) == 0:
                out.skipped["price unit is not hours"] += 1
                continue
            price_per_hour_usd = price / int(unit.group(1))
            spot = "Spot" in meter or "Spot" in sku_name
            kind, suffix = ("spot", "spot") if spot else ("on_demand", "ondemand")
            overhead = SPOT_INTERRUPTION_OVERHEAD if spot else None
        else:
            out.skipped[f"price type {price_type or '?'}"] += 1
            continue
        source = f"{base_url}?$filter=armSkuName eq '{sku}' and armRegionName eq '{region}'"
        as_of = _effective_date(item.get("effectiveStartDate")) or fetched_at
        row = Machine("azure", region, sku, shape, source, as_of, fetched_at).row(
            f"azure-{slug(sku)}-{slug(region)}-{suffix}",
            kind,
            price_per_hour_usd,
            billing=billing,
            interruption_overhead=overhead,
        )
        previous = best.get(row["offer_id"])
        if previous is None or float(row["price_per_hour_usd"]) < float(
            previous["price_per_hour_usd"]
        ):
            best[row["offer_id"]] = row
    out.rows = list(best.values())
    return out


def fetch_azure(
    fetcher: Fetcher, url: str, region: str | None, fetched_at: dt.date,
    report: Callable[[str], None],
) -> Adapted:
    """Follow ``NextPageLink`` until null (at most ``max_pages``), then adapt every item."""
    params: dict[str, str] | None = {
        "api-version": AZURE_API_VERSION,
        "$filter": azure_filter(AZURE_GPU_VMS, region),
    }
    page_url = url
    items: list[Any] = []
    limit = fetcher.settings.max_pages
    for page in range(1, limit + 1):
        report(f"page {page}")
        payload = fetcher.get_json(page_url, params)
        if not isinstance(payload, dict) or not isinstance(payload.get("Items"), list):
            raise FetchError(
                f"malformed page {page} from {short_url(page_url)}: expected a JSON object "
                "with an 'Items' list"
            )
        items.extend(payload["Items"])
        next_link = payload.get("NextPageLink")
        if not next_link:
            break
        if not isinstance(next_link, str) or not next_link.startswith(("http://", "https://")):
            raise FetchError(
                f"malformed page {page} from {short_url(page_url)}: NextPageLink is not a URL"
            )
        refusal = redirect_refusal(page_url, next_link)  # a next page is a redirect in disguise
        if refusal:
            raise FetchError(f"page {page} from {short_url(page_url)}: NextPageLink {refusal}")
        page_url, params = next_link, None  # the link already carries the query
    else:
        raise FetchError(
            f"more than {limit} pages from {short_url(url)}; the query is too broad "
            f"(raise {ENV_MAX_PAGES} if this is expected)"
        )
    adapted = adapt_azure_items(items, base_url=url, fetched_at=fetched_at)
    adapted.pages = page
    return adapted

