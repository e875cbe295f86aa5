"""The plan line says where, how old and how good the winning price is, and what quota it needs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from builders import REPO
from flopopt.catalogs.loader import load_catalog
from flopopt.cli.render import plan_summary, render_solve, stale_price_warning
from flopopt.optimizer.job import load_job
from flopopt.optimizer.result import Plan
from flopopt.optimizer.solve import solve



@pytest.fixture(scope="module")
def plan() -> Plan:
    result = solve(load_job(REPO / "examples" / "llama3-8b-finetune.yaml"),
                   load_catalog(use_user_dir=False, use_cache=False), sensitivity=False)
    assert result.plan is not None
    return result.plan


def test_plan_line_names_region_and_price_date(plan: Plan) -> None:
    line = plan_summary(plan)
    assert f"{plan.provider} {plan.kind} in {plan.region}," in line
    assert f"price as of {plan.price_as_of}" in line and "fetched" not in line


def test_fetch_date_shown_only_when_it_differs(plan: Plan) -> None:
    refreshed = dataclasses.replace(plan, price_as_of="2025-05-30", price_fetched_at="2026-12-01")
    assert "price as of 2025-05-30 (fetched 2026-12-01)" in plan_summary(refreshed)
    same = dataclasses.replace(plan, price_as_of="2026-12-01", price_fetched_at="2026-12-01")
    assert "fetched" not in plan_summary(same)


def test_estimate_and_quota_are_said_on_the_plan_line(plan: Plan) -> None:
    primary = dataclasses.replace(plan, price_quality="primary", typical_quota_gpus=None, kind="on_demand")
    assert "estimate" not in plan_summary(primary) and "quota" not in plan_summary(primary)
    estimate = dataclasses.replace(primary, price_quality="estimate")
    assert ", estimate (not from the provider's own page" in plan_summary(estimate)
    over = dataclasses.replace(primary, gpu_count=16, typical_quota_gpus=8.0)
    assert "above the typical default quota of 8 GPUs" in plan_summary(over)
    within = dataclasses.replace(primary, gpu_count=8, typical_quota_gpus=8.0)
    assert "quota" not in plan_summary(within)


def test_an_old_winning_price_is_warned_about(plan: Plan) -> None:
    old = dataclasses.replace(plan, price_as_of="2026-01-01")
    assert stale_price_warning(old, today=dt.date(2026, 6, 29)) is None  # 179 days
    warning = stale_price_warning(old, today=dt.date(2026, 7, 1))
    assert warning is not None and "is 181 days old (as of 2026-01-01; older than 180 days)" in warning


def test_solve_output_carries_the_plan_line_and_json_fields(plan: Plan) -> None:
    result = solve(load_job(REPO / "examples" / "llama3-8b-finetune.yaml"),
                   load_catalog(use_user_dir=False, use_cache=False), sensitivity=False)
    text = render_solve(result, "table")
    # The table report wraps prose at the output width (docs/output-contract.md): compare words.
    assert " ".join(plan_summary(result.plan).split()) in " ".join(text.split())  # type: ignore[arg-type]
    import json

    data = json.loads(render_solve(result, "json"))
    assert {"region", "price_as_of", "price_fetched_at", "price_quality", "typical_quota_gpus"} <= set(data["plan"])
