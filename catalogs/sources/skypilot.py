"""SkyPilot's public catalog (``skypilot:<cloud>``): one ``vms.csv`` per cloud → offers.csv rows.

A mirror of many clouds' price lists in one format, so one adapter covers AWS, GCP, Azure,
Lambda and RunPod. What is cloud-specific lives here too: GCP's host + GPU rows assembled into
one machine, TPU slices counted in chips, and the file's own date (Last-Modified, else the
GitHub commit that last changed it) so an old snapshot is not mistaken for today's prices.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from .. import mapping
from ..fetch import Fetched, Fetcher, FetchError, short_url
from .azure import AZURE_GPU_VMS
from .base import SPOT_INTERRUPTION_OVERHEAD, Adapted, Machine, VmShape, positive_float, slug, whole_count

__all__ = [
    "GITHUB_API",
    "SKYPILOT_REQUIRED",
    "adapt_skypilot_csv",
    "fetch_skypilot",
    "source_date",
]

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
        price = positive_float((record.get("Price") or "").strip() or None)
        spot = positive_float((record.get("SpotPrice") or "").strip() or None)
        memory_gib = _gpu_memory_gib(record.get("GpuInfo") or "")
        count_text = (record.get("AcceleratorCount") or "").strip()
        if cloud == "gcp" and not instance and accelerator:
            if _tpu_slice(accelerator) is None:
                count = whole_count(count_text)
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
        count = whole_count(count_text) if count_text else None
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
            f"{cloud}-{slug(instance)}-{slug(row_region)}",
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
