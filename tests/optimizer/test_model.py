"""The integer program against brute force, plus the invariants an optimiser must keep."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import STOPPED_AS, gpu_row, offer_row
from flopopt.optimizer.job import parse_job
from flopopt.optimizer.model import JobOptions, ModelSpec, solve_model
from flopopt.optimizer.solve import solve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SOLVERS = ["highs", "cbc"]

# Interconnect efficiencies per doubling: the documented defaults of performance.py.
EFFICIENCY = {"nvlink": 0.98, "infiniband": 0.97, "pcie": 0.93, "ethernet": 0.90}


def oracle_hours(flops: float, buffer: float, gpus: int, per_instance: int, instances: int, peak_tflops: float,
                 attenuation: float, interconnect: str, ref_scale: float = 1.0) -> float:
    """The throughput formula of the README, written out independently:
    FLOPs·(1+buffer)/(n·peak·min(att·scale(n)/scale(ref), 1))/3600."""
    inter = "infiniband" if interconnect == "infiniband" or (interconnect == "nvlink" and per_instance >= 8) \
        else "ethernet"
    scale = EFFICIENCY[interconnect] ** math.log2(per_instance) * EFFICIENCY[inter] ** math.log2(instances)
    return flops * (1 + buffer) / (gpus * peak_tflops * 1e12 * min(attenuation * scale / ref_scale, 1.0)) / 3600


def oracle_cost(hours: float, instances: int, price: float, increment: float, minimum: float) -> float:
    billed = math.ceil(hours / increment - 1e-9) * increment if increment > 0 else hours
    return instances * price * max(billed, minimum)


def counts(cap: int) -> list[int]:
    """Every instance count: the optimum must be found over all of them, not a ladder."""
    return list(range(1, cap + 1))


offer_strategy = st.fixed_dictionaries({
    "gpu": st.sampled_from(["G1", "G2", "G3"]),
    "per_instance": st.sampled_from([1, 2, 4, 8]),
    "price": st.floats(0.2, 40.0),
    "increment": st.sampled_from([0.0, 1 / 60, 1.0]),
    "minimum": st.sampled_from([0.0, 1.0, 10.0]),
    "max_instances": st.integers(1, 40),
    "kind": st.sampled_from(["on_demand", "owned"]),
    "interconnect": st.sampled_from(["nvlink", "pcie", "infiniband", "ethernet"]),
})


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offers=st.lists(offer_strategy, min_size=1, max_size=5),
    total_flops=st.floats(1e17, 1e20),
    deadline=st.floats(0.5, 500.0),
    budget=st.floats(5.0, 5e4),
    objective=st.sampled_from(["cost", "time"]),
    solver=st.sampled_from(SOLVERS),
)
def test_milp_equals_brute_force(make_catalog: Any, offers: list[dict[str, Any]], total_flops: float,
                                 deadline: float, budget: float, objective: str, solver: str) -> None:
    peaks = {"G1": 20.0, "G2": 60.0, "G3": 150.0}
    # fp32 is these GPUs' only (so reference) precision; the fixture rows have no ref_gpus (= 1).
    gpus = [gpu_row(g, peak_tflops_fp32=p, peak_tflops_bf16="") for g, p in peaks.items()]
    rows = []
    for i, o in enumerate(offers):
        extra: dict[str, Any] = {}
        if o["kind"] == "owned":  # owned: amortised capex + power is the hourly cost, no billing rounding
            extra = dict(capex_usd=50000, amortization_years=4, utilization=0.5, power_kw=1.0,
                         electricity_usd_per_kwh=0.1, sunk="false", price_per_hour_usd=0,
                         billing_increment_hours=0, min_hours=0)
        rows.append(offer_row(f"o{i}", o["gpu"], round(o["price"], 4), kind=o["kind"],
                              **{"gpus_per_instance": o["per_instance"], "billing_increment_hours": o["increment"],
                                 "min_hours": o["minimum"], "max_instances": o["max_instances"],
                                 "interconnect": o["interconnect"], **extra}))
    catalog = make_catalog(gpus, rows)
    job = parse_job({"workload": {"kind": "custom", "total_flops": total_flops}, "precision": ["fp32"],
                     "scenario": "cloud", "objective": objective,
                     "constraints": {"deadline_hours": deadline, "budget_usd": budget}})
    result = solve(job, catalog, solver=solver, sensitivity=False)  # type: ignore[arg-type]

    # Brute force over every (offer, instances) candidate; cloud scenario: 0.3–0.5 → 0.4, buffer 0.35.
    # Billing increments and minimum hours make cost non-monotone in the count, so a ladder of
    # counts misses optima; exact counts (optimizer/counts.py) must not.
    best: tuple[float, float] | None = None
    for i, o in enumerate(offers):
        hourly = o["price"] if o["kind"] != "owned" else 50000 / (4 * 8760 * 0.5) + 1.0 * 0.1
        hourly = round(o["price"], 4) if o["kind"] != "owned" else hourly
        for inst in counts(o["max_instances"]):
            n = inst * o["per_instance"]
            hours = oracle_hours(total_flops, 0.35, n, o["per_instance"], inst, peaks[o["gpu"]], 0.4,
                                 o["interconnect"])
            if o["kind"] == "owned":
                cost = inst * hourly * hours
            else:
                cost = oracle_cost(hours, inst, hourly, o["increment"], o["minimum"])
            if hours <= deadline and cost <= budget:
                key = (cost, hours) if objective == "cost" else (hours, cost)
                best = key if best is None or key < best else best
    if best is None:
        assert result.plan is None
        assert result.binding is not None
    else:
        assert result.plan is not None
        got = (result.plan.cost_usd, result.plan.hours) if objective == "cost" else (
            result.plan.hours, result.plan.cost_usd)
        assert got[0] == pytest.approx(best[0], rel=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_portfolio_shared_quota_and_budget(solver: str) -> None:
    """Two jobs both want offer A's single machine; the quota row forces one onto B."""
    a = JobOptions("j1", np.array([10.0, 30.0]), np.array([5.0, 5.0]), np.array(["A", "B"]), np.array([1.0, 1.0]))
    b = JobOptions("j2", np.array([12.0, 20.0]), np.array([5.0, 5.0]), np.array(["A", "B"]), np.array([1.0, 1.0]))
    free = solve_model(ModelSpec([a, b]), solver)  # type: ignore[arg-type]
    assert free.choice == (0, 0) and free.objective_value == pytest.approx(22.0)
    shared = solve_model(ModelSpec([a, b], quotas={"A": 1}), solver)  # type: ignore[arg-type]
    # Brute force: (A,B)=10+20=30, (B,A)=30+12=42 → j1 on A, j2 on B.
    assert shared.choice == (0, 1) and shared.objective_value == pytest.approx(30.0)
    broke = solve_model(ModelSpec([a, b], quotas={"A": 1}, budget_usd=29.0), solver)  # type: ignore[arg-type]
    assert broke.status == "infeasible"


def test_time_objective_breaks_ties_on_cost() -> None:
    job = JobOptions("j", np.array([50.0, 20.0, 90.0]), np.array([3.0, 3.0, 7.0]), np.array(["A", "B", "C"]),
                     np.array([1.0, 1.0, 1.0]))
    sol = solve_model(ModelSpec([job], objective="time"))
    assert sol.choice == (1,)


def _simple(make_catalog: Any, prices: dict[str, float]) -> Any:
    gpus = [gpu_row("G1", peak_tflops_fp32=20.0), gpu_row("G2", peak_tflops_fp32=60.0)]
    offers = [offer_row(k, "G1" if k.startswith("slow") else "G2", v, max_instances=4) for k, v in prices.items()]
    return make_catalog(gpus, offers)


def _job(deadline: float | None = None, budget: float | None = None, flops: float = 1e18) -> Any:
    limits = {k: v for k, v in {"deadline_hours": deadline, "budget_usd": budget}.items() if v is not None}
    return parse_job({"workload": {"kind": "custom", "total_flops": flops}, "precision": ["fp32"],
                      "scenario": "cloud", "constraints": limits})


def test_more_budget_never_costs_more(make_catalog: Any) -> None:
    catalog = _simple(make_catalog, {"slow": 1.0, "fast": 2.5})
    costs = []
    for budget in (40.0, 80.0, 1e6):
        result = solve(_job(deadline=10.0, budget=budget), catalog, sensitivity=False)
        costs.append(result.plan.cost_usd if result.plan else math.inf)
    assert costs == sorted(costs, reverse=True)


def test_tighter_deadline_never_costs_less(make_catalog: Any) -> None:
    catalog = _simple(make_catalog, {"slow": 1.0, "fast": 2.5})
    costs = []
    for deadline in (100.0, 10.0, 3.0, 1.0):
        result = solve(_job(deadline=deadline), catalog, sensitivity=False)
        costs.append(result.plan.cost_usd if result.plan else math.inf)
    assert costs == sorted(costs)


def test_cheaper_copy_of_chosen_offer_wins(make_catalog: Any) -> None:
    catalog = _simple(make_catalog, {"slow": 1.0, "fast": 2.5})
    first = solve(_job(deadline=10.0), catalog, sensitivity=False)
    assert first.plan is not None
    chosen = first.plan
    gpus = [gpu_row("G1", peak_tflops_fp32=20.0), gpu_row("G2", peak_tflops_fp32=60.0)]
    offers = [offer_row("slow", "G1", 1.0, max_instances=4), offer_row("fast", "G2", 2.5, max_instances=4),
              offer_row("copy", chosen.gpu, chosen.list_price_per_instance_hour_usd * 0.9, max_instances=4)]
    second = solve(_job(deadline=10.0), make_catalog(gpus, offers), sensitivity=False)
    assert second.plan is not None and second.plan.offer_id == "copy"
    assert second.plan.cost_usd == pytest.approx(chosen.cost_usd * 0.9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_time_limit_is_not_reported_as_infeasible(solver: str) -> None:
    """A solver stopped by its time limit has not proven anything: the status says time_limit,
    not infeasible (and solve writes no relaxation hint for it). 150 jobs sharing quotas and a
    budget take seconds; 1 ms is far too little to prove optimality."""
    rng = np.random.default_rng(0)
    jobs = [JobOptions(f"j{j}", rng.uniform(1, 100, 60), rng.uniform(1, 100, 60),
                       np.array([f"o{k % 20}" for k in range(60)]), rng.integers(1, 5, 60).astype(float))
            for j in range(150)]
    spec = ModelSpec(jobs, budget_usd=2000.0, quotas={f"o{k}": 20 for k in range(20)}, time_limit_seconds=0.001)
    stopped = solve_model(spec, solver)  # type: ignore[arg-type]
    assert stopped.status == "time_limit" and stopped.outcome is not None
    assert not stopped.outcome.proven_infeasible and not stopped.outcome.is_optimal
    assert stopped.choice == () and stopped.mip_gap is None     # no incumbent at 1 ms: nothing to report
    infeasible = solve_model(ModelSpec(jobs[:2], budget_usd=0.5), solver)  # type: ignore[arg-type]
    assert infeasible.status == "infeasible" and infeasible.outcome is not None
    assert infeasible.outcome.proven_infeasible


def _assignment(n_jobs: int = 60, options: int = 30, offers: int = 10, quota: int = 8) -> ModelSpec:
    """Jobs competing for tight shared quotas (a generalised assignment problem): the root relaxation
    does not close the gap, so a search stopped at its first incumbent has a gap > 0 on both solvers.
    Solved to optimality in under a second."""
    rng = np.random.default_rng(0)
    jobs = [JobOptions(f"j{j}", rng.uniform(1, 100, options), rng.uniform(1, 100, options),
                       np.array([f"o{k % offers}" for k in range(options)]),
                       rng.integers(1, 5, options).astype(float)) for j in range(n_jobs)]
    return ModelSpec(jobs, quotas={f"o{k}": quota for k in range(offers)})


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_proven_optimum_reports_the_solvers_gap_within_its_tolerance(solver: str) -> None:
    """The gap is the solver's own number (HiGHS info.mip_gap, CBC's log), not a constant: optimal
    means within the solver's relative tolerance (HiGHS mip_rel_gap 1e-4; CBC ratioGap 0)."""
    solution = solve_model(_assignment(), solver)  # type: ignore[arg-type]
    assert solution.status == "optimal"
    gap, tolerance = solution.mip_gap, solution.mip_gap_tolerance
    assert gap is not None and tolerance is not None and math.isfinite(gap)
    assert 0.0 <= gap <= tolerance
    assert tolerance == (1e-4 if solver == "highs" else 0.0)


@pytest.mark.slow   # its cost-cbc case solves the 60-job program to optimality on CBC: about 1 s
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("objective", ["cost", "time"])
def test_a_search_stopped_with_an_incumbent_returns_it_with_its_gap(
        stop_early: Any, solver: str, objective: str) -> None:
    """Stopped early with an incumbent: the incumbent is returned (a plan), its status says what
    stopped it (an interrupt, a node limit: not optimal, not infeasible), and its gap bounds how far
    it is from the optimum: (incumbent − optimum)/incumbent ≤ gap."""
    spec = replace(_assignment(), objective=objective)  # type: ignore[arg-type]
    optimum = solve_model(spec, solver) if objective == "cost" else None  # type: ignore[arg-type]
    stop_early()
    stopped = solve_model(replace(spec, time_limit_seconds=60.0), solver)  # type: ignore[arg-type]
    assert stopped.status == STOPPED_AS[solver] and stopped.outcome is not None and stopped.outcome.has_solution
    assert not stopped.outcome.proven_infeasible
    assert len(stopped.choice) == len(spec.jobs) and stopped.objective_value is not None
    for offer, quota in spec.quotas.items():    # the incumbent is a feasible plan
        used = sum(job.instances[c] for job, c in zip(spec.jobs, stopped.choice) if job.offer_id[c] == offer)
        assert used <= quota
    if optimum is not None:
        assert optimum.objective_value is not None and stopped.objective_value >= optimum.objective_value - 1e-9
        gap = stopped.mip_gap
        assert gap is not None and 0.0 < gap < 1.0
        # CBC's bound is printed to six significant digits: allow that much slack
        assert (stopped.objective_value - optimum.objective_value) / stopped.objective_value <= gap + 1e-5


def test_time_objective_without_time_for_the_cost_tie_break_keeps_the_fastest_plan(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """objective time solves twice (makespan, then cost at that makespan); when the limit is spent by
    the first solve, its plan stands, reported as time_limit (its cost not proven minimal)."""
    import time

    from flopopt.optimizer import model

    real, calls = model.solve_outcome, []

    def slow_first_solve(prob: Any, engine: Any, *, time_limited: bool = False) -> Any:
        outcome = real(prob, engine, time_limited=time_limited)
        calls.append(outcome)
        time.sleep(0.6)      # longer than the whole limit: nothing is left for the second solve
        return outcome

    monkeypatch.setattr(model, "solve_outcome", slow_first_solve)
    job = JobOptions("j", np.array([50.0, 20.0, 90.0]), np.array([3.0, 3.0, 7.0]), np.array(["A", "B", "C"]),
                     np.array([1.0, 1.0, 1.0]))
    sol = solve_model(ModelSpec([job], objective="time", time_limit_seconds=0.5))
    assert len(calls) == 1 and calls[0].is_optimal           # the makespan was proven, the tie-break not run
    assert sol.status == "time_limit" and sol.choice in {(0,), (1,)} and sol.mip_gap is None
    assert sol.outcome is not None and sol.outcome.has_solution


CBC_STOPPED = """Result - Stopped on time limit

Objective value:                420.63765982
Lower bound:                    419.187
Gap:                            0.00
Enumerated nodes:               0
"""
CBC_OPTIMAL = """Result - Optimal solution found

Objective value:                419.45261963
Enumerated nodes:               0
"""
CBC_NOTHING = """Result - Stopped on time limit

No feasible solution found
Lower bound:                    417.703
"""


def test_cbc_gap_is_read_from_its_closing_summary() -> None:
    """CBC's "Gap:" line has two decimals; the gap is computed from the objective and the bound."""
    from flopopt.optimizer.model import cbc_gap, relative_gap

    assert cbc_gap(CBC_STOPPED) == pytest.approx((420.63765982 - 419.187) / 420.63765982)
    assert cbc_gap(CBC_OPTIMAL) == 0.0          # a completed search: the bound is the incumbent
    assert cbc_gap(CBC_NOTHING) is None         # no incumbent, no gap
    assert cbc_gap("") is None                  # no summary at all
    assert relative_gap(0.0, 0.0) == 0.0 and relative_gap(-10.0, -12.0) == pytest.approx(0.2)


def test_pulp_statuses_map_to_termination_conditions() -> None:
    """The outcome map (optimizer/outcome.py) on constructed PuLP codes: an early stop with an
    incumbent is time_limit with a solution; the solver's gap is kept, not replaced by 0."""
    import pulp
    from flopopt.optimizer.outcome import SolverStatus, TerminationCondition, outcome_from_pulp

    early = outcome_from_pulp(pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible, time_limited=True,
                              mip_gap=0.05, mip_gap_tolerance=1e-4)
    assert (early.status, early.termination, early.has_solution, early.mip_gap) == (
        SolverStatus.WARNING, TerminationCondition.TIME_LIMIT, True, 0.05)
    best = outcome_from_pulp(pulp.LpStatusOptimal, pulp.LpSolutionOptimal, time_limited=False, mip_gap=3e-5,
                             mip_gap_tolerance=1e-4)
    assert best.is_optimal and best.has_solution and best.mip_gap == 3e-5
    nothing = outcome_from_pulp(pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound, time_limited=True)
    assert nothing.termination is TerminationCondition.TIME_LIMIT and not nothing.has_solution
    assert not nothing.proven_infeasible
    unlimited = outcome_from_pulp(pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound, time_limited=False)
    assert unlimited.termination is TerminationCondition.NOT_SOLVED
    proof = outcome_from_pulp(pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible, time_limited=True)
    assert proof.proven_infeasible and not proof.has_solution
    nodes = outcome_from_pulp(pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible, time_limited=True,
                              stopped_on=TerminationCondition.TERMINATED_BY_LIMIT)
    assert nodes.termination is TerminationCondition.TERMINATED_BY_LIMIT and nodes.has_solution


@pytest.mark.parametrize("time_limited", [False, True])
def test_every_pulp_status_pair_maps_to_an_outcome(time_limited: bool) -> None:
    """Exhaustive over PuLP's status × solution-status codes (and a code PuLP does not list): every
    pair gives an outcome, never an exception; only LpStatusInfeasible proves infeasibility, and not
    once the time limit has passed; a solution exists exactly when PuLP says Optimal or
    IntegerFeasible; a stop is never optimal."""
    import pulp

    from flopopt.optimizer.outcome import STATUS_OF, STOPS, TerminationCondition, outcome_from_pulp

    for status, solution, stopped_on, reached in itertools.product(
            [*pulp.LpStatus, 99], [*pulp.LpSolution, 99], [None, *TerminationCondition], [False, time_limited]):
        outcome = outcome_from_pulp(status, solution, time_limited=time_limited, stopped_on=stopped_on,
                                    time_limit_reached=reached, mip_gap=0.01, mip_gap_tolerance=1e-4)
        early = solution == pulp.LpSolutionIntegerFeasible
        assert outcome.status is STATUS_OF[outcome.termination]
        assert outcome.proven_infeasible == (status == pulp.LpStatusInfeasible and not early and not reached)
        assert outcome.has_solution == (early or status == pulp.LpStatusOptimal)
        assert outcome.is_optimal == (status == pulp.LpStatusOptimal and not early)
        if early or status == pulp.LpStatusNotSolved:
            assert outcome.termination in STOPS
            if stopped_on in STOPS:
                assert outcome.termination is stopped_on
            elif time_limited:
                assert outcome.termination is TerminationCondition.TIME_LIMIT
        if status == pulp.LpStatusInfeasible and reached and not early:
            assert outcome.termination is TerminationCondition.TIME_LIMIT
        if status not in pulp.LpStatus or status == pulp.LpStatusUndefined:
            assert early or outcome.termination is TerminationCondition.SOLVER_ERROR
        assert outcome.mip_gap == (0.01 if outcome.has_solution else None)


def test_every_highs_model_status_maps_to_a_termination_condition() -> None:
    """Exhaustive over the installed highspy's HighsModelStatus: each member is in the map (a new
    one fails here rather than reaching a user as a traceback: PuLP's own table raises KeyError on
    kSolutionLimit, kMemoryLimit and kHighsInterrupt); optimal and infeasible only for kOptimal and
    the infeasibility proofs; an incumbent survives every stop and no proof; every condition has
    a SolverStatus."""
    import highspy

    from flopopt.optimizer.outcome import (
        HIGHS_MODEL_STATUS,
        STATUS_OF,
        STOPS,
        TerminationCondition,
        outcome_from_highs,
    )

    members = set(highspy.HighsModelStatus.__members__)
    assert members <= set(HIGHS_MODEL_STATUS), sorted(members - set(HIGHS_MODEL_STATUS))
    assert set(STATUS_OF) == set(TerminationCondition)
    proofs = {"kInfeasible", "kUnboundedOrInfeasible"}
    for name in [*members, "kSomethingNew"]:
        for incumbent in (False, True):
            for bounded in (False, True):
                outcome = outcome_from_highs(name, has_solution=incumbent, objective_bounded=bounded,
                                             mip_gap=0.02, mip_gap_tolerance=1e-4)
                assert outcome.status is STATUS_OF[outcome.termination]
                assert outcome.is_optimal == (name == "kOptimal")
                assert outcome.proven_infeasible == (name == "kInfeasible" or (name in proofs and bounded))
                if outcome.termination in STOPS - {TerminationCondition.SOLVER_ERROR,
                                                   TerminationCondition.UNBOUNDED,
                                                   TerminationCondition.INFEASIBLE_OR_UNBOUNDED}:
                    assert outcome.has_solution == incumbent
                    assert outcome.mip_gap == (0.02 if incumbent else None)
    assert outcome_from_highs("kSomethingNew", has_solution=False,
                              objective_bounded=True).termination is TerminationCondition.NOT_SOLVED
    expected = {"kTimeLimit": "time_limit", "kSolutionLimit": "terminated_by_limit", "kMemoryLimit": "memory_limit",
                "kInterrupt": "interrupted", "kHighsInterrupt": "interrupted", "kIterationLimit": "iteration_limit",
                "kUnboundedOrInfeasible": "infeasible_or_unbounded", "kSolveError": "solver_error"}
    assert {k: HIGHS_MODEL_STATUS[k].value for k in expected} == expected


def test_a_highs_status_pulp_does_not_know_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HiGHS stop on its improving-solution limit ends in kSolutionLimit, which PuLP's table
    lacks (KeyError inside PuLP): flopopt reads HiGHS's own status and returns the incumbent."""
    from flopopt.optimizer import model

    real = model.make_solver

    def one_solution(name: Any, time_limit_seconds: float | None = None) -> object:
        engine: Any = real(name, time_limit_seconds)
        engine.optionsDict["mip_max_improving_sols"] = 1
        return engine

    monkeypatch.setattr(model, "make_solver", one_solution)
    spec = _assignment()
    stopped = solve_model(spec, "highs")
    assert stopped.status == "terminated_by_limit" and stopped.outcome is not None
    assert stopped.outcome.has_solution and not stopped.outcome.proven_infeasible
    assert len(stopped.choice) == len(spec.jobs) and stopped.mip_gap is not None and stopped.mip_gap > 0


def test_cbc_says_why_it_stopped() -> None:
    from flopopt.optimizer.outcome import TerminationCondition, cbc_stopped_on

    assert cbc_stopped_on(CBC_STOPPED) is TerminationCondition.TIME_LIMIT
    assert cbc_stopped_on("Result - Stopped on node limit\n") is TerminationCondition.TERMINATED_BY_LIMIT
    assert cbc_stopped_on("Result - Stopped on solution limit\n") is TerminationCondition.TERMINATED_BY_LIMIT
    assert cbc_stopped_on("Result - Stopped on iteration limit\n") is TerminationCondition.ITERATION_LIMIT
    assert cbc_stopped_on("Result - Stopped on ctrl-c\n") is TerminationCondition.INTERRUPTED
    assert cbc_stopped_on(CBC_OPTIMAL) is None and cbc_stopped_on("") is None
    assert cbc_stopped_on("Result - Problem proven infeasible\n") is None


def test_objective_bounded_reads_the_variables_bounds() -> None:
    import pulp

    from flopopt.optimizer.model import objective_bounded, variable

    prob = pulp.LpProblem("b", pulp.LpMinimize)
    x, free = variable(prob, "x", low=0.0), variable(prob, "free")
    prob += 2 * x
    assert objective_bounded(prob)
    prob.setObjective(2 * x - free)
    assert not objective_bounded(prob)
    maximise = pulp.LpProblem("m", pulp.LpMaximize)
    y = variable(maximise, "y", low=0.0)
    maximise += y
    assert not objective_bounded(maximise)    # y has no upper bound


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slope=st.floats(-0.3, 0.0), deadline=st.floats(5.0, 400.0), increment=st.sampled_from([0.0, 1.0]),
       objective=st.sampled_from(["cost", "time"]), budget=st.floats(50.0, 5e4))
def test_exact_counts_follow_a_calibrated_fit(make_catalog: Any, slope: float, deadline: float, increment: float,
                                              objective: str, budget: float) -> None:
    """With a calibrated efficiency fit the attenuation itself falls with the count (β_n ≤ 0); the
    exact-count search must follow it. Oracle: every count 1–90 (past one scan chunk of 64) priced by
    performance.evaluate — the model solve reports — and the best feasible one picked by hand."""
    from dataclasses import replace

    from flopopt.optimizer.counts import with_counts
    from flopopt.optimizer.limits import fits_memory, meets_deadline, within_budget
    from flopopt.optimizer.performance import evaluate, realistic_assumptions
    from flopopt.optimizer.solve import Planner

    fit = pd.DataFrame([{"workload": "custom", "term": t, "value": v, "source": "test", "as_of": "2026-01-01"}
                        for t, v in (("intercept", math.log(0.4)), ("log2_gpus_over_ref", slope), ("ref_gpus", 8.0),
                                     ("resid_p10", -0.2), ("resid_p90", 0.2), ("runs", 20.0))])
    catalog = make_catalog([gpu_row("G", peak_tflops_fp32=50.0, peak_tflops_bf16="")],
                           [offer_row("a", "G", 2.0, max_instances=90, billing_increment_hours=increment,
                                      interconnect="ethernet"),
                            offer_row("b", "G", 13.0, gpus_per_instance=8, max_instances=12, min_hours=3,
                                      billing_increment_hours=increment)])
    catalog = replace(catalog, efficiency=fit)
    job = parse_job({"workload": {"kind": "custom", "total_flops": 3e20}, "precision": ["fp32"], "scenario": "cloud",
                     "objective": objective, "constraints": {"deadline_hours": deadline, "budget_usd": budget}})
    planner = Planner.build(job, catalog)
    chosen = planner.plan().chosen
    base = planner.expansion.base
    every = with_counts(base, planner.estimate, [list(range(1, int(hi) + 1)) for hi in base["count_hi"]])
    t = evaluate(every, planner.estimate, job, catalog.attenuation, realistic_assumptions(job, catalog.efficiency))
    ok = t[fits_memory(t["need_gb_per_gpu"], t["memory_gb"]) & meets_deadline(t["hours"], deadline)
           & within_budget(t["cost_usd"], budget)]
    if ok.empty:
        assert chosen is None
        return
    key = ["cost_usd", "hours"] if objective == "cost" else ["hours", "cost_usd"]
    best = ok.sort_values(key).iloc[0]
    assert chosen is not None
    assert float(chosen[key[0]]) == pytest.approx(float(best[key[0]]), rel=1e-6)


def test_every_outcome_has_a_result_status_and_a_sentence() -> None:
    """outcome.result_status over every termination condition, with and without an incumbent: only a
    proof is infeasible, only the time limit is time_limit, every other stop is not_solved; a stop
    always says what stopped the solver, and never suggests relaxing a limit."""
    from flopopt.optimizer.outcome import TerminationCondition, result_status, solver_outcome
    from flopopt.optimizer.vocabulary import Status

    for termination in TerminationCondition:
        for incumbent in (False, True):
            outcome = solver_outcome(termination, has_solution=incumbent, mip_gap=0.25)
            status, text = result_status(outcome, what="fleet", time_limit_seconds=3.0)
            if termination is TerminationCondition.OPTIMAL:
                assert (status, text) == (Status.OPTIMAL, None)
            elif termination is TerminationCondition.INFEASIBLE:
                assert (status, text) == (Status.INFEASIBLE, None)    # the caller explains which limit binds
            else:
                assert status is (Status.TIME_LIMIT if termination is TerminationCondition.TIME_LIMIT
                                  else Status.NOT_SOLVED)
                assert text is not None and text.startswith("the solver ") and "fleet" in text
                assert ("not proven optimal (relative MIP gap 25.00%)" in text) == incumbent
                assert "binds" not in text and "raise the deadline" not in text and "budget" not in text
