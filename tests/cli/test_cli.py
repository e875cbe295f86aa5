"""The ``flopopt`` command line (cli/main.py): help texts, JSON contracts, --output, exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import flopopt
import pytest
import typer.main
from builders import REPO
from flopopt.cli.main import app
from typer.testing import CliRunner

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
SEED = REPO / "examples" / "seed-worked-example.yaml"

SOLVE_KEYS = {"status", "job", "estimate", "plan", "candidates", "sensitivity", "break_even", "risk",
              "binding"}
PLAN_KEYS = {"offer_id", "provider", "kind", "gpu", "gpu_count", "instances", "precision", "scenario",
             "attenuation", "buffer", "hours", "cost_usd", "price_as_of"}
ESTIMATE_KEYS = {"schema_version", "status", "job", "estimate", "rows", "per_gpu", "no_fit"}
PER_GPU_KEYS = {"gpu", "precision", "scenario", "attenuation", "buffer", "gpu_count", "hours"}


def command_paths() -> Iterator[tuple[str, ...]]:
    """Every registered command and group, discovered from the app (new commands are covered)."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                yield from walk(sub, path + (name,))

    yield from walk(typer.main.get_command(app), ())


ALL_COMMANDS = list(command_paths())


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_expected_commands_are_registered() -> None:
    names = {" ".join(p) for p in ALL_COMMANDS}
    assert {"solve", "estimate", "catalog", "catalog list", "catalog show", "catalog validate",
            "catalog import"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "flopopt")
def test_help_has_example(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert "Example" in result.stdout, f"`flopopt {' '.join(path)} --help` shows no example"
    # An example that names a file in examples/ must name one that exists.
    for name in re.findall(r"examples/([\w.-]+\.yaml)", result.stdout):
        assert (REPO / "examples" / name).is_file(), name


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


def _flopopt_command() -> list[str]:
    script = shutil.which("flopopt", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from flopopt.cli.main import main; main()"]


@pytest.mark.slow
def test_help_in_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ, FLOPOPT_USER_DIR=str(tmp_path / "u"), FLOPOPT_CACHE_DIR=str(tmp_path / "c"))
    proc = subprocess.run([*_flopopt_command(), "--help"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Example" in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_solves_to_json(runner: CliRunner, example: Path) -> None:
    result = runner.invoke(app, ["solve", str(example), "--format", "json", "--no-sensitivity"])
    assert result.exit_code in (0, 3), result.output
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(data, dict)
    assert SOLVE_KEYS <= set(data)
    assert data["status"] in ("optimal", "infeasible")
    assert data["job"]["name"]
    assert {"total_flops", "formula", "terms"} <= set(data["estimate"])
    assert data["estimate"]["total_flops"] > 0
    if result.exit_code == 0:
        assert data["status"] == "optimal"
        assert PLAN_KEYS <= set(data["plan"])
        assert data["plan"]["gpu_count"] >= 1
    else:
        assert data["status"] == "infeasible"
        assert data["plan"] is None
        assert data["binding"]
    assert isinstance(data["candidates"], list)


def test_infeasible_exits_3_and_names_binding(runner: CliRunner, tmp_path: Path) -> None:
    job = tmp_path / "impossible.yaml"
    job.write_text("workload: {kind: transformer_training, model: gpt3-175b, tokens: 300B}\n"
                   "constraints: {deadline_hours: 1}\n")
    result = runner.invoke(app, ["solve", str(job), "--format", "json", "--no-sensitivity"])
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "infeasible" and data["plan"] is None
    assert data["binding"] == "deadline_hours"
    assert result.stderr.startswith("infeasible: deadline_hours")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_estimate_json_contract(runner: CliRunner, example: Path) -> None:
    result = runner.invoke(app, ["estimate", str(example), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == ESTIMATE_KEYS
    assert {"total_flops", "formula", "terms"} <= set(data["estimate"])
    assert data["per_gpu"], "no GPU rows"
    for row in data["per_gpu"]:
        assert PER_GPU_KEYS <= set(row)
        assert row["hours"] > 0
    # one row per GPU type, at the fewest GPUs that hold the job (powers of two)
    assert len({row["gpu"] for row in data["per_gpu"]}) == len(data["per_gpu"])
    assert all(row["fits_memory"] and row["gpu_count"] & (row["gpu_count"] - 1) == 0 for row in data["per_gpu"])


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_estimate_text_formats(runner: CliRunner, fmt: str) -> None:
    result = runner.invoke(app, ["estimate", str(SEED), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "seed-worked-example" in result.stdout


def test_output_file_is_written(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "seed.json"  # missing parent folders are created
    result = runner.invoke(app, ["estimate", str(SEED), "--format", "json", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) == ESTIMATE_KEYS
    assert [p.name for p in out.parent.iterdir()] == ["seed.json"]  # no temp file left behind


def test_solve_output_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["solve", str(SEED), "--format", "json", "--no-sensitivity",
                                 "-o", str(out)])
    assert result.exit_code in (0, 3), result.output
    assert SOLVE_KEYS <= set(json.loads(out.read_text(encoding="utf-8")))


@pytest.mark.parametrize("where", ["under_a_file", "is_a_directory"])
def test_unwritable_output_exits_2(runner: CliRunner, tmp_path: Path, where: str) -> None:
    # Tests may run as root, so permissions cannot make a path unwritable; use the file system's
    # shape instead: a "folder" that is a file, or an output path that is a folder.
    blocker = tmp_path / "blocker"
    if where == "under_a_file":
        blocker.write_text("not a folder")
        out = blocker / "out.json"
    else:
        blocker.mkdir()
        out = blocker
    result = runner.invoke(app, ["estimate", str(SEED), "--format", "json", "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {out}: cannot write")
    assert "Traceback" not in result.output
    if where == "is_a_directory":
        assert list(blocker.iterdir()) == []  # the temp file was cleaned up


def test_bad_format_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["estimate", str(SEED), "--format", "xml"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------
# Package surface


def test_all_names_resolve() -> None:
    assert flopopt.__all__, "flopopt.__all__ is empty"
    assert len(set(flopopt.__all__)) == len(flopopt.__all__)
    for name in flopopt.__all__:
        assert getattr(flopopt, name) is not None, name


def test_lazy_names_match_their_modules() -> None:
    from flopopt.optimizer.errors import FlopoptError, InputError
    from flopopt.optimizer.job import load_job

    assert flopopt.FlopoptError is FlopoptError
    assert flopopt.InputError is InputError
    assert flopopt.load_job is load_job
    assert issubclass(flopopt.CatalogError, flopopt.InputError)
    assert issubclass(flopopt.SolverError, flopopt.FlopoptError)
    assert flopopt.__version__ == importlib.metadata.version("flopopt")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        flopopt.nope  # noqa: B018


def test_library_use_end_to_end() -> None:
    job = flopopt.load_job(SEED)
    catalog = flopopt.load_catalog(use_user_dir=False, use_cache=False)
    estimate = flopopt.estimate_flops(job.workload, catalog.model_table())
    assert estimate.total_flops == 1e16


def test_solve_stopped_by_its_time_limit_warns_and_exits_0_with_the_plan(runner: CliRunner,
                                                                       stop_at_time_limit: Any) -> None:
    """An unproven plan is still a plan: exit 0, the title says time_limit, a warning line (in the
    report and on stderr) says it is not proven optimal and gives the gap."""
    stop_at_time_limit(incumbent=True, gap=0.0123)
    result = runner.invoke(app, ["solve", str(SEED), "--no-sensitivity", "--time-limit", "2"])
    assert result.exit_code == 0, result.output
    warning = ("warning: the solver stopped at its time limit (2 s): this plan is the best it found, not proven "
               "optimal (relative MIP gap 1.23%); raise the time limit to prove it")
    assert result.stdout.splitlines()[0].endswith(": time_limit")
    assert "PLAN  " in result.stdout and "MIP gap 1.23%" in result.stdout
    assert warning in " ".join(result.stdout.split())                # the report wraps it at the width
    assert result.stderr.strip() == warning


def test_solve_stopped_before_any_plan_exits_4_without_a_relaxation_hint(runner: CliRunner,
                                                                        stop_at_time_limit: Any) -> None:
    stop_at_time_limit(incumbent=False)
    result = runner.invoke(app, ["solve", str(SEED), "--no-sensitivity", "--time-limit", "2"])
    assert result.exit_code == 4, result.output
    assert "NO PLAN  status: time_limit" in result.stdout
    assert result.stderr.strip() == ("stopped: the solver stopped at its time limit (2 s) before finding a plan; "
                                     "raise the time limit")
    assert "infeasible" not in result.output and "raise the deadline" not in result.output


@pytest.mark.parametrize("command", ["solve", "plan"])
def test_time_limit_must_be_positive(runner: CliRunner, command: str) -> None:
    target = SEED if command == "solve" else REPO / "examples" / "portfolio" / "research-lab.yaml"
    result = runner.invoke(app, [command, str(target), "--time-limit", "0"])
    assert result.exit_code == 2 and "--time-limit" in result.stderr


def test_plan_stopped_before_any_plan_exits_4_without_a_relaxation_hint(runner: CliRunner, stop_early: Any) -> None:
    """plan's exit codes match solve's: a solver stopped before any plan (CBC, root node only, no
    heuristics) exits 4, names no binding limit and suggests no relaxation."""
    stop_early(incumbent=False)
    portfolio = REPO / "examples" / "portfolio" / "research-lab.yaml"
    result = runner.invoke(app, ["plan", str(portfolio), "--solver", "cbc"])
    assert result.exit_code == 4, result.output
    assert "NO PLAN  status: not_solved" in result.stdout
    assert result.stderr.strip() == ("stopped: the solver stopped at a node, solution or objective limit before "
                                     "finding a plan; try the other solver (--solver highs or cbc)")
    assert "infeasible" not in result.output and "raise it by" not in result.output


def test_plan_stopped_with_a_plan_warns_and_exits_0(runner: CliRunner, stop_early: Any) -> None:
    """A stopped search's incumbent is still a plan: exit 0, the title says the status, a warning (in
    the report and on stderr) says it is not proven optimal and gives the gap."""
    stop_early()
    portfolio = REPO / "examples" / "portfolio" / "research-lab.yaml"
    result = runner.invoke(app, ["plan", str(portfolio), "--solver", "cbc", "--time-limit", "60"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith(": not_solved") and "TOTAL " in result.stdout
    assert "MIP gap" in result.stdout
    warning = result.stderr.strip()
    assert warning.startswith("warning: the solver stopped at a node, solution or objective limit: this plan is "
                              "the best it found, not proven optimal (relative MIP gap ")
    assert warning in " ".join(result.stdout.split())               # the report wraps it at the width


def test_the_plan_line_shows_the_list_price_where_the_effective_cost_differs(make_catalog: Any) -> None:
    """A rental's effective cost is its list price (one number); owned hardware shows both."""
    from builders import gpu_row, offer_row
    from flopopt.cli.render import plan_hourly_cost
    from flopopt.optimizer.job import parse_job
    from flopopt.optimizer.solve import solve

    catalog = make_catalog([gpu_row("G", peak_tflops_fp32=60.0)], [
        offer_row("rent", "G", 8.0, gpus_per_instance=2, max_instances=1),
        offer_row("mine", "G", 0.2, kind="owned", gpus_per_instance=4, max_instances=1, capex_usd=87600,
                  amortization_years=2, utilization=1.0, power_kw=2.0, electricity_usd_per_kwh=0.15, sunk="false")])
    job = parse_job({"workload": {"kind": "custom", "total_flops": 1e18}, "precision": ["fp32"]})
    plans = {c.plan.offer_id: c.plan for c in solve(job, catalog, sensitivity=False).candidates}
    assert plan_hourly_cost(plans["rent"]) == "$8.00/instance-h ($4.00/GPU-h)"
    assert plan_hourly_cost(plans["mine"]) == ("effective $5.50/instance-h ($1.38/GPU-h): list price "
                                               "$0.20/instance-h plus amortised capex and power")
