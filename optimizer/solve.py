"""``solve(job, catalog) -> Result``: the envelope pipeline end to end.

job → flops → candidates (performance, memory) → model → Plan, then sensitivity.
Infeasible is a status: ``explain_infeasible`` says which limit binds and by how much.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..catalogs.loader import Catalog
from .candidate_schema import row_records
from .job import Job
from .model import SolverName
from .outcome import result_status
from .planner import Outcome, Planner, explain_infeasible, ranked
from .result import CandidateTable, ModelStats, Result, Status, plan_from_row
from .sensitivity import analyse, plan_with_confidence

if TYPE_CHECKING:
    from .serving_solve import ServingResult

__all__ = ["solve", "Result", "Status", "Planner", "Outcome", "explain_infeasible", "plan_from_row"]


def solve(
    job: Job,
    catalog: Catalog,
    *,
    solver: SolverName = "highs",
    sensitivity: bool = True,
    samples: int = 2000,
    seed: int = 0,
    confidence: float | None = None,
    time_limit_seconds: float | None = None,
) -> Result | ServingResult:
    """Cheapest (or fastest) plan meeting the job's limits, with its sensitivity.
    A ``transformer_serving`` job is a fleet instead (serving_solve.py)."""
    if job.workload.kind == "transformer_serving":
        from .serving_solve import solve_serving

        return solve_serving(job, catalog, solver=solver, sensitivity=sensitivity,
                             time_limit_seconds=time_limit_seconds)
    planner = replace(Planner.build(job, catalog, solver), time_limit_seconds=time_limit_seconds)
    outcome = planner.plan()
    if confidence is not None:
        outcome = plan_with_confidence(planner, confidence, samples, seed)
    cands = outcome.candidates
    plan = outcome.plan
    status, explanation = solve_status(outcome, time_limit_seconds)
    binding = None
    if status is Status.INFEASIBLE:
        binding, explanation = explain_infeasible(planner, cands, outcome.deadline_quantile)
    others = ranked(cands.feasible, job.objective).drop_duplicates("offer_id")
    if plan is not None:
        others = others[others["offer_id"] != plan.offer_id]
    alternatives = tuple(plan_from_row(r) for r in row_records(others.head(5)))
    candidates = CandidateTable(cands.table, cands.deadline_hours, cands.budget_usd)
    stats = ModelStats(
        enumerated=cands.enumerated,
        feasible=int(cands.table["feasible"].sum()),
        after_pruning=len(cands.survivors),
        variables=outcome.solution.variables,
        constraints=outcome.solution.constraints,
        solver=outcome.solution.solver,
        solve_seconds=outcome.solution.seconds,
        mip_gap=outcome.solution.mip_gap,
        mip_gap_tolerance=outcome.solution.mip_gap_tolerance,
        termination=outcome.solution.solver_outcome.termination.value,
    )
    warnings = tuple(w for w in [catalog.staleness_warning()] if w)
    result = Result(
        status=status,
        job=job,
        estimate=planner.estimate,
        plan=plan,
        alternatives=alternatives,
        candidates=candidates,
        excluded=cands.excluded,
        binding=binding,
        explanation=explanation,
        stats=stats,
        catalog_layers=catalog.layers,
        warnings=warnings,
    )
    if sensitivity and plan is not None:
        result = analyse(planner, result, samples=samples, seed=seed)
    return result


def solve_status(outcome: Outcome, time_limit_seconds: float | None = None) -> tuple[Status, str | None]:
    """The result's status and, when the solver did not finish, what to tell the user
    (outcome.result_status, as for every program): an incumbent is a plan, ``optimal`` when proven,
    else ``time_limit`` (or ``not_solved`` for another stop) with a note that it is not proven optimal
    and its MIP gap; no incumbent and no proof of infeasibility: no relaxation hint, nothing showed
    that a limit binds. Only a proof gives ``infeasible`` (the caller then asks ``explain_infeasible``)."""
    return result_status(outcome.solution.solver_outcome, what="plan", time_limit_seconds=time_limit_seconds)
