"""The integer program of ``plan``: buy / reserve / rent decisions for a portfolio over a horizon.

Written out here, as for every program in flopopt; the numbered constraints match the
``# (n)`` comments above their rows in ``build_model``.

Sets
    J            jobs; job j starts in period s_j
    P            periods 1..T of H hours each (horizon.period_hours)
    K            capacity sources: purchase options and reserved options
    Q            catalog offers with a per-period quota (max_instances or ``quotas:``)
    C_j          job j's kept candidates (portfolio_candidates.prune_for_portfolio); C_j^k on source k,
                 C_j^q on quota offer q
    A_k(p)       acquisition periods a whose units are usable in p: purchases a + lead ≤ p;
                 reserved a + lead ≤ p < a + lead + term
Parameters
    cost_jc      direct cost of candidate c: rental bill, power of bought hardware,
                 0 on reserved capacity                                      [USD]
    g_jcp        GPU-hours candidate c runs in period p (portfolio_candidates.period_gpu_hours)  [GPU-h]
    n_jc         instances (units) candidate c occupies while it runs        [units]
    act_jcp      1 if candidate c runs in period p                            [-]
    G_k          GPUs per unit of source k                                    [GPU]
    F_k          unit cost of k: capex, or price × term × H of a commitment   [USD]
    R_k          resale value of a bought unit at the horizon's end           [USD]
    M_k          units of k on hand at most (max_count, optional)             [units]
    f_kp         units of a signed commitment usable in p (constant)          [units]
    Q_q          quota of offer q per period                                  [instances]
    B            shared budget (optional)                                     [USD]
Variables
    x_jc ∈ {0,1}   job j runs on candidate c
    b_ka ∈ Z≥0     units of source k bought / committed in period a; purchases only in
                   a = 1 (see below), commitments in any a whose term starts in the horizon
    U_kp = Σ_{a ∈ A_k(p)} b_ka + f_kp      units on hand in period p (an expression)
Objective (total cost of ownership; no discounting)
    min Σ_jc cost_jc·x_jc + Σ_ka (F_k − R_k)·b_ka + Σ_k F_k·(signed commitments)
Constraints
    (1) Σ_c x_jc = 1                                   ∀ j        one plan per job
    (2) Σ_j Σ_{c∈C_j^k} g_jcp·x_jc ≤ G_k·H·U_kp        ∀ k, p     owned GPU-hours ≤ capacity
    (3) Σ_{c∈C_j^k} n_jc·act_jcp·x_jc ≤ U_kp           ∀ j, k, p  a job fits on the fleet at once
    (4) Σ_j Σ_{c∈C_j^q} n_jc·act_jcp·x_jc ≤ Q_q        ∀ q, p     jobs of a period share a quota
    (5) U_kp ≤ M_k                                     ∀ k, p     units on hand (max_count)
    (6) Σ_jc cost_jc·x_jc + Σ_ka F_k·b_ka + Σ_k F_k·(signed) ≤ B  shared budget (cash spent;
                                                                  resale comes after the horizon)
Purchases are decided in period 1 only: without discounting, with resale independent
of age and one budget for the horizon, a unit costs the same whenever it is bought and
an earlier unit serves every period a later one does, so this loses nothing and spares
the solver equivalent solutions. The report then schedules each unit just in time
(``procurement_report.just_in_time``: bought lead-time periods before the first period
that needs it).
Per-job deadlines (capped by the hours left in the horizon), budgets, memory and
allow-lists are applied before the model is built (candidates.py), which keeps it small.
(2) with (3) let jobs of one period share a fleet in time (one after another or side
by side) as long as its GPU-hours suffice and each job fits on it at once; they do not
schedule jobs inside a period. (4) is conservative: jobs of one period are assumed to
run side by side on a quota-limited offer; a row is only written where the jobs'
largest claims could exceed the quota. "optimal" means within the solver's default
relative MIP gap (1e-4 for HiGHS and CBC), as for ``solve``. The solver plumbing
(HiGHS with CBC fallback, the quiet-stdout guard, the outcome map and the MIP gap) is
model.py's ``solve_outcome``, reused as is: a search stopped by the time limit with an
incumbent is still a plan, only a proof is "infeasible".

The flags of ``build_model`` drop rows (budget, quotas, max_count) or switch the objective to
cash, so ``procurement_infeasible`` can find which limit binds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .model import SolverName, binary_variable, make_solver, solve_outcome, variable
from .outcome import SolverOutcome
from .portfolio_candidates import PortfolioCandidates, period_gpu_hours

__all__ = ["PlanModel", "build_model", "chosen_candidates", "solve_model", "units_bought"]


@dataclass
class PlanModel:
    """The built program and the handles needed to read a solution back."""

    prob: Any
    x: list[list[Any]]                            # per job, per kept candidate
    buy: dict[tuple[int, int], Any]               # (source index, period) → integer variable
    usage: list[np.ndarray]                       # per job: candidates × periods GPU-hours


def build_model(cands: PortfolioCandidates, *, budget: bool = True, quotas: bool = True, max_counts: bool = True,
                objective: Literal["tco", "cash"] = "tco") -> PlanModel:
    """The program of the module docstring; the flags drop rows to diagnose infeasibility."""
    import pulp

    portfolio = cands.portfolio
    horizon = portfolio.horizon
    periods = range(1, horizon.periods + 1)
    prob = pulp.LpProblem("flopopt_plan", pulp.LpMinimize)
    sources = cands.sources
    source_index = {s.name: k for k, s in enumerate(sources)}
    buy: dict[tuple[int, int], Any] = {
        (k, a): variable(prob, f"buy_{k}_{a}", low=0.0, cat="Integer")
        for k, s in enumerate(sources) for a in s.acquire_periods(horizon.periods)
    }
    units = {(k, p): pulp.LpAffineExpression([(var, 1.0) for (kk, a), var in buy.items()
                                              if kk == k and s.available(a, p)], constant=float(s.fixed_units(p)))
             for k, s in enumerate(sources) for p in periods}
    x: list[list[Any]] = []
    usage: list[np.ndarray] = []
    direct: list[tuple[Any, float]] = []
    capacity_terms: dict[tuple[int, int], list[tuple[Any, float]]] = {}
    quota_terms: dict[tuple[str, int], list[tuple[Any, float]]] = {}
    quota_peak: dict[tuple[str, int], float] = {}     # Σ over jobs of each job's largest claim
    for j, jc in enumerate(cands.jobs):
        t = jc.kept
        row = [binary_variable(prob, f"x_{j}_{c}") for c in range(len(t))]
        x.append(row)
        use = period_gpu_hours(t["hours"].to_numpy(float), t["gpu_count"].to_numpy(float), jc.pjob.period, horizon)
        usage.append(use)
        cost = t["cost_usd"].to_numpy(float)
        direct.extend((var, float(cost[c])) for c, var in enumerate(row))
        # (1) one plan per job
        prob += pulp.LpAffineExpression([(var, 1.0) for var in row]) == 1, f"one_plan_{j}"
        instances = t["instances"].to_numpy(float)
        resource = t["resource"].to_numpy()
        offer = t["offer_id"].to_numpy()
        source = t["source"].to_numpy()
        fits: dict[tuple[int, int], list[tuple[Any, float]]] = {}
        claim: dict[tuple[str, int], float] = {}
        for c in np.flatnonzero(resource != "free"):
            for p in (np.flatnonzero(use[c] > 0) + 1).tolist():
                if resource[c] == "source":
                    k = source_index[str(source[c])]
                    capacity_terms.setdefault((k, p), []).append((row[c], float(use[c, p - 1])))
                    fits.setdefault((k, p), []).append((row[c], float(instances[c])))
                else:
                    key = (str(offer[c]), p)
                    quota_terms.setdefault(key, []).append((row[c], float(instances[c])))
                    claim[key] = max(claim.get(key, 0.0), float(instances[c]))
        # (3) the job fits on the fleet it runs on, in every period it runs
        for (k, p), terms in fits.items():
            prob += pulp.LpAffineExpression(terms) - units[(k, p)] <= 0, f"fits_{j}_{k}_{p}"
        for key, peak in claim.items():
            quota_peak[key] = quota_peak.get(key, 0.0) + peak
    # (2) GPU-hours used on a source ≤ its capacity in the period
    for (k, p), terms in capacity_terms.items():
        capacity = sources[k].gpus_per_unit * horizon.period_hours
        prob += pulp.LpAffineExpression(terms) - capacity * units[(k, p)] <= 0, f"capacity_{k}_{p}"
    # (4) jobs running in the same period share an offer's quota (only rows that can bind)
    if quotas:
        for number, ((offer_id, p), terms) in enumerate(quota_terms.items()):
            if quota_peak[(offer_id, p)] > cands.quotas[offer_id] + 1e-9:
                prob += pulp.LpAffineExpression(terms) <= cands.quotas[offer_id], f"quota_{number}_{p}"
    # (5) units on hand at most max_count
    if max_counts:
        for k, s in enumerate(sources):
            if s.max_count is None or s.fixed_count is not None:
                continue
            for p in periods:
                if len(units[(k, p)]):
                    prob += units[(k, p)] <= s.max_count, f"max_count_{k}_{p}"
    signed = float(sum(s.unit_cost_usd * s.fixed_count for s in sources if s.fixed_count))
    spend = [(var, sources[k].unit_cost_usd) for (k, _), var in buy.items()]
    net = [(var, sources[k].unit_cost_usd - sources[k].resale_usd) for (k, _), var in buy.items()]
    cash = pulp.LpAffineExpression(direct + spend, constant=signed)
    # (6) shared budget on the cash spent
    if budget and portfolio.budget_usd is not None:
        prob += cash <= portfolio.budget_usd, "shared_budget"
    prob.setObjective(pulp.LpAffineExpression(direct + net, constant=signed) if objective == "tco" else cash)
    return PlanModel(prob=prob, x=x, buy=buy, usage=usage)


def solve_model(model: PlanModel, solver: SolverName, time_limit_seconds: float | None = None) -> SolverOutcome:
    """Solve ``model`` in place; what the solver ended with (an incumbent when ``has_solution``)."""
    return solve_outcome(model.prob, make_solver(solver, time_limit_seconds),
                         time_limited=time_limit_seconds is not None)


def chosen_candidates(model: PlanModel) -> list[int]:
    """Per job, the index of the kept candidate the solution runs it on."""
    return [int(np.argmax([v.varValue or 0.0 for v in row])) for row in model.x]


def units_bought(model: PlanModel) -> dict[tuple[int, int], int]:
    """(source index, period) → units bought or committed in the solution."""
    return {key: int(round(var.varValue or 0.0)) for key, var in model.buy.items()}
