"""No bundled row is the user's hardware; owned machines come from the user, and count as owned.

The bundled catalog once carried a DGX A100 and a 2×RTX-4090 workstation as if the user
owned them: ``solve`` planned on them and ``plan`` booked a job on the workstation as
rented. Owned hardware now comes only from the user's catalog, ``--catalog``, a quotes
file or a portfolio (``examples/owned-machines.csv`` shows the format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import REPO, gpu_row, offer_row
from flopopt.catalogs.loader import load_catalog
from flopopt.cli.main import app
from flopopt.optimizer.portfolio import parse_portfolio
from flopopt.optimizer.procurement import plan
from typer.testing import CliRunner



@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))


def owned_job(tmp_path: Path) -> Path:
    job = {"name": "owned-only", "workload": {"kind": "custom", "total_flops": 1e18},
           "constraints": {"offer_kinds": ["owned"]}}
    path = tmp_path / "owned.yaml"
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    return path


def test_no_bundled_row_is_owned() -> None:
    offers = load_catalog(use_user_dir=False, use_cache=False).offers
    assert not (offers["kind"] == "owned").any()


def test_owned_only_job_without_owned_hardware_exits_3_and_says_how(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["solve", str(owned_job(tmp_path)), "--no-sensitivity"])
    assert result.exit_code == 3, result.output
    assert "no owned hardware is declared" in result.output
    assert "flopopt catalog import" in result.output and "examples/owned-machines.csv" in result.output


def test_a_default_solve_never_plans_on_owned_hardware() -> None:
    result = CliRunner().invoke(app, ["solve", str(REPO / "examples" / "llama3-8b-finetune.yaml"),
                                      "--no-sensitivity", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["plan"]["kind"] != "owned"
    assert all(c["kind"] != "owned" for c in data["candidates"])


def test_imported_owned_machines_are_planned_on(tmp_path: Path) -> None:
    runner = CliRunner()
    imported = runner.invoke(app, ["catalog", "import", str(REPO / "examples" / "owned-machines.csv")])
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(app, ["solve", str(owned_job(tmp_path)), "--no-sensitivity", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    assert json.loads(result.stdout)["plan"]["kind"] == "owned"


def test_plan_books_a_job_on_an_owned_catalog_machine_as_owned(make_catalog: Any) -> None:
    gpu = gpu_row("G1", peak_tflops_fp32=20.0)
    owned = offer_row("my-box", "G1", 0.0, provider="owned", kind="owned", max_instances=1, capex_usd=100.0,
                      amortization_years=4, utilization=1.0, power_kw=0.1, electricity_usd_per_kwh=0.1,
                      sunk="false")
    catalog = make_catalog([gpu], [owned, offer_row("rent", "G1", 50.0)])
    portfolio = parse_portfolio({
        "name": "t", "horizon": {"periods": 1, "period_hours": 1000.0},
        "jobs": [{"name": "j", "period": 1, "workload": {"kind": "custom", "total_flops": 1e17},
                  "precision": ["fp32"], "scenario": "cloud", "constraints": {"max_gpus": 1}}],
    }, "t.yaml")
    result = plan(portfolio, catalog)
    (assignment,) = result.assignments
    assert assignment.offer_id == "my-box"
    (period,) = result.periods
    assert period.rented_gpu_hours == 0.0
    assert period.used_gpu_hours == pytest.approx(assignment.gpu_count * assignment.hours)
    assert period.owned_gpu_hours == pytest.approx(1 * 1000.0)  # one 1-GPU machine for the period
