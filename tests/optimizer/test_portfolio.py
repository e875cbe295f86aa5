"""Portfolio files (optimizer/portfolio.py) and ``flopopt plan`` (cli/plan_cmd.py).

Bad portfolio files must exit 2 with ``error: <file>: <field path>: <message>`` and no
traceback; a plan exits 0, an infeasible portfolio 3; the JSON keeps the DESIGN.md §5
``plan`` contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from builders import REPO, gpu_row, offer_row
from flopopt.cli.main import app
from flopopt.optimizer.candidates import dominated_in_groups
from flopopt.optimizer.capacity_sources import capacity_sources
from flopopt.optimizer.errors import InputError
from flopopt.optimizer.portfolio import load_portfolio
from flopopt.optimizer.portfolio_candidates import build_candidates, dominated_within
from flopopt.optimizer.procurement import plan
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

EXAMPLES = sorted((REPO / "examples" / "portfolio").glob("*.yaml"))
LAB = REPO / "examples" / "portfolio" / "research-lab.yaml"

PLAN_KEYS = {"status", "purchases", "rentals", "periods", "cost", "break_even", "binding"}
PURCHASE_KEYS = {"period", "option", "count", "capex_usd"}
RENTAL_KEYS = {"job", "offer_id", "gpu_count", "period", "hours", "cost_usd"}
PERIOD_KEYS = {"period", "owned_gpu_hours", "used_gpu_hours"}
COST_KEYS = {"rental_usd", "capex_usd", "power_usd", "resale_usd", "total_usd"}

# providers: the CLI merges --catalog with the bundled catalog; tests use only their own offers
JOB = {"name": "tiny", "workload": {"kind": "custom", "total_flops": 1e17}, "precision": ["fp32"],
       "scenario": "cloud", "constraints": {"max_gpus": 2, "providers": ["testcloud"]}}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tiny_catalog(tmp_path: Path, make_catalog: Any) -> Path:
    """A two-offer catalog folder for CLI runs (make_catalog writes it under tmp_path)."""
    make_catalog([gpu_row("G1", peak_tflops_fp32=20.0)],
                 [offer_row("cheap", "G1", 1.0, max_instances=1), offer_row("dear", "G1", 3.0)])
    return tmp_path / "catalog1"


def write(tmp_path: Path, data: Any, name: str = "portfolio.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def portfolio(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "p", "horizon": {"periods": 3, "period_hours": 100}, "jobs": [dict(JOB)]}
    data.update(overrides)
    return data


# ---------------------------------------------------------------------------
# the file: every defect names the file and the field path


BAD_FILES: list[tuple[str, Any, str]] = [
    ("unknown top-level key", portfolio(horizn={"periods": 2}), "horizn: unknown key; did you mean 'horizon'?"),
    ("misspelt job field", portfolio(jobs=[dict(JOB), {**JOB, "name": "b", "constraints": {"deadline_hour": 5}}]),
     "jobs[1].constraints.deadline_hour: unknown key; did you mean 'deadline_hours'?"),
    ("bad job value", portfolio(jobs=[dict(JOB), dict(JOB, name="b"),
                                      {**JOB, "name": "c", "constraints": {"deadline_hours": -5}}]),
     "jobs[2].constraints.deadline_hours: must be > 0 (got -5)"),
    ("period outside horizon", portfolio(jobs=[dict(JOB, period=4)]),
     "jobs[0].period: must be within the horizon, 1…3 (got 4)"),
    ("fractional period", portfolio(jobs=[dict(JOB, period=1.5)]), "jobs[0].period: must be a whole period number"),
    ("duplicate job names", portfolio(jobs=[dict(JOB), dict(JOB)]), "jobs[1].name: duplicate job name 'tiny'"),
    ("jobs not a list", portfolio(jobs={"a": JOB}), "jobs: must be a list of jobs"),
    ("no jobs", portfolio(jobs=[]), "jobs: List should have at least 1 item"),
    ("zero periods", portfolio(horizon={"periods": 0}), "horizon.periods:"),
    ("period hours words", portfolio(horizon={"period_hours": "a month"}), "horizon.period_hours: must be a duration"),
    ("misspelt option key", portfolio(purchase_options=[{"option": "x", "gpu": "G1", "gpus": 8, "capex": 1}]),
     "purchase_options[0].capex: unknown key; did you mean 'capex_usd'?"),
    ("resale above one", portfolio(purchase_options=[{"option": "x", "resale_fraction": 1.5}]),
     "purchase_options[0].resale_fraction: Input should be less than or equal to 1"),
    ("negative power", portfolio(purchase_options=[{"option": "x", "power_kw": -1}]),
     "purchase_options[0].power_kw: must be ≥ 0 (got -1)"),
    ("lead time too long", portfolio(purchase_options=[{"option": "x", "lead_time_periods": 3}]),
     "purchase_options[0].lead_time_periods: a lead time of 3 period(s) leaves no period"),
    ("duplicate option", portfolio(purchase_options=[{"option": "x"}], reserved=[{"option": "x"}]),
     "reserved[0].option: duplicate option name 'x'"),
    ("start without count", portfolio(reserved=[{"option": "r", "start_period": 2}]),
     "reserved[0].start_period: only with 'count'"),
    ("file with extra keys", portfolio(jobs=[{"file": "job.yaml", "period": 1, "budget_usd": 5}]),
     "jobs[0].budget_usd: unknown key next to 'file'"),
    ("missing job file", portfolio(jobs=[{"file": "nope.yaml"}]), "jobs[0].file: "),
    ("bad budget", portfolio(budget_usd="lots"), "budget_usd: must be an amount in USD"),
    ("not a mapping", "- just\n- a list\n", "must be a YAML mapping of keys (got list)"),
    ("empty", "", "file is empty"),
]


@pytest.mark.parametrize("label, data, expected", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_portfolio_exits_2_with_field_path(runner: CliRunner, tmp_path: Path, label: str, data: Any,
                                               expected: str) -> None:
    path = write(tmp_path, data)
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"error: {path}: {expected}" in result.stderr, result.stderr
    assert result.stdout == ""


def test_error_inside_a_referenced_job_file_names_that_file(runner: CliRunner, tmp_path: Path) -> None:
    job = write(tmp_path, {**JOB, "constraints": {"deadline_hours": "soon"}}, "job.yaml")
    path = write(tmp_path, portfolio(jobs=[{"file": "job.yaml", "period": 2}]))
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: {job}: constraints.deadline_hours: must be a duration" in result.stderr


def test_all_defects_are_reported_at_once(tmp_path: Path) -> None:
    bad = portfolio(jobs=[dict(JOB, period=9), {**JOB, "name": "b", "precision": ["bf17"]}])
    with pytest.raises(InputError) as err:
        load_portfolio(write(tmp_path, bad))
    fields = [p.field for p in err.value.problems]
    assert fields == ["jobs[0].period", "jobs[1].precision[0]"]


def test_job_files_are_relative_to_the_portfolio(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    write(tmp_path / "jobs", JOB, "tiny.yaml")
    loaded = load_portfolio(write(tmp_path, portfolio(jobs=[{"file": "jobs/tiny.yaml", "period": 3}])))
    assert loaded.jobs[0].job.name == "tiny" and loaded.jobs[0].period == 3 and not loaded.jobs[0].inline


def test_catalog_checks_of_options(runner: CliRunner, tmp_path: Path, tiny_catalog: Path) -> None:
    bad = portfolio(purchase_options=[{"option": "x", "gpu": "H100-SMX", "gpus": 8, "capex_usd": 1, "power_kw": 1,
                                       "electricity_usd_per_kwh": 0.1},
                                      {"option": "y", "offer": "chep"}],
                    quotas={"nope": 1})
    path = write(tmp_path, bad)
    result = runner.invoke(app, ["plan", str(path), "--catalog", str(tiny_catalog)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: {path}: purchase_options[0].gpu: unknown gpu 'H100-SMX'; did you mean 'H100-SXM'?" in result.stderr
    assert "purchase_options[1].offer: no offer 'chep' in the catalog; did you mean 'cheap'?" in result.stderr
    assert "quotas.nope: no offer 'nope' in the catalog" in result.stderr


def test_purchase_option_from_an_owned_offer(make_catalog: Any) -> None:
    catalog = make_catalog([gpu_row("G1")], [
        offer_row("box", "G1", 0, kind="owned", gpus_per_instance=4, capex_usd=40000, amortization_years=4,
                  power_kw=1.5, electricity_usd_per_kwh=0.2, interconnect="pcie", max_instances=1),
        offer_row("rent", "G1", 1.0)])
    from flopopt.optimizer.portfolio import parse_portfolio

    p = parse_portfolio(portfolio(purchase_options=[{"option": "more-boxes", "offer": "box", "resale_fraction": 0.5},
                                                    {"option": "bad", "offer": "rent"}]), "p.yaml")
    with pytest.raises(InputError, match=r"purchase_options\[1\]\.offer: offer 'rent' is on_demand"):
        capacity_sources(p, catalog)
    ok = parse_portfolio(portfolio(purchase_options=[{"option": "more-boxes", "offer": "box", "resale_fraction": 0.5}]),
                         "p.yaml")
    (source,) = capacity_sources(ok, catalog)
    assert (source.gpu, source.gpus_per_unit, source.unit_cost_usd, source.resale_usd, source.interconnect) == \
        ("G1", 4, 40000, 20000, "pcie")
    assert source.power_per_unit_hour_usd == pytest.approx(0.3)


# ---------------------------------------------------------------------------
# the command


@pytest.mark.slow
def test_example_plans_to_the_json_contract(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", str(LAB), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert PLAN_KEYS <= set(data)
    assert data["status"] == "optimal" and data["binding"] is None
    assert COST_KEYS <= set(data["cost"])
    for row in data["purchases"]:
        assert PURCHASE_KEYS <= set(row)
    for row in data["rentals"]:
        assert RENTAL_KEYS <= set(row)
    assert [p["period"] for p in data["periods"]] == list(range(1, 13))
    for row in data["periods"]:
        assert PERIOD_KEYS <= set(row)
    assert {a["job"] for a in data["assignments"]} == {"pretrain-7b", "llama3-8b-finetune", "continued-pretrain-8b",
                                                       "serve-70b-h2", "instruct-tune-8b", "pretrain-1b-ablations"}
    assert set(data["break_even"]) == {"dgx-h100"}
    be = data["break_even"]["dgx-h100"]
    assert 0 < be["break_even_utilization"] and be["note"]
    c = data["cost"]
    assert c["total_usd"] == pytest.approx(c["rental_usd"] + c["capex_usd"] + c["power_usd"] + c["reserved_usd"]
                                           - c["resale_usd"])
    assert c["cash_usd"] <= 1.2e6


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_portfolio_example_plans(runner: CliRunner, example: Path) -> None:
    result = runner.invoke(app, ["plan", str(example), "--format", "json"])
    assert result.exit_code in (0, 3), result.output
    assert "Traceback" not in result.output
    assert PLAN_KEYS <= set(json.loads(result.stdout))


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_text_formats(runner: CliRunner, tmp_path: Path, tiny_catalog: Path, fmt: str) -> None:
    path = write(tmp_path, portfolio(jobs=[dict(JOB), dict(JOB, name="other")]))
    result = runner.invoke(app, ["plan", str(path), "--catalog", str(tiny_catalog), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "p: optimal" in result.stdout and "Where each job runs" in result.stdout
    assert "cheap" in result.stdout and "dear" in result.stdout   # the quota pushes one job to the dear offer
    if fmt == "markdown":
        assert "| job | period |" in result.stdout


def test_output_file_and_cbc(runner: CliRunner, tmp_path: Path, tiny_catalog: Path) -> None:
    path = write(tmp_path, portfolio())
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(path), "--catalog", str(tiny_catalog), "--format", "json",
                                 "--solver", "cbc", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"wrote {out}" in result.stderr
    data = json.loads(out.read_text())
    assert data["model"]["solver"] == "cbc" and data["rentals"][0]["offer_id"] == "cheap"


def test_infeasible_exits_3_and_names_binding(runner: CliRunner, tmp_path: Path, tiny_catalog: Path) -> None:
    path = write(tmp_path, portfolio(budget_usd=0.01))
    result = runner.invoke(app, ["plan", str(path), "--catalog", str(tiny_catalog), "--format", "json"])
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "infeasible" and data["binding"] == "budget_usd"
    assert data["cost"] is None and data["rentals"] == [] and data["purchases"] == []
    assert "infeasible: budget_usd: the least cash any plan spends is" in result.stderr
    assert "Traceback" not in result.output


def test_time_objective_is_reported_as_ignored(tmp_path: Path, make_catalog: Any) -> None:
    catalog = make_catalog([gpu_row("G1")], [offer_row("rent", "G1", 1.0)])
    result = plan(load_portfolio(write(tmp_path, portfolio(jobs=[dict(JOB, objective="time")]))), catalog)
    assert any("objective 'time' is ignored" in w for w in result.warnings)


def test_dominated_within_matches_the_per_group_rule() -> None:
    import pandas as pd
    from flopopt.optimizer.candidates import dominated_mask

    t = pd.DataFrame({"offer_id": ["a", "a", "a", "b", "b", "a"], "instances": [1, 1, 1, 1, 1, 2],
                      "cost_usd": [5.0, 4.0, 5.0, 9.0, 9.0, 1.0], "hours": [3.0, 4.0, 3.0, 2.0, 2.0, 9.0],
                      "feasible": [True] * 6})
    expected = dominated_mask(t, ["offer_id", "instances"]).to_numpy()
    assert dominated_within(t, ["offer_id", "instances"]).tolist() == expected.tolist() == \
        [False, False, True, False, True, False]


def test_candidates_report_model_size(make_catalog: Any, tmp_path: Path) -> None:
    catalog = make_catalog([gpu_row("G1")], [offer_row(f"o{i}", "G1", 1.0 + i) for i in range(4)])
    cands = build_candidates(load_portfolio(write(tmp_path, portfolio(jobs=[dict(JOB), dict(JOB, name="b")]))),
                             catalog)
    assert cands.enumerated >= cands.feasible >= cands.kept == 2   # one free rental per job is enough


def test_period_longer_than_a_year_is_an_input_error(tmp_path: Path) -> None:
    # Absurd period lengths once reached HiGHS and crashed it inside PuLP; they are bad input.
    data = yaml.safe_load((Path("examples/portfolio/research-lab.yaml")).read_text())
    data["horizon"]["period_hours"] = 1e15
    for job in data["jobs"]:
        if isinstance(job, dict) and "file" in job:
            job["file"] = str((Path("examples/portfolio") / job["file"]).resolve())
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "horizon.period_hours" in result.stderr and "8784" in result.stderr


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(-1, 6)), max_size=40))
def test_dominated_in_groups_matches_brute_force(points: list[tuple[int, int, int]]) -> None:
    """Oracle: i is dominated when another point j of its group costs no more and takes no longer,
    and is strictly better in one of them or, tied in both, comes first (duplicates keep the first).
    Unknown hours (NaN, drawn as -1) compare false: such a point is neither dominated nor dominating.
    Small integers make ties and shared groups common."""
    group = np.array([g for g, _, _ in points], dtype=np.int64)
    cost = np.array([c for _, c, _ in points], dtype=float)
    hours = np.array([np.nan if h < 0 else h / 2 for _, _, h in points], dtype=float)
    expected = [any(j != i and group[j] == group[i] and cost[j] <= cost[i] and hours[j] <= hours[i]
                    and (cost[j] < cost[i] or hours[j] < hours[i] or j < i) for j in range(len(points)))
                for i in range(len(points))]
    assert dominated_in_groups(cost, hours, group).tolist() == expected
