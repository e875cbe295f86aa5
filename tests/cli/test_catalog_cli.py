"""``flopopt catalog list|show|validate|import`` through typer's CliRunner.

Expected values are computed from the bundled CSVs with the csv module, not with
the loader under test.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from flopopt.catalogs.paths import BUNDLED_DIR
from flopopt.cli.catalog_cmd import OfferKind
from flopopt.cli.main import app
from flopopt.optimizer.job import OFFER_KINDS
from typer.testing import CliRunner, Result

runner = CliRunner()

OFFERS_HEADER = (
    "offer_id,provider,kind,region,instance_type,gpu,gpus_per_instance,price_per_hour_usd,"
    "billing_increment_hours,min_hours,max_instances,interconnect,interruption_overhead,capex_usd,"
    "amortization_years,utilization,power_kw,electricity_usd_per_kwh,sunk,source,as_of"
)
MYCO_H100 = ("myco-h100-8x,myco,on_demand,eu-west,h.8x,H100-SXM,8,16.00,0.0166667,1,,nvlink,,,,,,,,"
             "https://example.com/myco-quote-2026-10,2026-10-01")
MYCO_A100 = ("myco-a100-1x,myco,spot,eu-west,a.1x,A100-80GB,1,0.90,0.0166667,1,,pcie,0.1,,,,,,,"
             "https://example.com/myco-quote-2026-10,2026-10-01")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user catalog folder (``catalog import`` target) and refresh cache live in tmp_path."""
    user = tmp_path / "user"
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(user))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))
    return user


@pytest.fixture(scope="module")
def bundled_offers() -> list[dict[str, str]]:
    with (BUNDLED_DIR / "offers.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def invoke(*args: str) -> Result:
    # Wide enough that no column is hidden and no line wraps (tests/test_contract.py checks 80).
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def listed(*args: str) -> list[dict[str, Any]]:
    """``catalog list ... --format json``; stdout must be pure JSON (warnings go to stderr)."""
    result = invoke("catalog", "list", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    offers: list[dict[str, Any]] = json.loads(result.stdout)["offers"]
    return offers


def write(path: Path, *rows: str, header: str = OFFERS_HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` with its bytes (None: the folder does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# catalog list


def test_list_h100_sorted_by_price_per_gpu_hour(bundled_offers: list[dict[str, str]]) -> None:
    offers = listed("--gpu", "H100", "--sort", "price_per_gpu_hour")
    expected_ids = {r["offer_id"] for r in bundled_offers if r["gpu"].lower().startswith("h100")}
    assert len(expected_ids) >= 3
    assert {o["offer_id"] for o in offers} == expected_ids
    assert all(o["gpu"].startswith("H100") for o in offers)
    per_gpu = [o["effective_cost_per_gpu_hour_usd"] for o in offers]
    assert per_gpu == sorted(per_gpu)
    by_id = {r["offer_id"]: r for r in bundled_offers}
    for o in offers:
        # JSON floats carry 6 significant digits (docs/output-contract.md)
        assert o["effective_cost_per_gpu_hour_usd"] == pytest.approx(
            o["effective_cost_per_instance_hour_usd"] / o["gpus_per_instance"], rel=1e-5)
        row = by_id[o["offer_id"]]
        assert o["gpus_per_instance"] == int(row["gpus_per_instance"])
        assert isinstance(o["gpus_per_instance"], int)  # 8, not 8.0, in the JSON
        assert o["as_of"] == row["as_of"]
        if row["kind"] not in ("owned", "edge"):  # rentals cost exactly their price
            assert o["effective_cost_per_instance_hour_usd"] == pytest.approx(float(row["price_per_hour_usd"]),
                                                                               rel=1e-5)
            assert o["list_price_per_instance_hour_usd"] == pytest.approx(float(row["price_per_hour_usd"]))


def test_list_table_is_readable() -> None:
    result = invoke("catalog", "list", "--gpu", "H100", "--sort", "price_per_gpu_hour")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "provider" in line)
    for title in ("provider", "kind", "region", "GPU", "GPUs/inst.", "$/instance-h", "$/GPU-h", "as of"):
        assert title in header
    # data rows, in the same order as the JSON, with the prices formatted as money
    cells = [[c.strip() for c in line.split("│")] for line in lines if "│" in line]
    rows = [c[1:] for c in cells if c[1]]  # skip lines that only continue a folded cell
    offers = listed("--gpu", "H100", "--sort", "price_per_gpu_hour")
    assert rows == [
        [o["provider"], o["kind"], o["region"] or "—", o["gpu"], str(o["gpus_per_instance"]),
         f"${o['effective_cost_per_instance_hour_usd']:,.2f}", f"${o['effective_cost_per_gpu_hour_usd']:,.2f}",
         o["as_of"] + (" (est.)" if o["price_quality"] == "estimate" else "")]
        for o in offers
    ]
    assert f"{len(offers)} offers" in result.stdout


def test_list_filters_by_provider(bundled_offers: list[dict[str, str]]) -> None:
    offers = listed("--provider", "aws")
    assert offers and {o["provider"] for o in offers} == {"aws"}
    assert len(offers) == sum(r["provider"] == "aws" for r in bundled_offers)
    assert listed("--provider", "AWS") == offers  # case-insensitive


def test_list_filters_by_kind(bundled_offers: list[dict[str, str]]) -> None:
    spot = listed("--kind", "spot")
    assert spot and {o["kind"] for o in spot} == {"spot"}
    assert len(spot) == sum(r["kind"] == "spot" for r in bundled_offers)
    both = listed("--gpu", "H100", "--kind", "spot")
    assert both and all(o["kind"] == "spot" and o["gpu"].startswith("H100") for o in both)
    assert {o["offer_id"] for o in both} < {o["offer_id"] for o in spot}


def test_list_unknown_kind_is_an_error_not_an_empty_table() -> None:
    result = invoke("catalog", "list", "--kind", "spto")
    assert result.exit_code == 2
    assert "'spto' is not one of" in result.output
    assert "Traceback" not in result.output


def test_offer_kind_choices_match_the_schema() -> None:
    assert tuple(k.value for k in OfferKind) == OFFER_KINDS


# ---------------------------------------------------------------------------
# catalog show


def test_show_fields_and_source(bundled_offers: list[dict[str, str]]) -> None:
    row = next(r for r in bundled_offers if r["offer_id"] == "aws-p5.48xlarge-ondemand")
    result = invoke("catalog", "show", row["offer_id"])
    assert result.exit_code == 0, result.output
    fields = {line.split("│")[0].strip() for line in result.stdout.splitlines() if "│" in line}
    for name in ("offer_id", "provider", "kind", "gpu", "gpus_per_instance", "price_per_hour_usd",
                 "interconnect", "source", "as_of", "gpu.memory_gb"):
        assert name in fields
    assert row["as_of"] in result.stdout

    data = json.loads(invoke("catalog", "show", row["offer_id"], "--format", "json").stdout)
    assert data["offer"]["source"] == row["source"]
    assert data["offer"]["price_per_hour_usd"] == float(row["price_per_hour_usd"])
    assert data["offer"]["as_of"] == row["as_of"]
    assert data["gpu"]["gpu"] == row["gpu"]


def test_show_unknown_id_suggests_the_closest() -> None:
    result = invoke("catalog", "show", "aws-p5.48xlarge-ondemnd")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "error: " in result.output
    assert "did you mean" in result.output
    assert "aws-p5.48xlarge-ondemand" in result.output


# ---------------------------------------------------------------------------
# catalog validate


def test_validate_bundled_catalog() -> None:
    result = invoke("catalog", "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")
    assert "(bundled)" in result.stdout


# ---------------------------------------------------------------------------
# catalog import


def test_import_lands_in_user_dir_and_is_listed(tmp_path: Path, isolated_dirs: Path) -> None:
    result = invoke("catalog", "import", str(write(tmp_path / "quotes.csv", MYCO_H100)))
    assert result.exit_code == 0, result.output
    target = isolated_dirs / "offers.csv"
    assert f"imported 1 row(s) into {target}" in result.stdout
    # no temp files left; the lock file stays (an empty file: removing it would race a waiting run)
    assert sorted(p.name for p in isolated_dirs.iterdir()) == [".flopopt.lock", "offers.csv"]
    assert "myco-h100-8x" in target.read_text(encoding="utf-8")

    offers = listed("--provider", "myco")
    assert [(o["offer_id"], o["effective_cost_per_gpu_hour_usd"]) for o in offers] == [("myco-h100-8x", 2.0)]
    table = invoke("catalog", "list", "--gpu", "H100")
    assert "myco" in table.stdout


@pytest.mark.slow
def test_second_import_merges(tmp_path: Path, isolated_dirs: Path) -> None:
    assert invoke("catalog", "import", str(write(tmp_path / "a.csv", MYCO_H100))).exit_code == 0
    result = invoke("catalog", "import", str(write(tmp_path / "b.csv", MYCO_A100)))
    assert result.exit_code == 0, result.output
    assert "(2 rows in your offers.csv)" in result.stdout
    assert {o["offer_id"] for o in listed("--provider", "myco")} == {"myco-h100-8x", "myco-a100-1x"}

    # a re-import replaces the row with the same offer_id instead of adding a second one
    repriced = MYCO_H100.replace(",16.00,", ",12.00,")
    assert invoke("catalog", "import", str(write(tmp_path / "c.csv", repriced))).exit_code == 0
    offers = {o["offer_id"]: o for o in listed("--provider", "myco")}
    assert len(offers) == 2
    assert offers["myco-h100-8x"]["effective_cost_per_instance_hour_usd"] == 12.0


@pytest.mark.parametrize(
    ("row", "column", "says"),
    [
        # fails the file's own checks
        (MYCO_A100.replace(",0.90,", ",-0.90,"), "price_per_hour_usd", "must be ≥ 0"),
        # passes them, fails only against the catalog it joins
        (MYCO_A100.replace(",A100-80GB,", ",A100-80G,"), "gpu", "did you mean 'A100-80GB'?"),
    ],
    ids=["negative-price", "unknown-gpu"],
)
def test_bad_import_changes_nothing(
    tmp_path: Path, isolated_dirs: Path, row: str, column: str, says: str
) -> None:
    assert invoke("catalog", "import", str(write(tmp_path / "good.csv", MYCO_H100))).exit_code == 0
    before = snapshot(isolated_dirs)
    assert before is not None

    bad = write(tmp_path / "bad.csv", row)
    result = invoke("catalog", "import", str(bad))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    # the user's own file and line, not the scratch copy it was checked in
    assert f"error: {bad}: row 2: {column}: " in result.output
    assert says in result.output
    assert snapshot(isolated_dirs) == before
    assert {o["offer_id"] for o in listed("--provider", "myco")} == {"myco-h100-8x"}


def test_bad_first_import_creates_nothing(tmp_path: Path, isolated_dirs: Path) -> None:
    bad = write(tmp_path / "bad.csv", MYCO_H100.replace(",nvlink,", ",nvlink5,"))
    result = invoke("catalog", "import", str(bad))
    assert result.exit_code == 2
    assert f"error: {bad}: row 2: interconnect: " in result.output
    assert "Traceback" not in result.output
    assert snapshot(isolated_dirs) is None


def test_import_attenuation_file_is_recognised(tmp_path: Path, isolated_dirs: Path) -> None:
    """Its header has a gpu column too; it must not be taken for gpus.csv."""
    path = write(tmp_path / "our-measurements.csv", "cloud,any,,0.35,0.45,0.2,network,our runs",
                 header="scenario,workload,gpu,low,high,uncertainty,bottleneck,source")
    result = invoke("catalog", "import", str(path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in isolated_dirs.iterdir()) == [".flopopt.lock", "attenuation.csv"]


def test_import_names_every_defect_of_a_row(tmp_path: Path, isolated_dirs: Path) -> None:
    """A negative price and an unknown GPU on one row: both are reported, not only the first."""
    bad = MYCO_H100.replace(",H100-SXM,", ",H100-TYPO,").replace(",16.00,", ",-5,")
    result = invoke("catalog", "import", str(write(tmp_path / "bad.csv", bad)))
    assert result.exit_code == 2
    assert "row 2: price_per_hour_usd: must be ≥ 0 (got -5)" in result.stderr
    assert "row 2: gpu: unknown gpu 'H100-TYPO'" in result.stderr
    assert not (isolated_dirs / "offers.csv").exists()


def test_import_holds_back_guarded_rows_and_imports_the_rest(tmp_path: Path, isolated_dirs: Path) -> None:
    poisoned = MYCO_H100.replace("myco-h100-8x", "myco-h100-poison").replace(",16.00,", ",0.0008,")
    result = invoke("catalog", "import", str(write(tmp_path / "mixed.csv", MYCO_H100 + "\n" + poisoned)))
    assert result.exit_code == 1, result.output
    assert "imported 1 row(s)" in result.stdout and "Held back by the price guards" in result.stdout
    assert "$0.0001/GPU-h is below" in result.stdout
    assert "1 row(s) held back" in result.stderr
    assert {o["offer_id"] for o in listed("--provider", "myco")} == {"myco-h100-8x"}
    as_json = invoke("catalog", "import", str(write(tmp_path / "p.csv", poisoned)), "--format", "json")
    assert as_json.exit_code == 1
    import json

    data = json.loads(as_json.stdout)
    assert data["rows_imported"] == 0 and [h["offer_id"] for h in data["held_back"]] == ["myco-h100-poison"]
    assert data["status"] == "partial"   # docs/schema/catalog-import.json


@pytest.mark.slow
def test_import_change_guard_and_accept_changes(tmp_path: Path, isolated_dirs: Path) -> None:
    assert invoke("catalog", "import", str(write(tmp_path / "a.csv", MYCO_H100))).exit_code == 0
    doubled = MYCO_H100.replace(",16.00,", ",32.00,")
    held = invoke("catalog", "import", str(write(tmp_path / "b.csv", doubled)))
    assert held.exit_code == 1 and "price moved +100%" in held.stdout and "imported 0 row(s)" in held.stdout
    accepted = invoke("catalog", "import", str(write(tmp_path / "c.csv", doubled)), "--accept-changes")
    assert accepted.exit_code == 0, accepted.output
    assert [o["effective_cost_per_instance_hour_usd"] for o in listed("--provider", "myco")] == [32.0]
