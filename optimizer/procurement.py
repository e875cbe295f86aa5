"""Multi-period buy-vs-rent: which hardware to buy or reserve when, and where each job runs.

``plan(portfolio, catalog) -> PlanResult``. Each job's candidates come from
portfolio_candidates.py (the same performance model and limits as ``solve``; bought hardware is
an owned/lab candidate); this module decides purchases, commitments and placements in
one integer program, minimising the total cost of ownership over the horizon.

One stage per module, in the order data flows:

    portfolio.py                 the portfolio file: jobs, horizon, options, quotas
    capacity_sources.py          purchase and reserved options as offers
    portfolio_candidates.py      each job's candidates, priced and pruned
    procurement_model.py         the integer program (written out in its docstring)
    procurement.py               ``plan``: build, solve, assemble the result (this module)
    procurement_report.py        the solution → placements, purchases, periods, costs
    procurement_break_even.py    buy-vs-rent break-even per capacity source
    procurement_infeasible.py    the binding limit and the relaxation, when no plan exists
    procurement_result.py        the frozen result records

Infeasible is a status: ``explain_infeasible_plan`` names the binding limit (a job no
plan can run, the horizon, the budget, a max_count, a quota) and the relaxation needed.
It is written only for proven infeasibility: a solver stopped by ``time_limit_seconds`` (or
another limit) returns its incumbent as the plan, status time_limit (not_solved for another
stop) with the MIP gap, or no plan and no binding limit (outcome.result_status).
"""

from __future__ import annotations

import time

from ..catalogs.loader import Catalog
from .model import SolverName
from .outcome import infeasible_by_construction, result_status
from .portfolio import Portfolio
from .portfolio_candidates import build_candidates
from .procurement_break_even import break_even
from .procurement_infeasible import explain_infeasible_plan
from .procurement_model import build_model, chosen_candidates, solve_model, units_bought
from .procurement_report import (
    commitment_records,
    cost_breakdown,
    just_in_time,
    make_assignment,
    period_uses,
    purchase_records,
    used_by_source,
)
from .procurement_result import PlanResult, PlanStats
from .result import Status

__all__ = ["plan"]


def plan(portfolio: Portfolio, catalog: Catalog, *, solver: SolverName = "highs",
         time_limit_seconds: float | None = None) -> PlanResult:
    """Cheapest purchases, commitments and job placements over the horizon (total cost of ownership)."""
    started = time.perf_counter()
    cands = build_candidates(portfolio, catalog, solver)
    candidate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    empty = any(j.kept.empty for j in cands.jobs)
    model = build_model(cands)
    outcome = infeasible_by_construction() if empty else solve_model(model, solver, time_limit_seconds)
    solve_seconds = time.perf_counter() - started
    prob = model.prob
    stats = PlanStats(
        jobs=len(cands.jobs), periods=portfolio.horizon.periods, enumerated=cands.enumerated,
        feasible=cands.feasible, kept=cands.kept, variables=prob.numVariables(), integer_variables=len(model.buy),
        constraints=prob.numConstraints(), solver=solver, candidate_seconds=candidate_seconds,
        solve_seconds=solve_seconds, mip_gap=outcome.mip_gap, mip_gap_tolerance=outcome.mip_gap_tolerance,
        termination=outcome.termination.value,
    )
    warnings = tuple(w for w in [catalog.staleness_warning(), *cands.warnings] if w)
    status, explanation = result_status(outcome, what="plan", time_limit_seconds=time_limit_seconds)
    if not outcome.has_solution:
        binding = None
        if status is Status.INFEASIBLE:
            binding, explanation = explain_infeasible_plan(cands, solver, time_limit_seconds)
        return PlanResult(status=status, portfolio=portfolio, purchases=(), commitments=(),
                          assignments=(), periods=(), cost=None, break_even=break_even(cands, None, None),
                          binding=binding, explanation=explanation, stats=stats,
                          catalog_layers=cands.catalog.layers, warnings=warnings)
    choice = chosen_candidates(model)
    bought = just_in_time(cands, units_bought(model), choice, model.usage)
    assignments = tuple(make_assignment(jc, c, model.usage[j][c]) for j, (jc, c) in enumerate(zip(cands.jobs, choice)))
    used = used_by_source(cands, choice, model.usage)
    return PlanResult(
        status=status, portfolio=portfolio,
        purchases=purchase_records(cands, bought), commitments=commitment_records(cands, bought),
        assignments=assignments, periods=period_uses(cands, assignments, bought, used, choice, model.usage),
        cost=cost_breakdown(cands, assignments, bought), break_even=break_even(cands, bought, used, assignments),
        binding=None, explanation=explanation, stats=stats, catalog_layers=cands.catalog.layers, warnings=warnings,
    )
