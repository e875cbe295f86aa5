"""``flopopt catalog refresh``: adapters, robust fetching, the cache's safety rules, the CLI.

Fully offline: pytest-httpserver serves the response fixtures in ``fixtures/refresh/``
(hand-trimmed responses in each source's real format: Azure Retail Prices pages that
chain by NextPageLink, SkyPilot vms.csv for aws / gcp / runpod, a vast.ai search).
Every test points FLOPOPT_CACHE_DIR and FLOPOPT_USER_DIR at tmp_path, and no test
sleeps for real: the fetcher's ``sleep`` is a recorder.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import REPO, Sleeps
from flopopt.catalogs import fetch, mapping, paths
from flopopt.catalogs import refresh as rf
from flopopt.catalogs.loader import load_catalog
from flopopt.catalogs.refresh_cache import cache_status, lock_path, state_path
from flopopt.catalogs.refresh_result import FeedOutcome, FeedStatus, RefreshProgress, RefreshResult
from flopopt.catalogs.sources.azure import AZURE_GPU_VMS, adapt_azure_items, azure_filter
from flopopt.catalogs.sources.base import Adapted, VmShape
from flopopt.catalogs.sources.registry import feeds_for
from flopopt.catalogs.sources.skypilot import adapt_skypilot_csv
from flopopt.catalogs.sources.vast import _vast_gpu, adapt_vast_offers
from flopopt.cli.main import app
from flopopt.optimizer import fileio
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug.wrappers import Request, Response

FIXTURES = REPO / "tests" / "fixtures" / "refresh"
GPUS_CSV = REPO / "catalogs" / "gpus.csv"
TODAY = dt.date.today()
AZURE_PATH = "/api/retail/prices"
pytestmark = pytest.mark.usefixtures("bare_env")  # conftest.py: no FLOPOPT_* setting but the dirs


# ---------------------------------------------------------------------------
# helpers


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def azure_page(server: HTTPServer, name: str) -> str:
    return fixture_text(name).replace("__BASE__", server.url_for("").rstrip("/"))


def serve_azure(server: HTTPServer, pages: dict[str | None, Callable[[], Response]]) -> None:
    """Route Azure requests by their ``$skip`` (None = first page), like the real API's paging."""

    def handler(request: Request) -> Response:
        skip = request.args.get("$skip")
        if skip not in pages:
            return Response("no such page", status=404)
        return pages[skip]()

    server.expect_request(AZURE_PATH).respond_with_handler(handler)


def json_response(
    text: str, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[], Response]:
    return lambda: Response(text, status=status, headers=headers, content_type="application/json")


def good_azure(server: HTTPServer) -> dict[str | None, Callable[[], Response]]:
    return {
        None: json_response(azure_page(server, "azure_page1.json")),
        "1000": json_response(azure_page(server, "azure_page2.json")),
        "2000": json_response(azure_page(server, "azure_page3.json")),
    }


def serve_skypilot(
    server: HTTPServer,
    clouds: tuple[str, ...] = ("aws", "gcp", "runpod"),
    overrides: dict[str, str] | None = None,
) -> None:
    for cloud in clouds:
        text = (overrides or {}).get(cloud) or fixture_text(f"skypilot_{cloud}_vms.csv")
        server.expect_request(f"/skypilot/v7/{cloud}/vms.csv").respond_with_data(
            text, content_type="text/plain"
        )


def serve_vast(server: HTTPServer) -> None:
    server.expect_request("/api/v0/bundles/").respond_with_data(
        fixture_text("vast_bundles.json"), content_type="application/json"
    )


def settings_for(
    server: HTTPServer, *, clouds: tuple[str, ...] = ("aws", "gcp", "runpod"), **changes: Any
) -> fetch.RefreshSettings:
    base = fetch.RefreshSettings(
        urls={
            "azure": server.url_for(AZURE_PATH),
            "skypilot": server.url_for("/skypilot/v7"),
            "vast": server.url_for("/api/v0/bundles/"),
        },
        skypilot_clouds=clouds,
        timeout_s=2.0,
        retries=2,
        backoff_base_s=0.5,
        backoff_cap_s=1.0,
    )
    return fetch.RefreshSettings(**{**base.__dict__, **changes})


def serve_everything(server: HTTPServer) -> None:
    serve_azure(server, good_azure(server))
    serve_skypilot(server)
    serve_vast(server)


def cache_bytes() -> bytes | None:
    path = paths.refreshed_offers_path()
    return path.read_bytes() if path.exists() else None


def cached_rows() -> dict[str, dict[str, str]]:
    with paths.refreshed_offers_path().open(newline="", encoding="utf-8") as handle:
        return {r["offer_id"]: r for r in csv.DictReader(handle)}


def outcome(result: RefreshResult, name: str) -> FeedOutcome:
    return next(o for o in result.outcomes if o.name == name)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def previous_cache(httpserver: HTTPServer) -> Iterator[bytes]:
    """A good cache from a full refresh; the server is cleared for the test's own handlers."""
    serve_everything(httpserver)
    result = rf.refresh(settings=settings_for(httpserver), sleep=Sleeps(), accept_changes=True)
    assert result.written and not result.failed and not result.held
    before = cache_bytes()
    assert before is not None
    httpserver.clear()
    yield before


# ---------------------------------------------------------------------------
# mapping tables


def test_every_mapping_rule_targets_a_gpu_of_gpus_csv() -> None:
    with GPUS_CSV.open(newline="", encoding="utf-8") as handle:
        known = {row["gpu"] for row in csv.DictReader(handle)}
    targets = {rule.gpu for rule in mapping.rules()} | {"TPU-v5p", "TPU-v5e", "TPU-v6e"}
    assert targets - known == set()
    assert {rule.interconnect for rule in mapping.rules()} <= {"nvlink", "pcie", "infiniband"}
    assert {rule.source.split(":")[0] for rule in mapping.rules()} == {"skypilot", "vast", "azure"}
    for rule in mapping.rules():
        assert (rule.gpus_per_instance is not None) == (rule.source == "azure"), rule


@pytest.mark.parametrize(
    ("sku", "gpu", "count", "interconnect"),
    [
        ("Standard_ND96isr_H100_v5", "H100-SXM", 8, "nvlink"),
        ("Standard_ND96amsr_A100_v4", "A100-80GB", 8, "nvlink"),
        ("Standard_NC96ads_A100_v4", "A100-80GB", 4, "pcie"),
        ("Standard_NC40ads_H100_v5", "H100-NVL", 1, "pcie"),
        ("Standard_NC64as_T4_v3", "T4", 4, "pcie"),
        ("Standard_ND40rs_v2", "V100", 8, "nvlink"),
        ("Standard_NC6s_v3", "V100-16GB", 1, "pcie"),
        ("Standard_ND96isr_MI300X_v5", "MI300X", 8, "nvlink"),
    ],
)
def test_azure_sku_table(sku: str, gpu: str, count: int, interconnect: str) -> None:
    assert AZURE_GPU_VMS[sku] == VmShape(gpu, count, interconnect)


@pytest.mark.parametrize(
    ("cloud", "name", "memory_gib", "instance", "expected"),
    [
        ("aws", "H100", 80, "p5.48xlarge", ("H100-SXM", "nvlink")),
        ("lambda", "H100", 80, "gpu_1x_h100_pcie", ("H100-PCIe", "pcie")),
        ("gcp", "H100-MEGA", None, "a3-megagpu-8g", ("H100-SXM", "nvlink")),
        ("aws", "A100", 40, "p4d.24xlarge", ("A100-40GB", "nvlink")),
        ("aws", "A100", 80, "p4de.24xlarge", ("A100-80GB", "nvlink")),  # a p4de zone row's name
        ("aws", "a100-80gb", 80, "p4de.24xlarge", ("A100-80GB", "nvlink")),
        ("runpod", "A100-80GB", None, "1x_A100-80GB_SECURE", ("A100-80GB", "pcie")),
        ("aws", "A10G", 24, "g5.xlarge", ("A10G", "pcie")),
        ("aws", "L4", 24, "g6.xlarge", ("L4", "pcie")),
        ("aws", "T4", 16, "g4dn.xlarge", ("T4", "pcie")),
        ("aws", "V100", 16, "p3.2xlarge", ("V100-16GB", "nvlink")),
        ("aws", "V100", 32, "p3dn.24xlarge", ("V100", "nvlink")),
        ("lambda", "V100", None, "gpu_8x_v100", ("V100-16GB", "nvlink")),
        ("aws", "L40S", 48, "g6e.xlarge", ("L40S", "pcie")),
        ("aws", "H200", 141, "p5en.48xlarge", ("H200", "nvlink")),
        ("runpod", "H200-NVL", None, "1x_H200-NVL", ("H200-NVL", "pcie")),
        ("aws", "B200", None, "p6-b200.48xlarge", ("B200", "nvlink")),
        ("lambda", "GH200", 96, "gpu_1x_gh200", ("GH200", "nvlink")),
        ("runpod", "RTX4090", None, "1x_RTX4090", ("RTX-4090", "pcie")),
        ("runpod", "RTX5090", None, "1x_RTX5090", ("RTX-5090", "pcie")),
        ("azure", "MI300X", None, "Standard_ND96isr_MI300X_v5", ("MI300X", "nvlink")),
        ("aws", "Inferentia2", None, "inf2.xlarge", None),
        ("gcp", "K80", None, "n1-standard-4", None),
        ("lambda", "RTX6000", 24, "gpu_1x_rtx6000", None),
    ],
)
def test_skypilot_accelerator_mapping(
    cloud: str, name: str, memory_gib: float | None, instance: str, expected: tuple[str, str] | None
) -> None:
    found = mapping.resolve(
        "skypilot", name, cloud=cloud, memory_gib=memory_gib, instance_type=instance
    )
    assert (None if found is None else (found.gpu, found.interconnect)) == expected


@pytest.mark.parametrize(
    ("name", "gpu_ram_mb", "expected"),
    [
        ("A100 SXM4", 81920, "A100-80GB"),
        ("A100_PCIE", 40960, "A100-40GB"),
        ("Tesla V100", 16384, "V100-16GB"),
        ("Tesla V100", 32768, "V100"),
        ("RTX 5090", 32607, "RTX-5090"),
        ("H200 NVL", 143771, "H200-NVL"),
        ("A100 SXM4", None, None),  # 40 or 80 GB cannot be told: not guessed
        ("RTX 3060", 12288, None),
    ],
)
def test_vast_gpu_mapping(name: str, gpu_ram_mb: float | None, expected: str | None) -> None:
    assert _vast_gpu(name, gpu_ram_mb) == expected


# ---------------------------------------------------------------------------
# adapters (pure functions on the fixtures)


def test_azure_adapter_classifies_meters_and_divides_reservations() -> None:
    items = json.loads(fixture_text("azure_page1.json"))["Items"]
    adapted = adapt_azure_items(
        items, base_url="https://prices.example/api/retail/prices", fetched_at=TODAY
    )
    rows = {r["offer_id"]: r for r in adapted.rows}
    base = "azure-standard_nd96isr_h100_v5-eastus"
    assert set(rows) == {
        f"{base}-ondemand",
        f"{base}-spot",
        f"{base}-reserved-1y",
        f"{base}-reserved-3y",
        "azure-standard_nd96isr_h100_v5-westus3-ondemand",
    }
    assert rows[f"{base}-ondemand"]["price_per_hour_usd"] == "98.32"
    assert rows[f"{base}-ondemand"]["kind"] == "on_demand"
    assert (
        rows[f"{base}-spot"]["kind"] == "spot"
        and rows[f"{base}-spot"]["price_per_hour_usd"] == "29.496"
    )
    assert rows[f"{base}-spot"]["interruption_overhead"] == "0.15"
    # Reservation retailPrice is the total for the term: per hour = total / 8,760 h or 26,280 h.
    assert float(rows[f"{base}-reserved-1y"]["price_per_hour_usd"]) == pytest.approx(
        542606.0 / 8760, abs=1e-6
    )
    assert float(rows[f"{base}-reserved-3y"]["price_per_hour_usd"]) == pytest.approx(
        1163894.0 / 26280, abs=1e-6
    )
    assert rows[f"{base}-reserved-1y"]["min_hours"] == "8760"
    assert rows[f"{base}-reserved-1y"]["kind"] == "reserved"
    row = rows[f"{base}-ondemand"]
    assert (row["gpu"], row["gpus_per_instance"], row["interconnect"]) == (
        "H100-SXM",
        "8",
        "nvlink",
    )
    # as_of is the price's own effectiveStartDate; fetched_at is when it was read.
    assert (row["as_of"], row["fetched_at"]) == ("2025-09-01", TODAY.isoformat())
    assert row["price_quality"] == "primary"
    assert row["source"].startswith("https://prices.example/api/retail/prices?$filter=")
    assert set(row) == {
        c.name for c in __import__("flopopt.catalogs.schema", fromlist=["OFFERS"]).OFFERS
    }
    assert adapted.skipped == {
        "Windows (licence included)": 1,
        "low priority (legacy Batch tier)": 1,
        "price type DevTestConsumption": 1,
    }


def test_azure_adapter_skips_unmapped_sizes_and_non_primary_meters() -> None:
    items = json.loads(fixture_text("azure_page2.json"))["Items"]
    adapted = adapt_azure_items(items, base_url="https://x/p", fetched_at=TODAY)
    rows = {r["offer_id"]: r for r in adapted.rows}
    assert rows["azure-standard_nc24ads_a100_v4-eastus-ondemand"]["price_per_hour_usd"] == "3.673"
    assert rows["azure-standard_nc96ads_a100_v4-westeurope-ondemand"]["gpus_per_instance"] == "4"
    assert adapted.skipped["not a mapped GPU VM size"] == 1
    assert adapted.skipped["non-primary meter"] == 1


def test_azure_filter_names_every_size_and_the_region() -> None:
    text = azure_filter(["Standard_A", "Standard_B"], "eastus")
    assert text == (
        "serviceName eq 'Virtual Machines' and (armSkuName eq 'Standard_A' or "
        "armSkuName eq 'Standard_B') and armRegionName eq 'eastus'"
    )


def adapt_skypilot_fixture(cloud: str) -> Adapted:
    """The fixture vms.csv of ``cloud``, adapted as if fetched from a mirror."""
    return adapt_skypilot_csv(
        fixture_text(f"skypilot_{cloud}_vms.csv"),
        cloud=cloud,
        source_url=f"https://mirror/{cloud}/vms.csv",
        as_of=TODAY,
    )


def test_skypilot_aws_dedupes_zones_and_skips_what_it_cannot_price() -> None:
    adapted = adapt_skypilot_fixture("aws")
    rows = {r["offer_id"]: r for r in adapted.rows}
    # One row per AZ in the file → one offer per (instance, region); spot = cheapest AZ.
    assert rows["aws-p5.48xlarge-us-east-1-ondemand"]["price_per_hour_usd"] == "98.32"
    assert rows["aws-p5.48xlarge-us-east-1-spot"]["price_per_hour_usd"] == "21.0144"
    assert rows["aws-p5.48xlarge-us-west-2-spot"]["price_per_hour_usd"] == "25.1"
    assert rows["aws-g5.xlarge-us-east-1-spot"]["price_per_hour_usd"] == "0.4391"
    # Empty Price: not orderable on demand, but its spot price is real.
    assert "aws-p4de.24xlarge-us-east-1-ondemand" not in rows
    assert rows["aws-p4de.24xlarge-us-east-1-spot"]["gpu"] == "A100-80GB"
    # No SpotPrice → no spot offer.
    assert "aws-p3.2xlarge-us-east-1-spot" not in rows
    assert rows["aws-p3.2xlarge-us-east-1-ondemand"]["source"] == "https://mirror/aws/vms.csv"
    assert adapted.skipped["unknown accelerator Inferentia2"] == 1
    assert adapted.skipped["no accelerator (CPU-only)"] == 1
    assert adapted.skipped["empty Price (not orderable on demand)"] == 1


def test_skypilot_gcp_assembles_host_and_gpu_rows() -> None:
    adapted = adapt_skypilot_fixture("gcp")
    rows = {r["offer_id"]: r for r in adapted.rows}
    a2 = "gcp-a2-highgpu-1g-us-central1"
    # host (vCPU + RAM) 0.73948 + one A100 2.933908 = 3.673388; spot: cheapest zone of each part.
    assert float(rows[f"{a2}-ondemand"]["price_per_hour_usd"]) == pytest.approx(0.73948 + 2.933908)
    assert float(rows[f"{a2}-spot"]["price_per_hour_usd"]) == pytest.approx(0.28 + 1.05)
    assert rows[f"{a2}-ondemand"]["gpu"] == "A100-40GB"
    a3 = rows["gcp-a3-highgpu-8g-us-central1-ondemand"]
    assert (a3["gpu"], a3["gpus_per_instance"]) == ("H100-SXM", "8")
    assert float(a3["price_per_hour_usd"]) == pytest.approx(9.46 + 78.7909)
    g2 = rows["gcp-g2-standard-4-us-central1-ondemand"]
    assert g2["gpu"] == "L4"
    assert float(g2["price_per_hour_usd"]) == pytest.approx(0.14683 + 0.5599)
    tpu = rows["gcp-tpu-v5p-8-us-central1-ondemand"]
    assert (tpu["gpu"], tpu["gpus_per_instance"], tpu["price_per_hour_usd"]) == (
        "TPU-v5p",
        "4",
        "16.8",
    )
    assert adapted.skipped["gcp n1 host (attachable GPUs are not paired in the catalog)"] == 1
    assert adapted.skipped["gcp GPU row without a fixed-GPU host"] == 1  # the T4 row
    assert (
        adapted.skipped["gcp host without a GPU price row in its region"] == 1
    )  # a2-ultragpu in europe
    assert adapted.skipped["no accelerator (CPU-only)"] == 1  # e2-standard-2


def test_skypilot_columns_are_read_by_name_not_position() -> None:
    adapted = adapt_skypilot_fixture("runpod")
    rows = {r["offer_id"]: r for r in adapted.rows}
    one = rows["runpod-1x_a100-80gb_secure-us-ondemand"]
    assert (one["price_per_hour_usd"], one["interconnect"], one["billing_increment_hours"]) == (
        "1.64",
        "pcie",
        "0.000277777778",
    )
    assert rows["runpod-1x_a100-80gb_secure-us-spot"]["price_per_hour_usd"] == "1.19"
    assert rows["runpod-1x_a100-80gb-sxm_secure-us-ondemand"]["interconnect"] == "nvlink"
    assert adapted.skipped["unknown accelerator RTX3090"] == 1


def test_skypilot_rejects_a_file_that_is_not_a_catalog() -> None:
    with pytest.raises(
        fetch.FetchError, match=r"not a SkyPilot vms.csv \(missing column\(s\) InstanceType"
    ):
        adapt_skypilot_csv(
            "<html>rate limited</html>\n",
            cloud="aws",
            source_url="https://x/aws/vms.csv",
            as_of=TODAY,
        )


def test_vast_uses_the_median_of_enough_listings() -> None:
    payload = json.loads(fixture_text("vast_bundles.json"))
    adapted = adapt_vast_offers(
        payload, source_url="https://vast/bundles", fetched_at=TODAY, min_offers=3
    )
    rows = {r["offer_id"]: r for r in adapted.rows}
    assert set(rows) == {
        "vast-1x_h100-sxm-ondemand",
        "vast-1x_h100-sxm-interruptible",
        "vast-1x_a100-80gb-ondemand",
        "vast-2x_rtx-4090-ondemand",
        "vast-2x_rtx-4090-interruptible",
    }
    assert rows["vast-1x_h100-sxm-ondemand"]["price_per_hour_usd"] == "2.25"
    # The bid excludes storage, dph_total includes it: the bid gets the same storage
    # (dph_total - dph_base = 0.02 on every listing), so median 1.2 + 0.02.
    assert rows["vast-1x_h100-sxm-interruptible"]["price_per_hour_usd"] == "1.22"
    assert rows["vast-1x_h100-sxm-interruptible"]["kind"] == "spot"
    assert rows["vast-2x_rtx-4090-ondemand"]["price_per_hour_usd"] == "0.7"
    assert rows["vast-1x_a100-80gb-ondemand"]["gpu"] == "A100-80GB"
    assert all(r["region"] == "marketplace" and r["interconnect"] == "pcie" for r in rows.values())
    assert adapted.skipped["unknown GPU RTX 3060"] == 1
    assert adapted.skipped["fewer than 3 listings for one GPU/count"] == 1
    with pytest.raises(fetch.FetchError, match="expected a JSON object with an 'offers' list"):
        adapt_vast_offers([], source_url="https://vast/bundles", fetched_at=TODAY)


# ---------------------------------------------------------------------------
# the whole refresh against the local server


@pytest.mark.slow
def test_full_refresh_writes_a_valid_cache_that_solve_loads(httpserver: HTTPServer) -> None:
    serve_everything(httpserver)
    progress: list[RefreshProgress] = []
    result = rf.refresh(settings=settings_for(httpserver), sleep=Sleeps(), progress=progress.append)
    assert [o.name for o in result.outcomes] == [
        "skypilot:aws",
        "skypilot:gcp",
        "skypilot:runpod",
        "azure",
        "vast",
    ]
    assert not result.failed and result.written
    assert outcome(result, "azure").pages == 3  # page1 → $skip=1000 → $skip=2000 → null
    assert progress[-1].feeds_done == progress[-1].feeds_total == 5
    first = httpserver.log[0][0] if httpserver.log else None
    azure_requests = [req for req, _ in httpserver.log if req.path == AZURE_PATH]
    assert first is not None and len(azure_requests) == 3
    assert azure_requests[0].args["api-version"] == "2023-01-01-preview"
    assert "armSkuName eq 'Standard_ND96isr_H100_v5'" in azure_requests[0].args["$filter"]

    # The fixture's p5 at 98.32 is the pre-June-2025 price: +79% against the bundled
    # 55.04, so it is held back (and never cached) until the user accepts the change.
    (held,) = result.held
    assert (held.offer_id, held.source) == ("aws-p5.48xlarge-ondemand", "skypilot:aws")
    assert held.reasons[0].startswith("price moved +79% against the previous $55.04/h")
    assert held.change_only and outcome(result, "skypilot:aws").held == 1
    assert load_catalog().offer("aws-p5.48xlarge-ondemand")["price_per_hour_usd"] == 55.04
    assert "azure-standard_nd96isr_h100_v5-westus3-ondemand" in {
        c.offer_id for c in result.diff.added
    }
    httpserver.clear()
    serve_everything(httpserver)
    result = rf.refresh(settings=settings_for(httpserver), sleep=Sleeps(), accept_changes=True)
    assert not result.held and not result.failed

    catalog = load_catalog()
    assert any(layer.startswith("refreshed ") for layer in catalog.layers)
    # Same VM, region and kind as a bundled row → the bundled offer_id, so it replaces it.
    # The test server sends no Last-Modified: as_of falls back to the fetch date, and the
    # source says so (a real GitHub file gets its commit date).
    p5 = catalog.offer("aws-p5.48xlarge-ondemand")
    assert (p5["price_per_hour_usd"], p5["as_of"], p5["fetched_at"]) == (
        98.32, TODAY.isoformat(), TODAY.isoformat()
    )
    assert p5["source"].endswith("(no source date published; as_of = fetch date)")
    assert catalog.offer("azure-nd96isr-h100-v5-ondemand")["source"].startswith(
        httpserver.url_for(AZURE_PATH)
    )
    assert catalog.offer("azure-standard_nd96isr_h100_v5-eastus-reserved-1y")["kind"] == "reserved"
    move = next(m for m in result.diff.moves if m.offer_id == "aws-p5.48xlarge-ondemand")
    assert (move.old_price_per_hour_usd, move.new_price_per_hour_usd) == (55.04, 98.32)
    assert move.old_as_of == "2025-07-01"
    assert result.diff.replaced_as_of is not None and result.diff.replaced_as_of[0] <= "2025-07-01"
    state = json.loads(state_path().read_text(encoding="utf-8"))
    assert set(state["feeds"]) == {
        "skypilot:aws",
        "skypilot:gcp",
        "skypilot:runpod",
        "azure",
        "vast",
    }
    assert cache_status() == (
        f"prices: refreshed {TODAY.isoformat()} (today) from azure, skypilot:aws, "
        "skypilot:gcp, skypilot:runpod, vast; bundled catalog (as_of 2024-03-01 … "
        "2026-06-01) for the rest"
    )


def test_cache_status_without_a_refresh_names_the_bundled_dates() -> None:
    assert cache_status() == (
        "prices: bundled catalog (as_of 2024-03-01 … 2026-06-01); "
        "run `flopopt catalog refresh` for current prices"
    )


def test_a_second_identical_refresh_changes_no_price(
    httpserver: HTTPServer, previous_cache: bytes
) -> None:
    serve_everything(httpserver)
    result = rf.refresh(settings=settings_for(httpserver), sleep=Sleeps())
    assert (
        result.written
        and not result.diff.moves
        and not result.diff.added
        and not result.diff.removed
    )
    assert result.diff.replaced_cache_written_at is not None
    assert cache_bytes() == previous_cache
    assert outcome(result, "azure").previous_refresh == TODAY.isoformat()


@pytest.mark.parametrize(
    "failure",
    [
        "malformed page",
        "http 500",
        "timeout",
        "empty result",
        "429 asks too long",
        "404",
        "page limit",
        "closed port",
    ],
)
def test_every_failure_mode_leaves_the_previous_cache_byte_for_byte(
    httpserver: HTTPServer, previous_cache: bytes, failure: str
) -> None:
    state_before = state_path().read_bytes()
    pages = good_azure(httpserver)
    changes: dict[str, Any] = {}
    expected = {
        "malformed page": "malformed response from http://localhost:",
        "http 500": "HTTP 500 INTERNAL SERVER ERROR from ",
        "timeout": "timed out after 0.2 s waiting for ",
        "empty result": "no GPU offers in the response from ",
        "429 asks too long": "the server asks to retry after 3600 s (more than 120 s)",
        "404": "HTTP 404 NOT FOUND from ",
        "page limit": "more than 2 pages from ",
        "closed port": "cannot connect to 127.0.0.1:",
    }[failure]
    if failure == "malformed page":
        pages["1000"] = json_response(fixture_text("azure_malformed.json"))
    elif failure == "http 500":
        pages["1000"] = json_response('{"error": "boom"}', status=500)
    elif failure == "timeout":

        def slow() -> Response:
            time.sleep(0.6)
            return Response(
                azure_page(httpserver, "azure_page2.json"), content_type="application/json"
            )

        pages["1000"] = slow
        changes["timeout_s"] = 0.2
    elif failure == "empty result":
        pages[None] = json_response(fixture_text("azure_empty.json"))
    elif failure == "429 asks too long":
        pages[None] = json_response("{}", status=429, headers={"Retry-After": "3600"})
    elif failure == "404":
        pages = {}
    elif failure == "page limit":
        changes["max_pages"] = 2
    elif failure == "closed port":
        changes["urls"] = {"azure": closed_port_url() + AZURE_PATH}
    serve_azure(httpserver, pages)
    sleeps = Sleeps()
    result = rf.refresh(["azure"], settings=settings_for(httpserver, **changes), sleep=sleeps)
    (only,) = result.outcomes
    assert only.status is FeedStatus.error and not result.written
    assert only.message is not None and expected in only.message and "\n" not in only.message
    assert cache_bytes() == previous_cache
    assert state_path().read_bytes() == state_before
    assert not [p for p in paths.cache_dir().iterdir() if p.name.endswith(".tmp")]


def test_429_waits_as_long_as_retry_after_says(httpserver: HTTPServer) -> None:
    pages = good_azure(httpserver)
    first = pages[None]
    calls = {"n": 0}

    def limited() -> Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return Response("slow down", status=429, headers={"Retry-After": "7"})
        return first()

    pages[None] = limited
    serve_azure(httpserver, pages)
    sleeps = Sleeps()
    result = rf.refresh(["azure"], settings=settings_for(httpserver), sleep=sleeps)
    assert outcome(result, "azure").status is FeedStatus.ok
    assert sleeps == [7.0]  # Retry-After (7 s) beats the 0.5 s backoff


def test_5xx_retries_with_capped_exponential_backoff(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/skypilot/v7/aws/vms.csv").respond_with_data("busy", status=503)
    sleeps = Sleeps()
    settings = settings_for(
        httpserver, clouds=("aws",), retries=3, backoff_base_s=0.5, backoff_cap_s=1.0
    )
    result = rf.refresh(["skypilot:aws"], settings=settings, sleep=sleeps)
    assert sleeps == [0.5, 1.0, 1.0]  # 0.5 · 2^attempt, capped at 1 s
    assert outcome(result, "skypilot:aws").message == (
        f"HTTP 503 SERVICE UNAVAILABLE from {httpserver.url_for('/skypilot/v7/aws/vms.csv')} "
        "after 4 attempts"
    )


def test_a_transient_500_is_retried_and_then_succeeds(httpserver: HTTPServer) -> None:
    state = {"n": 0}

    def flaky(request: Request) -> Response:
        state["n"] += 1
        if state["n"] == 1:
            return Response("oops", status=500)
        return Response(fixture_text("skypilot_aws_vms.csv"), content_type="text/plain")

    httpserver.expect_request("/skypilot/v7/aws/vms.csv").respond_with_handler(flaky)
    sleeps = Sleeps()
    result = rf.refresh(
        ["skypilot:aws"], settings=settings_for(httpserver, clouds=("aws",)), sleep=sleeps
    )
    assert outcome(result, "skypilot:aws").status is FeedStatus.ok and sleeps == [0.5]


def test_a_failed_source_keeps_its_rows_while_the_others_refresh(
    httpserver: HTTPServer, previous_cache: bytes
) -> None:
    before = cached_rows()
    cheaper = fixture_text("skypilot_aws_vms.csv").replace(",98.32,", ",55.04,")
    serve_azure(httpserver, {None: json_response("{}", status=500)})
    serve_skypilot(httpserver, overrides={"aws": cheaper})
    serve_vast(httpserver)
    result = rf.refresh(
        settings=settings_for(httpserver, retries=0), sleep=Sleeps(), accept_changes=True
    )
    assert [o.name for o in result.failed] == ["azure"] and result.written
    after = cached_rows()
    azure_ids = {i for i, r in before.items() if r["provider"] == "azure"}
    assert azure_ids and all(after[i] == before[i] for i in azure_ids)  # kept exactly
    assert after["aws-p5.48xlarge-ondemand"]["price_per_hour_usd"] == "55.04"
    assert [m.offer_id for m in result.diff.moves[:2]] == [
        "aws-p5.48xlarge-ondemand",
        "aws-p5.48xlarge-us-west-2-ondemand",
    ]
    state = json.loads(state_path().read_text(encoding="utf-8"))
    assert sorted(state["feeds"]["azure"]["offer_ids"]) == sorted(azure_ids)


def test_ownership_is_guessed_when_the_sidecar_is_lost(
    httpserver: HTTPServer, previous_cache: bytes
) -> None:
    """A crash between the CSV and the sidecar write must not let a failed feed lose its rows."""
    state_path().unlink()
    before = cached_rows()
    serve_azure(httpserver, {None: json_response("{}", status=500)})
    serve_skypilot(httpserver, clouds=("aws",))
    result = rf.refresh(
        ["azure", "skypilot:aws"], settings=settings_for(httpserver, retries=0), sleep=Sleeps()
    )
    assert [o.name for o in result.failed] == ["azure"]
    after = cached_rows()
    assert {i for i, r in before.items() if r["provider"] == "azure"} <= set(after)
    assert {i for i, r in before.items() if r["provider"] == "vast"} <= set(after)


def test_a_row_with_defects_is_held_back_with_every_reason(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One bad row is held back with all its defects; its feed keeps the other rows."""
    original = mapping.resolve

    def typo(source: str, name: str, **kw: Any) -> mapping.Mapped | None:
        found = original(source, name, **kw)
        if found is not None and name == "A10G":
            return mapping.Mapped("A10G-typo", found.interconnect)
        return found

    monkeypatch.setattr(mapping, "resolve", typo)
    poisoned = fixture_text("skypilot_aws_vms.csv").replace(",1.006,", ",0.0001,")
    serve_skypilot(httpserver, clouds=("aws", "gcp"), overrides={"aws": poisoned})
    settings = settings_for(httpserver, clouds=("aws", "gcp"))
    result = rf.refresh(["skypilot"], settings=settings, sleep=Sleeps())
    assert not result.failed and result.written
    held = {h.offer_id: h for h in result.held}
    # g5.xlarge: an unknown GPU *and* an absurd price; both are named.
    (g5,) = [h for h in held.values() if h.offer_id.startswith("aws-g5.xlarge")
             and h.kind == "on_demand"]
    assert g5.reasons == (
        "gpu: unknown gpu 'A10G-typo' (not in gpus.csv)",
        "$0.0001/GPU-h is below the plausible band $0.05–$150.00 for A10G-typo (from the "
        "absolute limits; FLOPOPT_GUARD_BAND_FACTOR, FLOPOPT_GUARD_FLOOR_USD)",
        "price moved -100% against the previous $1.006/h (more than 30%, "
        "FLOPOPT_GUARD_MAX_CHANGE_PCT); --accept-changes adopts it",
    )
    assert not g5.change_only  # accepting the change would not adopt it
    assert outcome(result, "skypilot:aws").held == len(held) and outcome(result, "skypilot:aws").offers
    cached = cached_rows()
    assert not set(held) & set(cached)
    assert {r["provider"] for r in cached.values()} == {"aws", "gcp"}


def test_a_cached_row_that_no_longer_validates_is_dropped(
    httpserver: HTTPServer, previous_cache: bytes
) -> None:
    text = previous_cache.decode("utf-8")
    row = next(
        line for line in text.splitlines() if line.startswith("azure-nd96isr-h100-v5-ondemand,")
    )
    paths.refreshed_offers_path().write_text(
        text.replace(row, row.replace(",H100-SXM,", ",H100-SXM-typo,")), encoding="utf-8"
    )
    serve_skypilot(httpserver, clouds=("aws",))
    result = rf.refresh(["skypilot:aws"], settings=settings_for(httpserver), sleep=Sleeps())
    assert result.written
    after = cached_rows()
    assert "azure-nd96isr-h100-v5-ondemand" not in after
    assert "azure-standard_nd96isr_h100_v5-eastus-spot" in after  # the rest of azure is kept
    load_catalog()  # and the cache is valid again


def test_region_refresh_replaces_only_that_region(
    httpserver: HTTPServer, previous_cache: bytes
) -> None:
    before = cached_rows()
    cheaper = fixture_text("skypilot_aws_vms.csv").replace(",98.32,", ",50.0,")
    serve_skypilot(httpserver, clouds=("aws",), overrides={"aws": cheaper})
    serve_vast(httpserver)
    result = rf.refresh(
        ["skypilot:aws", "vast"],
        region="us-west-2",
        settings=settings_for(httpserver, clouds=("aws",)),
        sleep=Sleeps(),
        accept_changes=True,
    )
    assert outcome(result, "vast").status is FeedStatus.skipped
    assert outcome(result, "skypilot:aws").offers == 2  # p5 on-demand + spot in us-west-2
    after = cached_rows()
    assert after["aws-p5.48xlarge-us-west-2-ondemand"]["price_per_hour_usd"] == "50"
    assert after["aws-p5.48xlarge-ondemand"] == before["aws-p5.48xlarge-ondemand"]  # us-east-1 kept
    assert {i for i in before if i.startswith("vast-")} <= set(after)


def test_user_imported_rows_are_never_overwritten(httpserver: HTTPServer, tmp_path: Path) -> None:
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    header = (REPO / "catalogs" / "offers.csv").read_text(encoding="utf-8").splitlines()[0]
    mine = (
        f"{header}\naws-p5.48xlarge-ondemand,aws,on_demand,us-east-1,p5.48xlarge,H100-SXM,8,40.0,"
        f",,,nvlink,,,,,,,,my negotiated quote,2026-10-01\n"
    )
    (user_dir / "offers.csv").write_text(mine, encoding="utf-8")
    serve_everything(httpserver)
    result = rf.refresh(settings=settings_for(httpserver), sleep=Sleeps(), accept_changes=True)
    assert result.written and "aws-p5.48xlarge-ondemand" in result.diff.shadowed_by_user
    assert (user_dir / "offers.csv").read_text(encoding="utf-8") == mine
    assert cached_rows()["aws-p5.48xlarge-ondemand"]["price_per_hour_usd"] == "98.32"
    assert load_catalog().offer("aws-p5.48xlarge-ondemand")["price_per_hour_usd"] == 40.0


def test_dry_run_fetches_and_diffs_but_writes_nothing(httpserver: HTTPServer) -> None:
    serve_everything(httpserver)
    result = rf.refresh(dry_run=True, settings=settings_for(httpserver), sleep=Sleeps())
    assert result.dry_run and not result.written and result.diff.moves and result.rows_total > 0
    assert not paths.refreshed_offers_path().exists() and not state_path().exists()


class Killed(Exception):
    """Stands for the process dying mid-write (kill -9, power cut)."""


def test_an_exception_mid_write_leaves_no_partial_file(
    httpserver: HTTPServer, previous_cache: bytes
) -> None:
    serve_skypilot(
        httpserver,
        clouds=("aws",),
        overrides={"aws": fixture_text("skypilot_aws_vms.csv").replace(",98.32,", ",60.0,")},
    )
    real_write = os.write

    def write(fd: int, data: Any) -> int:  # the durable writer's only way to put bytes in a file
        real_write(fd, bytes(data)[: len(data) // 2])
        raise Killed("killed half-way through writing the cache")

    settings = settings_for(httpserver, clouds=("aws",))
    # A separate MonkeyPatch: undoing the test's own would also drop the FLOPOPT_*_DIR settings.
    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(fileio.os, "write", write)
        rf.refresh(["skypilot:aws"], settings=settings, sleep=Sleeps())
    assert cache_bytes() == previous_cache
    assert sorted(p.name for p in paths.cache_dir().iterdir()) == [
        "offers.refreshed.csv",
        "offers.refreshed.state.json",
        "refresh.lock",
    ]


def test_two_refreshes_cannot_run_at_once(httpserver: HTTPServer) -> None:
    from filelock import FileLock

    paths.cache_dir().mkdir(parents=True)
    busy = "another `flopopt catalog refresh` is running"
    with FileLock(str(lock_path())), pytest.raises(fetch.RefreshError, match=busy):
        rf.refresh(settings=settings_for(httpserver), sleep=Sleeps())
    assert not httpserver.log  # refused before any network traffic


# ---------------------------------------------------------------------------
# settings


def test_settings_come_from_env_then_url_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPOPT_AZURE_PRICES_URL", "http://env/azure")
    monkeypatch.setenv("FLOPOPT_SKYPILOT_CLOUDS", "aws, lambda")
    monkeypatch.setenv("FLOPOPT_REFRESH_BACKOFF_S", "0.01")
    settings = fetch.RefreshSettings.from_env(fetch.parse_url_overrides(["vast=http://flag/vast"]))
    assert (
        settings.urls["azure"] == "http://env/azure" and settings.urls["vast"] == "http://flag/vast"
    )
    assert settings.skypilot_clouds == ("aws", "lambda") and settings.backoff_base_s == 0.01
    feeds = {f.name: f.url for f in feeds_for(settings)}
    assert feeds["skypilot:lambda"] == fetch.DEFAULT_URLS["skypilot"] + "/lambda/vms.csv"
    monkeypatch.setenv("FLOPOPT_REFRESH_RETRIES", "many")
    with pytest.raises(fetch.RefreshError, match="FLOPOPT_REFRESH_RETRIES='many' is not a number"):
        fetch.RefreshSettings.from_env()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("azure", "expected SOURCE=URL"),
        ("aws=http://x", "unknown source 'aws'"),
        ("azure=ftp://x", "must start with http:// or https://"),
    ],
)
def test_bad_url_overrides_are_refused(item: str, message: str) -> None:
    with pytest.raises(fetch.RefreshError, match=message):
        fetch.parse_url_overrides([item])


def test_unknown_source_suggests_the_right_one() -> None:
    with pytest.raises(fetch.RefreshError, match="unknown source; did you mean 'skypilot'"):
        rf.refresh(["skypilott"], settings=fetch.RefreshSettings(), sleep=Sleeps())


# ---------------------------------------------------------------------------
# CLI


def test_cli_offline_prints_one_error_per_source_and_solve_still_works() -> None:
    down = closed_port_url()
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "catalog",
            "refresh",
            "--url",
            f"azure={down}/prices",
            "--url",
            f"skypilot={down}/v7",
            "--url",
            f"vast={down}/bundles",
        ],
    )
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    names = [
        "skypilot:aws",
        "skypilot:gcp",
        "skypilot:azure",
        "skypilot:lambda",
        "skypilot:runpod",
        "azure",
        "vast",
    ]
    assert errors == [
        f"error: {n}: cannot connect to {down.removeprefix('http://')} (Connection refused)"
        for n in names
    ]
    assert "Traceback" not in result.output
    assert "no source refreshed" in result.stdout
    assert not paths.refreshed_offers_path().exists()
    solved = runner.invoke(
        app, ["solve", str(REPO / "examples" / "llama2-7b-pretrain.yaml"), "--no-sensitivity"]
    )
    assert solved.exit_code == 0, solved.output
    assert cache_status().startswith("prices: bundled catalog (as_of ")


def test_cli_refresh_renders_the_diff_and_json(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_everything(httpserver)
    monkeypatch.setenv("FLOPOPT_SKYPILOT_CLOUDS", "aws,gcp,runpod")
    urls = [
        "--url",
        f"azure={httpserver.url_for(AZURE_PATH)}",
        "--url",
        f"skypilot={httpserver.url_for('/skypilot/v7')}",
        "--url",
        f"vast={httpserver.url_for('/api/v0/bundles/')}",
    ]
    runner = CliRunner()
    table = runner.invoke(app, ["catalog", "refresh", "--dry-run", *urls], env={"COLUMNS": "160"})
    # p5's +79% is held back: listed with its reason, and the exit code says so.
    assert table.exit_code == 1, table.output
    assert "Held back by the price guards" in table.stdout and "price moved +79%" in table.stdout
    assert "dry run:" in table.stdout and "1 row(s) held back" in table.stderr
    markdown = runner.invoke(app, ["catalog", "refresh", "--dry-run", "-f", "markdown", *urls])
    assert markdown.exit_code == 1 and "| skypilot:aws | ok | 9 | never |" in markdown.stdout
    held_json = json.loads(runner.invoke(app, ["catalog", "refresh", "--dry-run", "-f", "json",
                                               *urls]).stdout)
    assert [h["offer_id"] for h in held_json["held_back"]] == ["aws-p5.48xlarge-ondemand"]
    assert held_json["held_back"][0]["accept_changes_adopts"] is True
    as_json = runner.invoke(app, ["catalog", "refresh", "--format", "json", "--accept-changes",
                                  *urls])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["written"] is True and [s["status"] for s in data["sources"]] == ["ok"] * 5
    assert data["held_back"] == [] and data["diff"]["moves"][0]["change_pct"] is not None
    solved = runner.invoke(
        app, ["solve", str(REPO / "examples" / "llama2-7b-pretrain.yaml"), "--no-sensitivity"]
    )
    assert solved.exit_code == 0, solved.output


def test_cli_usage_errors_exit_2_without_traceback() -> None:
    runner = CliRunner()
    bad_url = runner.invoke(app, ["catalog", "refresh", "--url", "nowhere"])
    assert bad_url.exit_code == 2 and bad_url.stderr.startswith(
        "error: --url 'nowhere': expected SOURCE=URL"
    )
    bad_source = runner.invoke(app, ["catalog", "refresh", "--source", "gcp"])
    assert bad_source.exit_code == 2 and "unknown source" in bad_source.stderr
    assert "Traceback" not in bad_url.output + bad_source.output


def test_gcp_edge_and_nolssd_sizes_are_gpu_machines_and_unknown_families_are_named() -> None:
    text = (
        "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,"
        "Price,SpotPrice\n"
        "a3-edgegpu-8g,208.0,1872.0,,,,us-central1,us-central1-a,9.46,2.1\n"
        "a3-highgpu-8g-nolssd,208.0,1872.0,,,,us-central1,us-central1-a,9.0,2.0\n"
        "a9-newgpu-8g,208.0,1872.0,,,,us-central1,us-central1-a,9.0,2.0\n"
        ",,,H100,8,,us-central1,us-central1-a,78.79,20.0\n"
        ",,,tpu-v6e-8,1,tpu-v6e-8,us-central1,us-central1-a,21.6,\n"
    )
    adapted = adapt_skypilot_csv(
        text, cloud="gcp", source_url="https://mirror/gcp/vms.csv", as_of=TODAY
    )
    rows = {r["offer_id"]: r for r in adapted.rows}
    edge = rows["gcp-a3-edgegpu-8g-us-central1-ondemand"]
    assert (edge["gpu"], edge["gpus_per_instance"]) == ("H100-SXM", "8")
    assert float(edge["price_per_hour_usd"]) == pytest.approx(9.46 + 78.79)
    assert rows["gcp-a3-highgpu-8g-nolssd-us-central1-ondemand"]["gpu"] == "H100-SXM"
    tpu = rows["gcp-tpu-v6e-8-us-central1-ondemand"]
    assert (tpu["gpu"], tpu["gpus_per_instance"]) == ("TPU-v6e", "8")  # v6e slices count chips
    assert adapted.skipped == {"unknown GPU machine type a9-newgpu-8g": 1}
