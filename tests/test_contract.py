"""The output contract (docs/output-contract.md): every command's JSON validates against its
published schema (docs/schema/*.json), errors included; floats are rounded; text fits COLUMNS."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from builders import REPO
from flopopt.cli.contract import FLOAT_DIGITS, SCHEMA_VERSION, schema_dir, schema_names, validator
from flopopt.cli.main import app
from typer.testing import CliRunner

EX = REPO / "examples"
LLAMA = str(EX / "llama2-7b-pretrain.yaml")
SEED = str(EX / "seed-worked-example.yaml")
SHORT_QUOTE = str(EX / "quotes" / "example-colo-quote-short.csv")
HISTORY = str(EX / "history.csv")
PORTFOLIO = str(EX / "portfolio" / "research-lab.yaml")
runner = CliRunner()


def run_json(*args: str, codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code in codes, (args, result.output)
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)   # exactly one JSON document on stdout
    assert isinstance(data, dict)
    return data


def check(name: str, data: dict[str, Any]) -> None:
    errors = sorted(validator(name).iter_errors(data), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])
    assert data["schema_version"] == SCHEMA_VERSION


def floats(value: Any) -> Iterator[float]:
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from floats(v)


# ---------------------------------------------------------------------------
# every command's document


def test_schema_files_are_shipped_and_valid_json() -> None:
    from jsonschema import Draft202012Validator

    assert schema_dir().is_dir()
    names = set(schema_names())
    assert {"solve", "solve-serving", "estimate", "compare", "plan", "calibrate", "backtest", "catalog-list",
            "catalog-show", "catalog-validate", "catalog-import", "catalog-refresh", "error"} <= names
    for name in names | {"common"}:
        Draft202012Validator.check_schema(json.loads((schema_dir() / f"{name}.json").read_text()))


@pytest.mark.slow
def test_solve_document_and_feasible_candidates_only() -> None:
    data = run_json("solve", LLAMA, "--no-sensitivity")
    check("solve", data)
    assert data["status"] == "optimal" and data["candidates_shown"] == "feasible"
    assert data["candidates"] and all(c["feasible"] for c in data["candidates"])
    assert len(data["candidates"]) == data["model"]["feasible"]
    everything = run_json("solve", LLAMA, "--no-sensitivity", "--all-candidates")
    check("solve", everything)
    assert len(everything["candidates"]) == everything["model"]["enumerated"] > len(data["candidates"])


SERVING_JOBS = sorted(p.name for p in EX.glob("*.yaml")
                      if "kind: transformer_serving" in p.read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize("job", SERVING_JOBS)
def test_serving_solve_documents(job: str) -> None:
    data = run_json("solve", str(EX / job), codes=(0, 3))
    check("solve-serving", data)
    assert all(c["feasible"] for c in data["candidates"])
    everything = run_json("solve", str(EX / job), "--all-candidates", codes=(0, 3))
    check("solve-serving", everything)
    assert len(everything["candidates"]) >= len(data["candidates"])
    for row in [*(data["plan"] or {}).get("lines", []), *everything["candidates"]]:
        assert {"effective_cost_per_instance_hour_usd", "list_price_per_instance_hour_usd"} <= set(row)
        assert "price_per_instance_hour_usd" not in row
    if data["status"] == "optimal":
        assert 0.0 <= data["model"]["mip_gap"] <= data["model"]["mip_gap_tolerance"]


@pytest.mark.slow
def test_every_example_job_has_a_schema() -> None:
    """Each example's solve document validates against solve.json or, for serving, solve-serving.json."""
    assert SERVING_JOBS, "no serving example"
    for job in sorted(EX.glob("*.yaml")):
        data = run_json("solve", str(job), "--no-sensitivity", codes=(0, 3))
        check("solve-serving" if job.name in SERVING_JOBS else "solve", data)


@pytest.mark.slow
def test_solve_with_sensitivity_and_infeasible_documents(tmp_path: Path) -> None:
    check("solve", run_json("solve", SEED, "--samples", "200"))
    job = tmp_path / "impossible.yaml"
    job.write_text("workload: {kind: transformer_training, model: gpt3-175b, tokens: 300B}\n"
                   "constraints: {deadline_hours: 1}\n")
    data = run_json("solve", str(job), "--no-sensitivity", codes=(3,))
    check("solve", data)
    assert data["status"] == "infeasible" and data["plan"] is None and data["binding"] == "deadline_hours"


@pytest.mark.slow
def test_plans_name_the_effective_cost_and_the_list_price() -> None:
    """Schema 2.0.0: a plan's hourly numbers say what they hold; the ambiguous 1.x names are gone."""
    data = run_json("solve", LLAMA, "--samples", "200")
    check("solve", data)
    plans = [data["plan"], *data["alternatives"], *(s["plan"] for s in data["sensitivity"] if s["plan"])]
    for plan in plans:
        assert {"effective_cost_per_instance_hour_usd", "effective_cost_per_gpu_hour_usd",
                "list_price_per_instance_hour_usd"} <= set(plan)
        assert "price_per_hour_usd" not in plan and "price_per_gpu_hour_usd" not in plan
    runner_up = data["break_even"]["runner_up"]
    assert {"effective_cost_per_instance_hour_usd", "wins_below_effective_cost_per_instance_hour_usd",
            "chosen_loses_above_effective_cost_per_instance_hour_usd"} <= set(runner_up)
    assert 0.0 <= data["model"]["mip_gap"] <= data["model"]["mip_gap_tolerance"]


def test_a_time_limited_plan_is_a_plan_in_json(stop_at_time_limit: Any) -> None:
    """Stopped at --time-limit with an incumbent: status time_limit, the plan, its gap, exit 0."""
    stop_at_time_limit(incumbent=True, gap=0.05)
    data = run_json("solve", LLAMA, "--no-sensitivity", "--time-limit", "5")
    check("solve", data)
    assert data["status"] == "time_limit" and data["plan"] is not None and data["binding"] is None
    assert "not proven optimal" in data["explanation"] and data["model"]["mip_gap"] == 0.05


def test_a_time_limit_without_a_plan_is_not_infeasible_in_json(stop_at_time_limit: Any) -> None:
    stop_at_time_limit(incumbent=False)
    data = run_json("solve", LLAMA, "--no-sensitivity", "--time-limit", "5", codes=(4,))
    check("solve", data)
    assert data["status"] == "time_limit" and data["plan"] is None and data["binding"] is None
    assert data["explanation"] == ("the solver stopped at its time limit (5 s) before finding a plan; "
                                   "raise the time limit")


@pytest.mark.slow
def test_floats_are_rounded_to_the_documented_digits() -> None:
    data = run_json("solve", LLAMA, "--samples", "200")
    values = [v for v in floats(data) if v != 0]
    assert values
    for v in values:
        assert float(f"{v:.{FLOAT_DIGITS}g}") == v, v


@pytest.mark.parametrize("extra", [(), ("--all",)], ids=["smallest-fit", "all"])
def test_estimate_document(extra: tuple[str, ...]) -> None:
    data = run_json("estimate", LLAMA, *extra)
    check("estimate", data)
    rows = data["per_gpu"]
    if extra:
        assert {1, 8} <= {r["gpu_count"] for r in rows}
    else:   # one row per GPU type, each at a count that holds the job
        assert len({r["gpu"] for r in rows}) == len(rows)
        assert all(r["fits_memory"] and r["need_gb_per_gpu"] <= r["memory_gb"] for r in rows)


def test_compare_document_with_solve_options() -> None:
    data = run_json("compare", LLAMA, "--quotes", SHORT_QUOTE, "--solver", "highs", "--no-sensitivity")
    check("compare", data)
    assert data["status"] == "optimal" and data["quotes"][0]["form"] == "short"


@pytest.mark.slow
def test_compare_confidence_changes_the_choice_like_solve() -> None:
    solved = run_json("solve", LLAMA, "--no-sensitivity", "--confidence", "0.95", "--samples", "300")
    compared = run_json("compare", LLAMA, "--confidence", "0.95", "--samples", "300")
    check("compare", compared)
    assert compared["optimum"]["offer_id"] == solved["plan"]["offer_id"]
    assert compared["optimum"]["gpu_count"] == solved["plan"]["gpu_count"]


@pytest.mark.slow
def test_plan_document() -> None:
    data = run_json("plan", PORTFOLIO, codes=(0, 3))
    check("plan", data)
    assert data["status"] == "optimal" and data["model"]["termination"] == "optimal"
    assert 0.0 <= data["model"]["mip_gap"] <= data["model"]["mip_gap_tolerance"]


CHAT = str(EX / "chat-service-llama3-70b.yaml")


@pytest.mark.parametrize("incumbent", [True, False], ids=["with-a-plan", "without"])
@pytest.mark.parametrize("command", ["plan", "solve-serving"])
def test_a_stopped_search_is_a_stop_in_json(stop_early: Any, command: str, incumbent: bool) -> None:
    """A real early stop (CBC: root node only) in the plan and serving documents: status not_solved,
    model.termination says why, no binding limit; with an incumbent the plan/fleet and its gap
    (exit 0), without one none (exit 4)."""
    stop_early(incumbent=incumbent)
    args = ("plan", PORTFOLIO) if command == "plan" else ("solve", CHAT, "--no-sensitivity")
    data = run_json(*args, "--solver", "cbc", codes=(0,) if incumbent else (4,))
    check(command, data)
    assert data["status"] == "not_solved" and data["binding"] is None
    assert data["model"]["termination"] == "terminated_by_limit"
    found = data["cost"] if command == "plan" else data["plan"]
    if incumbent:
        assert found is not None and "not proven optimal" in data["explanation"]
        assert data["model"]["mip_gap"] is not None
    else:
        assert found is None and data["model"]["mip_gap"] is None
        assert data["explanation"].endswith("try the other solver (--solver highs or cbc)")


def packing_portfolio(folder: Path) -> str:
    """Ten jobs over two periods on the bundled catalog, with an 8- and a 4-GPU box to buy: about
    140 variables, which HiGHS does not finish in 1 ms. research-lab.yaml's program has 22: after a
    few plans in the same process (a pytest worker's) about half of its 1 ms runs end optimal."""
    jobs = [{"name": f"j{j}", "period": 1 + j % 2, "workload": {"kind": "custom", "total_flops": (2 + 3 * j) * 1e19},
             "precision": ["bf16"], "scenario": "cloud", "constraints": {"max_gpus": 8}} for j in range(10)]
    boxes = [{"option": f"box{gpus}", "gpu": "H100-SXM", "gpus": gpus, "capex_usd": 500.0 * gpus, "power_kw": gpus,
              "electricity_usd_per_kwh": 0.1, "resale_fraction": 0.0} for gpus in (8, 4)]
    path = folder / "packing.yaml"
    path.write_text(json.dumps({"name": "packing", "horizon": {"periods": 2, "period_hours": 100.0}, "jobs": jobs,
                                "purchase_options": boxes}), encoding="utf-8")   # JSON is YAML
    return str(path)


@pytest.mark.parametrize("command", ["plan", "solve-serving"])
def test_a_time_limit_is_not_infeasible_in_json(command: str, tmp_path: Path) -> None:
    """--time-limit 0.001 (a real time limit): status time_limit, never infeasible, exit 0 with the
    best plan found or (usually) exit 4 without one."""
    args = ("plan", packing_portfolio(tmp_path)) if command == "plan" else ("solve", CHAT, "--no-sensitivity")
    data = run_json(*args, "--time-limit", "0.001", codes=(0, 4))
    check(command, data)
    assert data["status"] == "time_limit" and data["binding"] is None
    assert data["model"]["termination"] == "time_limit"


@pytest.mark.slow
def test_calibrate_and_backtest_documents(tmp_path: Path) -> None:
    dry = run_json("calibrate", HISTORY, "--dry-run")
    check("calibrate", dry)
    assert dry["written"] is None
    rows = tmp_path / "rows.csv"
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["calibrate", HISTORY, "--rows-to", str(rows), "-f", "json", "-o", str(report)])
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    check("calibrate", written)
    assert written["written"] == str(rows) and rows.read_text().startswith("scenario,")
    check("backtest", run_json("backtest", HISTORY))


def test_catalog_documents(tmp_path: Path) -> None:
    listed = run_json("catalog", "list", "--gpu", "H100")
    check("catalog-list", listed)
    first = listed["offers"][0]["offer_id"]
    check("catalog-show", run_json("catalog", "show", first))
    check("catalog-validate", run_json("catalog", "validate"))
    imported = run_json("catalog", "import", SHORT_QUOTE)
    check("catalog-import", imported)
    assert imported["form"] == "short" and imported["rows_imported"] == 3


def test_refresh_document_when_a_source_fails() -> None:
    data = run_json("catalog", "refresh", "--source", "azure", "--url", "azure=http://127.0.0.1:9/prices",
                    "--dry-run", codes=(1,))
    check("catalog-refresh", data)
    assert data["status"] == "partial" and data["sources"][0]["status"] != "ok"


# ---------------------------------------------------------------------------
# errors are documents too, with the same exit code


ERROR_CASES = {
    "unknown-gpu-in-job": (["solve", "{bad_job}"], 2, "familiar.gpu"),
    "enum-typo": (["catalog", "list", "--sort", "price"], 2, "--sort"),
    "unknown-offer": (["catalog", "show", "no-such-offer"], 2, None),
    "missing-job-file": (["estimate", "{missing}"], 2, None),
    "bad-catalog": (["catalog", "validate", "{bad_catalog}"], 2, None),
    "bad-quotes": (["compare", LLAMA, "--quotes", "{bad_job}"], 2, None),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_are_json_documents(case: str, tmp_path: Path) -> None:
    bad_job = tmp_path / "job.yaml"
    bad_job.write_text("workload: {kind: custom, total_flops: 1e18}\nfamiliar: {gpu: A100-80G}\n")
    bad_catalog = tmp_path / "cat"
    bad_catalog.mkdir()
    (bad_catalog / "gpus.csv").write_text("gpu,memory_gb\nX,-1\n")
    args, code, field = ERROR_CASES[case]
    args = [a.format(bad_job=bad_job, missing=tmp_path / "nope.yaml", bad_catalog=bad_catalog) for a in args]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    check("error", data)
    assert data["status"] == "error" and data["code"] == code and data["message"]
    assert data["command"].startswith("flopopt " + args[0])
    if field:
        assert data["field"] == field
    assert result.stderr.startswith(("error:", "Usage:"))   # people still read stderr


def test_enum_typo_says_did_you_mean() -> None:
    result = runner.invoke(app, ["catalog", "list", "--sort", "price"])
    assert result.exit_code == 2
    assert "Did you mean 'price_per_gpu_hour' or 'price_per_hour'?" in result.output


def test_without_json_errors_leave_stdout_empty() -> None:
    result = runner.invoke(app, ["catalog", "show", "no-such-offer"])
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.startswith("error:")


def test_version() -> None:
    import importlib.metadata

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"flopopt {importlib.metadata.version('flopopt')}"


# ---------------------------------------------------------------------------
# text that fits: COLUMNS=80, no line wider, no offer id split

TEXT_COMMANDS = [
    ["solve", LLAMA, "--samples", "200"],
    ["estimate", LLAMA],
    ["compare", LLAMA, "--quotes", SHORT_QUOTE],
    ["catalog", "list"],
    ["catalog", "show", "lambda-gpu_1x_gh200-ondemand"],
    ["backtest", HISTORY],
    ["calibrate", HISTORY, "--dry-run"],
    ["plan", PORTFOLIO],
]


@functools.cache   # the same for every command below: the catalog and the quote do not change
def _ids_and_providers() -> tuple[set[str], set[str]]:
    offers = run_json("catalog", "list")["offers"]
    quoted = run_json("compare", LLAMA, "--quotes", SHORT_QUOTE, "--no-sensitivity")
    ids = {o["offer_id"] for o in offers} | {q["best"]["offer_id"] for q in quoted["quotes"] if q["best"]}
    providers = {o["provider"] for o in offers} | {q["best"]["provider"] for q in quoted["quotes"] if q["best"]}
    return ids, providers


def split_fragments(text: str, ids: set[str], providers: set[str]) -> list[str]:
    """Words that are the start of an offer id but not the whole id: an id broken across lines."""
    fragments = []
    for word in re.split(r"[\s│┃,;()]+", text):
        word = word.strip(".:")
        if len(word) < 6 or word in ids or word in providers or not re.search(r"[-_.]", word):
            continue
        if any(i.startswith(word) for i in ids):
            fragments.append(word)
    return fragments


@pytest.mark.slow
@pytest.mark.parametrize("args", TEXT_COMMANDS, ids=lambda a: " ".join(a[:2]).replace(str(EX) + "/", ""))
def test_text_fits_80_columns_and_ids_stay_whole(args: list[str]) -> None:
    ids, providers = _ids_and_providers()
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code in (0, 3), result.output
    lines = result.stdout.splitlines()
    assert lines
    wide = [line for line in lines if len(line) > 80]
    assert not wide, f"{len(wide)} line(s) wider than 80: {wide[0]!r}"
    assert split_fragments(result.stdout, ids, providers) == []


def test_ids_fragment_detector_catches_a_broken_id() -> None:
    ids = {"lambda-gpu_1x_gh200-ondemand"}
    assert split_fragments("x lambda-gpu_1x_gh200-ondem\nand y", ids, {"lambda"}) == ["lambda-gpu_1x_gh200-ondem"]
    assert split_fragments("lambda lambda-gpu_1x_gh200-ondemand", ids, {"lambda"}) == []


def test_wider_columns_show_more() -> None:
    narrow = runner.invoke(app, ["solve", LLAMA, "--no-sensitivity"], env={"COLUMNS": "80"}).stdout
    wide = runner.invoke(app, ["solve", LLAMA, "--no-sensitivity"], env={"COLUMNS": "160"}).stdout
    assert "hidden at 80 columns" in narrow and "hidden at" not in wide
    assert max(len(line) for line in wide.splitlines()) > 80


def test_one_duration_unit_per_column() -> None:
    from flopopt.cli.render import hours_cells

    cells = hours_cells([0.818, 1202.0, 5.25])
    assert cells == ["0.8 h", "1,202 h", "5.2 h"]
    assert hours_cells([0.5, 0.25]) == ["30.0 min", "15.0 min"]
    assert not any(math.isnan(v) for v in [0.0])


# ---------------------------------------------------------------------------
# names resolve the same way in job files and on the command line


def test_gpu_prefix_in_a_job_matches_like_catalog_list(tmp_path: Path) -> None:
    job = tmp_path / "h100.yaml"
    job.write_text("workload: {kind: custom, total_flops: 1e20}\nconstraints: {gpus: [h100]}\n")
    data = run_json("solve", str(job), "--no-sensitivity", "--all-candidates")
    listed = {o["gpu"] for o in run_json("catalog", "list", "--gpu", "h100")["offers"]}
    assert {c["gpu"] for c in data["candidates"]} == listed == {"H100-NVL", "H100-PCIe", "H100-SXM"}


@pytest.mark.parametrize(("constraint", "field"), [("gpus: [H10X]", "constraints.gpus"),
                                                   ("providers: [lambd-labs]", "constraints.providers")])
def test_unknown_names_in_a_job_exit_2_with_suggestions(tmp_path: Path, constraint: str, field: str) -> None:
    job = tmp_path / "typo.yaml"
    job.write_text(f"workload: {{kind: custom, total_flops: 1e18}}\nconstraints: {{{constraint}}}\n")
    result = runner.invoke(app, ["solve", str(job), "-f", "json"])
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    check("error", data)
    assert data["field"] == field and "did you mean" in data["message"]


def test_unknown_gpu_on_the_command_line_exits_2() -> None:
    result = runner.invoke(app, ["catalog", "list", "--gpu", "H1000"])
    assert result.exit_code == 2 and "did you mean" in result.stderr


# ---------------------------------------------------------------------------
# the contract's own examples are what the commands print

CONTRACT_DOC = (REPO / "docs" / "output-contract.md").read_text(encoding="utf-8")


def _json_after(marker: str) -> dict[str, Any]:
    """The first JSON object printed in the console block that starts with ``marker``."""
    start = CONTRACT_DOC.index(marker)
    text = CONTRACT_DOC[CONTRACT_DOC.index("\n{", start) + 1:]
    obj, _ = json.JSONDecoder().raw_decode(text)
    assert isinstance(obj, dict)
    return obj


def test_contract_doc_examples_are_current() -> None:
    shown = _json_after("$ flopopt solve examples/llama2-7b-pretrain.yaml --format json --no-sensitivity")
    data = run_json("solve", LLAMA, "--no-sensitivity")
    assert shown == {"schema_version": data["schema_version"], "status": data["status"],
                     "plan": data["plan"]["offer_id"], "cost": data["plan"]["cost_usd"]}
    shown_error = _json_after("$ flopopt catalog list --sort price -f json")
    result = runner.invoke(app, ["catalog", "list", "--sort", "price", "-f", "json"])
    assert json.loads(result.stdout) == shown_error and f"exit {result.exit_code}" in CONTRACT_DOC


def test_docs_never_point_outside_the_repository() -> None:
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text and "../shared" not in text, path
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith(("http://", "https://")):
                assert (path.parent / target).exists(), f"{path.name}: broken link {target}"
