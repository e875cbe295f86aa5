"""Multi-period buy-vs-rent (optimizer/procurement.py): brute force, hand-worked cases, shared limits.

The oracle enumerates every assignment of jobs to their feasible candidates (before any
portfolio pruning) and every purchase schedule (units bought in *each* period, so it
also checks that deciding purchases in period 1 loses nothing), checks the limits with
its own code and compares the cheapest total cost of ownership with the MILP's, on both
solvers. Hand-worked cases pin the break-even utilisation and the buy/rent crossing.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from builders import STOPPED_AS, gpu_row, offer_row
from flopopt.optimizer.economics import unit_break_even
from flopopt.optimizer.model import SolverName
from flopopt.optimizer.portfolio import parse_portfolio
from flopopt.optimizer.portfolio_candidates import build_candidates, plan_side_by_side
from flopopt.optimizer.procurement import plan
from flopopt.optimizer.procurement_result import PlanResult
from flopopt.optimizer.result import Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SOLVERS = ["highs", "cbc"]
GPU = gpu_row("G1", peak_tflops_fp32=20.0)
# Solvers stop at a relative MIP gap of 1e-4 (HiGHS and CBC defaults); tiny models are
# solved exactly in practice, but the comparison allows what the solver promises.
GAP = 1e-4


def _job(name: str, flops: float, period: int = 1, **constraints: Any) -> dict[str, Any]:
    return {"name": name, "period": period, "workload": {"kind": "custom", "total_flops": flops},
            "precision": ["fp32"], "scenario": "cloud", "constraints": {"max_gpus": 4, **constraints}}


def _option(**kw: Any) -> dict[str, Any]:
    base = {"option": "box", "gpu": "G1", "gpus": 1, "capex_usd": 500.0, "power_kw": 0.1,
            "electricity_usd_per_kwh": 0.1}
    base.update(kw)
    return base


def _portfolio(jobs: list[dict[str, Any]], periods: int = 2, period_hours: float = 100.0,
               options: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    data = {"name": "t", "horizon": {"periods": periods, "period_hours": period_hours}, "jobs": jobs,
            "purchase_options": options or [], **extra}
    return parse_portfolio(data, "t.yaml")


# ---------------------------------------------------------------------------
# brute force


def _usage(hours: float, gpus: int, start: int, periods: int, period_hours: float) -> list[float]:
    """GPU-hours per period, written out independently of period_gpu_hours."""
    out = []
    for p in range(1, periods + 1):
        k = p - start
        run = 0.0 if k < 0 else min(period_hours, max(0.0, hours - k * period_hours))
        out.append(gpus * (run if run > 1e-9 else 0.0))
    return out


def brute_force(portfolio: Any, catalog: Any) -> float | None:
    """The cheapest total cost of ownership over all assignments and purchase schedules."""
    cands = build_candidates(portfolio, catalog)
    horizon = portfolio.horizon
    T, H = horizon.periods, horizon.period_hours
    source = cands.sources[0] if cands.sources else None
    quotas = cands.quotas
    per_job = []
    for jc in cands.jobs:
        rows = jc.evaluated.feasible[["offer_id", "instances", "gpu_count", "hours", "cost_usd"]]
        start = jc.pjob.period
        options = []
        for r in rows.to_dict("records"):
            if r["hours"] > (T - start + 1) * H + 1e-6:   # must finish within the horizon
                continue
            options.append((r, _usage(r["hours"], int(r["gpu_count"]), start, T, H)))
        per_job.append(options)
    schedules: list[tuple[int, ...]] = [()]
    if source is not None:
        periods = [a for a in range(1, T + 1) if a + source.lead_time_periods <= T]
        cap = source.max_count if source.max_count is not None else 3
        schedules = [s for s in itertools.product(range(cap + 1), repeat=len(periods)) if sum(s) <= cap]
    best: float | None = None
    for combo in itertools.product(*per_job):
        direct = sum(r["cost_usd"] for r, _ in combo)
        for schedule in schedules:
            units = [0] * T
            if source is not None:
                for a, n in zip([a for a in range(1, T + 1) if a + source.lead_time_periods <= T], schedule):
                    for p in range(a + source.lead_time_periods, T + 1):
                        units[p - 1] += n
            ok = True
            for p in range(T):
                owned = sum(use[p] for r, use in combo if source and r["offer_id"] == source.offer_id)
                if source is not None and owned > source.gpus_per_unit * H * units[p] + 1e-6:
                    ok = False
                for r, use in combo:
                    if source and r["offer_id"] == source.offer_id and use[p] > 0 and r["instances"] > units[p]:
                        ok = False
                for offer, quota in quotas.items():
                    held = sum(r["instances"] for r, use in combo if r["offer_id"] == offer and use[p] > 0)
                    if held > quota:
                        ok = False
            n = sum(schedule)
            if source is not None and portfolio.budget_usd is not None:
                ok = ok and direct + n * source.unit_cost_usd <= portfolio.budget_usd * (1 + 1e-9)
            elif portfolio.budget_usd is not None:
                ok = ok and direct <= portfolio.budget_usd * (1 + 1e-9)
            if not ok:
                continue
            total = direct + (n * (source.unit_cost_usd - source.resale_usd) if source else 0.0)
            best = total if best is None or total < best else best
    return best


def _check_plan_respects_limits(result: PlanResult) -> None:
    """The reported plan itself (purchases scheduled just in time) satisfies every limit."""
    p = result.portfolio
    T, H = p.horizon.periods, p.horizon.period_hours
    units = dict.fromkeys(range(1, T + 1), 0)
    for b in result.purchases:
        for q in range(b.usable_from, T + 1):
            units[q] += b.count
    for use in result.periods:
        assert use.owned_gpu_hours == pytest.approx(sum(b.count * b.gpus * H for b in result.purchases
                                                        if b.usable_from <= use.period))
        assert use.used_gpu_hours <= use.owned_gpu_hours + 1e-6
    for a in result.assignments:
        if a.resource == "purchase":
            assert all(units[q] >= a.instances for q in a.periods)
    c = result.cost
    assert c is not None
    assert c.total_usd == pytest.approx(c.rental_usd + c.capex_usd + c.power_usd + c.reserved_usd - c.resale_usd)


offer_strategy = st.fixed_dictionaries({
    "per_instance": st.sampled_from([1, 2]),
    "price_per_gpu": st.floats(0.5, 6.0),
    "max_instances": st.sampled_from([None, 1, 2]),
})


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offers=st.lists(offer_strategy, min_size=1, max_size=2),
    jobs=st.lists(st.tuples(st.floats(2e16, 3e18), st.integers(1, 3), st.sampled_from([None, 60.0, 250.0])),
                  min_size=2, max_size=3),
    periods=st.integers(2, 3),
    option=st.fixed_dictionaries({
        "gpus": st.sampled_from([1, 2]), "capex_usd": st.floats(50.0, 1500.0), "power_kw": st.floats(0.0, 0.5),
        "resale_fraction": st.floats(0.0, 0.8), "lead_time_periods": st.integers(0, 1),
        "max_count": st.integers(1, 2)}),
    budget=st.one_of(st.none(), st.floats(20.0, 1500.0)),
)
def test_plan_equals_brute_force(make_catalog: Any, solver: SolverName, offers: list[dict[str, Any]],
                                 jobs: list[tuple[float, int, float | None]], periods: int,
                                 option: dict[str, Any], budget: float | None) -> None:
    rows = [offer_row(f"o{i}", "G1", round(o["price_per_gpu"] * o["per_instance"], 4),
                      gpus_per_instance=o["per_instance"],
                      max_instances="" if o["max_instances"] is None else o["max_instances"])
            for i, o in enumerate(offers)]
    catalog = make_catalog([GPU], rows)
    job_dicts = [_job(f"j{i}", flops, min(period, periods), **({"deadline_hours": d} if d else {}))
                 for i, (flops, period, d) in enumerate(jobs)]
    extra: dict[str, Any] = {"budget_usd": budget} if budget is not None else {}
    portfolio = _portfolio(job_dicts, periods, 100.0, [_option(**option)], **extra)
    expected = brute_force(portfolio, catalog)
    result = plan(portfolio, catalog, solver=solver)
    if expected is None:
        assert result.status is Status.INFEASIBLE and result.binding
        assert result.cost is None
        return
    assert result.status is Status.OPTIMAL, result.explanation
    assert result.cost is not None
    assert result.cost.total_usd == pytest.approx(expected, rel=GAP, abs=1e-6)
    _check_plan_respects_limits(result)
    if budget is not None:
        assert result.cost.cash_usd <= budget * (1 + 1e-9)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prices=st.lists(st.floats(0.5, 6.0), min_size=2, max_size=2),
    quotas=st.lists(st.sampled_from([None, 1, 2]), min_size=2, max_size=2),
    flops=st.lists(st.floats(2e16, 1e18), min_size=2, max_size=3),
    budget=st.one_of(st.none(), st.floats(20.0, 800.0)),
)
def test_one_period_rentals_match_model_py(make_catalog: Any, prices: list[float], quotas: list[int | None],
                                           flops: list[float], budget: float | None) -> None:
    """With one period and nothing to buy, plan is model.py's N-job program (side by side)."""
    rows = [offer_row(f"o{i}", "G1", round(p, 4), max_instances="" if q is None else q)
            for i, (p, q) in enumerate(zip(prices, quotas))]
    catalog = make_catalog([GPU], rows)
    extra: dict[str, Any] = {"budget_usd": budget} if budget is not None else {}
    portfolio = _portfolio([_job(f"j{i}", f) for i, f in enumerate(flops)], periods=1, period_hours=400.0, **extra)
    ours = plan(portfolio, catalog)
    theirs = plan_side_by_side(portfolio, catalog)
    assert (ours.status is Status.OPTIMAL) == (theirs.status == "optimal")
    if ours.cost is not None and theirs.objective_value is not None:
        assert ours.cost.total_usd == pytest.approx(theirs.objective_value, rel=GAP)


# ---------------------------------------------------------------------------
# hand-worked buy vs rent


RENT_PER_GPU_HOUR = 2.0      # one 8-GPU rental node at $16/h
CAPEX, RESALE, POWER_KW, KWH = 100_000.0, 0.2, 2.0, 0.1
HOURS = 8760.0               # one period of a year


def _buy_or_rent(make_catalog: Any, hours: float) -> tuple[PlanResult, float]:
    """One job on an 8-GPU node, rented at $16/h or on a bought 8-GPU box; same GPU, fabric
    and scenario, so both take the same hours. Returns the plan and the job's hours."""
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 8 * RENT_PER_GPU_HOUR, gpus_per_instance=8,
                                             max_instances=1)])
    probe = _portfolio([_job("j", 1e18, max_gpus=8)], periods=1, period_hours=HOURS)
    one = build_candidates(probe, catalog).jobs[0].evaluated.feasible["hours"].iloc[0]
    flops = 1e18 * hours / float(one)         # hours are linear in FLOPs
    portfolio = _portfolio([_job("j", flops, max_gpus=8)], periods=1, period_hours=HOURS,
                           options=[_option(gpus=8, capex_usd=CAPEX, resale_fraction=RESALE, power_kw=POWER_KW,
                                            electricity_usd_per_kwh=KWH, max_count=1)])
    result = plan(portfolio, catalog)
    return result, float(result.assignments[0].hours)


def test_break_even_utilization_by_hand(make_catalog: Any) -> None:
    result, _ = _buy_or_rent(make_catalog, 1000.0)
    b = result.break_even[0]
    power_per_gpu_hour = POWER_KW * KWH / 8                                 # $0.025
    by_hand = CAPEX * (1 - RESALE) / ((RENT_PER_GPU_HOUR - power_per_gpu_hour) * 8 * HOURS)
    assert by_hand == pytest.approx(0.5780, abs=1e-4)
    assert b.break_even_utilization == pytest.approx(by_hand)
    assert b.break_even_gpu_hours_per_unit == pytest.approx(80_000 / 1.975)
    assert b.reference_offer_id == "rent" and b.rental_usd_per_gpu_hour == pytest.approx(2.0)
    assert b.net_cost_per_unit_usd == pytest.approx(80_000)
    assert unit_break_even(80_000, 2.0, 2.5, 8, HOURS) == (None, None)   # power dearer than renting


@pytest.mark.parametrize("share, buys", [(0.2, False), (0.5, False), (0.95, False), (1.05, True), (1.5, True)])
def test_buy_wins_above_break_even_and_rent_below(make_catalog: Any, share: float, buys: bool) -> None:
    u_star = CAPEX * (1 - RESALE) / ((RENT_PER_GPU_HOUR - POWER_KW * KWH / 8) * 8 * HOURS)
    result, hours = _buy_or_rent(make_catalog, share * u_star * HOURS)
    assert hours == pytest.approx(share * u_star * HOURS, rel=1e-9)
    assert result.cost is not None
    rent, own = 16.0 * hours, CAPEX * (1 - RESALE) + POWER_KW * KWH * hours
    assert result.cost.total_usd == pytest.approx(min(rent, own), rel=1e-9)
    assert bool(result.purchases) is buys
    assert result.assignments[0].resource == ("purchase" if buys else "rental")
    if buys:
        b = result.break_even[0]
        assert b.planned_utilization == pytest.approx(share * u_star)
        assert b.rent_instead_usd == pytest.approx(rent) and b.own_cost_usd == pytest.approx(own)
        assert b.plan_break_even_utilization == pytest.approx(u_star)


def test_reserved_commitment_break_even(make_catalog: Any) -> None:
    """Reserving an 8-GPU node at $10/h for a 1,000 h period beats renting at $16/h from 625 h busy."""
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 16.0, gpus_per_instance=8, max_instances=1)])
    probe = _portfolio([_job("j", 1e18, max_gpus=8)], periods=1, period_hours=1000.0)
    one = float(build_candidates(probe, catalog).jobs[0].evaluated.feasible["hours"].iloc[0])
    reserved = [{"option": "res", "gpu": "G1", "gpus": 8, "provider": "testcloud", "price_per_hour_usd": 10.0,
                 "term_periods": 1, "interconnect": "nvlink"}]
    for hours, commits in ((560.0, False), (690.0, True)):
        portfolio = _portfolio([_job("j", 1e18 * hours / one, max_gpus=8)], periods=1, period_hours=1000.0,
                               reserved=reserved)
        result = plan(portfolio, catalog)
        assert result.break_even[0].break_even_utilization == pytest.approx(10.0 / 16.0)
        assert bool(result.commitments) is commits
        assert result.cost is not None
        assert result.cost.total_usd == pytest.approx(min(16.0 * hours, 10_000.0), rel=1e-9)


def test_purchase_is_scheduled_just_in_time(make_catalog: Any) -> None:
    """Owning is cheap here; the job starts in period 3 and the box takes one period to arrive."""
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 50.0)])
    portfolio = _portfolio([_job("late", 5e17, period=3)], periods=4,
                           options=[_option(lead_time_periods=1, capex_usd=100.0, resale_fraction=0.5)])
    result = plan(portfolio, catalog)
    assert [(b.period, b.count, b.usable_from) for b in result.purchases] == [(2, 1, 3)]
    assert [u.owned_gpu_hours for u in result.periods] == [0.0, 0.0, 100.0, 100.0]
    assert result.cost is not None and result.cost.resale_usd == pytest.approx(50.0)
    _check_plan_respects_limits(result)


# ---------------------------------------------------------------------------
# shared limits


def _two_offers(make_catalog: Any) -> Any:
    # A: cheap, one machine shared by every job of a period; B: dearer, unlimited
    return make_catalog([GPU], [offer_row("A", "G1", 1.0, max_instances=1), offer_row("B", "G1", 3.0)])


def _one_gpu_costs(catalog: Any, flops: float) -> tuple[float, float]:
    probe = _portfolio([_job("p", flops, max_gpus=1)], periods=1, period_hours=1000.0)
    t = build_candidates(probe, catalog).jobs[0].evaluated.table.set_index("offer_id")
    return float(t.loc["A", "cost_usd"]), float(t.loc["B", "cost_usd"])


def test_shared_quota_binds_within_a_period_only(make_catalog: Any) -> None:
    catalog = _two_offers(make_catalog)
    cost_a, cost_b = _one_gpu_costs(catalog, 1e17)
    same = _portfolio([_job("j1", 1e17, max_gpus=1), _job("j2", 1e17, max_gpus=1)], periods=2, period_hours=1000.0)
    result = plan(same, catalog)
    assert sorted(a.offer_id for a in result.assignments) == ["A", "B"]
    assert result.cost is not None and result.cost.total_usd == pytest.approx(cost_a + cost_b)
    apart = _portfolio([_job("j1", 1e17, max_gpus=1), _job("j2", 1e17, period=2, max_gpus=1)], periods=2,
                       period_hours=1000.0)
    result = plan(apart, catalog)
    assert [a.offer_id for a in result.assignments] == ["A", "A"]
    assert result.cost is not None and result.cost.total_usd == pytest.approx(2 * cost_a)


def test_quota_infeasible_names_offer_and_relaxation(make_catalog: Any) -> None:
    """Both jobs may only use region r1, where offer A has one machine."""
    jobs = [_job("j1", 1e17, max_gpus=1, regions=["r1"]), _job("j2", 1e17, max_gpus=1, regions=["r1"])]
    catalog2 = make_catalog([GPU], [offer_row("A", "G1", 1.0, max_instances=1),
                                    offer_row("B", "G1", 3.0, region="r2")])
    result = plan(_portfolio(jobs, periods=1, period_hours=1000.0), catalog2)
    assert result.status is Status.INFEASIBLE
    assert result.binding == "quotas.A"
    explanation = result.explanation or ""
    assert "need 2 instance(s) of A" in explanation and "raise quotas.A to 2" in explanation
    # a portfolio-level quota override lifts it
    lifted = plan(_portfolio(jobs, periods=1, period_hours=1000.0, quotas={"A": 2}), catalog2)
    assert lifted.status is Status.OPTIMAL


def test_shared_budget_binds_on_cash_not_on_cost_of_ownership(make_catalog: Any) -> None:
    """Buying is cheaper over the horizon (resale) but needs more cash up front than renting."""
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 2.0)])
    jobs = [_job("j", 4e18, max_gpus=1)]                     # 187.5 h on one GPU: $375 rented
    box = [_option(capex_usd=400.0, resale_fraction=0.9, power_kw=0.0)]
    free = plan(_portfolio(jobs, periods=1, period_hours=1000.0, options=box), catalog)
    assert free.purchases and free.cost is not None
    rent_cost = 2.0 * free.assignments[0].hours
    assert free.cost.total_usd == pytest.approx(40.0) and rent_cost > 40.0
    tight = plan(_portfolio(jobs, periods=1, period_hours=1000.0, options=box, budget_usd=rent_cost + 1), catalog)
    assert not tight.purchases and tight.cost is not None
    assert tight.cost.total_usd == pytest.approx(rent_cost)
    broke = plan(_portfolio(jobs, periods=1, period_hours=1000.0, options=box, budget_usd=rent_cost / 2), catalog)
    assert broke.status is Status.INFEASIBLE and broke.binding == "budget_usd"
    assert f"${rent_cost:,.0f}" in (broke.explanation or "")


def test_max_count_binding_is_explained(make_catalog: Any) -> None:
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 2.0)])
    owned_only: dict[str, Any] = {"max_gpus": 1, "offer_kinds": ["owned"]}
    jobs = [_job("j1", 1.2e19, **owned_only), _job("j2", 1.2e19, **owned_only)]
    hours = build_candidates(_portfolio(jobs[:1], 1, 1000.0, [_option()]), catalog).jobs[0].kept["hours"].iloc[0]
    assert hours > 500   # two such jobs cannot share one box in a 1,000 h period
    result = plan(_portfolio(jobs, 1, 1000.0, [_option(max_count=1)]), catalog)
    assert result.status is Status.INFEASIBLE
    assert result.binding == "purchase_options[0].max_count"
    assert "raise max_count to 2" in (result.explanation or "")
    assert plan(_portfolio(jobs, 1, 1000.0, [_option(max_count=2)]), catalog).status is Status.OPTIMAL


@pytest.mark.slow
def test_job_that_cannot_finish_in_the_horizon(make_catalog: Any) -> None:
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 2.0)])
    result = plan(_portfolio([_job("late", 3e18, period=2, max_gpus=1)], periods=2, period_hours=100.0), catalog)
    assert result.status is Status.INFEASIBLE and result.binding == "horizon"
    assert "extend horizon.periods to" in (result.explanation or "")
    deadline = plan(_portfolio([_job("rush", 3e18, deadline_hours=5.0, max_gpus=1)], periods=12,
                               period_hours=730.0), catalog)
    assert deadline.binding == "jobs[0].constraints.deadline_hours"
    assert "rush (jobs[0])" in (deadline.explanation or "")


def test_signed_reserved_commitment_is_paid_even_unused(make_catalog: Any) -> None:
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 0.5)])
    reserved = [{"option": "old-deal", "gpu": "G1", "gpus": 1, "provider": "elsewhere", "price_per_hour_usd": 1.0,
                 "term_periods": 2, "count": 1, "start_period": 2}]
    result = plan(_portfolio([_job("j", 1e17, max_gpus=1, providers=["testcloud"])], periods=3,
                             period_hours=100.0, reserved=reserved), catalog)
    assert [(c.period, c.count, c.usable_from, c.usable_until, c.signed) for c in result.commitments] == \
        [(2, 1, 2, 3, True)]
    assert result.cost is not None and result.cost.reserved_usd == pytest.approx(200.0)
    assert result.assignments[0].resource == "rental"


def test_pruning_keeps_the_optimum_with_many_rivals(make_catalog: Any) -> None:
    """Five jobs, five one-machine offers at rising prices: each job needs a different one."""
    rows = [offer_row(f"q{i}", "G1", 1.0 + i, max_instances=1) for i in range(5)]
    catalog = make_catalog([GPU], rows)
    jobs = [_job(f"j{i}", 1e17, max_gpus=1) for i in range(5)]
    result = plan(_portfolio(jobs, periods=1, period_hours=1000.0), catalog)
    assert sorted(a.offer_id for a in result.assignments) == [f"q{i}" for i in range(5)]
    hours = result.assignments[0].hours
    assert result.cost is not None
    assert result.cost.total_usd == pytest.approx(sum(1.0 + i for i in range(5)) * hours)
    assert result.stats.kept <= result.stats.feasible


def test_period_usage_spans_periods() -> None:
    from flopopt.optimizer.portfolio import Horizon
    from flopopt.optimizer.portfolio_candidates import period_gpu_hours

    use = period_gpu_hours(np.array([250.0, 50.0]), np.array([2.0, 4.0]), 2, Horizon(periods=5, period_hours=100))
    assert use.tolist() == [[0, 200, 200, 100, 0], [0, 200, 0, 0, 0]]
    assert math.isclose(use.sum(), 2 * 250 + 4 * 50)


# ---------------------------------------------------------------------------
# solver stops (optimizer/outcome.py): a stop is not a proof, so never "infeasible"


def _packing(make_catalog: Any) -> tuple[Any, Any]:
    """Ten jobs over two periods that rent, or share bought 8- and 4-GPU boxes: packing their
    GPU-hours into whole boxes leaves a gap the root relaxation does not close, so a search stopped
    at its first incumbent has not proven it optimal (both solvers). Solved to optimality in well
    under a second."""
    rng = np.random.default_rng(0)
    catalog = make_catalog([GPU], [offer_row("rent", "G1", 2.0)])
    jobs = [_job(f"j{j}", float(rng.uniform(2e17, 3e18)), period=int(rng.integers(1, 3)), max_gpus=8)
            for j in range(10)]
    boxes = [_option(option="box", gpus=8, capex_usd=1000.0, power_kw=1.0, resale_fraction=0.0),
             _option(option="box4", gpus=4, capex_usd=550.0, power_kw=0.5, resale_fraction=0.0)]
    return _portfolio(jobs, periods=2, period_hours=100.0, options=boxes), catalog


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_stopped_search_returns_its_incumbent_as_the_plan(make_catalog: Any, stop_early: Any,
                                                            solver: SolverName) -> None:
    """A real early stop (HiGHS interrupted at its first incumbent, CBC after its root node): the
    incumbent is the plan, status not_solved (a stop, not the time limit: the termination says
    which), its MIP gap bounds how far it is from the optimum, no binding limit, and it keeps
    every limit."""
    portfolio, catalog = _packing(make_catalog)
    optimum = plan(portfolio, catalog, solver=solver)
    assert optimum.status is Status.OPTIMAL and optimum.cost is not None
    assert optimum.stats.termination == "optimal" and optimum.stats.mip_gap is not None
    stop_early()
    stopped = plan(portfolio, catalog, solver=solver, time_limit_seconds=60.0)
    assert stopped.status is Status.NOT_SOLVED and stopped.stats.termination == STOPPED_AS[solver]
    assert stopped.cost is not None and stopped.binding is None and stopped.assignments
    assert "not proven optimal" in (stopped.explanation or "")
    gap = stopped.stats.mip_gap
    assert gap is not None and 0.0 < gap < 1.0 and stopped.stats.mip_gap_tolerance is not None
    cost, best = stopped.cost.total_usd, optimum.cost.total_usd
    assert cost >= best - 1e-6 and (cost - best) / cost <= gap + 1e-5
    _check_plan_respects_limits(stopped)


NOT_FOUND = {"highs": "was interrupted", "cbc": "stopped at a node, solution or objective limit"}


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_search_stopped_before_any_plan_is_not_infeasible(make_catalog: Any, stop_early: Any,
                                                            solver: SolverName) -> None:
    """A real stop before any incumbent: status not_solved, no plan, no binding limit and no
    relaxation hint (explain_infeasible_plan is not asked)."""
    portfolio, catalog = _packing(make_catalog)
    stop_early(incumbent=False)
    stopped = plan(portfolio, catalog, solver=solver)
    assert stopped.status is Status.NOT_SOLVED and stopped.cost is None and stopped.binding is None
    assert stopped.explanation == (f"the solver {NOT_FOUND[solver]} before finding a plan; try the other solver "
                                   "(--solver highs or cbc)")
    assert stopped.stats.termination == STOPPED_AS[solver] and stopped.stats.mip_gap is None


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_real_time_limit_is_reported_as_such(make_catalog: Any, solver: SolverName) -> None:
    """1 ms: status time_limit with the best plan found (HiGHS often has the all-rental plan by
    then) or none; never infeasible, never a binding limit."""
    portfolio, catalog = _packing(make_catalog)
    stopped = plan(portfolio, catalog, solver=solver, time_limit_seconds=0.001)
    assert stopped.status is Status.TIME_LIMIT and stopped.binding is None
    assert stopped.stats.termination == "time_limit"
    if stopped.cost is None:
        assert stopped.explanation == ("the solver stopped at its time limit (0.001 s) before finding a plan; "
                                       "raise the time limit")
    else:
        assert (stopped.explanation or "").startswith("the solver stopped at its time limit (0.001 s): this plan "
                                                      "is the best it found, not proven optimal")
        _check_plan_respects_limits(stopped)


def test_infeasible_plan_records_the_proof(make_catalog: Any) -> None:
    """Proven infeasibility (a shared quota) keeps status infeasible and its explanation, with the
    termination recorded; a job without candidates is infeasible by construction."""
    jobs = [_job("j1", 1e17, max_gpus=1, regions=["r1"]), _job("j2", 1e17, max_gpus=1, regions=["r1"])]
    catalog = make_catalog([GPU], [offer_row("A", "G1", 1.0, max_instances=1),
                                   offer_row("B", "G1", 3.0, region="r2")])
    result = plan(_portfolio(jobs, periods=1, period_hours=1000.0), catalog, time_limit_seconds=60.0)
    assert result.status is Status.INFEASIBLE and result.binding == "quotas.A"
    assert result.stats.termination == "infeasible"
