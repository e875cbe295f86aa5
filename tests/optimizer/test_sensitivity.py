"""Pitfalls, stress tests, break-even and Monte Carlo against hand-worked consequences (issue 6).

Arithmetic shared by the cases: F = 1e18 FLOPs at fp32 on a 20 TFLOP/s GPU "G" at $1/h,
cloud scenario 0.3–0.5 → 0.4 with buffer 0.35: one GPU needs 46.875 h. Several single-GPU
instances scale over Ethernet at 0.90 per doubling.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

import pytest
from builders import gpu_row, offer_row
from flopopt.cli.main import app
from flopopt.optimizer.job import load_job, parse_job
from flopopt.optimizer.solve import Planner, solve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

GPUS = [gpu_row("G", peak_tflops_fp32=20.0, peak_tflops_tf32=40.0, peak_tflops_bf16=80.0),
        gpu_row("H", peak_tflops_fp32=60.0)]


def _job(**extra: Any) -> Any:
    data: dict[str, Any] = {"workload": {"kind": "custom", "total_flops": 1e18}, "precision": ["fp32"],
                            "scenario": "cloud"}
    data.update(extra)
    return parse_job(data)


def _item(result: Any, name: str) -> Any:
    return next(s for s in result.sensitivity if s.name == name)


@pytest.mark.slow
def test_over_optimism_underestimates_hours_by_attenuation_and_buffer(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("one", "G", 1.0, max_instances=1)])
    item = _item(solve(_job(), catalog, samples=200), "over_optimism")
    # Believed: 1e18 / 20e12 / 3600 = 13.889 h. Real: 46.875 h = 13.889 × (1/0.4) × 1.35 = 3.375×.
    assert item.believed_hours == pytest.approx(1e18 / 20e12 / 3600)
    assert item.hours == pytest.approx(46.875)
    assert item.hours / item.believed_hours == pytest.approx(2.5 * 1.35)


def test_over_optimism_misses_the_deadline(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=8)])
    result = solve(_job(constraints={"deadline_hours": 20}), catalog, samples=200)
    item = _item(result, "over_optimism")
    # The optimist buys 1 GPU (13.9 h believed) which really needs 46.875 h: 134% late.
    assert item.plan is not None and item.plan.gpu_count == 1
    assert not item.deadline_met and item.within_budget
    assert "misses the 20 h deadline by 134%" in item.summary
    # The realistic optimum needs 3 GPUs (every count is considered, not only powers of two):
    # 46.875 / 3 / 0.9^log2(3) = 18.47 h ≤ 20 h (2 GPUs: 46.875 / 2 / 0.9 = 26.0 h).
    assert result.plan is not None and result.plan.gpu_count == 3


def test_over_conservatism_overbuys(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=8)])
    result = solve(_job(constraints={"deadline_hours": 60}), catalog, samples=200)
    item = _item(result, "over_conservatism")
    # Believed 1-GPU hours: 1e18 × 1.5 / (20e12 × 0.3) / 3600 = 69.4 h > 60 → buys 2 GPUs.
    # Realistic cost of 2 GPUs: 2 × 46.875 / 2 / 0.9 = 52.08 GPU-h vs 46.875 → +11.1%.
    assert item.plan is not None and item.plan.gpu_count == 2
    assert item.delta_cost_pct == pytest.approx((1 / 0.9 - 1) * 100)
    assert item.deadline_met


def test_tech_bias_skipped_without_familiar_and_priced_with_it(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1),
                                  offer_row("h", "H", 6.0, max_instances=1)])
    plain = _item(solve(_job(), catalog, samples=200), "tech_bias")
    assert plain.skipped and "familiar" in plain.skipped
    biased = _item(solve(_job(familiar={"gpu": "H"}), catalog, samples=200), "tech_bias")
    # H: 15.625 h × $6 = $93.75 vs the optimum G: $46.875 → +100%.
    assert biased.plan is not None and biased.plan.gpu == "H"
    assert biased.delta_cost_pct == pytest.approx(100.0)


def test_empiricism_reuses_the_history_scenario_factor(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    item = _item(solve(_job(history_scenario="lab"), catalog, samples=200), "empiricism")
    # Lab factor 0.75 with its ±10% → 20% buffer: 1e18 × 1.2 / (20e12 × 0.75) / 3600 = 22.2 h believed.
    assert item.believed_hours == pytest.approx(200 / 9)
    assert item.hours == pytest.approx(46.875)


@pytest.mark.slow
def test_stress_tests(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=8)])
    result = solve(_job(constraints={"deadline_hours": 60, "budget_usd": 60}), catalog, samples=200)
    budget = _item(result, "budget_halved")
    assert budget.plan is None and "budget_usd binds" in budget.summary  # $30 < $46.875
    deadline = _item(result, "deadline_halved")
    assert deadline.plan is not None and deadline.plan.hours <= 30 and deadline.deadline_met
    precision = _item(result, "precision_up")
    assert precision.skipped and "highest" in precision.skipped
    bf16 = solve(parse_job({"workload": {"kind": "custom", "total_flops": 1e18}, "precision": ["bf16"],
                            "scenario": "cloud"}), catalog, samples=200)
    up = _item(bf16, "precision_up")
    # bf16 80 TFLOP/s → tf32 40 TFLOP/s: twice the hours on one GPU, same $ per GPU-hour → +100%.
    assert up.plan is not None and up.plan.precision == "tf32"
    assert up.delta_cost_pct == pytest.approx(100.0)


def test_a_re_plan_stopped_without_a_plan_says_so(make_catalog: Any, stop_at_time_limit: Any) -> None:
    """A stress or pitfall re-plan whose solver stops before finding a plan has proven nothing: its
    summary says the re-plan stopped and names no binding limit (the halved budget would otherwise
    be explained as binding, as in test_stress_tests)."""
    from flopopt.optimizer.sensitivity import pitfalls, stress_tests

    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=8)])
    job = _job(constraints={"deadline_hours": 60, "budget_usd": 60})
    optimum = Planner.build(job, catalog).plan().plan
    assert optimum is not None
    stop_at_time_limit(incumbent=False)
    planner = replace(Planner.build(job, catalog), time_limit_seconds=2.0)
    stopped = ("the re-plan stopped: the solver stopped at its time limit (2 s) before finding a plan; "
               "raise the time limit")
    stress = {item.name: item for item in stress_tests(planner, optimum)}
    assert stress["budget_halved"].plan is None and stress["budget_halved"].summary == stopped
    assert stress["deadline_halved"].plan is None and stress["deadline_halved"].summary == stopped
    tried = [item for item in pitfalls(planner, optimum) if item.skipped is None]
    assert tried and all(item.plan is None and item.summary == stopped for item in tried)


def test_break_even_attenuation(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    result = solve(_job(constraints={"deadline_hours": 60}), catalog, samples=200)
    # Actual hours (no buffer, as in the Monte Carlo) = 46.875 / 1.35 × 0.4 / a ≤ 60
    # ⟺ a ≥ 34.72 × 0.4 / 60 = 0.2315 (on a 0.001 grid: 0.232).
    assert result.break_even["attenuation_min"] == pytest.approx(46.875 / 1.35 * 0.4 / 60, abs=1e-3)
    assert "buffer excluded" in result.break_even["attenuation_min_note"]


@pytest.mark.slow
def test_monte_carlo_matches_the_uniform_distribution(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    result = solve(_job(constraints={"deadline_hours": 50}), catalog, samples=20000, seed=7)
    # The cloud range 0.3–0.5 is read as P10–P90 around the median 0.4 (split log-normal):
    # below the median σ = ln(0.4 / 0.3) / 1.2816 = 0.2245. Actual hours (no buffer) =
    # 1e18 / (20e12 · a) / 3600 ≤ 50 ⟺ a ≥ 0.2778 ⟺ z ≥ ln(0.2778 / 0.4) / 0.2245 = −1.624
    # → P = Φ(1.624) = 0.948.
    a_star = 1e18 / (20e12 * 50 * 3600)
    sigma = math.log(0.4 / 0.3) / 1.2815515655446004
    expected = 0.5 * (1 + math.erf(-math.log(a_star / 0.4) / sigma / math.sqrt(2)))
    assert expected == pytest.approx(0.948, abs=0.001)
    assert result.risk is not None
    assert result.risk.p_deadline == pytest.approx(expected, abs=0.01)
    # P50 hours is the point estimate at the median: 1e18 / (20e12 · 0.4) / 3600 = 34.72 h
    assert result.risk.hours_p50 == pytest.approx(1e18 / (20e12 * 0.4) / 3600, rel=0.02)
    again = solve(_job(constraints={"deadline_hours": 50}), catalog, samples=20000, seed=7)
    assert again.risk == result.risk


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deadline=st.floats(20, 200), more=st.floats(1.0, 3.0))
def test_p_deadline_grows_when_the_deadline_is_relaxed(make_catalog: Any, deadline: float, more: float) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    planner = Planner.build(_job(), catalog)
    chosen = planner.plan().chosen
    from flopopt.optimizer.sensitivity import monte_carlo

    tight = monte_carlo(planner.with_limits(deadline_hours=deadline, budget_usd=None), chosen, 500, 3)
    loose = monte_carlo(planner.with_limits(deadline_hours=deadline * more, budget_usd=None), chosen, 500, 3)
    assert loose.p_deadline >= tight.p_deadline


@pytest.mark.slow
def test_confidence_buys_more_gpus_when_the_plain_optimum_is_risky(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=8)])
    job = _job(constraints={"deadline_hours": 28})
    plain = solve(job, catalog, samples=4000, seed=1)
    sure = solve(job, catalog, samples=4000, seed=1, confidence=0.99)
    assert plain.plan is not None and sure.plan is not None
    # Plain: 2 GPUs, planned 46.875 / 2 / 0.9 = 26.0 h ≤ 28 h. Its actual work is 26.0 / 1.35 = 19.3 h at
    # attenuation 0.4; at the 1st percentile of the widened range (0.24 + 0.01 × 0.36 = 0.2436) it takes
    # 19.3 × 0.4 / 0.2436 = 31.7 h > 28 h. With 4 GPUs (14.5 h planned) the same draw takes 17.6 h.
    assert plain.plan.gpu_count == 2
    assert sure.plan.gpu_count == 4
    assert sure.risk is not None and sure.risk.p_deadline is not None and sure.risk.p_deadline >= 0.99


def test_confidence_that_no_plan_can_meet_names_it_binding(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    # One GPU, no budget: planned 46.875 h ≤ 48 h, but P99 of actual hours is 34.7 × 0.4 / 0.2436 = 57 h.
    result = solve(_job(constraints={"deadline_hours": 48}), catalog, samples=2000, seed=1, confidence=0.99)
    assert result.plan is None and result.binding == "confidence"
    assert re.search(r"has a P99 of (5[89]|6[01]) h of actual work against a 48 h deadline — lower --confidence or "
                     r"raise the deadline to (5[89]|6[01]) h", result.explanation or "")


def test_the_deadline_quantile_is_an_explicit_argument_of_the_explanation(make_catalog: Any) -> None:
    """explain_infeasible judges the deadline on the hours it is given (a DeadlineQuantile), not on a
    column it would have to know sensitivity writes: a stray ``hours_quantile`` column changes nothing."""
    import pandas as pd
    from flopopt.optimizer.planner import DeadlineQuantile, explain_infeasible

    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    planner = Planner.build(_job(constraints={"deadline_hours": 40}), catalog)   # one GPU: 46.875 h > 40 h
    cands = planner.assess()
    planned = explain_infeasible(planner, cands)
    assert planned[0] == "deadline_hours" and "needs 47 h; deadline is 40 h" in planned[1]
    stray = replace(cands, table=cands.table.assign(hours_quantile=1.0, quantile_label="P50"))
    assert explain_infeasible(planner, stray) == planned
    sampled = DeadlineQuantile("P95", pd.Series(57.0, index=cands.table.index))
    binding, text = explain_infeasible(planner, cands, sampled)
    assert binding == "confidence"
    assert "has a P95 of 57 h of actual work against a 40 h deadline" in text and "deadline to 57 h" in text


def test_limits_the_job_does_not_set_are_not_stress_tested(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1)])
    result = solve(_job(), catalog, samples=200)
    assert _item(result, "budget_halved").skipped == "skipped: the job sets no budget_usd to halve"
    assert _item(result, "deadline_halved").skipped == "skipped: the job sets no deadline_hours to halve"
    assert result.risk is not None and result.risk.p_deadline is None and result.risk.p_budget is None


def test_tech_bias_reports_how_far_the_familiar_choice_misses(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("g", "G", 1.0, max_instances=1),
                                  offer_row("h", "H", 1.0, max_instances=1)])
    # Only H (15.6 h) meets a 20 h deadline; the familiar G needs 46.875 h.
    result = solve(_job(familiar={"gpu": "G"}, constraints={"deadline_hours": 20}), catalog, samples=200)
    item = _item(result, "tech_bias")
    assert item.plan is not None and item.plan.gpu == "G" and not item.deadline_met
    assert "misses the 20 h deadline by 134%" in item.summary


@pytest.mark.slow
def test_every_example_reports_all_pitfalls_and_stress_tests() -> None:
    import glob

    runner = CliRunner()
    for path in sorted(glob.glob("examples/*.yaml")):
        if load_job(path).workload.kind == "transformer_serving":
            continue  # fleets have their own checks (tests/optimizer/test_serving.py)
        out = runner.invoke(app, ["solve", path, "--format", "json", "--samples", "300"])
        assert out.exit_code == 0, (path, out.output)  # every shipped example has a plan
        data = json.loads(out.stdout)
        names = {s.get("pitfall") or s.get("stress") for s in data["sensitivity"]}
        assert names == {"over_optimism", "over_conservatism", "tech_bias", "empiricism",
                         "budget_halved", "deadline_halved", "precision_up"}, path
        limits = data["job"]["constraints"]
        for s in data["sensitivity"]:
            assert set(s) >= {"assumption", "plan", "hours", "cost_usd", "delta_cost_pct", "deadline_met",
                              "within_budget", "skipped", "summary"}
            if s["skipped"]:
                assert s["summary"].startswith("skipped:"), (path, s)
                continue
            if "stress" in s:
                assert (s["plan"] is None) == (s["hours"] is None), (path, s)
                continue
            if s["plan"] is None:  # the mistaken planner found nothing at all; it must say so
                assert s["summary"] and s["hours"] is None, (path, s)
                continue
            if limits["deadline_hours"] is not None:
                assert s["deadline_met"] == (s["hours"] <= limits["deadline_hours"] + 1e-9), (path, s)
            if limits["budget_usd"] is not None:
                assert s["within_budget"] == (s["cost_usd"] <= limits["budget_usd"] * (1 + 1e-12)), (path, s)
        assert data["risk"]["p_deadline"] is None or 0.0 <= data["risk"]["p_deadline"] <= 1.0
        assert data["risk"]["hours_p90"] is not None and not math.isnan(data["risk"]["hours_p90"])
