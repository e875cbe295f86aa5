"""``catalog refresh`` on real price-feed rows, and against a hostile price server.

``fixtures/real-samples/`` holds excerpts of real public feeds, byte for byte as their
README records (SkyPilot v7 AWS and Lambda rows, a two-page Azure Retail Prices
response). They are replayed verbatim through pytest-httpserver — only the Azure page
link is pointed at the test server, as the README says to — and the resulting offers
are checked row by row: GPU, count, kind, price, dates, and which rows the price
guards held back and why. The second half serves what a broken or hostile server
serves: poisoned prices, redirects elsewhere, a slow drip, a huge body, endless
Retry-After.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from builders import REPO, Sleeps
from flopopt.catalogs import fetch, paths
from flopopt.catalogs import refresh as rf
from flopopt.catalogs.guards import GuardSettings, PriceRow, check_prices
from flopopt.catalogs.loader import load_catalog
from flopopt.catalogs.refresh_result import FeedStatus, RefreshResult
from flopopt.catalogs.sources.skypilot import source_date
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

REAL = REPO / "tests" / "fixtures" / "real-samples"
SHARED_REAL = REPO.parent / "shared" / "reference" / "real-samples"
TODAY = dt.date.today()
AZURE_PATH = "/api/retail/prices"
SAMPLE_NEXT_LINK = "http://127.0.0.1:8765/page2.json"
pytestmark = pytest.mark.usefixtures("bare_env")  # conftest.py: no FLOPOPT_* setting but the dirs


def sample(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def settings(server: HTTPServer, **changes: Any) -> fetch.RefreshSettings:
    base = fetch.RefreshSettings(
        urls={"azure": server.url_for(AZURE_PATH), "skypilot": server.url_for("/v7"),
              "vast": server.url_for("/vast")},
        skypilot_clouds=("aws", "lambda"),
        timeout_s=2.0,
        retries=0,
    )
    return fetch.RefreshSettings(**{**base.__dict__, **changes})


def serve_real(server: HTTPServer) -> None:
    for cloud in ("aws", "lambda"):
        server.expect_request(f"/v7/{cloud}/vms.csv").respond_with_data(
            sample(f"skypilot-v7-{cloud}-vms-excerpt.csv"), content_type="text/plain"
        )
    page1 = sample("azure-retail-prices-page1.json").replace(
        SAMPLE_NEXT_LINK, server.url_for("/page2.json")
    )
    server.expect_request(AZURE_PATH).respond_with_data(page1, content_type="application/json")
    server.expect_request("/page2.json").respond_with_data(
        sample("azure-retail-prices-page2.json"), content_type="application/json"
    )


def cached() -> dict[str, dict[str, str]]:
    with paths.refreshed_offers_path().open(newline="", encoding="utf-8") as handle:
        return {r["offer_id"]: r for r in csv.DictReader(handle)}


@pytest.fixture
def real_refresh(httpserver: HTTPServer) -> Iterator[RefreshResult]:
    serve_real(httpserver)
    yield rf.refresh(["skypilot", "azure"], settings=settings(httpserver), sleep=Sleeps())


# ---------------------------------------------------------------------------
# the samples are the real files


def test_the_fixtures_are_the_reference_samples_verbatim() -> None:
    for path in REAL.iterdir():
        shared = SHARED_REAL / path.name
        if shared.exists():  # outside the repository (e.g. CI) only the copy exists
            assert path.read_bytes() == shared.read_bytes(), path.name
    assert "001367d22a0033fac286a8c71aeac7109e431bcb" in sample("README.md")  # provenance kept


# ---------------------------------------------------------------------------
# real rows → offers, row by row

# offer_id → (gpu, GPUs per instance, kind, price per instance-hour) of every adopted row.
ADOPTED = {
    # AWS: one row per AZ → one offer per (instance, region); spot = the cheapest AZ.
    "aws-p3.2xlarge-ondemand": ("V100-16GB", 1, "on_demand", 3.06),  # GpuInfo says 16384 MiB
    "aws-p3.2xlarge-us-east-1-spot": ("V100-16GB", 1, "spot", 0.5197),
    "aws-p4de.24xlarge-spot": ("A100-80GB", 8, "spot", 5.8394),  # zones say A100 and A100-80GB
    "aws-p5.48xlarge-ap-south-1-ondemand": ("H100-SXM", 8, "on_demand", 117.984),
    "aws-p5.48xlarge-ca-central-1-ondemand": ("H100-SXM", 8, "on_demand", 113.068),
    "aws-p5.48xlarge-spot": ("H100-SXM", 8, "spot", 20.9934),
    "aws-p5e.48xlarge-ap-southeast-3-spot": ("H200", 8, "spot", 14.925),  # spot only
    "aws-p5en.48xlarge-ap-southeast-3-ondemand": ("H200", 8, "on_demand", 117.024),
    "aws-p5en.48xlarge-spot": ("H200", 8, "spot", 24.2902),
    # Lambda: gpu_8x_v100 carries 16 GB V100s.
    "lambda-gpu_8x_v100-ondemand": ("V100-16GB", 8, "on_demand", 4.4),
    "lambda-gpu_8x_a100-ondemand": ("A100-40GB", 8, "on_demand", 10.32),
    "lambda-gpu_4x_a100-us-east-1-ondemand": ("A100-40GB", 4, "on_demand", 5.16),
    "lambda-gpu_2x_a100-us-east-1-ondemand": ("A100-40GB", 2, "on_demand", 2.58),
    "lambda-gpu_1x_a100-ondemand": ("A100-40GB", 1, "on_demand", 1.29),
    "lambda-gpu_1x_a100_sxm4-us-east-1-ondemand": ("A100-40GB", 1, "on_demand", 1.29),
    "lambda-gpu_8x_a100_80gb_sxm4-ondemand": ("A100-80GB", 8, "on_demand", 14.32),
    "lambda-gpu_1x_h100_pcie-ondemand": ("H100-PCIe", 1, "on_demand", 2.49),
    "lambda-gpu_1x_h100_sxm5-ondemand": ("H100-SXM", 1, "on_demand", 3.29),
    "lambda-gpu_2x_h100_sxm5-ondemand": ("H100-SXM", 2, "on_demand", 6.38),
    "lambda-gpu_4x_h100_sxm5-ondemand": ("H100-SXM", 4, "on_demand", 12.36),
    "lambda-gpu_8x_h100_sxm5-ondemand": ("H100-SXM", 8, "on_demand", 23.92),
    "lambda-gpu_1x_gh200-ondemand": ("GH200", 1, "on_demand", 1.49),
    "lambda-gpu_1x_a10-ondemand": ("A10", 1, "on_demand", 0.75),
    "lambda-gpu_1x_a6000-ondemand": ("RTX-A6000", 1, "on_demand", 0.8),
    "lambda-gpu_2x_a6000-us-east-1-ondemand": ("RTX-A6000", 2, "on_demand", 1.6),
    "lambda-gpu_4x_a6000-us-east-1-ondemand": ("RTX-A6000", 4, "on_demand", 3.2),
    # Azure: Linux consumption, Spot, reservations (term total / 8,760 h or 26,280 h).
    "azure-nd96isr-h100-v5-ondemand": ("H100-SXM", 8, "on_demand", 98.32),
    "azure-standard_nd96isr_h100_v5-eastus-spot": ("H100-SXM", 8, "spot", 18.169536),
    "azure-standard_nd96isr_h100_v5-eastus-reserved-1y": ("H100-SXM", 8, "reserved", 60.9584),
    "azure-standard_nd96isr_h100_v5-eastus-reserved-3y": ("H100-SXM", 8, "reserved", 39.328),
    "azure-nc24ads-a100-v4-ondemand": ("A100-80GB", 1, "on_demand", 3.673),
    "azure-standard_nc24ads_a100_v4-eastus-spot": ("A100-80GB", 1, "spot", 0.7345),
    "azure-standard_nc24ads_a100_v4-westeurope-ondemand": ("A100-80GB", 1, "on_demand", 3.672),
    "azure-nc40ads-h100-v5-ondemand": ("H100-NVL", 1, "on_demand", 6.98),
    "azure-nd96isr-mi300x-v5-ondemand": ("MI300X", 8, "on_demand", 48.0),
}

# offer_id → the start of the one reason each held-back row carries.
HELD = {
    # The snapshot predates AWS's June-2025 cut: against the catalog's prices these are jumps.
    "aws-p5.48xlarge-ondemand": "price moved +79% against the previous $55.04/h",
    "aws-p5en.48xlarge-ondemand": "price moved +34% against the previous $63.30/h",
    "aws-p4de.24xlarge-ondemand": "price moved +49% against the previous $27.45/h",
    # Placeholders: spot at exactly 10% of on-demand, and spot equal to on-demand.
    "aws-p5.48xlarge-ap-south-1-spot": "spot is exactly 10% of on-demand $117.98",
    "aws-p5en.48xlarge-ap-southeast-3-spot": "spot is exactly 10% of on-demand $117.02",
    "aws-p5.48xlarge-ca-central-1-spot": "spot $113.07 is not below on-demand $113.07",
}


def test_real_rows_become_exactly_these_offers(real_refresh: RefreshResult) -> None:
    assert not real_refresh.failed and real_refresh.written
    rows = cached()
    got = {
        oid: (r["gpu"], int(r["gpus_per_instance"]), r["kind"], float(r["price_per_hour_usd"]))
        for oid, r in rows.items()
    }
    assert got.keys() == ADOPTED.keys()
    for oid, (gpu, count, kind, price) in ADOPTED.items():
        assert got[oid][:3] == (gpu, count, kind), oid
        assert got[oid][3] == pytest.approx(price, rel=1e-9), oid


def test_real_rows_held_back_with_their_reasons(real_refresh: RefreshResult) -> None:
    held = {h.offer_id: h for h in real_refresh.held}
    assert held.keys() == HELD.keys()
    for oid, reason in HELD.items():
        (only,) = held[oid].reasons
        assert only.startswith(reason), (oid, only)
        assert held[oid].source == "skypilot:aws"
    assert not set(held) & set(cached())  # never cached, so never planned on


def test_real_rows_skip_reasons_are_counted_by_name(real_refresh: RefreshResult) -> None:
    skipped = {o.name: dict(o.skipped) for o in real_refresh.outcomes}
    # CPU rows (a1, mac1 without a price); p5e zones without any price.
    assert skipped["skypilot:aws"] == {
        "no accelerator (CPU-only)": 2,
        "no price (not orderable)": 2,
        "empty Price (not orderable on demand)": 1,
    }
    # Quadro RTX 6000 is in no gpus.csv row: reported by its name, not dropped as CPU-only.
    assert skipped["skypilot:lambda"] == {
        "no accelerator (CPU-only)": 1,
        "unknown accelerator RTX6000": 1,
    }
    assert skipped["azure"] == {
        "Windows (licence included)": 4,
        "non-primary meter": 1,
        "not priced in USD": 1,
        "price type DevTestConsumption": 1,
    }
    (azure,) = [o for o in real_refresh.outcomes if o.name == "azure"]
    assert azure.pages == 2


def test_dates_come_from_the_source(real_refresh: RefreshResult) -> None:
    rows = cached()
    for oid, row in rows.items():
        assert row["fetched_at"] == TODAY.isoformat(), oid
        if oid.startswith("azure-"):
            # effectiveStartDate, not the day it was fetched
            assert row["as_of"] == "2024-03-01", oid
        assert row["price_quality"] == "primary"
    # The test server publishes no date for the CSV: the source says as_of is the fetch date.
    assert rows["lambda-gpu_1x_a10-ondemand"]["source"].endswith(
        "(no source date published; as_of = fetch date)"
    )


def test_solve_never_sees_held_rows_and_shows_both_dates(real_refresh: RefreshResult) -> None:
    catalog = load_catalog()
    offers = catalog.offers.set_index("offer_id")
    assert offers.at["aws-p5.48xlarge-ondemand", "price_per_hour_usd"] == 55.04  # bundled kept
    assert "aws-p5.48xlarge-ap-south-1-spot" not in offers.index
    azure = offers.loc["azure-nd96isr-h100-v5-ondemand"]
    assert (azure["as_of"], azure["fetched_at"]) == ("2024-03-01", TODAY.isoformat())


def test_accepting_changes_adopts_the_jumps_but_never_the_placeholders(httpserver: HTTPServer) -> None:
    serve_real(httpserver)
    result = rf.refresh(["skypilot", "azure"], settings=settings(httpserver), sleep=Sleeps(),
                        accept_changes=True)
    held = {h.offer_id for h in result.held}
    assert held == {k for k, v in HELD.items() if v.startswith("spot")}
    assert cached()["aws-p5.48xlarge-ondemand"]["price_per_hour_usd"] == "98.32"


def test_last_modified_is_the_files_date(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v7/lambda/vms.csv").respond_with_data(
        sample("skypilot-v7-lambda-vms-excerpt.csv"), content_type="text/plain",
        headers={"Last-Modified": "Wed, 04 Jun 2025 07:28:00 GMT"},
    )
    result = rf.refresh(["skypilot:lambda"], settings=settings(httpserver, skypilot_clouds=("lambda",)),
                        sleep=Sleeps())
    assert result.written
    row = cached()["lambda-gpu_8x_v100-ondemand"]
    assert (row["as_of"], row["fetched_at"]) == ("2025-06-04", TODAY.isoformat())
    assert "(Last-Modified 2025-06-04)" in row["source"]


class FakeFetcher:
    """Answers the GitHub commits API like api.github.com does (one commit, newest first)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, Any]] = []

    def get_json(self, url: str, params: Any = None) -> Any:
        self.asked.append((url, params))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_a_github_file_is_dated_by_its_last_commit() -> None:
    url = "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v7/aws/vms.csv"
    fetched = fetch.Fetched(url=url, status=200, headers={}, body=b"")
    sha = "001367d22a0033fac286a8c71aeac7109e431bcb"
    fake = FakeFetcher([{"sha": sha, "commit": {"committer": {"date": "2025-05-30T07:01:02Z"}}}])
    as_of, source = source_date(fake, fetched, url, TODAY)  # type: ignore[arg-type]
    assert as_of == dt.date(2025, 5, 30)
    assert source == (f"https://github.com/skypilot-org/skypilot-catalog/blob/{sha}/catalogs/v7/aws/vms.csv "
                      "(commit of 2025-05-30)")
    assert fake.asked == [("https://api.github.com/repos/skypilot-org/skypilot-catalog/commits",
                           {"path": "catalogs/v7/aws/vms.csv", "sha": "master", "per_page": "1"})]
    offline = FakeFetcher(fetch.FetchError("cannot connect"))
    as_of, source = source_date(offline, fetched, url, TODAY)  # type: ignore[arg-type]
    assert as_of == TODAY and source.endswith("(no source date published; as_of = fetch date)")


# ---------------------------------------------------------------------------
# hostile prices


def poisoned_aws(price: str) -> str:
    """The real AWS excerpt with every on-demand p3.2xlarge price replaced."""
    return sample("skypilot-v7-aws-vms-excerpt.csv").replace(",3.06,", f",{price},")


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        ("0.0001", "$0.0001/GPU-h is below the plausible band"),
        ("1000000000000", "/GPU-h is above the plausible band"),
    ],
)
def test_absurd_prices_are_held_back_and_never_planned(
    httpserver: HTTPServer, price: str, reason: str
) -> None:
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_data(poisoned_aws(price))
    result = rf.refresh(["skypilot:aws"], settings=settings(httpserver, skypilot_clouds=("aws",)),
                        sleep=Sleeps(), accept_changes=True)
    held = {h.offer_id: h for h in result.held}
    assert any(reason in r for r in held["aws-p3.2xlarge-ondemand"].reasons)
    assert load_catalog().offers.set_index("offer_id").at["aws-p3.2xlarge-ondemand",
                                                          "price_per_hour_usd"] == 3.06


def test_guards_judge_each_rule_alone() -> None:
    """The band comes from the reference offers of the same GPU; spot is judged against the
    on-demand price of the same instance and region; a change against the previous price."""
    def row(oid: str, kind: str, price: float, region: str = "r1", gpu: str = "H100-SXM") -> PriceRow:
        return PriceRow(oid, "p", kind, region, "box", gpu, 8, price)

    reference = [row("ref-a", "on_demand", 16.0), row("ref-b", "on_demand", 80.0)]  # $2–$10/GPU-h
    s = GuardSettings()
    rows = [
        row("cheap", "on_demand", 3.99),     # $0.50/GPU-h: under 2 / 4
        row("fine", "on_demand", 40.0),
        row("spot-ok", "spot", 12.0),
        row("spot-high", "spot", 40.0, region="r1"),   # = the on-demand price of the same box and region
        row("jump", "on_demand", 40.0, region="r2"),
    ]
    report = check_prices(rows, reference=reference, previous={"jump": 20.0}, settings=s)
    held = {h.offer_id: h.reasons for h in report.held}
    assert held["cheap"][0].startswith("$0.4988/GPU-h is below the plausible band $0.50–$40.00")
    assert "fine" not in held and "spot-ok" not in held
    assert held["spot-high"] == ("spot $40.00 is not below on-demand $40.00 for the same instance and region",)
    assert held["jump"][0].startswith("price moved +100% against the previous $20.00/h")
    accepted = check_prices(rows, reference=reference, previous={"jump": 20.0}, settings=s,
                            accept_changes=True)
    assert "jump" not in {h.offer_id for h in accepted.held}
    loose = GuardSettings(band_factor=10.0, spot_floor_fraction=0.5)
    report = check_prices(rows, reference=reference, previous={}, settings=loose)
    held = {h.offer_id: h.reasons for h in report.held}
    assert "cheap" not in held and held["spot-ok"][0].startswith("spot is 30.0% of on-demand")


def test_guard_settings_come_from_the_environment() -> None:
    env = {"FLOPOPT_GUARD_BAND_FACTOR": "3", "FLOPOPT_GUARD_MAX_CHANGE_PCT": "50",
           "FLOPOPT_GUARD_PLACEHOLDER_FRACTIONS": "0.1, 0.5", "FLOPOPT_GUARD_SPOT_FLOOR": "0.02",
           "FLOPOPT_GUARD_FLOOR_USD": "0.1", "FLOPOPT_GUARD_CEILING_USD": "99"}
    s = GuardSettings.from_env(env)
    assert (s.band_factor, s.max_change_pct, s.placeholder_fractions, s.spot_floor_fraction,
            s.floor_usd_per_gpu_hour, s.ceiling_usd_per_gpu_hour) == (3.0, 50.0, (0.1, 0.5), 0.02, 0.1, 99.0)
    with pytest.raises(fetch.RefreshError, match="FLOPOPT_GUARD_BAND_FACTOR='x' is not a number"):
        GuardSettings.from_env({"FLOPOPT_GUARD_BAND_FACTOR": "x"})


# ---------------------------------------------------------------------------
# a hostile server: bounded in time, size, waiting and where it may send us


def test_a_redirect_to_another_host_is_refused(httpserver: HTTPServer) -> None:
    elsewhere = httpserver.url_for("/v7/aws/vms.csv").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_response(
        Response(status=302, headers={"Location": elsewhere})
    )
    result = rf.refresh(["skypilot:aws"], settings=settings(httpserver, skypilot_clouds=("aws",)),
                        sleep=Sleeps())
    (failed,) = result.failed
    assert "refused a redirect to another host (127.0.0.1)" in (failed.message or "")
    assert not result.written


def test_a_redirect_on_the_same_host_is_followed_a_few_times(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_response(
        Response(status=301, headers={"Location": "/moved/aws.csv"})
    )
    httpserver.expect_request("/moved/aws.csv").respond_with_data(sample("skypilot-v7-aws-vms-excerpt.csv"))
    ok = rf.refresh(["skypilot:aws"], settings=settings(httpserver, skypilot_clouds=("aws",)), sleep=Sleeps())
    assert not ok.failed
    none_allowed = settings(httpserver, skypilot_clouds=("aws",), max_redirects=0)
    result = rf.refresh(["skypilot:aws"], settings=none_allowed, sleep=Sleeps(), dry_run=True)
    assert "more than 0 redirects" in (result.failed[0].message or "")


@pytest.mark.parametrize(
    ("old", "new", "refusal"),
    [
        ("https://a.example/x", "http://a.example/x", "refused a redirect from https to http"),
        ("https://a.example/x", "https://b.example/x", "refused a redirect to another host (b.example)"),
        ("http://a.example/x", "https://a.example/y", None),
        ("https://A.example/x", "https://a.example/y?q=1", None),
    ],
)
def test_redirect_rules(old: str, new: str, refusal: str | None) -> None:
    got = fetch.redirect_refusal(old, new)
    assert (got if refusal is None else (got or "")[: len(refusal)]) == refusal


def test_a_next_page_on_another_host_is_refused(httpserver: HTTPServer) -> None:
    page1 = sample("azure-retail-prices-page1.json")  # NextPageLink still points at 127.0.0.1:8765
    httpserver.expect_request(AZURE_PATH).respond_with_data(page1, content_type="application/json")
    result = rf.refresh(["azure"], settings=settings(httpserver), sleep=Sleeps())
    assert "NextPageLink refused a redirect to another host (127.0.0.1)" in (result.failed[0].message or "")


def drip(request: Request) -> Response:
    """One byte every 0.2 s, for ever (well, 60 s): a read timeout alone never fires."""
    def body() -> Iterator[bytes]:
        for _ in range(300):
            time.sleep(0.2)
            yield b"x"
    return Response(body(), content_type="text/plain")


@pytest.mark.slow
def test_a_slow_drip_is_cut_at_the_source_deadline(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_handler(drip)
    limited = settings(httpserver, skypilot_clouds=("aws",), timeout_s=3.0, source_deadline_s=1.0)
    start = time.monotonic()
    result = rf.refresh(["skypilot:aws"], settings=limited, sleep=Sleeps(), dry_run=True)
    elapsed = time.monotonic() - start
    assert "the source deadline (1 s, FLOPOPT_REFRESH_SOURCE_DEADLINE_S) passed" in (
        result.failed[0].message or "")
    assert elapsed < 3.0  # the deadline, plus at most one 0.2 s read


@pytest.mark.slow
def test_the_total_deadline_bounds_every_source(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_handler(drip)
    httpserver.expect_request("/v7/lambda/vms.csv").respond_with_handler(drip)
    limited = settings(httpserver, timeout_s=3.0, source_deadline_s=60.0, total_deadline_s=1.0)
    start = time.monotonic()
    result = rf.refresh(["skypilot"], settings=limited, sleep=Sleeps(), dry_run=True)
    assert time.monotonic() - start < 3.0
    assert [o.status for o in result.outcomes] == [FeedStatus.error] * 2
    assert all("total deadline" in (o.message or "") for o in result.outcomes)


def test_a_huge_response_is_not_read_whole(httpserver: HTTPServer) -> None:
    chunk = b"InstanceType," + b"x" * 65_536

    def endless(request: Request) -> Response:
        return Response((chunk for _ in range(10_000)), content_type="text/plain")  # 650 MB

    httpserver.expect_request("/v7/aws/vms.csv").respond_with_handler(endless)
    small = settings(httpserver, skypilot_clouds=("aws",), max_response_bytes=1024 * 1024)
    start = time.monotonic()
    result = rf.refresh(["skypilot:aws"], settings=small, sleep=Sleeps(), dry_run=True)
    assert "is larger than 1 MiB (FLOPOPT_REFRESH_MAX_RESPONSE_MB); not read" in (
        result.failed[0].message or "")
    assert time.monotonic() - start < 5.0


def test_a_declared_huge_length_is_refused_before_reading(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_data(
        "x" * 2048, headers={"Content-Length": "2048"})
    small = settings(httpserver, skypilot_clouds=("aws",), max_response_bytes=1024)
    result = rf.refresh(["skypilot:aws"], settings=small, sleep=Sleeps(), dry_run=True)
    assert "larger than 0.000976562 MiB" in (result.failed[0].message or "")


def test_retry_after_waiting_is_capped_in_total(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v7/aws/vms.csv").respond_with_response(
        Response("busy", status=429, headers={"Retry-After": "100"}))
    sleeps = Sleeps()
    capped = settings(httpserver, skypilot_clouds=("aws",), retries=5, max_retry_after_s=120.0,
                      max_retry_wait_s=150.0)
    result = rf.refresh(["skypilot:aws"], settings=capped, sleep=sleeps, dry_run=True)
    assert sleeps == [100.0]  # the second 100 s wait would pass 150 s in total
    assert "retrying would wait more than 150 s in total (FLOPOPT_REFRESH_MAX_RETRY_WAIT_S)" in (
        result.failed[0].message or "")


def test_bound_settings_come_from_the_environment() -> None:
    env = {"FLOPOPT_REFRESH_SOURCE_DEADLINE_S": "5", "FLOPOPT_REFRESH_TOTAL_DEADLINE_S": "20",
           "FLOPOPT_REFRESH_MAX_RESPONSE_MB": "2", "FLOPOPT_REFRESH_MAX_RETRY_WAIT_S": "7",
           "FLOPOPT_REFRESH_MAX_REDIRECTS": "1", "FLOPOPT_SKYPILOT_CLOUDS": "aws,nebius"}
    s = fetch.RefreshSettings.from_env(environ=env)
    assert (s.source_deadline_s, s.total_deadline_s, s.max_response_bytes, s.max_retry_wait_s,
            s.max_redirects, s.skypilot_clouds) == (5.0, 20.0, 2 * 1024 * 1024, 7.0, 1, ("aws", "nebius"))
    with pytest.raises(fetch.RefreshError, match="'awz' is not a SkyPilot v7 cloud; did you mean 'aws'"):
        fetch.RefreshSettings.from_env(environ={"FLOPOPT_SKYPILOT_CLOUDS": "awz"})


def test_cli_clouds_option_reads_any_v7_cloud_in_the_same_layout(httpserver: HTTPServer) -> None:
    from flopopt.cli.main import app
    from typer.testing import CliRunner

    # nebius publishes the same columns; the Lambda rows stand in for its file.
    httpserver.expect_request("/v7/nebius/vms.csv").respond_with_data(
        sample("skypilot-v7-lambda-vms-excerpt.csv"))
    runner = CliRunner()
    out = runner.invoke(app, ["catalog", "refresh", "--source", "skypilot", "--clouds", "nebius",
                              "--url", f"skypilot={httpserver.url_for('/v7')}", "--dry-run", "-f", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [s["name"] for s in data["sources"]] == ["skypilot:nebius"]
    assert data["sources"][0]["offers"] == len([k for k in ADOPTED if k.startswith("lambda-")])
    bad = runner.invoke(app, ["catalog", "refresh", "--clouds", "lamda"])
    assert bad.exit_code == 2 and "did you mean 'lambda'" in bad.stderr
