"""catalogs/loader.py: validation of broken catalogs, layering, hourly cost, staleness.

Every broken catalog is the tiny valid catalog below with exactly one defect; the
defect must be reported by ``load_catalog`` *and* by ``flopopt catalog validate DIR``
with the file, the row (CSV line, header = 1) and the column, exit code 2 and no
traceback. ``tests/catalogs/test_catalog_data.py`` checks the bundled CSV contents; this file
checks the machinery.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from flopopt.catalogs import loader
from flopopt.catalogs.loader import Catalog, hourly_cost_usd, load_catalog, price_per_gpu_hour_usd
from flopopt.cli.main import app
from flopopt.optimizer.errors import CatalogError
from typer.testing import CliRunner

# ---------------------------------------------------------------------------
# a tiny valid catalog, as CSV text; GPU names are made up so that they cannot
# collide with the bundled ones

GPUS_CSV = """\
gpu,vendor,memory_gb,mem_bandwidth_gbs,tdp_w,peak_tflops_fp64,peak_tflops_fp32,peak_tflops_tf32,peak_tflops_bf16,peak_tflops_fp16,peak_tflops_fp8,peak_tflops_int8,source,as_of
ZX100-SXM,nvidia,80,3350,700,,67,,989,989,1979,,https://example.com/zx100-datasheet,2025-01-01
ZX100-PCIe,nvidia,80,2000,350,,51,,756,756,1513,,https://example.com/zx100-datasheet,2025-01-01
"""

# line 2: on-demand 8x, line 3: spot 8x, line 4: on-demand 1x, line 5: owned, line 6: owned, sunk
OFFERS_CSV = """\
offer_id,provider,kind,region,instance_type,gpu,gpus_per_instance,price_per_hour_usd,billing_increment_hours,min_hours,max_instances,interconnect,interruption_overhead,capex_usd,amortization_years,utilization,power_kw,electricity_usd_per_kwh,sunk,source,as_of
t-zx-sxm-8x-ondemand,testcloud,on_demand,us-east-1,zx.8x,ZX100-SXM,8,20.00,0.000277778,0,,nvlink,,,,,,,,https://example.com/prices,2025-02-01
t-zx-sxm-8x-spot,testcloud,spot,us-east-1,zx.8x,ZX100-SXM,8,8.00,0.000277778,0,,nvlink,0.1,,,,,,,https://example.com/prices,2025-02-01
t-zx-pcie-1x-ondemand,testcloud,on_demand,us-east-1,zx.1x,ZX100-PCIe,1,2.50,0.000277778,0,,pcie,,,,,,,,https://example.com/prices,2025-02-01
t-owned-zx-8x,owned,owned,on-prem,zx server,ZX100-SXM,8,0,0,0,1,nvlink,,87600,4,0.5,2.0,0.15,false,https://example.com/invoice,2025-02-01
t-owned-zx-8x-sunk,owned,owned,on-prem,zx server,ZX100-SXM,8,0,0,0,1,nvlink,,87600,4,0.5,2.0,0.15,true,https://example.com/invoice,2025-02-01
"""

# lines 2-5: lab, cloud, edge, cluster
ATTENUATION_CSV = """\
scenario,workload,gpu,low,high,uncertainty,bottleneck,source
lab,any,,0.7,0.8,0.1,memory bandwidth,test fixture
cloud,any,,0.3,0.5,0.2,network,test fixture
edge,any,,0.1,0.3,0.3,power,test fixture
cluster,any,,0.2,0.4,0.25,communication,test fixture
"""

MODELS_CSV = """\
name,kind,params,active_params,layers,d_model,n_heads,seq_len,flops_per_sample,source
zx-test-1b,transformer,1e9,,16,2048,16,2048,,https://example.com/model-card
"""

BASE = {"gpus.csv": GPUS_CSV, "offers.csv": OFFERS_CSV, "attenuation.csv": ATTENUATION_CSV,
        "models.csv": MODELS_CSV}

Table = list[list[str]]  # header row first, so table[line - 1] is CSV line ``line``


def parse(text: str) -> Table:
    return [row for row in csv.reader(io.StringIO(text))]


def unparse(table: Table) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue()


def write_catalog(directory: Path, tables: dict[str, Table] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tables = tables if tables is not None else {name: parse(text) for name, text in BASE.items()}
    for name, table in tables.items():
        (directory / name).write_text(unparse(table), encoding="utf-8")
    return directory


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's own user catalog or refresh cache."""
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))


runner = CliRunner()


def validate_cli(directory: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["catalog", "validate", str(directory)])
    return result.exit_code, result.output


# ---------------------------------------------------------------------------
# the valid base


def test_tiny_base_catalog_is_valid(tmp_path: Path) -> None:
    directory = write_catalog(tmp_path / "cat")
    cat = load_catalog(directory)
    assert {"ZX100-SXM", "ZX100-PCIe"} <= set(cat.gpus["gpu"])
    assert {"t-zx-sxm-8x-ondemand", "t-owned-zx-8x-sunk"} <= set(cat.offers["offer_id"])
    code, output = validate_cli(directory)
    assert code == 0, output
    assert output.startswith("ok: ")


# ---------------------------------------------------------------------------
# broken catalogs: one defect each


def set_cell(file: str, line: int, column: str, value: str) -> Callable[[dict[str, Table]], None]:
    def edit(tables: dict[str, Table]) -> None:
        table = tables[file]
        table[line - 1][table[0].index(column)] = value
    return edit


def rename_column(file: str, old: str, new: str) -> Callable[[dict[str, Table]], None]:
    def edit(tables: dict[str, Table]) -> None:
        header = tables[file][0]
        header[header.index(old)] = new
    return edit


def drop_column(file: str, column: str) -> Callable[[dict[str, Table]], None]:
    def edit(tables: dict[str, Table]) -> None:
        index = tables[file][0].index(column)
        for row in tables[file]:
            del row[index]
    return edit


def drop_line(file: str, line: int) -> Callable[[dict[str, Table]], None]:
    def edit(tables: dict[str, Table]) -> None:
        del tables[file][line - 1]
    return edit


@dataclass(frozen=True)
class Defect:
    id: str
    edit: Callable[[dict[str, Table]], None]
    file: str
    row: int | None             # CSV line (header = 1); None when the defect has no line
    column: str | None          # None when the defect has no column (an unreadable file)
    says: str                   # a fragment of the rule / fix hint
    as_bundled: bool = False    # the broken folder plays the bundled catalog


DEFECTS = [
    Defect("unknown-gpu", set_cell("offers.csv", 3, "gpu", "ZX100-SXN"),
           "offers.csv", 3, "gpu", "did you mean 'ZX100-SXM'?"),
    Defect("duplicate-offer-id", set_cell("offers.csv", 4, "offer_id", "t-zx-sxm-8x-spot"),
           "offers.csv", 4, "offer_id", "duplicate id 't-zx-sxm-8x-spot'"),
    Defect("negative-price", set_cell("offers.csv", 3, "price_per_hour_usd", "-8.00"),
           "offers.csv", 3, "price_per_hour_usd", "must be ≥ 0"),
    Defect("zero-price-on-demand", set_cell("offers.csv", 2, "price_per_hour_usd", "0"),
           "offers.csv", 2, "price_per_hour_usd", "must be > 0 for a on_demand offer"),
    Defect("missing-source", set_cell("offers.csv", 4, "source", ""),
           "offers.csv", 4, "source", "empty; a value is required"),
    Defect("empty-as-of", set_cell("offers.csv", 2, "as_of", ""),
           "offers.csv", 2, "as_of", "empty; a value is required"),
    Defect("non-numeric-price", set_cell("offers.csv", 4, "price_per_hour_usd", "abc"),
           "offers.csv", 4, "price_per_hour_usd", "'abc' is not a number"),
    Defect("unknown-kind", set_cell("offers.csv", 2, "kind", "on-demand"),
           "offers.csv", 2, "kind", "'on-demand' is not one of on_demand, spot"),
    Defect("unknown-interconnect", set_cell("offers.csv", 4, "interconnect", "nvlink4"),
           "offers.csv", 4, "interconnect", "'nvlink4' is not one of"),
    Defect("owned-without-capex", set_cell("offers.csv", 5, "capex_usd", ""),
           "offers.csv", 5, "capex_usd", "required for owned hardware"),
    Defect("owned-without-amortization", set_cell("offers.csv", 6, "amortization_years", ""),
           "offers.csv", 6, "amortization_years", "required for owned hardware"),
    Defect("future-date", set_cell("offers.csv", 3, "as_of", "2999-01-01"),
           "offers.csv", 3, "as_of", "2999-01-01 is in the future"),
    Defect("malformed-date", set_cell("gpus.csv", 3, "as_of", "01/02/2025"),
           "gpus.csv", 3, "as_of", "'01/02/2025' is not a date YYYY-MM-DD"),
    Defect("fractional-gpus-per-instance", set_cell("offers.csv", 4, "gpus_per_instance", "1.5"),
           "offers.csv", 4, "gpus_per_instance", "must be a whole number (got 1.5)"),
    Defect("utilization-above-one", set_cell("offers.csv", 5, "utilization", "1.7"),
           "offers.csv", 5, "utilization", "must be ≤ 1 (got 1.7)"),
    Defect("attenuation-low-above-high", set_cell("attenuation.csv", 3, "low", "0.6"),
           "attenuation.csv", 3, "low", "low 0.6 is above high 0.5"),
    # Layers override rows by id, so an override folder may leave out the (edge, any)
    # row and inherit the bundled one (see test_partial_attenuation_inherits_defaults);
    # the defect is real only in the bottom layer, so this folder plays the bundled one.
    Defect("attenuation-missing-scenario-default", drop_line("attenuation.csv", 4),
           "attenuation.csv", None, "scenario", "no (scenario, any) row for edge", as_bundled=True),
    Defect("misspelt-column", rename_column("offers.csv", "interruption_overhead", "interuption_overhead"),
           "offers.csv", 1, "interuption_overhead", "did you mean 'interruption_overhead'?"),
    Defect("missing-required-column", drop_column("offers.csv", "interconnect"),
           "offers.csv", 1, "interconnect", "required column is missing"),
    # every as_of empty: pandas gives a datetime64 column that once crashed the future check
    Defect("offers-without-as-of-column", drop_column("offers.csv", "as_of"),
           "offers.csv", 1, "as_of", "required column is missing"),
    Defect("gpu-memory-zero", set_cell("gpus.csv", 2, "memory_gb", "0"),
           "gpus.csv", 2, "memory_gb", "must be > 0 (got 0)"),
    Defect("model-unknown-kind", set_cell("models.csv", 2, "kind", "llm"),
           "models.csv", 2, "kind", "'llm' is not one of transformer, cnn"),
]

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\xff\xfe\xfd" * 8


def build_broken(tmp_path: Path, defect: Defect, monkeypatch: pytest.MonkeyPatch) -> Path:
    tables = {name: parse(text) for name, text in BASE.items()}
    defect.edit(tables)
    directory = write_catalog(tmp_path / "broken", tables)
    if defect.as_bundled:
        monkeypatch.setattr(loader, "BUNDLED_DIR", directory)
    return directory


def location(directory: Path, defect: Defect) -> str:
    """The prefix every problem line starts with: ``FILE: row N: COLUMN:``."""
    where = str(directory / defect.file)
    if defect.row is not None:
        where += f": row {defect.row}"
    if defect.column is not None:
        where += f": {defect.column}"
    return where + ":"


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.id for d in DEFECTS])
def test_broken_catalog_names_file_row_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defect: Defect
) -> None:
    directory = build_broken(tmp_path, defect, monkeypatch)
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    message = str(info.value)
    wanted = location(directory, defect)
    lines = [line for line in message.splitlines() if line.startswith(wanted)]
    assert lines, f"no problem at {wanted!r} in:\n{message}"
    assert any(defect.says in line for line in lines), message
    # one defect, one complaint: nothing else in the catalog is blamed
    assert all(p.file == str(directory / defect.file) for p in info.value.problems), message
    assert len(info.value.problems) == 1, message

    code, output = validate_cli(directory)
    assert code == 2, output
    assert "Traceback" not in output
    assert f"error: {wanted}" in output
    assert defect.says in output


def test_binary_file_is_one_problem_not_a_traceback(tmp_path: Path) -> None:
    directory = write_catalog(tmp_path / "broken")
    (directory / "offers.csv").write_bytes(BINARY)
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    assert [p.file for p in info.value.problems] == [str(directory / "offers.csv")]
    assert "not a readable CSV file" in str(info.value)

    code, output = validate_cli(directory)
    assert code == 2, output
    assert "Traceback" not in output
    assert f"error: {directory / 'offers.csv'}: " in output
    assert "not a readable CSV file" in output


def test_three_defects_are_all_reported(tmp_path: Path) -> None:
    tables = {name: parse(text) for name, text in BASE.items()}
    set_cell("offers.csv", 2, "gpu", "ZX100-SXN")(tables)
    set_cell("offers.csv", 4, "interconnect", "nvlink4")(tables)
    set_cell("gpus.csv", 3, "memory_gb", "-80")(tables)
    directory = write_catalog(tmp_path / "broken", tables)
    expected = [
        f"{directory / 'offers.csv'}: row 2: gpu:",
        f"{directory / 'offers.csv'}: row 4: interconnect:",
        f"{directory / 'gpus.csv'}: row 3: memory_gb:",
    ]
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    assert len(info.value.problems) == 3, str(info.value)
    for where in expected:
        assert where in str(info.value)

    code, output = validate_cli(directory)
    assert code == 2
    assert "Traceback" not in output
    for where in expected:
        assert f"error: {where}" in output


def test_row_is_the_line_in_the_file_despite_blank_lines_and_multiline_cells(tmp_path: Path) -> None:
    """pandas skips blank lines and joins quoted multi-line cells; the row must still be the line."""
    directory = write_catalog(tmp_path / "broken")
    lines = OFFERS_CSV.splitlines()
    # line 2 blank; the old line 2 now starts on line 3 and its quoted source spans lines 3-4
    first = lines[1].replace("https://example.com/prices", '"https://example.com/prices\n(page 2)"')
    bad = lines[3].replace(",pcie,", ",pcie-x,")  # old line 4, now on line 7
    text = "\n".join([lines[0], "", first, lines[2], "   ", bad, *lines[4:]]) + "\n"
    (directory / "offers.csv").write_text(text, encoding="utf-8")
    assert text.splitlines()[6].startswith("t-zx-pcie-1x-ondemand,")
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    assert [(p.row, p.field) for p in info.value.problems] == [(7, "interconnect")], str(info.value)


def test_partial_attenuation_inherits_defaults(tmp_path: Path) -> None:
    """An override folder may hold only the rows it changes; the rest come from below."""
    directory = tmp_path / "cat"
    directory.mkdir()
    (directory / "attenuation.csv").write_text(
        "scenario,workload,gpu,low,high,uncertainty,bottleneck,source\n"
        "cloud,any,,0.35,0.45,0.2,network,our own measurements\n", encoding="utf-8")
    cat = load_catalog(directory)
    defaults = cat.attenuation[cat.attenuation["workload"] == "any"].set_index("scenario")
    assert set(defaults.index) >= {"lab", "cloud", "edge", "cluster"}
    assert defaults.at["cloud", "low"] == 0.35


def test_missing_catalog_folder(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog folder not found"):
        load_catalog(tmp_path / "nope")
    code, output = validate_cli(tmp_path / "nope")
    assert code == 2
    assert "Traceback" not in output


# ---------------------------------------------------------------------------
# layering: bundled < user dir < --catalog


BUNDLED_ID = "aws-p5.48xlarge-ondemand"


def override_offer(directory: Path, price: str) -> Path:
    """An offers.csv holding one row: the bundled BUNDLED_ID at another price."""
    with (loader.BUNDLED_DIR / "offers.csv").open(encoding="utf-8", newline="") as handle:
        bundled = {row["offer_id"]: row for row in csv.DictReader(handle)}
    row = dict(bundled[BUNDLED_ID], price_per_hour_usd=price)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "offers.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row), lineterminator="\n")
        writer.writeheader()
        writer.writerow(row)
    return directory


def test_bundled_offer_is_there() -> None:
    cat = load_catalog()
    assert cat.layers == ("bundled",)
    assert cat.offer(BUNDLED_ID)["price_per_hour_usd"] > 1.0


def test_catalog_dir_overrides_bundled(tmp_path: Path) -> None:
    directory = override_offer(tmp_path / "cat", "1.23")
    cat = load_catalog(directory)
    offer = cat.offer(BUNDLED_ID)
    assert offer["price_per_hour_usd"] == 1.23
    assert offer["origin_file"] == str(directory / "offers.csv")
    assert (cat.offers["offer_id"] == BUNDLED_ID).sum() == 1
    assert cat.layers == ("bundled", str(directory))
    # the rest of the bundled catalog is still there
    assert len(cat.offers) == len(load_catalog().offers)


def test_user_dir_overrides_bundled(tmp_path: Path) -> None:
    user = override_offer(tmp_path / "user", "2.34")
    cat = load_catalog()
    assert cat.offer(BUNDLED_ID)["price_per_hour_usd"] == 2.34
    assert cat.layers == ("bundled", f"user {user}")
    assert load_catalog(use_user_dir=False).offer(BUNDLED_ID)["price_per_hour_usd"] != 2.34


def test_catalog_dir_overrides_user_dir(tmp_path: Path) -> None:
    user = override_offer(tmp_path / "user", "2.34")
    directory = override_offer(tmp_path / "cat", "1.23")
    cat = load_catalog(directory)
    assert cat.offer(BUNDLED_ID)["price_per_hour_usd"] == 1.23
    assert (cat.offers["offer_id"] == BUNDLED_ID).sum() == 1
    assert cat.layers == ("bundled", f"user {user}", str(directory))

    result = runner.invoke(app, ["catalog", "show", BUNDLED_ID, "--catalog", str(directory),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"price_per_hour_usd": 1.23' in result.stdout


# ---------------------------------------------------------------------------
# hourly cost


def test_hourly_cost_every_kind(tmp_path: Path) -> None:
    """Hand-worked from OFFERS_CSV:

    rental on-demand 8x:  $20.00 / instance-h          → 20.00 / 8  = $2.50 / GPU-h
    rental spot 8x:       $8.00 / instance-h           →  8.00 / 8  = $1.00 / GPU-h
    rental 1x:            $2.50 / instance-h           →  2.50 / 1  = $2.50 / GPU-h
    owned 8x:  capex 87,600 / (4 y × 8,760 h × 0.5 utilisation) = 87,600 / 17,520 = $5.00
               + 2.0 kW × $0.15/kWh                             =                   $0.30
               = $5.30 / instance-h                    →  5.30 / 8  = $0.6625 / GPU-h
    owned 8x, sunk: capex already spent, power only    =  $0.30     → 0.30 / 8 = $0.0375 / GPU-h
    """
    directory = write_catalog(tmp_path / "cat")
    cat = load_catalog(directory)
    offers = cat.offers.set_index("offer_id", drop=False)
    ids = ["t-zx-sxm-8x-ondemand", "t-zx-sxm-8x-spot", "t-zx-pcie-1x-ondemand", "t-owned-zx-8x",
           "t-owned-zx-8x-sunk"]
    ours = offers.loc[ids]
    per_instance = hourly_cost_usd(ours)
    per_gpu = price_per_gpu_hour_usd(ours)
    assert per_instance.tolist() == pytest.approx([20.0, 8.0, 2.5, 5.30, 0.30])
    assert per_gpu.tolist() == pytest.approx([2.5, 1.0, 2.5, 0.6625, 0.0375])
    assert (per_gpu * ours["gpus_per_instance"]).tolist() == pytest.approx(per_instance.tolist())


def test_hourly_cost_owned_defaults_to_full_utilization(tmp_path: Path) -> None:
    """No utilisation given: the machine is busy all the time.

    87,600 / (2 y × 8,760 h × 1.0) = $5.00, + 2.0 kW × $0.15 = $0.30 → $5.30 / instance-h.
    """
    tables = {name: parse(text) for name, text in BASE.items()}
    set_cell("offers.csv", 5, "utilization", "")(tables)
    set_cell("offers.csv", 5, "amortization_years", "2")(tables)
    cat = load_catalog(write_catalog(tmp_path / "cat", tables))
    owned = cat.offers[cat.offers["offer_id"] == "t-owned-zx-8x"]
    assert hourly_cost_usd(owned).tolist() == pytest.approx([5.30])


# ---------------------------------------------------------------------------
# staleness


def ours_only(cat: Catalog, directory: Path) -> Catalog:
    """The catalog restricted to the rows of ``directory``, so bundled dates don't matter."""
    mine = cat.offers[cat.offers["origin_file"] == str(directory / "offers.csv")]
    return dataclasses.replace(cat, offers=mine.reset_index(drop=True))


def test_staleness_warning(tmp_path: Path) -> None:
    tables = {name: parse(text) for name, text in BASE.items()}
    set_cell("offers.csv", 4, "as_of", "2025-01-10")(tables)  # the oldest; the others 2025-02-01
    directory = write_catalog(tmp_path / "cat", tables)
    cat = ours_only(load_catalog(directory), directory)
    assert cat.oldest_price_date() == "2025-01-10"
    # 2025-01-10 + 180 days = 2025-07-09: exactly 180 days old is still fresh
    assert cat.staleness_warning(today=dt.date(2025, 2, 1)) is None
    assert cat.staleness_warning(today=dt.date(2025, 7, 9)) is None
    warning = cat.staleness_warning(today=dt.date(2025, 7, 10))
    assert warning is not None
    assert "\n" not in warning
    assert "2025-01-10" in warning
    assert "180 days" in warning
    assert "1 offer price(s)" in warning
    later = cat.staleness_warning(today=dt.date(2026, 1, 1))
    assert later is not None and "2025-01-10" in later and "5 offer price(s)" in later
