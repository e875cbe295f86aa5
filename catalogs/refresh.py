"""Live prices: fetch public price sources and cache them as an offers.csv layer.

A bundled price list goes stale in weeks, so ``flopopt catalog refresh`` pulls current
prices over plain HTTP (no account, no API key) and stores them where the loader picks
them up (``paths.refreshed_offers_path()``, layer 2 of ``loader.load_catalog``).

Feeds (a *source* is a family of feeds; ``--source skypilot`` selects all its clouds):

=================  ===========================================================  ==========
feed               what is fetched                                              format
=================  ===========================================================  ==========
``skypilot:<c>``   SkyPilot's public catalog ``<base>/<c>/vms.csv`` per cloud    CSV
``azure``          Azure Retail Prices API, GPU VM sizes of ``AZURE_GPU_VMS``   paged JSON
``vast``           vast.ai marketplace search (``/api/v0/bundles/``), median    JSON
                   of verified offers per (GPU, count)
=================  ===========================================================  ==========

Pipeline (one function per step, in the order data flows)::

    settings ─► fetch (timeouts, retry/backoff on 429/5xx, page limit)
             ─► adapt (the source's format → offers.csv rows; skips counted by reason)
             ─► validate each feed's rows (schema.coerce, known GPUs, price > 0)
             ─► merge with the previous cache: a feed that failed keeps its previous
                rows; with ``--region`` only that region's rows of a feed are replaced
             ─► validate the merged file exactly as ``solve`` would (load_catalog)
             ─► write atomically (temp file + rename) under a file lock, then the
                sidecar state (which feed owns which offer, when it was fetched)
             ─► diff against what it replaced (added / removed / price moves, ages)

Failure rules: any failure leaves the previous cache byte-for-byte intact, except that
the feeds which *did* succeed replace their own rows. A feed that yields no usable row
is a failure (an empty or changed response must not wipe good prices), except under
``--region`` where "no offers in this region" is a legitimate answer (nothing replaced).

Precedence when two feeds produce the same offer_id (SkyPilot's Azure rows and the
Azure API describe the same VM): later feeds in ``FEED_ORDER`` win — direct APIs over
the SkyPilot mirror — and fresh rows always win over rows kept from an earlier refresh.
A refreshed row that describes the same (provider, instance_type, region, kind) as a
bundled row takes the bundled row's offer_id, so the refreshed price *replaces* the
bundled one instead of sitting next to it.

Library only: nothing here prints. The CLI (``cli/refresh_cmd.py``) renders the result.
``requests`` and ``pandas`` are imported inside the functions that need them, so
``cache_status()`` stays cheap for ``solve``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import email.utils
import functools
import hashlib
import io
import json
import math
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..optimizer.errors import FlopoptError
from . import paths

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    import requests

    from ..optimizer.errors import ProblemList

__all__ = [
    "AZURE_GPU_VMS",
    "SKYPILOT_ACCELERATORS",
    "VAST_GPUS",
    "FeedOutcome",
    "FeedStatus",
    "OfferChange",
    "RefreshDiff",
    "RefreshError",
    "RefreshProgress",
    "RefreshResult",
    "RefreshSettings",
    "adapt_azure_items",
    "adapt_skypilot_csv",
    "adapt_vast_offers",
    "cache_status",
    "parse_url_overrides",
    "refresh",
]


class RefreshError(FlopoptError):
    """A refresh cannot run or cannot be saved (bad option, lock held, invalid merge).

    The CLI prints it as one ``error:`` line and exits 2; the cache is unchanged.
    """


class FetchError(RefreshError):
    """One feed failed (network, HTTP status, malformed response); the others go on."""


# ---------------------------------------------------------------------------
# settings

SOURCES = ("azure", "skypilot", "vast")
DEFAULT_URLS: dict[str, str] = {
    "azure": "https://prices.azure.com/api/retail/prices",
    # SkyPilot itself reads <base>/<cloud>/vms.csv from this folder (schema v7).
    "skypilot": (
        "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v7"
    ),
    "vast": "https://console.vast.ai/api/v0/bundles/",
}
URL_ENV: dict[str, str] = {
    "azure": "FLOPOPT_AZURE_PRICES_URL",
    "skypilot": "FLOPOPT_SKYPILOT_CATALOG_URL",
    "vast": "FLOPOPT_VAST_BUNDLES_URL",
}
ENV_SKYPILOT_CLOUDS = "FLOPOPT_SKYPILOT_CLOUDS"
ENV_TIMEOUT = "FLOPOPT_REFRESH_TIMEOUT_S"
ENV_RETRIES = "FLOPOPT_REFRESH_RETRIES"
ENV_BACKOFF = "FLOPOPT_REFRESH_BACKOFF_S"
ENV_BACKOFF_CAP = "FLOPOPT_REFRESH_BACKOFF_CAP_S"
ENV_MAX_RETRY_AFTER = "FLOPOPT_REFRESH_MAX_RETRY_AFTER_S"
ENV_MAX_PAGES = "FLOPOPT_REFRESH_MAX_PAGES"
ENV_LOCK_TIMEOUT = "FLOPOPT_REFRESH_LOCK_TIMEOUT_S"
# Clouds whose vms.csv SkyPilot publishes under catalogs/v7 and whose GPUs we can map.
DEFAULT_SKYPILOT_CLOUDS = ("aws", "gcp", "azure", "lambda", "runpod")
AZURE_API_VERSION = "2023-01-01-preview"
STATE_VERSION = 1


@dataclass(frozen=True)
class RefreshSettings:
    """Where to fetch from and how patiently; every field has an environment variable.

    ``urls`` maps a source (``azure``, ``skypilot``, ``vast``) to its base URL, or one
    feed (``skypilot:gcp``) to the full URL of that feed's file, so tests and mirrors
    can point anywhere. Defaults are sized for a CLI user waiting at a terminal: a
    30 s timeout per request, 3 retries, backoff 1 s doubling up to 30 s.
    """

    urls: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_URLS))
    skypilot_clouds: tuple[str, ...] = DEFAULT_SKYPILOT_CLOUDS
    timeout_s: float = 30.0
    retries: int = 3
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    # A server asking us to come back in an hour is a failure for an interactive CLI.
    max_retry_after_s: float = 120.0
    # Azure's GPU-size query is a few thousand items = a handful of 1,000-item pages;
    # 50 pages means the filter is wrong, not that we should keep paging for 20 minutes.
    max_pages: int = 50
    # 0 = fail at once when another refresh holds the lock (it may run for minutes).
    lock_timeout_s: float = 0.0
    # vast.ai is a marketplace: one listing is an anecdote, the median of 3+ is a price.
    vast_min_offers: int = 3

    @classmethod
    def from_env(
        cls,
        url_overrides: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> RefreshSettings:
        """Defaults, then environment variables, then ``--url`` overrides (highest)."""
        env = os.environ if environ is None else environ
        urls = dict(DEFAULT_URLS)
        for source, var in URL_ENV.items():
            if env.get(var, "").strip():
                urls[source] = env[var].strip()
        for key, url in (url_overrides or {}).items():
            urls[key] = url
        clouds: tuple[str, ...] = DEFAULT_SKYPILOT_CLOUDS
        if env.get(ENV_SKYPILOT_CLOUDS, "").strip():
            clouds = tuple(
                c.strip().lower() for c in env[ENV_SKYPILOT_CLOUDS].split(",") if c.strip()
            )
        defaults = cls()
        return cls(
            urls=urls,
            skypilot_clouds=clouds,
            timeout_s=_env_number(env, ENV_TIMEOUT, defaults.timeout_s, above=0),
            retries=int(_env_number(env, ENV_RETRIES, defaults.retries, low=0, whole=True)),
            backoff_base_s=_env_number(env, ENV_BACKOFF, defaults.backoff_base_s, low=0),
            backoff_cap_s=_env_number(env, ENV_BACKOFF_CAP, defaults.backoff_cap_s, low=0),
            max_retry_after_s=_env_number(
                env, ENV_MAX_RETRY_AFTER, defaults.max_retry_after_s, low=0
            ),
            max_pages=int(_env_number(env, ENV_MAX_PAGES, defaults.max_pages, above=0, whole=True)),
            lock_timeout_s=_env_number(env, ENV_LOCK_TIMEOUT, defaults.lock_timeout_s, low=0),
        )


def _env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    low: float | None = None,
    above: float | None = None,
    whole: bool = False,
) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise RefreshError(f"environment variable {name}={text!r} is not a number") from None
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (above is not None and value <= above)
        or (whole and value != int(value))
    ):
        bound = f"≥ {low:g}" if low is not None else f"> {above:g}"
        kind = "a whole number " if whole else "a number "
        raise RefreshError(f"environment variable {name}={text!r} must be {kind}{bound}")
    return value


def parse_url_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["azure=http://…", "skypilot:gcp=http://…/vms.csv"]`` → {source or feed: URL}."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, url = item.partition("=")
        key, url = key.strip().lower(), url.strip()
        if not sep or not key or not url:
            raise RefreshError(
                f"--url {item!r}: expected SOURCE=URL, e.g. azure=http://localhost:8080/prices"
            )
        family = key.split(":", 1)[0]
        if family not in SOURCES or (":" in key and family != "skypilot"):
            raise RefreshError(
                f"--url {item!r}: unknown source {key!r}; use one of "
                f"{', '.join(SOURCES)} or skypilot:<cloud>"
            )
        if not url.startswith(("http://", "https://")):
            raise RefreshError(f"--url {item!r}: the URL must start with http:// or https://")
        out[key] = url
    return out


# ---------------------------------------------------------------------------
# mapping tables (source names → gpus.csv ids); tested against gpus.csv


@dataclass(frozen=True)
class VmShape:
    """What one VM size holds: the gpus.csv id, how many, and how they are connected."""

    gpu: str
    gpus_per_instance: int
    interconnect: str


# Azure GPU VM sizes worth pricing (whole GPUs only: fractional NVads_A10 sizes share a
# GPU and cannot run a training job's GPU). Sources: Azure VM size docs as summarised
# in shared/reference/specs-and-prices.md B1; ND-series are SXM boards with NVLink and
# InfiniBand between VMs, NC-series are PCIe cards (NC80adis pairs two H100 NVL by bridge).
AZURE_GPU_VMS: dict[str, VmShape] = {
    "Standard_ND96isr_H100_v5": VmShape("H100-SXM", 8, "nvlink"),
    "Standard_ND96isr_H200_v5": VmShape("H200", 8, "nvlink"),
    "Standard_ND96asr_v4": VmShape("A100-40GB", 8, "nvlink"),
    "Standard_ND96amsr_A100_v4": VmShape("A100-80GB", 8, "nvlink"),
    "Standard_NC24ads_A100_v4": VmShape("A100-80GB", 1, "pcie"),
    "Standard_NC48ads_A100_v4": VmShape("A100-80GB", 2, "pcie"),
    "Standard_NC96ads_A100_v4": VmShape("A100-80GB", 4, "pcie"),
    "Standard_NC40ads_H100_v5": VmShape("H100-NVL", 1, "pcie"),
    "Standard_NC80adis_H100_v5": VmShape("H100-NVL", 2, "nvlink"),
    "Standard_NC4as_T4_v3": VmShape("T4", 1, "pcie"),
    "Standard_NC8as_T4_v3": VmShape("T4", 1, "pcie"),
    "Standard_NC16as_T4_v3": VmShape("T4", 1, "pcie"),
    "Standard_NC64as_T4_v3": VmShape("T4", 4, "pcie"),
    "Standard_NC6s_v3": VmShape("V100", 1, "pcie"),
    "Standard_NC12s_v3": VmShape("V100", 2, "pcie"),
    "Standard_NC24s_v3": VmShape("V100", 4, "pcie"),
    "Standard_NC24rs_v3": VmShape("V100", 4, "pcie"),
    "Standard_ND40rs_v2": VmShape("V100", 8, "nvlink"),
    "Standard_NV36ads_A10_v5": VmShape("A10", 1, "pcie"),
    "Standard_NV72ads_A10_v5": VmShape("A10", 2, "pcie"),
    # Both spellings appear in public material; the MI300X boards use Infinity Fabric,
    # which the performance model treats like NVLink.
    "Standard_ND96is_MI300X_v5": VmShape("MI300X", 8, "nvlink"),
    "Standard_ND96isr_MI300X_v5": VmShape("MI300X", 8, "nvlink"),
}
AZURE_RESERVATION_HOURS = {"1 Year": 8760.0, "3 Years": 26280.0}

# SkyPilot canonical accelerator names → (gpus.csv id, interconnect inside the VM).
# Looked up case-insensitively. "H100" is the SXM part on AWS p5, GCP a3 and Azure ND;
# an instance type naming "pcie" (Lambda's gpu_1x_h100_pcie) overrides it below.
SKYPILOT_ACCELERATORS: dict[str, tuple[str, str]] = {
    "H100": ("H100-SXM", "nvlink"),
    "H100-MEGA": ("H100-SXM", "nvlink"),
    "H100-SXM": ("H100-SXM", "nvlink"),
    "H100-PCIE": ("H100-PCIe", "pcie"),
    "H100-NVL": ("H100-NVL", "pcie"),
    "H200": ("H200", "nvlink"),
    "B200": ("B200", "nvlink"),
    "GH200": ("GH200", "nvlink"),
    "A100": ("A100-40GB", "nvlink"),
    "A100-80GB": ("A100-80GB", "nvlink"),
    "A100-80GB-SXM": ("A100-80GB", "nvlink"),
    "A10G": ("A10G", "pcie"),
    "A10": ("A10", "pcie"),
    "L4": ("L4", "pcie"),
    "L40S": ("L40S", "pcie"),
    "T4": ("T4", "pcie"),
    # gpus.csv has one V100 row (32 GB); the 16 GB part maps to it too, as in offers.csv.
    "V100": ("V100", "nvlink"),
    "V100-32GB": ("V100", "nvlink"),
    "MI300X": ("MI300X", "nvlink"),
    "RTX4090": ("RTX-4090", "pcie"),
    "A6000": ("RTX-A6000", "pcie"),
    "RTXA6000": ("RTX-A6000", "pcie"),
}
# RunPod's plain "A100-80GB" is the PCIe card (its SXM board is named A100-80GB-SXM).
SKYPILOT_INTERCONNECT_OVERRIDES: dict[tuple[str, str], str] = {("runpod", "A100-80GB"): "pcie"}

# GCP machine families with fixed GPUs: host rows carry only vCPU+RAM, the GPUs are a
# separate catalog row (reference B6). g2-standard sizes hold 1, 2, 4 or 8 L4.
_GCP_G2_L4 = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
_GCP_FIXED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"a2-highgpu-(\d+)g"), "A100"),
    (re.compile(r"a2-megagpu-(\d+)g"), "A100"),
    (re.compile(r"a2-ultragpu-(\d+)g"), "A100-80GB"),
    (re.compile(r"a3-highgpu-(\d+)g"), "H100"),
    (re.compile(r"a3-megagpu-(\d+)g"), "H100-MEGA"),
    (re.compile(r"a3-ultragpu-(\d+)g"), "H200"),
    (re.compile(r"a4-highgpu-(\d+)g"), "B200"),
)
# TPU slices: v5p-N counts TensorCores (2 per chip); v5litepod-N counts chips.
_TPU_SLICES: tuple[tuple[re.Pattern[str], str, int], ...] = (
    (re.compile(r"tpu-v5p-(\d+)"), "TPU-v5p", 2),
    (re.compile(r"tpu-v5litepod-(\d+)"), "TPU-v5e", 1),
)

# vast.ai ``gpu_name`` (normalised: upper case, single spaces) → gpus.csv id. A100 names
# are resolved by the offer's ``gpu_ram`` (MB) because vast lists 40 and 80 GB alike.
VAST_GPUS: dict[str, str] = {
    "H100 SXM": "H100-SXM",
    "H100 PCIE": "H100-PCIe",
    "H100 NVL": "H100-NVL",
    "H200": "H200",
    "B200": "B200",
    "GH200 SXM": "GH200",
    "A100 SXM4": "A100",
    "A100 PCIE": "A100",
    "A100X": "A100",
    "L40S": "L40S",
    "L4": "L4",
    "A10": "A10",
    "RTX 4090": "RTX-4090",
    "RTX A6000": "RTX-A6000",
    "TESLA T4": "T4",
    "TESLA V100": "V100",
    "MI300X": "MI300X",
}
_A100_80GB_MIN_MB = 60_000

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
# data — the bundled catalog uses the same 0.15 (hyperscaler spot) and 0.2 (vast bids).
SPOT_INTERRUPTION_OVERHEAD = 0.15
VAST_INTERRUPTION_OVERHEAD = 0.2


# ---------------------------------------------------------------------------
# rows


def _offer_columns() -> list[str]:
    from . import schema

    return [c.name for c in schema.OFFERS]


def _price_text(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _hours_text(value: float) -> str:
    return f"{value:.9g}"


def _slug(text: str) -> str:
    """An offer_id part: lower case, no spaces or commas (ids end up in CSV cells and flags)."""
    return re.sub(r"[\s,]+", "_", text.strip().lower())


def _row(
    *,
    offer_id: str,
    provider: str,
    kind: str,
    region: str,
    instance_type: str,
    gpu: str,
    gpus_per_instance: int,
    price_per_hour_usd: float,
    interconnect: str,
    source: str,
    as_of: dt.date,
    billing: tuple[float, float] | None = None,
    interruption_overhead: float | None = None,
) -> dict[str, str]:
    increment_hours, min_hours = billing or BILLING_HOURS.get(provider, DEFAULT_BILLING_HOURS)
    row = {name: "" for name in _offer_columns()}
    row.update(
        offer_id=offer_id,
        provider=provider,
        kind=kind,
        region=region,
        instance_type=instance_type,
        gpu=gpu,
        gpus_per_instance=str(gpus_per_instance),
        price_per_hour_usd=_price_text(price_per_hour_usd),
        billing_increment_hours=_hours_text(increment_hours),
        min_hours=_hours_text(min_hours),
        interconnect=interconnect,
        source=source,
        as_of=as_of.isoformat(),
    )
    if interruption_overhead is not None:
        row["interruption_overhead"] = f"{interruption_overhead:g}"
    return row


@dataclass
class Adapted:
    """One feed's rows plus how many source records were skipped, by reason."""

    rows: list[dict[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    pages: int = 1


def _positive_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


# ---------------------------------------------------------------------------
# adapter: Azure Retail Prices API


def azure_filter(skus: Iterable[str], region: str | None) -> str:
    """OData filter for the GPU VM sizes (values are case-sensitive since 2023-01-01-preview)."""
    any_sku = " or ".join(f"armSkuName eq '{sku}'" for sku in skus)
    text = f"serviceName eq 'Virtual Machines' and ({any_sku})"
    if region:
        text += f" and armRegionName eq '{region}'"
    return text


def adapt_azure_items(items: Sequence[Any], *, base_url: str, as_of: dt.date) -> Adapted:
    """Azure price items → offers: Linux consumption (on-demand), Spot, and reservations.

    Rules (reference B1): Windows products carry a licence fee → skipped; "Low Priority"
    meters are the legacy Batch tier → skipped; "Spot" in meterName/skuName → spot;
    ``type == 'Reservation'`` prices are the total for the term → divided by 8,760 h
    (1 year) or 26,280 h (3 years), with min_hours = the term, because a reservation is
    paid whether used or not. Several items for one offer (non-primary meters, tiers)
    keep the lowest price. ``source`` is the API query that returns exactly that VM's
    price in that region, so a reader can check the number.
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
        price = _positive_float(item.get("retailPrice"))
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
        row = _row(
            offer_id=f"azure-{_slug(sku)}-{_slug(region)}-{suffix}",
            provider="azure",
            kind=kind,
            region=region,
            instance_type=sku,
            gpu=shape.gpu,
            gpus_per_instance=shape.gpus_per_instance,
            price_per_hour_usd=price_per_hour_usd,
            interconnect=shape.interconnect,
            source=source,
            as_of=as_of,
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
    fetcher: Fetcher, url: str, region: str | None, as_of: dt.date, report: Callable[[str], None]
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
                f"malformed page {page} from {_short(page_url)}: expected a JSON object "
                "with an 'Items' list"
            )
        items.extend(payload["Items"])
        next_link = payload.get("NextPageLink")
        if not next_link:
            break
        if not isinstance(next_link, str) or not next_link.startswith(("http://", "https://")):
            raise FetchError(
                f"malformed page {page} from {_short(page_url)}: NextPageLink is not a URL"
            )
        page_url, params = next_link, None  # the link already carries the query
    else:
        raise FetchError(
            f"more than {limit} pages from {_short(url)}; the query is too broad "
            f"(raise {ENV_MAX_PAGES} if this is expected)"
        )
    adapted = adapt_azure_items(items, base_url=url, as_of=as_of)
    adapted.pages = page
    return adapted


# ---------------------------------------------------------------------------
# adapter: SkyPilot catalog CSVs

SKYPILOT_REQUIRED = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")


def _resolve_accelerator(cloud: str, name: str, instance_type: str) -> tuple[str, str] | None:
    key = name.strip().upper()
    if key == "H100" and "pcie" in instance_type.lower():
        key = "H100-PCIE"
    found = SKYPILOT_ACCELERATORS.get(key)
    if found is None:
        return None
    return found[0], SKYPILOT_INTERCONNECT_OVERRIDES.get((cloud, key), found[1])


def _tpu_slice(name: str) -> tuple[str, int] | None:
    """(gpus.csv id, chips) of a TPU slice name such as tpu-v5p-8 (= 4 chips)."""
    for pattern, gpu, cores_per_chip in _TPU_SLICES:
        match = pattern.fullmatch(name.strip().lower())
        if match:
            return gpu, max(1, int(match.group(1)) // cores_per_chip)
    return None


def _gcp_fixed_gpus(instance_type: str) -> tuple[str, int] | None:
    """(SkyPilot accelerator name, count) built into a GCP machine type, if any."""
    for pattern, accelerator in _GCP_FIXED:
        match = pattern.fullmatch(instance_type)
        if match:
            return accelerator, int(match.group(1))
    match = re.fullmatch(r"g2-standard-(\d+)", instance_type)
    if match and int(match.group(1)) in _GCP_G2_L4:
        return "L4", _GCP_G2_L4[int(match.group(1))]
    return None


@dataclass
class _Priced:
    """Min prices over the availability zones of one (instance, region)."""

    price_usd: float | None = None
    spot_price_usd: float | None = None

    def add(self, price: float | None, spot: float | None) -> None:
        if price is not None:
            self.price_usd = price if self.price_usd is None else min(self.price_usd, price)
        if spot is not None:
            self.spot_price_usd = (
                spot if self.spot_price_usd is None else min(self.spot_price_usd, spot)
            )


def adapt_skypilot_csv(
    text: str, *, cloud: str, source_url: str, as_of: dt.date, region: str | None = None
) -> Adapted:
    """One SkyPilot ``vms.csv`` → offers; columns are read by header name (order varies by cloud).

    * One row per availability zone: deduplicated by (InstanceType, Region); Price is the
      same in every zone, SpotPrice differs → the minimum (cheapest spot in the region).
    * Empty Price = not orderable on demand (AWS Capacity-Block-only sizes): no
      on-demand offer; a SpotPrice, if any, still gives a spot offer.
    * GCP: host rows carry only vCPU+RAM and GPU rows (empty InstanceType) only the GPUs;
      machine types with fixed GPUs (a2, a3, a4, g2) are assembled host + GPU row of
      the same region. n1 hosts take attachable GPUs in any combination the catalog does
      not pair, so they are skipped (the bundled catalog keeps hand-made n1+T4/V100 rows).
      TPU slices are standalone rows, priced per slice, counted in chips.
    * Accelerators missing from ``SKYPILOT_ACCELERATORS`` are skipped and counted.
    """
    out = Adapted()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in SKYPILOT_REQUIRED if c not in header]
    if missing:
        raise FetchError(
            f"{_short(source_url)} is not a SkyPilot vms.csv (missing column(s) "
            f"{', '.join(missing)})"
        )
    reader.fieldnames = header
    hosts: dict[tuple[str, str, str, int], _Priced] = {}  # (instance, region, accel, count)
    gcp_gpus: dict[tuple[str, int, str], _Priced] = {}  # (accel, count, region)
    gcp_hosts: dict[tuple[str, str], _Priced] = {}  # (instance, region)
    for record in reader:
        instance = (record.get("InstanceType") or "").strip()
        accelerator = (record.get("AcceleratorName") or "").strip()
        row_region = (record.get("Region") or "").strip()
        if region and row_region.lower() != region.lower():
            continue
        price = _positive_float((record.get("Price") or "").strip() or None)
        spot = _positive_float((record.get("SpotPrice") or "").strip() or None)
        count_text = (record.get("AcceleratorCount") or "").strip()
        if cloud == "gcp" and not instance and accelerator:
            if _tpu_slice(accelerator) is None:
                count = _whole(count_text)
                if count is None:
                    out.skipped["unparseable AcceleratorCount"] += 1
                    continue
                gcp_gpus.setdefault((accelerator.upper(), count, row_region), _Priced()).add(
                    price, spot
                )
                continue
            instance = accelerator  # a TPU slice is its own "instance"
        if cloud == "gcp" and instance and not accelerator:
            gcp_hosts.setdefault((instance, row_region), _Priced()).add(price, spot)
            continue
        if not accelerator:
            out.skipped["no accelerator (CPU-only)"] += 1
            continue
        count = _whole(count_text) if count_text else None
        if count is None:
            out.skipped["fractional or missing AcceleratorCount"] += 1
            continue
        if not instance or not row_region:
            out.skipped["no InstanceType or Region"] += 1
            continue
        hosts.setdefault((instance, row_region, accelerator, count), _Priced()).add(price, spot)

    # GCP: host + fixed GPUs of the same region.
    used_gpu_rows: set[tuple[str, int, str]] = set()
    for (instance, row_region), host in gcp_hosts.items():
        fixed = _gcp_fixed_gpus(instance)
        if fixed is None:
            reason = (
                "gcp n1 host (attachable GPUs are not paired in the catalog)"
                if instance.startswith("n1-")
                else "no accelerator (CPU-only)"
            )
            out.skipped[reason] += 1
            continue
        key = (fixed[0].upper(), fixed[1], row_region)
        gpu_row = gcp_gpus.get(key)
        if gpu_row is None:
            out.skipped["gcp host without a GPU price row in its region"] += 1
            continue
        used_gpu_rows.add(key)
        assembled = _Priced()
        assembled.add(
            _sum(host.price_usd, gpu_row.price_usd),
            _sum(host.spot_price_usd, gpu_row.spot_price_usd),
        )
        hosts[(instance, row_region, fixed[0], fixed[1])] = assembled
    unused = len(set(gcp_gpus) - used_gpu_rows)
    if unused:
        out.skipped["gcp GPU row without a fixed-GPU host"] += unused

    for (instance, row_region, accelerator, count), priced in sorted(hosts.items()):
        if cloud == "azure" and instance in AZURE_GPU_VMS:
            shape = AZURE_GPU_VMS[instance]  # exact board and count, not just the chip name
            gpu, gpus, interconnect = shape.gpu, shape.gpus_per_instance, shape.interconnect
        else:
            tpu = _tpu_slice(accelerator)
            if tpu is not None:
                # TPU chips talk over ICI links, which the model treats like NVLink.
                (gpu, gpus), interconnect = tpu, "nvlink"
            else:
                resolved = _resolve_accelerator(cloud, accelerator, instance)
                if resolved is None:
                    out.skipped[f"unknown accelerator {accelerator}"] += 1
                    continue
                (gpu, interconnect), gpus = resolved, count
        if priced.price_usd is None and priced.spot_price_usd is None:
            out.skipped["no price (not orderable)"] += 1
            continue
        base = f"{cloud}-{_slug(instance)}-{_slug(row_region)}"
        make = functools.partial(
            _row,
            provider=cloud,
            region=row_region,
            instance_type=instance,
            gpu=gpu,
            gpus_per_instance=gpus,
            interconnect=interconnect,
            source=source_url,
            as_of=as_of,
        )
        if priced.price_usd is not None:
            out.rows.append(
                make(
                    offer_id=f"{base}-ondemand",
                    kind="on_demand",
                    price_per_hour_usd=priced.price_usd,
                )
            )
        else:
            out.skipped["empty Price (not orderable on demand)"] += 1
        if priced.spot_price_usd is not None:
            out.rows.append(
                make(
                    offer_id=f"{base}-spot",
                    kind="spot",
                    price_per_hour_usd=priced.spot_price_usd,
                    interruption_overhead=SPOT_INTERRUPTION_OVERHEAD,
                )
            )
    return out


def _whole(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value >= 1 and value == int(value) else None


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def fetch_skypilot(
    fetcher: Fetcher,
    url: str,
    cloud: str,
    region: str | None,
    as_of: dt.date,
    report: Callable[[str], None],
) -> Adapted:
    report("downloading vms.csv")
    text = fetcher.get_text(url)
    return adapt_skypilot_csv(text, cloud=cloud, source_url=url, as_of=as_of, region=region)


# ---------------------------------------------------------------------------
# adapter: vast.ai marketplace search

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
    key = re.sub(r"\s+", " ", name.replace("_", " ")).strip().upper()
    gpu = VAST_GPUS.get(key)
    if gpu == "A100":
        ram = _positive_float(gpu_ram_mb)
        if ram is None:
            return None
        return "A100-80GB" if ram >= _A100_80GB_MIN_MB else "A100-40GB"
    return gpu


def adapt_vast_offers(
    payload: Any, *, source_url: str, as_of: dt.date, min_offers: int = 3
) -> Adapted:
    """vast.ai search results → one on-demand and one interruptible offer per (GPU, count).

    vast.ai is a marketplace of individual hosts whose prices move daily, so a single
    listing is not a price: the offer's price is the median ``dph_total`` ($/h for the
    whole machine) over at least ``min_offers`` verified listings, and the interruptible
    price the median ``min_bid`` (the lowest bid a host accepts — a lower bound).
    Region is "marketplace" (listings span the world) and interconnect "pcie": hosts
    rarely advertise NVLink topology, so the scale-out model stays conservative.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("offers"), list):
        raise FetchError(
            f"malformed response from {_short(source_url)}: expected a JSON object "
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
        count = _whole(str(offer.get("num_gpus") or ""))
        price = _positive_float(offer.get("dph_total"))
        if gpu is None:
            out.skipped[f"unknown GPU {offer.get('gpu_name')}"] += 1
            continue
        if count is None or price is None:
            out.skipped["no GPU count or no positive price"] += 1
            continue
        on_demand.setdefault((gpu, count), []).append(price)
        bid = _positive_float(offer.get("min_bid"))
        if bid is not None:
            bids.setdefault((gpu, count), []).append(bid)
    for (gpu, count), prices in sorted(on_demand.items()):
        if len(prices) < min_offers:
            out.skipped[f"fewer than {min_offers} listings for one GPU/count"] += len(prices)
            continue
        instance = f"{count}x_{gpu.lower()}"
        make = functools.partial(
            _row,
            provider="vast",
            region=VAST_REGION,
            instance_type=instance,
            gpu=gpu,
            gpus_per_instance=count,
            interconnect="pcie",
            source=source_url,
            as_of=as_of,
        )
        out.rows.append(
            make(
                offer_id=f"vast-{instance}-ondemand",
                kind="on_demand",
                price_per_hour_usd=statistics.median(prices),
            )
        )
        offered_bids = bids.get((gpu, count), [])
        if len(offered_bids) >= min_offers:
            out.rows.append(
                make(
                    offer_id=f"vast-{instance}-interruptible",
                    kind="spot",
                    price_per_hour_usd=statistics.median(offered_bids),
                    interruption_overhead=VAST_INTERRUPTION_OVERHEAD,
                )
            )
    return out


def fetch_vast(
    fetcher: Fetcher, url: str, region: str | None, as_of: dt.date, report: Callable[[str], None]
) -> Adapted:
    report("searching offers")
    response = fetcher.get(url, {"q": json.dumps(VAST_QUERY, separators=(",", ":"))})
    payload = _decode_json(response, url)
    return adapt_vast_offers(
        payload,
        source_url=response.url or url,
        as_of=as_of,
        min_offers=fetcher.settings.vast_min_offers,
    )


# ---------------------------------------------------------------------------
# fetching


def _short(url: str) -> str:
    """scheme://host/path — enough to say where, without a 1 kB query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip()
    for phrase in (
        "Connection refused",
        "Name or service not known",
        "Connection reset",
        "Network is unreachable",
        "Remote end closed connection",
    ):
        if phrase.lower() in text.lower():
            return phrase
    return type(exc).__name__


def _retry_after_s(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, when.timestamp() - now)


class Fetcher:
    """GET with a timeout, and retries with capped exponential backoff on 429/5xx.

    Why only 429/5xx: those say "come back later". Connection errors and timeouts fail
    at once — offline, retrying every feed would only make the user wait for the same
    answer — and so do other 4xx (a wrong URL does not heal). ``Retry-After`` is
    honoured (the wait is the larger of it and the backoff); a server asking for more
    than ``max_retry_after_s`` fails the feed instead of hanging the terminal.
    ``sleep`` is injectable so tests check the waits without waiting.
    """

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self,
        settings: RefreshSettings,
        session: requests.Session,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.session = session
        self.sleep = sleep

    def backoff_s(self, attempt: int) -> float:
        """Wait before retry number ``attempt + 1``: base × 2^attempt, capped."""
        return float(min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**attempt))

    def get(self, url: str, params: Mapping[str, str] | None = None) -> requests.Response:
        import requests

        attempt = 0
        while True:
            try:
                response = self.session.get(url, params=params, timeout=self.settings.timeout_s)
            except requests.Timeout:
                raise FetchError(
                    f"timed out after {self.settings.timeout_s:g} s waiting for {_short(url)}"
                ) from None
            except requests.ConnectionError as exc:
                host = urlsplit(url).netloc or url
                raise FetchError(f"cannot connect to {host} ({_connection_reason(exc)})") from None
            except requests.RequestException as exc:
                raise FetchError(
                    f"request to {_short(url)} failed ({type(exc).__name__}: {exc})"
                ) from None
            if response.status_code < 400:
                return response
            status = f"HTTP {response.status_code} {response.reason or ''}".strip()
            if response.status_code in self.RETRY_STATUSES and attempt < self.settings.retries:
                asked = _retry_after_s(response.headers.get("Retry-After"), time.time())
                if asked is not None and asked > self.settings.max_retry_after_s:
                    response.close()
                    raise FetchError(
                        f"{status} from {_short(url)}; the server asks to retry after "
                        f"{asked:g} s (more than {self.settings.max_retry_after_s:g} s)"
                    )
                wait = max(asked or 0.0, self.backoff_s(attempt))
                response.close()
                self.sleep(wait)
                attempt += 1
                continue
            response.close()
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise FetchError(f"{status} from {_short(url)}{tries}")

    def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        return _decode_json(self.get(url, params), url)

    def get_text(self, url: str) -> str:
        """The body as UTF-8 (CSV comes as text/plain, for which requests would guess latin-1)."""
        return self.get(url).content.decode("utf-8-sig", errors="replace")


def _decode_json(response: requests.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        first = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise FetchError(f"malformed response from {_short(url)}: not JSON ({first})") from None


# ---------------------------------------------------------------------------
# feeds

FeedRunner = Callable[[Fetcher, str, "str | None", dt.date, Callable[[str], None]], Adapted]


@dataclass(frozen=True)
class Feed:
    """One URL to fetch and the adapter for its format."""

    name: str
    family: str
    url: str
    run: FeedRunner
    regional: bool = True  # False: the feed has no regions (vast's marketplace)


def feeds_for(settings: RefreshSettings) -> list[Feed]:
    """All feeds in precedence order (later wins an offer_id clash): mirror, then direct APIs."""
    feeds: list[Feed] = []
    base = settings.urls.get("skypilot", DEFAULT_URLS["skypilot"]).rstrip("/")
    for cloud in settings.skypilot_clouds:
        name = f"skypilot:{cloud}"
        url = settings.urls.get(name, f"{base}/{cloud}/vms.csv")

        def run(
            fetcher: Fetcher,
            url: str,
            region: str | None,
            as_of: dt.date,
            report: Callable[[str], None],
            cloud: str = cloud,
        ) -> Adapted:
            return fetch_skypilot(fetcher, url, cloud, region, as_of, report)

        feeds.append(Feed(name, "skypilot", url, run))
    feeds.append(
        Feed("azure", "azure", settings.urls.get("azure", DEFAULT_URLS["azure"]), fetch_azure)
    )
    feeds.append(
        Feed(
            "vast",
            "vast",
            settings.urls.get("vast", DEFAULT_URLS["vast"]),
            fetch_vast,
            regional=False,
        )
    )
    return feeds


def select_feeds(feeds: Sequence[Feed], sources: Sequence[str] | None) -> list[Feed]:
    """``--source`` values: a family (``skypilot``) or one feed (``skypilot:gcp``)."""
    if not sources:
        return list(feeds)
    wanted = [s.strip().lower() for s in sources if s.strip()]
    names = [f.name for f in feeds]
    for item in wanted:
        if item not in names and item not in {f.family for f in feeds}:
            import difflib

            close = difflib.get_close_matches(item, [*SOURCES, *names], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RefreshError(
                f"--source {item!r}: unknown source{hint} "
                f"(choose from {', '.join([*SOURCES, *names])})"
            )
    return [f for f in feeds if f.name in wanted or f.family in wanted]


# ---------------------------------------------------------------------------
# result types


class FeedStatus(str, Enum):
    ok = "ok"
    error = "error"
    skipped = "skipped"


@dataclass(frozen=True)
class FeedOutcome:
    """What one feed did: its rows (when ok) or a one-line reason (when not)."""

    name: str
    status: FeedStatus
    url: str
    offers: int = 0
    pages: int = 0
    skipped: tuple[tuple[str, int], ...] = ()
    message: str | None = None
    previous_refresh: str | None = None  # date this feed last refreshed, if known
    rows: tuple[dict[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class OfferChange:
    """One offer's price before and after (None = absent on that side)."""

    offer_id: str
    provider: str
    gpu: str
    old_price_per_hour_usd: float | None
    new_price_per_hour_usd: float | None
    old_as_of: str | None
    new_as_of: str | None

    @property
    def change_pct(self) -> float | None:
        old, new = self.old_price_per_hour_usd, self.new_price_per_hour_usd
        if old is None or new is None or old == 0:
            return None
        return (new - old) / old * 100.0


@dataclass(frozen=True)
class RefreshDiff:
    """Offers added / removed / re-priced between the old and new effective prices.

    Both sides are bundled offers overlaid with the refresh cache (the user's own
    imported rows are not part of it: a refresh never touches them). ``moves`` are
    sorted biggest relative change first. ``replaced_as_of`` is the (oldest, newest)
    as_of of the prices that were replaced or removed — the age of what changed.
    """

    added: tuple[OfferChange, ...] = ()
    removed: tuple[OfferChange, ...] = ()
    moves: tuple[OfferChange, ...] = ()
    unchanged: int = 0
    replaced_as_of: tuple[str, str] | None = None
    replaced_cache_written_at: str | None = None  # when the cache being replaced was written
    shadowed_by_user: tuple[str, ...] = ()  # refreshed ids that user-imported rows override


@dataclass(frozen=True)
class RefreshProgress:
    """A progress tick for the CLI's progress bar (the library itself never prints)."""

    feed: str
    feeds_done: int
    feeds_total: int
    detail: str


@dataclass(frozen=True)
class RefreshResult:
    outcomes: tuple[FeedOutcome, ...]
    diff: RefreshDiff
    cache_path: Path
    as_of: str
    dry_run: bool
    written: bool
    rows_total: int  # rows in the cache file after this refresh (or that would be)
    region: str | None = None

    @property
    def failed(self) -> tuple[FeedOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is FeedStatus.error)

    @property
    def refreshed(self) -> tuple[FeedOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is FeedStatus.ok)


# ---------------------------------------------------------------------------
# cache files


def state_path() -> Path:
    """Sidecar of the refresh cache: which feed owns which offer_id, and when it was fetched."""
    return paths.cache_dir() / "offers.refreshed.state.json"


def lock_path() -> Path:
    return paths.cache_dir() / "refresh.lock"


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {k: (v or "") for k, v in row.items() if k is not None}
                for row in csv.DictReader(handle)
            ]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _read_state(cache_file: Path) -> dict[str, Any] | None:
    """The sidecar, only if it describes the cache file as it is now (hash match)."""
    try:
        state = json.loads(state_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    if state.get("csv_sha256") != _sha256(cache_file) or not isinstance(state.get("feeds"), dict):
        return None
    return state


def _guess_feed(row: Mapping[str, str]) -> str | None:
    """Owner of a cached row when the sidecar is missing (e.g. a crash between the two writes)."""
    source, provider = row.get("source", ""), row.get("provider", "")
    if source.endswith("vms.csv"):
        return f"skypilot:{provider}"
    if provider == "vast" and "bundles" in source:
        return "vast"
    if provider == "azure" and "armSkuName" in source:
        return "azure"
    return None


def _csv_text(rows: Iterable[Mapping[str, str]]) -> str:
    columns = _offer_columns()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue()


def _bundled_rows() -> list[dict[str, str]]:
    return _read_csv_rows(paths.BUNDLED_DIR / "offers.csv")


def _known_gpus() -> set[str]:
    """GPU ids a refreshed row may name: bundled gpus.csv (the mapping tables target only these)."""
    return {r.get("gpu", "") for r in _read_csv_rows(paths.BUNDLED_DIR / "gpus.csv")} - {""}


# ---------------------------------------------------------------------------
# validation, merge, diff


def _offer_problems(
    table: pd.DataFrame, label: str, known_gpus: set[str], problems: ProblemList
) -> None:
    """The rules ``load_catalog`` adds on top of the column schema for a rented offer."""
    from . import schema

    schema.check_unique(table, schema.KEYS["offers.csv"], label, problems)
    for idx in table.index[~table["gpu"].isin(known_gpus)]:
        problems.add(
            label,
            "gpu",
            f"unknown gpu {table.at[idx, 'gpu']!r} (not in gpus.csv)",
            row=int(idx) + 2,
        )
    rental = table["kind"].isin(schema.RENTAL_KINDS)
    for idx in table.index[rental & ~(table["price_per_hour_usd"] > 0)]:
        problems.add(
            label, "price_per_hour_usd", "must be > 0 for a rental offer", row=int(idx) + 2
        )


def _row_problems(
    rows: Sequence[Mapping[str, str]], known_gpus: set[str], today: dt.date
) -> list[tuple[int | None, str]]:
    """Every offers.csv defect in ``rows`` as (row position or None, "offer_id: field: message").

    One schema pass for all rows, because pandas, not the network, is the slow part here.
    """
    import pandas as pd

    from ..optimizer.errors import ProblemList
    from . import schema

    if not rows:
        return []
    columns = _offer_columns()
    frame = pd.DataFrame([{c: row.get(c, "") for c in columns} for row in rows], dtype=str)
    problems = ProblemList()
    table = schema.coerce(frame, schema.OFFERS, "refreshed offers", problems, today)
    _offer_problems(table, "refreshed offers", known_gpus, problems)
    found: list[tuple[int | None, str]] = []
    for problem in problems.items:
        position = problem.row - 2 if problem.row is not None else None
        offer_id = rows[position].get("offer_id", "?") if position is not None else "?"
        found.append((position, f"{offer_id}: {problem.field}: {problem.message}"))
    return found


def _invalid_feeds(
    outcomes: Sequence[FeedOutcome], known_gpus: set[str], today: dt.date
) -> dict[str, str]:
    """Check every fresh row against offers.csv's rules; name each feed with a bad row,
    so that a bad feed fails alone instead of sinking the whole refresh."""
    owners: list[str] = []
    rows: list[dict[str, str]] = []
    for outcome in outcomes:
        if outcome.status is FeedStatus.ok:
            rows.extend(outcome.rows)
            owners.extend([outcome.name] * len(outcome.rows))
    bad: dict[str, list[str]] = {}
    for position, text in _row_problems(rows, known_gpus, today):
        for feed in [owners[position]] if position is not None else sorted(set(owners)):
            bad.setdefault(feed, []).append(text)
    return {
        feed: f"{len(items)} invalid value(s) in the converted offers, first: {items[0]}"
        for feed, items in bad.items()
    }


def _valid_previous_rows(
    rows: list[dict[str, str]], known_gpus: set[str], today: dt.date
) -> list[dict[str, str]]:
    """Cached rows worth keeping: one that no longer validates (hand-edited, or a GPU that
    left gpus.csv) would otherwise be carried forward and fail every later refresh."""
    problems = _row_problems(rows, known_gpus, today)
    if any(position is None for position, _ in problems):
        return []
    bad = {position for position, _ in problems}
    return [row for index, row in enumerate(rows) if index not in bad]


def _validate_cache_text(text: str, known_gpus: set[str], today: dt.date) -> None:
    """Read the would-be cache file back exactly as the loader will (``loader.read_table``)
    and apply the loader's cross-file rules; raise before anything replaces the cache."""
    import tempfile

    from ..optimizer.errors import ProblemList
    from .loader import read_table

    problems = ProblemList()
    with tempfile.TemporaryDirectory(prefix="flopopt-refresh-") as scratch:
        trial = Path(scratch) / paths.refreshed_offers_path().name
        trial.write_text(text, encoding="utf-8")
        table = read_table(trial, "offers.csv", problems, today)
        _offer_problems(table, str(trial), known_gpus, problems)
    if problems.items:
        raise RefreshError(
            f"the refreshed offers failed validation, cache not changed: {problems.items[0]}"
        )


def _adopt_bundled_ids(rows: list[dict[str, str]], bundled: list[dict[str, str]]) -> None:
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


# ---------------------------------------------------------------------------
# the refresh


def refresh(
    sources: Sequence[str] | None = None,
    *,
    region: str | None = None,
    dry_run: bool = False,
    url_overrides: Mapping[str, str] | None = None,
    settings: RefreshSettings | None = None,
    progress: Callable[[RefreshProgress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    today: dt.date | None = None,
) -> RefreshResult:
    """Fetch the selected feeds, merge them into the refresh cache, and say what changed.

    Raises RefreshError (nothing written) for a bad option, a refresh already running,
    a merged result that fails validation, or a cache that cannot be written. A feed
    that fails is *not* an exception: it is an outcome with status ``error`` and a
    one-line message, and its previously cached rows are kept.
    """
    if settings is None:
        settings = RefreshSettings.from_env(url_overrides)
    elif url_overrides:
        settings = dataclasses.replace(settings, urls={**settings.urls, **url_overrides})
    region = region.strip() if region and region.strip() else None
    feeds = select_feeds(feeds_for(settings), sources)
    today = today or dt.date.today()
    cache_file = paths.refreshed_offers_path()

    if dry_run:
        return _run(feeds, settings, region, True, progress, sleep, today, cache_file)
    from filelock import FileLock, Timeout

    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path()), timeout=settings.lock_timeout_s)
    try:
        lock.acquire()
    except Timeout:
        raise RefreshError(
            f"another `flopopt catalog refresh` is running (lock {lock_path()}); "
            "wait for it to finish and try again"
        ) from None
    try:
        return _run(feeds, settings, region, False, progress, sleep, today, cache_file)
    finally:
        lock.release()


def _run(
    feeds: list[Feed],
    settings: RefreshSettings,
    region: str | None,
    dry_run: bool,
    progress: Callable[[RefreshProgress], None] | None,
    sleep: Callable[[float], None],
    today: dt.date,
    cache_file: Path,
) -> RefreshResult:
    import requests

    state = _read_state(cache_file) if cache_file.exists() else None
    state_feeds: dict[str, Any] = state["feeds"] if state else {}
    known_gpus = _known_gpus()
    bundled = _bundled_rows()
    outcomes: list[FeedOutcome] = []

    def tick(feed: str, done: int, detail: str) -> None:
        if progress is not None:
            progress(RefreshProgress(feed, done, len(feeds), detail))

    with requests.Session() as session:
        session.headers["User-Agent"] = (
            "flopopt-catalog-refresh (+https://pypi.org/project/flopopt/)"
        )
        fetcher = Fetcher(settings, session, sleep)
        for done, feed in enumerate(feeds):
            previous = (state_feeds.get(feed.name) or {}).get("as_of")
            if region and not feed.regional and region.lower() != VAST_REGION:
                outcomes.append(
                    FeedOutcome(
                        feed.name,
                        FeedStatus.skipped,
                        feed.url,
                        previous_refresh=previous,
                        message=f"has no regions (its offers are region "
                        f"'{VAST_REGION}'); not fetched for --region {region}",
                    )
                )
                tick(feed.name, done + 1, "skipped")
                continue
            tick(feed.name, done, "starting")
            try:
                adapted = feed.run(
                    fetcher,
                    feed.url,
                    region,
                    today,
                    functools.partial(tick, feed.name, done),
                )
                if not adapted.rows and not region:
                    raise FetchError(
                        f"no GPU offers in the response from {_short(feed.url)} "
                        f"({_skip_summary(adapted.skipped) or 'empty'})"
                    )
                _adopt_bundled_ids(adapted.rows, bundled)
            except FetchError as exc:
                outcomes.append(
                    FeedOutcome(
                        feed.name,
                        FeedStatus.error,
                        feed.url,
                        message=str(exc),
                        previous_refresh=previous,
                    )
                )
                tick(feed.name, done + 1, "failed")
                continue
            except Exception as exc:  # noqa: BLE001 - one feed's surprise must not sink the others
                outcomes.append(
                    FeedOutcome(
                        feed.name,
                        FeedStatus.error,
                        feed.url,
                        previous_refresh=previous,
                        message=f"could not read the response ({type(exc).__name__}: {exc})",
                    )
                )
                tick(feed.name, done + 1, "failed")
                continue
            outcomes.append(
                FeedOutcome(
                    feed.name,
                    FeedStatus.ok,
                    feed.url,
                    offers=len(adapted.rows),
                    pages=adapted.pages,
                    skipped=tuple(sorted(adapted.skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
                    previous_refresh=previous,
                    rows=tuple(adapted.rows),
                )
            )
            tick(feed.name, done + 1, f"{len(adapted.rows)} offers")

    invalid = _invalid_feeds(outcomes, known_gpus, today)
    outcomes = [
        FeedOutcome(
            o.name,
            FeedStatus.error,
            o.url,
            message=invalid[o.name],
            previous_refresh=o.previous_refresh,
        )
        if o.name in invalid
        else o
        for o in outcomes
    ]
    old_rows = _read_csv_rows(cache_file) if cache_file.exists() else []
    kept_candidates = _valid_previous_rows(old_rows, known_gpus, today)
    merged, owners = _merge(kept_candidates, state_feeds, outcomes, region)
    new_rows = [merged[k] for k in sorted(merged)]
    user_ids = {
        r.get("offer_id", "") for r in _read_csv_rows(paths.user_catalog_dir() / "offers.csv")
    }
    diff = compute_diff(
        bundled, old_rows, new_rows, user_ids, state["written_at"] if state else None
    )
    result = RefreshResult(
        outcomes=tuple(outcomes),
        diff=diff,
        cache_path=cache_file,
        as_of=today.isoformat(),
        dry_run=dry_run,
        written=False,
        rows_total=len(new_rows),
        region=region,
    )
    if dry_run or not any(o.status is FeedStatus.ok and o.offers for o in outcomes):
        return result  # nothing fetched replaces anything: the cache stays byte-for-byte as it was
    text = _csv_text(new_rows)
    _validate_cache_text(text, known_gpus, today)
    _write_cache(cache_file, text, owners, state_feeds, outcomes, today)
    return dataclasses.replace(result, written=True)


def _merge(
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


def _write_cache(
    cache_file: Path,
    text: str,
    owners: Mapping[str, str | None],
    state_feeds: Mapping[str, Any],
    outcomes: Sequence[FeedOutcome],
    today: dt.date,
) -> None:
    """CSV, then the sidecar, each atomic: a crash in between loses only ownership hints."""
    feeds: dict[str, Any] = {}
    for name, info in state_feeds.items():
        if isinstance(info, dict):
            feeds[name] = {**info, "offer_ids": []}
    for outcome in outcomes:
        if outcome.status is FeedStatus.ok and outcome.offers:
            feeds[outcome.name] = {"as_of": today.isoformat(), "url": outcome.url, "offer_ids": []}
    for offer_id, owner in sorted(owners.items()):
        if owner is not None:
            feeds.setdefault(owner, {"as_of": None, "url": None, "offer_ids": []})[
                "offer_ids"
            ].append(offer_id)
    feeds = {name: info for name, info in feeds.items() if info["offer_ids"]}
    data = text.encode("utf-8")
    state = {
        "version": STATE_VERSION,
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "csv_sha256": hashlib.sha256(data).hexdigest(),
        "feeds": feeds,
    }
    try:
        paths.atomic_write_bytes(cache_file, data)
        paths.atomic_write_text(state_path(), json.dumps(state, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        raise RefreshError(
            f"cannot write the price cache {cache_file} ({exc.strerror or exc})"
        ) from None


def _skip_summary(skipped: Mapping[str, int]) -> str:
    return ", ".join(
        f"{count} {reason}" for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1])
    )


# ---------------------------------------------------------------------------
# status line for solve


def cache_status(today: dt.date | None = None) -> str:
    """One line saying which prices ``solve`` uses and how old they are.

    e.g. ``prices: refreshed 2026-11-20 (6 days ago) from azure, skypilot:aws; bundled
    catalog for the rest (as_of 2024-12-01 … 2026-06-01)``. Cheap (csv + json only) and
    never raises: it is a note, not a check — ``load_catalog`` does the validation.
    """
    today = today or dt.date.today()
    try:
        bundled_dates = sorted(d for d in (r.get("as_of", "") for r in _bundled_rows()) if d)
        bundled = (
            f"bundled catalog (as_of {bundled_dates[0]} … {bundled_dates[-1]})"
            if bundled_dates
            else "bundled catalog"
        )
        cache_file = paths.refreshed_offers_path()
        if not cache_file.exists():
            return f"prices: {bundled}; run `flopopt catalog refresh` for current prices"
        state = _read_state(cache_file)
        groups: dict[str, list[str]] = {}
        if state:
            for name, info in sorted(state["feeds"].items()):
                when = (info or {}).get("as_of")
                if when:
                    groups.setdefault(str(when), []).append(name)
        if not groups:
            cached = sorted({r.get("as_of", "") for r in _read_csv_rows(cache_file)} - {""})
            if not cached:
                return f"prices: {bundled}"
            return (
                f"prices: refreshed cache (as_of {cached[0]} … {cached[-1]}); "
                f"{bundled} for the rest"
            )
        parts = []
        for when in sorted(groups, reverse=True):
            age = (today - dt.date.fromisoformat(when)).days
            age_text = "today" if age == 0 else ("1 day ago" if age == 1 else f"{age} days ago")
            parts.append(f"{when} ({age_text}) from {', '.join(groups[when])}")
        return f"prices: refreshed {'; '.join(parts)}; {bundled} for the rest"
    except Exception:  # noqa: BLE001 - a status note must never break solve
        return "prices: bundled catalog (refresh cache unreadable)"
