"""Price sources for ``flopopt catalog refresh``: each source's format → offers.csv rows.

=================  ===========================================================  ==========
feed               what is fetched                                              format
=================  ===========================================================  ==========
``skypilot:<c>``   SkyPilot's public catalog ``<base>/<c>/vms.csv`` per cloud    CSV
``azure``          Azure Retail Prices API, GPU VM sizes of ``AZURE_GPU_VMS``   paged JSON
``vast``           vast.ai marketplace search (``/api/v0/bundles/``), median    JSON
                   of verified offers per (GPU, count)
=================  ===========================================================  ==========

Per source: a mapping table (the source's names → gpus.csv ids, tested against
gpus.csv), a pure ``adapt_*`` function (parsed response → ``Adapted`` rows, with every
skipped record counted by reason), and a ``fetch_*`` runner that fetches with a
``fetch.Fetcher`` and adapts. Rows are strings in offers.csv's columns; validating
them is the caller's job (``refresh``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import mapping
from .fetch import ENV_MAX_PAGES, Fetched, Fetcher, FetchError, decode_json, redirect_refusal, short_url

__all__ = [
    "AZURE_GPU_VMS",
    "VAST_REGION",
    "Adapted",
    "VmShape",
    "adapt_azure_items",
    "adapt_skypilot_csv",
    "adapt_vast_offers",
    "azure_filter",
    "fetch_azure",
    "fetch_skypilot",
    "fetch_vast",
    "offer_columns",
]


# ---------------------------------------------------------------------------
# mapping tables (source names → gpus.csv ids); tested against gpus.csv


@dataclass(frozen=True)
class VmShape:
    """What one VM size holds: the gpus.csv id, how many, and how they are connected."""

    gpu: str
    gpus_per_instance: int
    interconnect: str


# Every source name → gpus.csv id lives in accelerators.csv (see ``mapping``): whole-GPU
# Azure VM sizes, SkyPilot accelerator names (with GpuInfo memory), vast GPU names.
AZURE_GPU_VMS: dict[str, VmShape] = {
    size: VmShape(m.gpu, m.gpus_per_instance or 1, m.interconnect)
    for size, m in mapping.azure_sizes().items()
}
AZURE_RESERVATION_HOURS = {"1 Year": 8760.0, "3 Years": 26280.0}

# GCP machine families with fixed GPUs: host rows carry only vCPU+RAM, the GPUs are a
# separate catalog row (reference B6). g2-standard sizes hold 1, 2, 4 or 8 L4. The
# "-nolssd" variants (no local SSD) hold the same GPUs; a3-edgegpu is an H100 SXM size.
_GCP_G2_L4 = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
_GCP_FIXED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"a2-highgpu-(\d+)g"), "A100"),
    (re.compile(r"a2-megagpu-(\d+)g"), "A100"),
    (re.compile(r"a2-ultragpu-(\d+)g(?:-nolssd)?"), "A100-80GB"),
    (re.compile(r"a3-(?:high|edge)gpu-(\d+)g(?:-nolssd)?"), "H100"),
    (re.compile(r"a3-megagpu-(\d+)g(?:-nolssd)?"), "H100-MEGA"),
    (re.compile(r"a3-ultragpu-(\d+)g(?:-nolssd)?"), "H200"),
    (re.compile(r"a4-highgpu-(\d+)g(?:-nolssd)?"), "B200"),
)
# A GCP machine family that has GPUs built in (a2/a3/a4/g2/...): one the table above does
# not know is reported by name, not counted as CPU-only.
_GCP_GPU_FAMILY = re.compile(r"(?:a\d+-\w*gpu-|g\d+-)")
# TPU slices: v5p-N counts TensorCores (2 per chip); v5litepod-N and v6e-N count chips.
_TPU_SLICES: tuple[tuple[re.Pattern[str], str, int], ...] = (
    (re.compile(r"tpu-v5p-(\d+)"), "TPU-v5p", 2),
    (re.compile(r"tpu-v5litepod-(\d+)"), "TPU-v5e", 1),
    (re.compile(r"tpu-v6e-(\d+)"), "TPU-v6e", 1),
)

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


def offer_columns() -> list[str]:
    from . import schema

    return [c.name for c in schema.OFFERS]


def _price_text(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _hours_text(value: float) -> str:
    return f"{value:.9g}"


def _slug(text: str) -> str:
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


def _positive_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


# ---------------------------------------------------------------------------
# adapter: Azure Retail Prices API

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
        as_of = _effective_date(item.get("effectiveStartDate")) or fetched_at
        row = Machine("azure", region, sku, shape, source, as_of, fetched_at).row(
            f"azure-{_slug(sku)}-{_slug(region)}-{suffix}",
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


# ---------------------------------------------------------------------------
# adapter: SkyPilot catalog CSVs

SKYPILOT_REQUIRED = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")
_GPUINFO_MIB = re.compile(r"['\"]SizeInMiB['\"]\s*:\s*([0-9.]+)")


def _gpu_memory_gib(gpu_info: str) -> float | None:
    """Per-GPU memory from SkyPilot's GpuInfo cell (a Python-literal dict), in GiB."""
    match = _GPUINFO_MIB.search(gpu_info or "")
    return float(match.group(1)) / 1024 if match else None


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
    memory_gib: float | None = None

    def add(self, price: float | None, spot: float | None, memory_gib: float | None = None) -> None:
        if price is not None:
            self.price_usd = price if self.price_usd is None else min(self.price_usd, price)
        if spot is not None:
            self.spot_price_usd = (
                spot if self.spot_price_usd is None else min(self.spot_price_usd, spot)
            )
        if memory_gib is not None:
            self.memory_gib = memory_gib


def adapt_skypilot_csv(
    text: str,
    *,
    cloud: str,
    source_url: str,
    as_of: dt.date,
    fetched_at: dt.date | None = None,
    region: str | None = None,
) -> Adapted:
    """One SkyPilot ``vms.csv`` → offers; columns are read by header name (order varies by cloud).

    * One row per availability zone: deduplicated by (InstanceType, Region); Price is the
      same in every zone, SpotPrice differs → the minimum (cheapest spot in the region).
      Zone rows may name the GPU differently (AWS p4de: ``A100`` and ``A100-80GB``); the
      GpuInfo memory decides the gpus.csv row, so they are one instance.
    * Empty Price = not orderable on demand (AWS Capacity-Block-only sizes): no
      on-demand offer; a SpotPrice, if any, still gives a spot offer.
    * GCP: host rows carry only vCPU+RAM and GPU rows (empty InstanceType) only the GPUs;
      machine types with fixed GPUs (a2, a3, a4, g2) are assembled host + GPU row of
      the same region. n1 hosts take attachable GPUs in any combination the catalog does
      not pair, so they are skipped (the bundled catalog keeps hand-made n1+T4/V100 rows).
      TPU slices are standalone rows, priced per slice, counted in chips.
    * Accelerator names ``accelerators.csv`` does not map are skipped and counted by name.
    * ``as_of`` is the catalog's own date (commit or Last-Modified), ``fetched_at`` today.
    """
    out = Adapted()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in SKYPILOT_REQUIRED if c not in header]
    if missing:
        raise FetchError(
            f"{short_url(source_url)} is not a SkyPilot vms.csv (missing column(s) "
            f"{', '.join(missing)})"
        )
    reader.fieldnames = header
    # (instance, region, count) → the shape it resolves to, and its min prices
    hosts: dict[tuple[str, str, int, VmShape], _Priced] = {}
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
        memory_gib = _gpu_memory_gib(record.get("GpuInfo") or "")
        count_text = (record.get("AcceleratorCount") or "").strip()
        if cloud == "gcp" and not instance and accelerator:
            if _tpu_slice(accelerator) is None:
                count = _whole(count_text)
                if count is None:
                    out.skipped["unparseable AcceleratorCount"] += 1
                    continue
                gcp_gpus.setdefault((accelerator.upper(), count, row_region), _Priced()).add(
                    price, spot, memory_gib
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
        shape = _skypilot_shape(cloud, accelerator, instance, count, memory_gib)
        if shape is None:
            out.skipped[f"unknown accelerator {accelerator}"] += 1
            continue
        hosts.setdefault((instance, row_region, count, shape), _Priced()).add(price, spot)

    # GCP: host + fixed GPUs of the same region.
    used_gpu_rows: set[tuple[str, int, str]] = set()
    for (instance, row_region), host in gcp_hosts.items():
        fixed = _gcp_fixed_gpus(instance)
        if fixed is None:
            if instance.startswith("n1-"):
                out.skipped["gcp n1 host (attachable GPUs are not paired in the catalog)"] += 1
            elif _GCP_GPU_FAMILY.match(instance):
                out.skipped[f"unknown GPU machine type {instance}"] += 1
            else:
                out.skipped["no accelerator (CPU-only)"] += 1
            continue
        key = (fixed[0].upper(), fixed[1], row_region)
        gpu_row = gcp_gpus.get(key)
        if gpu_row is None:
            out.skipped["gcp host without a GPU price row in its region"] += 1
            continue
        shape = _skypilot_shape(cloud, fixed[0], instance, fixed[1], gpu_row.memory_gib)
        if shape is None:
            out.skipped[f"unknown accelerator {fixed[0]}"] += 1
            continue
        used_gpu_rows.add(key)
        assembled = hosts.setdefault((instance, row_region, fixed[1], shape), _Priced())
        assembled.add(
            _sum(host.price_usd, gpu_row.price_usd),
            _sum(host.spot_price_usd, gpu_row.spot_price_usd),
        )
    unused = len(set(gcp_gpus) - used_gpu_rows)
    if unused:
        out.skipped["gcp GPU row without a fixed-GPU host"] += unused

    for (instance, row_region, _count, shape), priced in sorted(
        hosts.items(), key=lambda kv: kv[0][:3]
    ):
        if priced.price_usd is None and priced.spot_price_usd is None:
            out.skipped["no price (not orderable)"] += 1
            continue
        if priced.price_usd is None:
            out.skipped["empty Price (not orderable on demand)"] += 1
        machine = Machine(cloud, row_region, instance, shape, source_url, as_of, fetched_at)
        out.rows += machine.on_demand_and_spot(
            f"{cloud}-{_slug(instance)}-{_slug(row_region)}",
            priced.price_usd,
            priced.spot_price_usd,
            spot_suffix="spot",
            spot_overhead=SPOT_INTERRUPTION_OVERHEAD,
        )
    return out


def _skypilot_shape(
    cloud: str, accelerator: str, instance: str, count: int, memory_gib: float | None
) -> VmShape | None:
    """The VmShape of a SkyPilot row: exact Azure size, a TPU slice, or the mapping table."""
    if cloud == "azure" and instance in AZURE_GPU_VMS:
        return AZURE_GPU_VMS[instance]  # exact board and count, not just the chip name
    tpu = _tpu_slice(accelerator)
    if tpu is not None:
        return VmShape(*tpu, "nvlink")  # TPU chips talk over ICI links, treated like NVLink
    found = mapping.resolve(
        "skypilot", accelerator, cloud=cloud, memory_gib=memory_gib, instance_type=instance
    )
    return None if found is None else VmShape(found.gpu, count, found.interconnect)


def _whole(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value >= 1 and value == int(value) else None


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


_GITHUB_RAW = re.compile(r"https://raw\.githubusercontent\.com/([^/]+)/([^/]+)/([^/]+)/(.+)")
GITHUB_API = "https://api.github.com"


def source_date(
    fetcher: Fetcher, fetched: Fetched, url: str, fetched_at: dt.date
) -> tuple[dt.date, str]:
    """The file's own date and a source text naming it: Last-Modified, else (for a file on
    raw.githubusercontent.com) the date and hash of the commit that last changed it, else
    the fetch date — said so in the source, because then the date is not the source's."""
    modified = fetched.last_modified()
    if modified is not None:
        return min(modified, fetched_at), f"{url} (Last-Modified {modified.isoformat()})"
    match = _GITHUB_RAW.fullmatch(url)
    if match:
        owner, repo, ref, path = match.groups()
        try:
            commits = fetcher.get_json(
                f"{GITHUB_API}/repos/{owner}/{repo}/commits",
                {"path": path, "sha": ref, "per_page": "1"},
            )
            sha = str(commits[0]["sha"])
            when = dt.date.fromisoformat(str(commits[0]["commit"]["committer"]["date"])[:10])
            return (
                min(when, fetched_at),
                f"https://github.com/{owner}/{repo}/blob/{sha}/{path} (commit of {when.isoformat()})",
            )
        except (FetchError, KeyError, IndexError, TypeError, ValueError):
            pass
    return fetched_at, f"{url} (no source date published; as_of = fetch date)"


def fetch_skypilot(
    fetcher: Fetcher,
    url: str,
    cloud: str,
    region: str | None,
    fetched_at: dt.date,
    report: Callable[[str], None],
) -> Adapted:
    report("downloading vms.csv")
    fetched = fetcher.get(url)
    as_of, source = source_date(fetcher, fetched, url, fetched_at)
    return adapt_skypilot_csv(
        fetched.text(), cloud=cloud, source_url=source, as_of=as_of, fetched_at=fetched_at,
        region=region,
    )


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
    """vast's ``gpu_name`` (and ``gpu_ram`` in MB, which tells 40 from 80 GB) → gpus.csv id."""
    ram = _positive_float(gpu_ram_mb)
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
        base = _positive_float(offer.get("dph_base"))
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
