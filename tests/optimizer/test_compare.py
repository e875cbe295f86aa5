"""``flopopt compare`` (optimizer/compare.py, cli/compare_cmd.py, cli/render_compare.py, cli/plot.py).

Oracles: the Pareto front against its O(n²) definition, a buy-vs-rent case worked by
hand, the solve command's optimum; plus quotes-file errors, the JSON contract and the PNG.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import REPO
from flopopt.cli.main import app
from flopopt.optimizer.compare import (
    OFFER_CLASSES,
    pareto_front,
    read_quotes,
)
from flopopt.optimizer.economics import utilization_break_even as break_even_utilization
from flopopt.optimizer.errors import ProblemList
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

LLAMA = REPO / "examples" / "llama2-7b-pretrain.yaml"
SHORT_QUOTE = REPO / "examples" / "quotes" / "example-colo-quote-short.csv"
FULL_QUOTE = REPO / "examples" / "quotes" / "example-local-cluster-quote.csv"
SHORT_HEADER = "provider,gpu,gpus,price_per_hour_usd,kind\n"
PLAN_KEYS = {"offer_id", "provider", "kind", "gpu", "gpu_count", "instances", "precision", "scenario",
             "attenuation", "buffer", "hours", "days", "cost_usd", "price_as_of", "offer_class", "source",
             "cost_per_pflop_usd", "deadline_met", "within_budget"}


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


JSON_REL = 1e-5   # JSON floats carry 6 significant digits (docs/output-contract.md)


def run_json(runner: CliRunner, *args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, ["compare", *args, "--format", "json"])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# ---------------------------------------------------------------------------
# Pareto front


def brute_force_front(cost: list[float], hours: list[float]) -> set[int]:
    """The definition, O(n²): nobody at most as dear and as slow while better in one;
    of exact duplicates only the first counts."""
    front = set()
    for i, (ci, hi) in enumerate(zip(cost, hours)):
        dominated = any(cj <= ci and hj <= hi and (cj < ci or hj < hi) for cj, hj in zip(cost, hours))
        duplicate = any(cost[j] == ci and hours[j] == hi for j in range(i))
        if not dominated and not duplicate:
            front.add(i)
    return front


# Small integers make ties (same cost, same hours, both) common; floats cover the rest.
small = st.integers(min_value=1, max_value=6).map(float)
wide = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False, allow_infinity=False)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(small, small), max_size=40) | st.lists(st.tuples(wide, wide), max_size=40))
def test_pareto_front_matches_brute_force(points: list[tuple[float, float]]) -> None:
    cost = [c for c, _ in points]
    hours = [h for _, h in points]
    front = pareto_front(np.array(cost), np.array(hours))
    assert set(front.tolist()) == brute_force_front(cost, hours)
    assert len(set(front.tolist())) == len(front)
    ordered_cost = [cost[i] for i in front]
    ordered_hours = [hours[i] for i in front]
    assert ordered_cost == sorted(ordered_cost)
    # along the front, paying more must buy strictly less time
    assert all(a > b for a, b in itertools.pairwise(ordered_hours))


def test_pareto_front_of_nothing_is_empty() -> None:
    assert pareto_front(np.array([]), np.array([])).tolist() == []


# ---------------------------------------------------------------------------
# buy vs rent, worked by hand

GPU_CSV = (
    "gpu,vendor,memory_gb,mem_bandwidth_gbs,tdp_w,peak_tflops_bf16,source,as_of\n"
    "TestGPU,test,80,2000,400,100,test fixture,2026-01-01\n"
)
OFFERS_HEADER = ("offer_id,provider,kind,region,instance_type,gpu,gpus_per_instance,price_per_hour_usd,"
                 "billing_increment_hours,min_hours,max_instances,interconnect,capex_usd,amortization_years,"
                 "utilization,power_kw,electricity_usd_per_kwh,sunk,source,as_of\n")
HAND_JOB = """\
name: own-vs-rent
workload: {kind: custom, total_flops: 1.8e19}
precision: [bf16]
constraints: {deadline_hours: 1000, gpus: [TestGPU]}
risk: {buffer: 0}
performance: {attenuation: 0.5}
"""


def hand_catalog(tmp_path: Path, utilization: float, sunk: bool = False) -> tuple[Path, Path]:
    """One GPU type, rented at $2.10/h or owned (capex $8,760 over 1 year, 0.5 kW at $0.20/kWh).

    Worked by hand:
      hours     = 1.8e19 FLOP / (1 GPU × 100e12 FLOP/s × attenuation 0.5 × scale 1) / 3600 = 100 h
                  (the same on both: attenuation fixed, buffer 0, one GPU so no scale-out loss)
      rent      = 100 h × $2.10/h                                   = $210
      own(u)    = 100 h × (8,760 / (1 y × 8,760 h × u) + 0.5 × 0.20) = 100/u + 10 USD
      own = rent  ⇔  100/u = 200  ⇔  u* = 50%   — owning wins at ≥ 50% utilisation, loses below.
      The formula in the code: K = 8,760/8,760 = $1/h, R = $0.10/h, V = $210/100 h = $2.10/h,
      u* = K / (V − R) = 1 / 2.0 = 0.5.
    """
    folder = tmp_path / f"catalog-{utilization}-{sunk}"
    folder.mkdir()
    (folder / "gpus.csv").write_text(GPU_CSV, encoding="utf-8")
    (folder / "offers.csv").write_text(
        OFFERS_HEADER
        + "rent-1x,testcloud,on_demand,r1,1x,TestGPU,1,2.10,0,0,1,pcie,,,,,,,test fixture,2026-01-01\n"
        + f"own-1x,owned,owned,lab,1x,TestGPU,1,0,0,0,1,pcie,8760,1,{utilization},0.5,0.2,"
          f"{str(sunk).lower()},test fixture,2026-01-01\n",
        encoding="utf-8")
    job = tmp_path / "own-vs-rent.yaml"
    job.write_text(HAND_JOB, encoding="utf-8")
    return folder, job


@pytest.mark.parametrize(("utilization", "winner", "cost_usd"), [
    (0.40, "on_demand", 210.0),          # own = 100/0.40 + 10 = 260 > 210
    (0.49, "on_demand", 210.0),          # own = 214.08 > 210
    (0.51, "owned", 100 / 0.51 + 10),    # own = 206.08 < 210
    (0.60, "owned", 100 / 0.60 + 10),    # own = 176.67 < 210
])
def test_owning_beats_renting_above_hand_computed_utilisation(
        runner: CliRunner, tmp_path: Path, utilization: float, winner: str, cost_usd: float) -> None:
    catalog, job = hand_catalog(tmp_path, utilization)
    data = run_json(runner, str(job), "--catalog", str(catalog))
    assert data["optimum"]["kind"] == winner
    assert data["optimum"]["cost_usd"] == pytest.approx(cost_usd, rel=JSON_REL)
    assert data["optimum"]["hours"] == pytest.approx(100.0, rel=JSON_REL)
    owned = next(o for o in data["ownership"] if o["offer_id"] == "own-1x")
    assert owned["break_even_utilization"] == pytest.approx(0.5, rel=JSON_REL)
    assert owned["capex_per_hour_usd"] == pytest.approx(1.0, rel=JSON_REL)
    assert owned["power_per_hour_usd"] == pytest.approx(0.1, rel=JSON_REL)
    assert owned["amortized_capex_per_hour_usd"] == pytest.approx(1.0 / utilization, rel=JSON_REL)
    assert owned["rental_equivalent_per_hour_usd"] == pytest.approx(2.10, rel=JSON_REL)
    assert owned["rental_offer_id"] == "rent-1x"
    assert owned["beats_rental"] is (winner == "owned")
    assert owned["sunk_note"] is None


def test_sunk_capex_counts_as_zero_marginal_cost_and_is_flagged(runner: CliRunner, tmp_path: Path) -> None:
    catalog, job = hand_catalog(tmp_path, 0.40, sunk=True)
    data = run_json(runner, str(job), "--catalog", str(catalog))
    assert data["optimum"]["kind"] == "owned"
    assert data["optimum"]["cost_usd"] == pytest.approx(10.0)       # power only: 100 h × $0.10/h
    owned = next(o for o in data["ownership"] if o["offer_id"] == "own-1x")
    assert owned["sunk"] is True
    assert owned["sunk_note"] == "capex counted as zero marginal cost because marked sunk"
    assert owned["break_even_utilization"] == pytest.approx(0.5)    # the buying decision is unchanged
    assert owned["beats_rental"] is True
    result = runner.invoke(app, ["compare", str(job), "--catalog", str(catalog), "--format", "markdown"])
    assert "capex counted as zero marginal cost because marked sunk" in result.stdout
    assert "above 50% utilisation" in result.stdout


def test_table_format_lists_every_class_and_recommends(runner: CliRunner, tmp_path: Path) -> None:
    catalog, job = hand_catalog(tmp_path, 0.6)
    result = runner.invoke(app, ["compare", str(job), "--catalog", str(catalog)])
    assert result.exit_code == 0, result.output
    for _, label, _ in OFFER_CLASSES:
        assert label in result.stdout
    assert "RECOMMENDATION  Run on the owned 1×TestGPU (own-1x)" in result.stdout
    assert "above 50% utilisation (planned 60%, so owning wins)" in result.stdout


def test_break_even_formula_edges() -> None:
    assert break_even_utilization(1.0, 0.1, 2.1) == pytest.approx(0.5)
    assert break_even_utilization(1.0, 2.0, 2.0) is None          # running alone costs the rent: never
    assert break_even_utilization(3.0, 0.0, 2.0) == pytest.approx(1.5)   # above 100%: cannot win


def test_class_without_feasible_plan_says_why(runner: CliRunner, tmp_path: Path) -> None:
    catalog, job = hand_catalog(tmp_path, 0.6)
    job.write_text(HAND_JOB.replace("deadline_hours: 1000", "deadline_hours: 50"), encoding="utf-8")
    data = run_json(runner, str(job), "--catalog", str(catalog), code=3)
    classes = {c["offer_class"]: c for c in data["classes"]}
    assert classes["owned"]["best"] is None
    assert classes["owned"]["reason"] == "no feasible candidate: 1 misses the deadline"
    assert classes["owned"]["nearest"]["hours"] == pytest.approx(100.0)
    assert classes["owned"]["nearest"]["deadline_met"] is False
    assert classes["cloud_spot"]["reason"].startswith("no candidate: ")   # excluded by constraints.gpus
    assert data["optimum"] is None and data["binding"] == "deadline_hours"


# ---------------------------------------------------------------------------
# quotes files

@pytest.mark.parametrize(("text", "row", "column", "words"), [
    (SHORT_HEADER + "acme,H100-SXM,8,20,cluster_quote\nacme,H1000-SXM,8,20,cluster_quote\n",
     3, "gpu", "did you mean 'H100-SXM'"),
    (SHORT_HEADER + "acme,H100-SXM,8,cheap,cluster_quote\n", 2, "price_per_hour_usd", "is not a number"),
    (SHORT_HEADER + "acme,H100-SXM,8,0,cluster_quote\n", 2, "price_per_hour_usd", "must be > 0"),
    (SHORT_HEADER + "acme,H100-SXM,8,-3,spot\n", 2, "price_per_hour_usd", "must be ≥ 0"),
    (SHORT_HEADER + "acme,H100-SXM,eight,20,spot\n", 2, "gpus", "is not a number"),
    (SHORT_HEADER + "acme,H100-SXM,8,20,owned\n", 2, "kind", "is not one of"),
    ("provider,gpu,gpus,kind\nacme,H100-SXM,8,spot\n", None, "price_per_hour_usd", "required column is missing"),
])
def test_bad_quotes_file_exits_2_naming_file_row_and_column(
        runner: CliRunner, tmp_path: Path, text: str, row: int | None, column: str, words: str) -> None:
    quotes = tmp_path / "vendor-quote.csv"
    quotes.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["compare", str(LLAMA), "--quotes", str(quotes)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    where = f"{quotes}: row {row}: {column}: " if row is not None else f"{quotes}: "
    line = next(x for x in result.stderr.splitlines() if f": {column}: " in x)
    assert where in line and words in line and column in line


def test_bad_full_form_quote_is_validated_like_the_catalog(runner: CliRunner, tmp_path: Path) -> None:
    lines = FULL_QUOTE.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",H100-SXM,", ",H100-SXMX,").replace(",250000,", ",lots,")
    quotes = tmp_path / "full.csv"
    quotes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["compare", str(LLAMA), "--quotes", str(quotes)])
    assert result.exit_code == 2, result.output
    assert f"{quotes}: row 3: capex_usd: 'lots' is not a number" in result.stderr
    assert f"{quotes}: row 3: gpu: unknown gpu 'H100-SXMX'" in result.stderr
    assert "Traceback" not in result.output


def test_missing_quotes_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(LLAMA), "--quotes", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'nope.csv'}: file not found" in result.stderr


def test_short_form_is_filled_in(tmp_path: Path) -> None:
    from flopopt.catalogs.loader import load_catalog

    quotes = tmp_path / "colo.csv"
    quotes.write_text(SHORT_HEADER + "acme,H100-SXM,64,150,cluster_quote\nacme,L4,4,3.2,on_demand\n",
                      encoding="utf-8")
    os.utime(quotes, (1_760_000_000, 1_760_000_000))
    problems = ProblemList()
    quote = read_quotes(quotes, load_catalog(), problems)
    assert problems.items == []
    assert quote.form == "short"
    rows = quote.offers.to_dict("records")
    assert [r["offer_id"] for r in rows] == ["colo-2", "colo-3"]
    assert [r["interconnect"] for r in rows] == ["nvlink", "pcie"]
    assert [r["gpus_per_instance"] for r in rows] == [64, 4]
    assert all(r["billing_increment_hours"] == pytest.approx(1 / 3600) for r in rows)
    assert all(r["max_instances"] == 1 and r["source"] == str(quotes) for r in rows)
    assert {r["as_of"] for r in rows} == {dt.date.fromtimestamp(1_760_000_000).isoformat()}


# ---------------------------------------------------------------------------
# the example job with both example quotes: JSON contract, markdown, PNG, agreement with solve


def test_json_contract(runner: CliRunner) -> None:
    data = run_json(runner, str(LLAMA), "--quotes", str(SHORT_QUOTE), "--quotes", str(FULL_QUOTE))
    assert {"job", "classes", "quotes", "pareto", "optimum"} <= set(data)
    assert [c["offer_class"] for c in data["classes"]] == [cid for cid, _, _ in OFFER_CLASSES]
    for c in data["classes"]:
        assert {"offer_class", "best", "reason"} <= set(c)
        assert isinstance(c["reason"], str) and c["reason"]
        if c["best"] is not None:
            assert PLAN_KEYS <= set(c["best"])
            assert c["best"]["cost_usd"] >= data["optimum"]["cost_usd"] - 1e-6
    assert [q["file"] for q in data["quotes"]] == [str(SHORT_QUOTE), str(FULL_QUOTE)]
    # A quote may have no plan meeting the limits (then it says why); a plan names its file.
    assert all({"file", "best"} <= set(q) and (q["best"]["source"] == q["file"] if q["best"] else q["reason"])
               for q in data["quotes"])
    assert PLAN_KEYS <= set(data["optimum"])
    front = data["pareto"]
    assert front and all(PLAN_KEYS <= set(p) for p in front)
    assert any(p["cost_usd"] == data["optimum"]["cost_usd"] for p in front)
    for a in front:   # nobody on the front is both slower and dearer than another
        assert not any(b["hours"] < a["hours"] and b["cost_usd"] < a["cost_usd"] for b in front)
    best = data["optimum"]
    assert best["cost_per_pflop_usd"] == pytest.approx(best["cost_usd"] / (data["estimate"]["total_flops"] / 1e15),
                                                       rel=JSON_REL)
    assert best["days"] == pytest.approx(best["hours"] / 24)


def test_optimum_agrees_with_solve() -> None:
    from flopopt.catalogs.loader import load_catalog
    from flopopt.optimizer.compare import compare
    from flopopt.optimizer.job import load_job
    from flopopt.optimizer.solve import solve

    job, catalog = load_job(LLAMA), load_catalog()
    solved = solve(job, catalog, sensitivity=False)
    compared = compare(job, catalog, [])
    assert solved.plan is not None and compared.optimum is not None
    assert compared.optimum.plan.cost_usd == pytest.approx(solved.plan.cost_usd)
    assert compared.optimum.plan.hours == pytest.approx(solved.plan.hours)


def test_markdown_has_a_table_per_class_and_a_recommendation(runner: CliRunner) -> None:
    owned = REPO / "examples" / "owned-machines.csv"  # the bundled catalog holds no owned machine
    result = runner.invoke(app, ["compare", str(LLAMA), "--quotes", str(SHORT_QUOTE), "--quotes", str(owned),
                                 "--format", "markdown"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "## Recommendation" in text
    for _, label, _ in OFFER_CLASSES:
        assert f"### {label}" in text
    assert "| plan | provider | offer |" in text
    recommendation = text.split("## Recommendation\n\n", 1)[1]
    assert recommendation.startswith(("Rent ", "Take the cluster quote ", "Run on the ")), recommendation[:80]
    assert "per PFLOP delivered" in recommendation
    assert "owned-dgx-a100-8x" in text


@pytest.mark.slow
def test_plot_png_has_expected_size_and_colours(runner: CliRunner, tmp_path: Path) -> None:
    from flopopt.cli.plot import DPI, FIGSIZE_IN
    from matplotlib.image import imread

    png = tmp_path / "plots" / "compare.png"
    result = runner.invoke(app, ["compare", str(LLAMA), "--quotes", str(SHORT_QUOTE), "--quotes",
                                 str(FULL_QUOTE), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert f"wrote {png}" in result.stderr
    assert [p.name for p in png.parent.iterdir()] == ["compare.png"]   # no temp file left behind
    pixels = imread(png)
    assert pixels.shape[:2] == (round(FIGSIZE_IN[1] * DPI), round(FIGSIZE_IN[0] * DPI))
    colours = np.unique((pixels[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) >= 4


def test_nothing_feasible_exits_3_and_still_plots(runner: CliRunner, tmp_path: Path) -> None:
    catalog, job = hand_catalog(tmp_path, 0.6)
    job.write_text(HAND_JOB.replace("deadline_hours: 1000", "deadline_hours: 50"), encoding="utf-8")
    png = tmp_path / "empty.png"
    result = runner.invoke(app, ["compare", str(job), "--catalog", str(catalog), "--plot", str(png)])
    assert result.exit_code == 3, result.output
    assert "infeasible: deadline_hours" in result.stderr
    assert "Traceback" not in result.output
    assert png.stat().st_size > 0


def test_every_offer_excluded_exits_3_with_reasons(runner: CliRunner, tmp_path: Path) -> None:
    catalog, job = hand_catalog(tmp_path, 0.6)
    # aws exists (bundled offers) but sells no TestGPU: every offer is excluded by an allow-list.
    # (An unknown provider is an input error, exit 2: tests/test_contract.py.)
    job.write_text(HAND_JOB.replace("gpus: [TestGPU]", "gpus: [TestGPU], providers: [aws]"), encoding="utf-8")
    data = run_json(runner, str(job), "--catalog", str(catalog), code=3)
    assert data["optimum"] is None and data["pareto"] == [] and data["binding"] == "allow_lists"
    owned = next(c for c in data["classes"] if c["offer_class"] == "owned")
    assert owned["reason"].startswith("no candidate: ") and "not in constraints.providers" in owned["reason"]


def test_help_has_example(runner: CliRunner) -> None:
    result = runner.invoke(app, ["compare", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "--quotes" in result.stdout and "--plot" in result.stdout
