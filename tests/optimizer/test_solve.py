"""Hand-worked solve cases (issue 5) and the infeasibility explanations.

Shared arithmetic: a custom job of F = 1e18 FLOPs at fp32 in the cloud scenario uses the seed's
cloud row 0.3–0.5 → attenuation 0.4, uncertainty ±20% → buffer 0.2 + (0.2−0.1)/0.2 × 0.3 = 0.35.
On one 20 TFLOP/s GPU: 1e18 × 1.35 / (20e12 × 0.4) / 3600 = 46.875 h; on one 60 TFLOP/s GPU 15.625 h.
"""

from __future__ import annotations

from typing import Any

import pytest
from builders import gpu_row, offer_row
from flopopt.optimizer.job import parse_job
from flopopt.optimizer.solve import Status, solve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SLOW_1GPU_HOURS = 46.875
FAST_1GPU_HOURS = 15.625
GPUS = [gpu_row("SLOW", peak_tflops_fp32=20.0), gpu_row("FAST", peak_tflops_fp32=60.0),
        gpu_row("S24", memory_gb=24, peak_tflops_bf16=100.0)]


def job(flops: float = 1e18, scenario: str = "cloud", **limits: Any) -> Any:
    return parse_job({"workload": {"kind": "custom", "total_flops": flops}, "precision": ["fp32"],
                      "scenario": scenario, "constraints": limits})


def test_cheaper_slow_gpu_misses_deadline_so_dearer_one_wins(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=1),
                                  offer_row("fast", "FAST", 4.0, max_instances=1)])
    relaxed = solve(job(), catalog, sensitivity=False)
    assert relaxed.plan is not None and relaxed.plan.offer_id == "slow"
    assert relaxed.plan.hours == pytest.approx(SLOW_1GPU_HOURS)
    assert relaxed.plan.cost_usd == pytest.approx(46.875)          # $1/h × 46.875 h
    tight = solve(job(deadline_hours=20), catalog, sensitivity=False)
    assert tight.plan is not None and tight.plan.offer_id == "fast"
    assert tight.plan.cost_usd == pytest.approx(4.0 * FAST_1GPU_HOURS)  # $62.50
    slow = next(c for c in tight.candidates if c.plan.offer_id == "slow")
    assert not slow.feasible and slow.reason == "needs 47 h, deadline 20 h"


def test_billing_increments_change_the_optimum(make_catalog: Any) -> None:
    # A: $3.00/h billed per hour: 15.625 h → 16 h → $48.00.  B: $3.05/h per second: $47.66.
    # Without rounding A would win ($46.875).
    catalog = make_catalog(GPUS, [
        offer_row("hourly", "FAST", 3.00, max_instances=1, billing_increment_hours=1),
        offer_row("per-second", "FAST", 3.05, max_instances=1, billing_increment_hours=1 / 3600)])
    result = solve(job(), catalog, sensitivity=False)
    assert result.plan is not None and result.plan.offer_id == "per-second"
    assert result.plan.cost_usd == pytest.approx(3.05 * 15.625, rel=1e-4)
    hourly = next(c.plan for c in result.candidates if c.plan.offer_id == "hourly")
    assert hourly.billed_hours == 16 and hourly.cost_usd == pytest.approx(48.0)


def test_model_that_does_not_fit_a_24gb_card_excludes_it(make_catalog: Any) -> None:
    # 2B params × 16 bytes (mixed-precision Adam) = 32 GB on one GPU > 24 GB.
    catalog = make_catalog(GPUS, [offer_row("small", "S24", 0.5, max_instances=1),
                                  offer_row("big", "FAST", 9.0, max_instances=1)])
    training = parse_job({"workload": {"kind": "transformer_training", "params": "2B", "tokens": "1B"},
                          "precision": ["bf16"], "scenario": "cloud"})
    result = solve(training, catalog, sensitivity=False)
    small = next(c for c in result.candidates if c.plan.offer_id == "small")
    assert not small.feasible and small.reason == "needs 32 GB per GPU, has 24 GB"
    assert result.excluded["does not fit in GPU memory"] == 1


def test_owned_hardware_with_sunk_cost_wins_when_it_meets_the_deadline(make_catalog: Any) -> None:
    # Owned single node → lab scenario (0.7–0.8 → 0.75, ±10% → buffer 0.2):
    # 1e18 × 1.2 / (20e12 × 0.75) / 3600 = 22.22 h at power only, 1 kW × $0.10 = $0.10/h → $2.22.
    owned = offer_row("basement", "SLOW", 0, kind="owned", max_instances=1, capex_usd=30000,
                      amortization_years=3, utilization=0.5, power_kw=1.0, electricity_usd_per_kwh=0.10,
                      sunk="true")
    catalog = make_catalog(GPUS, [owned, offer_row("cloud", "FAST", 1.0, max_instances=1)])
    ok = solve(job(scenario="auto", deadline_hours=30), catalog, sensitivity=False)
    assert ok.plan is not None and ok.plan.offer_id == "basement" and ok.plan.scenario == "lab"
    assert ok.plan.hours == pytest.approx(200 / 9)  # 22.22 h
    assert ok.plan.cost_usd == pytest.approx(0.10 * 200 / 9)
    late = solve(job(scenario="auto", deadline_hours=20), catalog, sensitivity=False)
    assert late.plan is not None and late.plan.offer_id == "cloud"


def test_infeasible_deadline_names_the_relaxation(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0)])
    result = solve(job(deadline_hours=10, max_gpus=1), catalog, sensitivity=False)
    assert result.status is Status.INFEASIBLE and result.plan is None
    assert result.binding == "deadline_hours"
    # With more GPUs (per-GPU instances scale over Ethernet, 0.90 per doubling):
    # 6 GPUs: 46.875/6/0.9^log2(6) = 10.2 h > 10 h; 7 GPUs: 46.875/7/0.9^log2(7) = 9.0 h ≤ 10 h.
    assert "needs 47 h; deadline is 10 h — raise the deadline to 47 h (+369%) or max_gpus to 7" in (
        result.explanation or "")


def test_infeasible_budget_names_the_shortfall(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=1)])
    result = solve(job(budget_usd=40), catalog, sensitivity=False)
    assert result.binding == "budget_usd"
    assert "costs $47; budget is $40 — raise the budget by $7 (+17%)" in (result.explanation or "")


def test_infeasible_memory_is_explained(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("small", "S24", 0.5, max_instances=1)])
    big = parse_job({"workload": {"kind": "transformer_training", "params": "7B", "tokens": "1B"},
                     "precision": ["bf16"]})
    result = solve(big, catalog, sensitivity=False)
    assert result.binding == "memory"
    assert "needs 112 GB per GPU and has 24 GB" in (result.explanation or "")


def test_pruning_keeps_only_the_pareto_front(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=8),
                                  offer_row("fast", "FAST", 3.0, max_instances=8),
                                  # a minimum of 0.01 h keeps it apart from "fast" (see the next test)
                                  offer_row("fast-dear", "FAST", 3.5, max_instances=8, min_hours=0.01)])
    result = solve(job(), catalog, sensitivity=False)
    s = result.stats
    assert s.enumerated == 12 and s.feasible == 12
    # every fast-dear candidate is dominated by the same count of "fast"
    assert s.after_pruning < s.feasible and s.variables == s.after_pruning
    survivors = [c.plan for c in result.candidates if c.feasible]
    front = [p for p in survivors if not any(
        q.cost_usd <= p.cost_usd and q.hours <= p.hours and (q.cost_usd, q.hours) != (p.cost_usd, p.hours)
        for q in survivors)]
    assert s.after_pruning == len({(p.cost_usd, p.hours) for p in front})


def test_time_objective_picks_the_fastest(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=4),
                                  offer_row("fast", "FAST", 3.0, max_instances=4)])
    fastest = parse_job({"workload": {"kind": "custom", "total_flops": 1e18}, "precision": ["fp32"],
                         "scenario": "cloud", "objective": "time"})
    result = solve(fastest, catalog, sensitivity=False)
    assert result.plan is not None
    assert result.plan.hours == min(c.plan.hours for c in result.candidates if c.feasible)


def test_candidates_carry_a_dominated_flag(make_catalog: Any) -> None:
    """Dominated is a flag, not something to parse out of the reason text: the same GPU at a
    higher price (and a minimum of 0.01 h, so it is not merged as identical) is feasible but
    dominated by the cheaper one."""
    catalog = make_catalog(GPUS, [offer_row("cheap", "FAST", 1.0, max_instances=1),
                                  offer_row("dear", "FAST", 3.0, max_instances=1, min_hours=0.01)])
    result = solve(job(deadline_hours=1000), catalog, sensitivity=False)
    by_offer = {c.plan.offer_id: c for c in result.candidates}
    assert by_offer["dear"].feasible and by_offer["dear"].dominated
    assert by_offer["cheap"].feasible and not by_offer["cheap"].dominated


def test_identical_dearer_offers_are_merged_and_counted(make_catalog: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("fast", "FAST", 3.0, max_instances=8, provider="a"),
                                  offer_row("fast-dear", "FAST", 3.5, max_instances=8, provider="b"),
                                  offer_row("fast-capped", "FAST", 3.5, max_instances=4, provider="b")])
    result = solve(job(), catalog, sensitivity=False)
    from flopopt.optimizer.candidates import IDENTICAL_REASON

    assert result.excluded[IDENTICAL_REASON] == 1          # only fast-dear: fast-capped has its own quota
    assert {c.plan.offer_id for c in result.candidates} == {"fast", "fast-capped"}


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(st.floats(1.0, 9.0), min_size=2, max_size=6),
       quotas=st.lists(st.sampled_from(["", "2", "4", "8"]), min_size=6, max_size=6),
       kinds=st.lists(st.sampled_from(["on_demand", "spot"]), min_size=6, max_size=6),
       objective=st.sampled_from(["cost", "time"]), deadline=st.floats(5.0, 400.0), budget=st.floats(20.0, 5e3))
def test_merging_identical_offers_never_changes_the_optimum(make_catalog: Any, prices: list[float],
                                                           quotas: list[str], kinds: list[str], objective: str,
                                                           deadline: float, budget: float) -> None:
    """Oracle: the same job planned with every offer kept (identical="keep") reaches the same
    optimum as with look-alike offers merged into the cheapest."""
    from flopopt.optimizer.planner import Planner

    offers = [offer_row(f"o{i}", "FAST" if i % 2 else "SLOW", p, max_instances=quotas[i], kind=kinds[i],
                        interruption_overhead="0.1" if kinds[i] == "spot" else "", provider=f"p{i}")
              for i, p in enumerate(prices)]
    catalog = make_catalog(GPUS, offers)
    j = job(1e19, deadline_hours=deadline, budget_usd=budget).model_copy(update={"objective": objective})
    merged, kept = Planner.build(j, catalog).plan(), Planner.build(j, catalog, identical="keep").plan()
    assert (merged.plan is None) == (kept.plan is None)
    if merged.plan is not None and kept.plan is not None:
        assert merged.plan.cost_usd == pytest.approx(kept.plan.cost_usd, rel=1e-9)
        assert merged.plan.hours == pytest.approx(kept.plan.hours, rel=1e-9)


# ---------------------------------------------------------------------------
# what a plan's hourly numbers are (names say what they hold)


def test_plan_hourly_numbers_are_the_effective_cost_and_the_list_price(make_catalog: Any) -> None:
    """A rental's effective cost per instance-hour is its list price; owned hardware adds amortised
    capex and power to its list fee: 87,600 / (2 y × 8,760 h × 1.0) = $5.00 + 2 kW × $0.15 = $0.30
    + the $0.20 fee = $5.50 per instance-hour, $1.375 per GPU-hour on 4 GPUs."""
    catalog = make_catalog(GPUS, [
        offer_row("rent", "FAST", 8.0, gpus_per_instance=2, max_instances=1),
        offer_row("mine", "FAST", 0.2, kind="owned", gpus_per_instance=4, max_instances=1, capex_usd=87600,
                  amortization_years=2, utilization=1.0, power_kw=2.0, electricity_usd_per_kwh=0.15, sunk="false")])
    result = solve(job(), catalog, sensitivity=False)
    plans = {c.plan.offer_id: c.plan for c in result.candidates}
    rent, mine = plans["rent"], plans["mine"]
    assert rent.effective_cost_per_instance_hour_usd == rent.list_price_per_instance_hour_usd == 8.0
    assert rent.effective_cost_per_gpu_hour_usd == 4.0
    assert mine.list_price_per_instance_hour_usd == pytest.approx(0.2)
    assert mine.effective_cost_per_instance_hour_usd == pytest.approx(5.5)
    assert mine.effective_cost_per_gpu_hour_usd == pytest.approx(5.5 / 4)
    for p in (rent, mine):
        assert p.cost_usd == pytest.approx(p.instances * p.effective_cost_per_instance_hour_usd * p.billed_hours)


# ---------------------------------------------------------------------------
# solver outcomes: a time limit is not infeasibility, and an incumbent is a plan


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_a_real_solve_reports_the_solvers_mip_gap(make_catalog: Any, solver: str) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=4),
                                  offer_row("fast", "FAST", 4.0, max_instances=4)])
    result = solve(job(deadline_hours=30), catalog, solver=solver, sensitivity=False,  # type: ignore[arg-type]
                   time_limit_seconds=60.0)
    assert result.status is Status.OPTIMAL and result.plan is not None and result.explanation is None
    gap, tolerance = result.stats.mip_gap, result.stats.mip_gap_tolerance
    assert gap is not None and tolerance is not None and 0.0 <= gap <= tolerance


def test_a_time_limited_incumbent_is_returned_as_the_plan(make_catalog: Any, stop_at_time_limit: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=4),
                                  offer_row("fast", "FAST", 4.0, max_instances=4)])
    optimal = solve(job(deadline_hours=30), catalog, sensitivity=False)
    stop_at_time_limit(incumbent=True, gap=0.05)
    stopped = solve(job(deadline_hours=30), catalog, sensitivity=True, samples=200, time_limit_seconds=2.0)
    assert stopped.status is Status.TIME_LIMIT          # not optimal: nothing proved it
    assert stopped.plan == optimal.plan and stopped.binding is None
    assert stopped.explanation == ("the solver stopped at its time limit (2 s): this plan is the best it found, "
                                   "not proven optimal (relative MIP gap 5.00%); raise the time limit to prove it")
    assert stopped.stats.mip_gap == 0.05
    assert stopped.sensitivity and stopped.risk is not None      # a plan: analysed like any other


def test_a_time_limit_without_an_incumbent_suggests_no_relaxation(make_catalog: Any,
                                                                   stop_at_time_limit: Any) -> None:
    catalog = make_catalog(GPUS, [offer_row("slow", "SLOW", 1.0, max_instances=4)])
    stop_at_time_limit(incumbent=False)
    stopped = solve(job(deadline_hours=30, budget_usd=1e6), catalog, time_limit_seconds=2.0)
    assert stopped.status is Status.TIME_LIMIT and stopped.plan is None and stopped.binding is None
    assert stopped.explanation == ("the solver stopped at its time limit (2 s) before finding a plan; "
                                   "raise the time limit")
    assert stopped.stats.mip_gap is None and not stopped.sensitivity
