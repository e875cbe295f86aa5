"""Why no plan exists: the binding limit of an infeasible portfolio and the relaxation needed.

Infeasible is a status, not an exception: ``explain_infeasible_plan`` names the binding limit
(a job no plan can run, the horizon, the budget, a max_count, a quota) and the relaxation
needed, by re-solving the program with shared limits dropped (``procurement_model.build_model``'s
flags) and reading how much more the relaxed plan uses.
"""

from __future__ import annotations

import math

import numpy as np

from .limits import fits_memory
from .model import SolverName
from .outcome import SolverOutcome
from .planner import explain_infeasible
from .portfolio_candidates import JobCandidates, PortfolioCandidates
from .procurement_model import PlanModel, build_model, chosen_candidates, solve_model, units_bought
from .procurement_report import units_on_hand

__all__ = ["explain_infeasible_plan"]


def explain_infeasible_plan(cands: PortfolioCandidates, solver: SolverName = "highs",
                            time_limit_seconds: float | None = None) -> tuple[str, str]:
    """Which limit binds, and the smallest relaxation that would let a plan exist.

    In order: a job no candidate can run (its deadline, the horizon, memory, budget or
    allow-lists, as ``solve`` explains it); the shared budget (the least cash any plan
    needs, from the program minimising cash without the budget row); max_count and
    quotas (relaxed one at a time, the relaxed plan says how much more is needed).
    Each relaxed program is solved within ``time_limit_seconds``; any plan it finds shows the
    relaxation suffices, and one that stops without a plan or a proof says so ("unknown").
    """
    stuck = [jc for jc in cands.jobs if jc.kept.empty]
    if stuck:
        reasons = [_job_reason(cands, jc) for jc in stuck]
        more = f" ({len(stuck) - 1} more job(s) cannot run either: " + "; ".join(r[1] for r in reasons[1:]) + ")" \
            if len(stuck) > 1 else ""
        return reasons[0][0], reasons[0][1] + more
    portfolio = cands.portfolio
    if portfolio.budget_usd is not None:
        relaxed = build_model(cands, budget=False, objective="cash")
        cash = solve_model(relaxed, solver, time_limit_seconds)
        if cash.has_solution:
            need = float(relaxed.prob.objective.value())
            budget = portfolio.budget_usd
            least = ("the least cash any plan spends is" if cash.is_optimal else
                     f"a plan without the budget (the solver stopped ({cash.termination.value}) before proving it "
                     "the least) spends")
            return ("budget_usd", f"{least} ${need:,.0f} (rentals, power, purchases and "
                    f"commitments over the horizon); budget_usd is ${budget:,.0f} — raise it by "
                    f"${need - budget:,.0f} (+{(need / budget - 1) * 100:.0f}%) or drop a job")
        if not cash.proven_infeasible:
            return _undecided(cash)
    for model, reason in ((build_model(cands, budget=False, max_counts=False), _max_count_reason),
                          (build_model(cands, budget=False, quotas=False), _quota_reason)):
        outcome = solve_model(model, solver, time_limit_seconds)
        if outcome.has_solution:
            return reason(cands, model)
        if not outcome.proven_infeasible:
            return _undecided(outcome)
    neither = build_model(cands, budget=False, quotas=False, max_counts=False)
    outcome = solve_model(neither, solver, time_limit_seconds)
    if outcome.has_solution:
        needs = [_max_count_reason(cands, neither), _quota_reason(cands, neither)]
        return (" and ".join(n[0] for n in needs), "; ".join(n[1] for n in needs))
    if not outcome.proven_infeasible:
        return _undecided(outcome)
    return ("unknown", "no combination of the jobs' candidates satisfies every shared limit; check the jobs' "
            "periods, quotas and max_count")


def _undecided(relaxed: SolverOutcome) -> tuple[str, str]:
    """No plan exists (proven), but a relaxed program stopped before telling which limit binds."""
    return ("unknown", f"no plan meets every shared limit, but the solver stopped ({relaxed.termination.value}) "
            "before finding which limit binds; raise the time limit")


def _job_reason(cands: PortfolioCandidates, jc: JobCandidates) -> tuple[str, str]:
    pj = jc.pjob
    horizon = cands.portfolio.horizon
    where = f"jobs[{pj.index}]"
    planner = jc.planner.with_limits(deadline_hours=jc.deadline_hours, budget_usd=pj.job.constraints.budget_usd)
    binding, text = explain_infeasible(planner, jc.evaluated)
    if binding == "deadline_hours" and jc.horizon_bound:
        t = jc.evaluated.table
        fits = t[fits_memory(t["need_gb_per_gpu"].to_numpy(float), t["memory_gb"].to_numpy(float))]
        need = float(fits["hours"].min())
        spans = int(math.ceil(need / horizon.period_hours - 1e-9))
        latest = horizon.periods - spans + 1
        move = f"start it in period {latest} or earlier, or " if latest >= 1 else ""
        return ("horizon", f"{pj.name} ({where}) starts in period {pj.period}, leaving {jc.deadline_hours:,.0f} h "
                f"in the horizon; its fastest plan needs {need:,.0f} h — {move}extend horizon.periods to "
                f"{pj.period + spans - 1}")
    field_path = {"deadline_hours": "constraints.deadline_hours", "budget_usd": "constraints.budget_usd"}
    return (f"{where}.{field_path.get(binding, binding)}", f"{pj.name} ({where}): {text}")


def _max_count_reason(cands: PortfolioCandidates, relaxed: PlanModel) -> tuple[str, str]:
    bought = units_bought(relaxed)
    periods = cands.portfolio.horizon.periods
    for k, s in enumerate(cands.sources):
        if s.max_count is None or s.fixed_count is not None:
            continue
        peak = max(units_on_hand(s, bought, k, p) for p in range(1, periods + 1))
        if peak > s.max_count:
            return (f"{s.where}.max_count", f"the jobs need {peak} unit(s) of {s.name} on hand at once; max_count "
                    f"is {s.max_count} — raise max_count to {peak}, or let jobs rent (allow-lists) or move periods")
    return ("max_count", "the jobs need more units of a purchase or reserved option than max_count allows")


def _quota_reason(cands: PortfolioCandidates, relaxed: PlanModel) -> tuple[str, str]:
    choice = chosen_candidates(relaxed)
    demand: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for jc, c, use in zip(cands.jobs, choice, relaxed.usage):
        row = jc.kept.iloc[c]
        if row["resource"] != "quota":
            continue
        for p in (np.flatnonzero(use[c] > 0) + 1).tolist():
            demand.setdefault((str(row["offer_id"]), p), []).append((jc.name, int(row["instances"])))
    for (offer_id, p), users in sorted(demand.items(), key=lambda kv: kv[0][1]):
        total = sum(n for _, n in users)
        quota = cands.quotas[offer_id]
        if total > quota:
            names = ", ".join(f"{name} ({n})" for name, n in users)
            return (f"quotas.{offer_id}", f"in period {p} {names} need {total} instance(s) of {offer_id} side by "
                    f"side; its quota is {quota} — raise quotas.{offer_id} to {total} or move a job to another "
                    "period")
    return ("quota", "jobs running in the same period need more instances of a quota-limited offer than it has")
