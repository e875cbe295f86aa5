"""Multi-period buy-vs-rent: which hardware to buy or reserve when, and where each job runs.

``plan(portfolio, catalog) -> PlanResult``. Each job's candidates come from
portfolio.py (the same performance model and limits as ``solve``; bought hardware is
an owned/lab candidate); this module decides purchases, commitments and placements in
one integer program, minimising the total cost of ownership over the horizon.

Sets
    J            jobs; job j starts in period s_j
    P            periods 1..T of H hours each (horizon.period_hours)
    K            capacity sources: purchase options and reserved options
    Q            catalog offers with a per-period quota (max_instances or ``quotas:``)
    C_j          job j's kept candidates (portfolio.prune_for_portfolio); C_j^k on source k,
                 C_j^q on quota offer q
    A_k(p)       acquisition periods a whose units are usable in p: purchases a + lead ≤ p;
                 reserved a + lead ≤ p < a + lead + term
Parameters
    cost_jc      direct cost of candidate c: rental bill, power of bought hardware,
                 0 on reserved capacity                                      [USD]
    g_jcp        GPU-hours candidate c runs in period p (portfolio.period_gpu_hours)  [GPU-h]
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
(``_just_in_time``: bought lead-time periods before the first period that needs it).
Per-job deadlines (capped by the hours left in the horizon), budgets, memory and
allow-lists are applied before the model is built (candidates.py), which keeps it small.
(2) with (3) let jobs of one period share a fleet in time (one after another or side
by side) as long as its GPU-hours suffice and each job fits on it at once; they do not
schedule jobs inside a period. (4) is conservative: jobs of one period are assumed to
run side by side on a quota-limited offer; a row is only written where the jobs'
largest claims could exceed the quota. "optimal" means within the solver's default
relative MIP gap (1e-4 for HiGHS and CBC), as for ``solve``. The solver plumbing
(HiGHS with CBC fallback, the quiet-stdout guard) is model.py's, reused as is.

Infeasible is a status: ``explain_infeasible_plan`` names the binding limit (a job no
plan can run, the horizon, the budget, a max_count, a quota) and the relaxation needed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..catalogs.loader import Catalog, hourly_cost_usd
from .economics import unit_break_even
from .limits import fits_memory
from .model import SolverName, binary_variable, make_solver, run_solver, variable
from .planner import explain_infeasible
from .portfolio import (
    PURCHASE_PREFIX,
    REFERENCE_RENTAL_KINDS,
    RESERVED_PREFIX,
    CapacitySource,
    JobCandidates,
    Portfolio,
    PortfolioCandidates,
    build_candidates,
    period_gpu_hours,
)
from .result import Status

__all__ = [
    "Assignment",
    "Commitment",
    "CostBreakdown",
    "OptionBreakEven",
    "PeriodUse",
    "PlanResult",
    "PlanStats",
    "Purchase",
    "explain_infeasible_plan",
    "plan",
]


# ---------------------------------------------------------------------------
# Result objects


@dataclass(frozen=True)
class Purchase:
    period: int                # when it is bought (and paid)
    option: str
    count: int
    capex_usd: float           # count × unit capex
    gpu: str
    gpus: int                  # per unit
    usable_from: int           # period + lead time
    resale_usd: float          # recovered at the horizon's end


@dataclass(frozen=True)
class Commitment:
    period: int                # first period of the term (when it is signed)
    option: str
    count: int
    cost_usd: float            # count × price × term hours
    gpu: str
    gpus: int
    usable_from: int
    usable_until: int          # last period of the term inside the horizon
    signed: bool               # fixed in the portfolio file, not chosen by the optimiser


@dataclass(frozen=True)
class Assignment:
    """Where one job runs: a catalog offer (a rental) or a capacity source."""

    job: str
    period: int                # start period
    offer_id: str              # catalog offer, or the source's synthetic id (buy:…/reserve:…)
    option: str | None         # capacity source name
    resource: Literal["rental", "purchase", "reserved"]
    provider: str
    kind: str
    gpu: str
    gpu_count: int
    instances: int
    precision: str
    scenario: str
    hours: float
    cost_usd: float            # rental bill, or power on bought hardware, 0 on reserved
    periods: tuple[int, ...]   # periods it runs in
    region: str = ""           # the offer's region ("portfolio" for a capacity source)

    @property
    def gpu_hours(self) -> float:
        return self.gpu_count * self.hours


@dataclass(frozen=True)
class PeriodUse:
    period: int
    owned_gpu_hours: float            # capacity of bought hardware on hand (and of owned catalog machines used)
    used_gpu_hours: float             # of it, used by jobs
    reserved_gpu_hours: float
    reserved_used_gpu_hours: float
    rented_gpu_hours: float           # on catalog offers
    units: dict[str, int]             # source → units on hand
    jobs_started: tuple[str, ...]


@dataclass(frozen=True)
class CostBreakdown:
    rental_usd: float
    capex_usd: float
    power_usd: float
    reserved_usd: float
    resale_usd: float                 # credited: total = rental + capex + power + reserved − resale
    total_usd: float
    cash_usd: float                   # spent during the horizon (what the budget limits)


@dataclass(frozen=True)
class OptionBreakEven:
    """Buy (or reserve) vs rent for one source, in GPU-hours of the same GPU model.

    Catalog view: a unit costs F − R net (capex − resale, or the commitment) and saves,
    per busy GPU-hour, the reference rental price r minus its own running cost p
    (power); r is the cheapest on-demand / reserved / cluster-quote $/GPU-h of the same
    GPU among offers some job of the portfolio may rent. It pays off when busy for at
    least (F − R) / (r − p) GPU-hours, i.e. a utilisation of
        u* = (F − R) / ((r − p) · G · hours available to a unit acquired in period 1).
    Plan view (``plan_*``, when the plan uses the source): the jobs placed on it would
    otherwise pay ``rent_instead_usd`` (each its cheapest feasible rental, quotas
    ignored); with their GPU-hours that is a saving rate s per busy GPU-hour, and
    ``plan_break_even_utilization`` = (F − R) / (s · G · available hours). The catalog view
    is in hardware-hours of the same GPU; the plan view carries each job's real
    alternatives (other GPUs, cloud attenuation and scale-out), as the integer program does.
    """

    option: str
    kind: str
    gpu: str
    gpus_per_unit: int
    reference_offer_id: str | None
    rental_usd_per_gpu_hour: float | None
    power_usd_per_gpu_hour: float
    net_cost_per_unit_usd: float
    available_hours_per_unit: float
    break_even_gpu_hours_per_unit: float | None
    break_even_utilization: float | None
    units: int                         # acquired in the plan (0 when infeasible)
    capacity_gpu_hours: float          # over the horizon, of the planned units
    used_gpu_hours: float
    planned_utilization: float | None
    note: str
    jobs: tuple[str, ...] = ()                          # placed on this source by the plan
    rent_instead_usd: float | None = None               # those jobs' cheapest rentals
    own_cost_usd: float | None = None                   # net unit cost + power of those jobs
    plan_break_even_utilization: float | None = None


@dataclass(frozen=True)
class PlanStats:
    jobs: int
    periods: int
    enumerated: int                    # candidates priced, all jobs
    feasible: int
    kept: int                          # after portfolio pruning = binary variables
    variables: int
    integer_variables: int             # purchase / commitment counts
    constraints: int
    solver: str
    candidate_seconds: float
    solve_seconds: float


@dataclass(frozen=True)
class PlanResult:
    status: Status
    portfolio: Portfolio
    purchases: tuple[Purchase, ...]
    commitments: tuple[Commitment, ...]
    assignments: tuple[Assignment, ...]
    periods: tuple[PeriodUse, ...]
    cost: CostBreakdown | None
    break_even: tuple[OptionBreakEven, ...]
    binding: str | None
    explanation: str | None
    stats: PlanStats
    catalog_layers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rentals(self) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.resource == "rental")


# ---------------------------------------------------------------------------
# The integer program


@dataclass
class _Model:
    prob: Any
    x: list[list[Any]]                            # per job, per kept candidate
    buy: dict[tuple[int, int], Any]               # (source index, period) → integer variable
    usage: list[np.ndarray]                       # per job: candidates × periods GPU-hours


def _build(cands: PortfolioCandidates, *, budget: bool = True, quotas: bool = True, max_counts: bool = True,
           objective: Literal["tco", "cash"] = "tco") -> _Model:
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
    return _Model(prob=prob, x=x, buy=buy, usage=usage)


def _solve(model: _Model, solver: SolverName) -> str:
    return run_solver(model.prob, make_solver(solver))


def _choices(model: _Model) -> list[int]:
    return [int(np.argmax([v.varValue or 0.0 for v in row])) for row in model.x]


def _bought(model: _Model) -> dict[tuple[int, int], int]:
    return {key: int(round(var.varValue or 0.0)) for key, var in model.buy.items()}


# ---------------------------------------------------------------------------
# plan


def plan(portfolio: Portfolio, catalog: Catalog, *, solver: SolverName = "highs") -> PlanResult:
    """Cheapest purchases, commitments and job placements over the horizon (total cost of ownership)."""
    started = time.perf_counter()
    cands = build_candidates(portfolio, catalog, solver)
    candidate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    empty = any(j.kept.empty for j in cands.jobs)
    model = _build(cands)
    status = "infeasible" if empty else _solve(model, solver)
    solve_seconds = time.perf_counter() - started
    prob = model.prob
    stats = PlanStats(
        jobs=len(cands.jobs), periods=portfolio.horizon.periods, enumerated=cands.enumerated,
        feasible=cands.feasible, kept=cands.kept, variables=prob.numVariables(), integer_variables=len(model.buy),
        constraints=prob.numConstraints(), solver=solver, candidate_seconds=candidate_seconds,
        solve_seconds=solve_seconds,
    )
    warnings = tuple(w for w in [catalog.staleness_warning(), *cands.warnings] if w)
    if status != "optimal":
        binding, explanation = explain_infeasible_plan(cands, solver)
        return PlanResult(status=Status.INFEASIBLE, portfolio=portfolio, purchases=(), commitments=(),
                          assignments=(), periods=(), cost=None, break_even=break_even(cands, None, None),
                          binding=binding, explanation=explanation, stats=stats,
                          catalog_layers=cands.catalog.layers, warnings=warnings)
    choice = _choices(model)
    bought = _just_in_time(cands, _bought(model), choice, model.usage)
    assignments = tuple(_assignment(jc, c, model.usage[j][c]) for j, (jc, c) in enumerate(zip(cands.jobs, choice)))
    used = _used_by_source(cands, choice, model.usage)
    return PlanResult(
        status=Status.OPTIMAL, portfolio=portfolio,
        purchases=_purchases(cands, bought), commitments=_commitments(cands, bought),
        assignments=assignments, periods=_periods(cands, assignments, bought, used, choice, model.usage),
        cost=_costs(cands, assignments, bought), break_even=break_even(cands, bought, used, assignments),
        binding=None, explanation=None, stats=stats, catalog_layers=cands.catalog.layers, warnings=warnings,
    )


def _assignment(jc: JobCandidates, c: int, use: np.ndarray) -> Assignment:
    row = jc.kept.iloc[c]
    source = str(row["source"])
    offer_id = str(row["offer_id"])
    resource: Literal["rental", "purchase", "reserved"] = (
        "purchase" if offer_id.startswith(PURCHASE_PREFIX) and source else
        "reserved" if offer_id.startswith(RESERVED_PREFIX) and source else "rental")
    return Assignment(
        job=jc.name, period=jc.pjob.period, offer_id=offer_id, option=source or None, resource=resource,
        provider=str(row["provider"]), kind=str(row["kind"]), gpu=str(row["gpu"]), gpu_count=int(row["gpu_count"]),
        instances=int(row["instances"]), precision=str(row["precision"]), scenario=str(row["scenario"]),
        hours=float(row["hours"]), cost_usd=float(row["cost_usd"]),
        periods=tuple(int(p) + 1 for p in np.flatnonzero(use > 0)),
        region=str(row.get("region", "") or ""),
    )


def _just_in_time(cands: PortfolioCandidates, bought: dict[tuple[int, int], int], choice: list[int],
                  usage: list[np.ndarray]) -> dict[tuple[int, int], int]:
    """Purchases rescheduled to the latest period that still covers each unit's first use.

    The program buys every unit in period 1 (CapacitySource.acquire_periods); a unit
    costs the same in any period, so the plan reports it bought when it is first needed:
    units on hand in p = the most any period up to p needs, for capacity (2) and for the
    largest job (3). Units the program bought beyond any need stay in period 1.
    """
    horizon = cands.portfolio.horizon
    out = {key: n for key, n in bought.items() if cands.sources[key[0]].kind != "purchase"}
    for k, s in enumerate(cands.sources):
        if s.kind != "purchase":
            continue
        total = sum(n for (kk, _), n in bought.items() if kk == k)
        need = np.zeros(horizon.periods, dtype=int)
        gpu_hours = np.zeros(horizon.periods)
        for jc, c, use in zip(cands.jobs, choice, usage):
            if str(jc.kept["source"].iloc[c]) == s.name:
                gpu_hours += use[c]
                need = np.maximum(need, np.where(use[c] > 0, int(jc.kept["instances"].iloc[c]), 0))
        need = np.maximum(need, np.ceil(gpu_hours / (s.gpus_per_unit * horizon.period_hours) - 1e-9).astype(int))
        on_hand = np.maximum.accumulate(need)
        previous = 0
        for p, units in enumerate(on_hand.tolist(), start=1):
            if units > previous:
                out[(k, p - s.lead_time_periods)] = units - previous
                previous = units
        if total > previous:
            out[(k, 1)] = out.get((k, 1), 0) + total - previous
    return out


def _on_hand(source: CapacitySource, bought: dict[tuple[int, int], int], k: int, period: int) -> int:
    acquired = sum(n for (kk, a), n in bought.items() if kk == k and source.available(a, period))
    return source.fixed_units(period) + acquired


def _used_by_source(cands: PortfolioCandidates, choice: list[int], usage: list[np.ndarray]) -> dict[str, np.ndarray]:
    """GPU-hours used per period on each capacity source."""
    used = {s.name: np.zeros(cands.portfolio.horizon.periods) for s in cands.sources}
    for jc, c, use in zip(cands.jobs, choice, usage):
        source = str(jc.kept["source"].iloc[c])
        if source:
            used[source] += use[c]
    return used


def _purchases(cands: PortfolioCandidates, bought: dict[tuple[int, int], int]) -> tuple[Purchase, ...]:
    out = []
    for (k, a), n in sorted(bought.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s = cands.sources[k]
        if n and s.kind == "purchase":
            out.append(Purchase(period=a, option=s.name, count=n, capex_usd=n * s.unit_cost_usd, gpu=s.gpu,
                                gpus=s.gpus_per_unit, usable_from=a + s.lead_time_periods,
                                resale_usd=n * s.resale_usd))
    return tuple(out)


def _commitments(cands: PortfolioCandidates, bought: dict[tuple[int, int], int]) -> tuple[Commitment, ...]:
    periods = cands.portfolio.horizon.periods
    terms = [(a, k, n, False) for (k, a), n in bought.items() if n and cands.sources[k].kind == "reserved"]
    terms += [(int(s.fixed_start or 1), k, int(s.fixed_count), True) for k, s in enumerate(cands.sources)
              if s.fixed_count]
    out = []
    for a, k, n, signed in sorted(terms):
        s = cands.sources[k]
        first = a + s.lead_time_periods
        out.append(Commitment(period=a, option=s.name, count=n, cost_usd=n * s.unit_cost_usd, gpu=s.gpu,
                              gpus=s.gpus_per_unit, usable_from=first,
                              usable_until=min(periods, first + int(s.term_periods or 1) - 1), signed=signed))
    return tuple(out)


def _owned_gpus(cands: PortfolioCandidates, offer_id: str) -> float:
    """GPUs of an owned catalog offer: instances (max_instances, default 1) × GPUs per instance."""
    row = cands.catalog.offers[cands.catalog.offers["offer_id"] == offer_id].iloc[0]
    instances = row["max_instances"] if row["max_instances"] == row["max_instances"] else 1
    return float(instances) * float(row["gpus_per_instance"])


def _periods(cands: PortfolioCandidates, assignments: tuple[Assignment, ...], bought: dict[tuple[int, int], int],
             used: dict[str, np.ndarray], choice: list[int], usage: list[np.ndarray]) -> tuple[PeriodUse, ...]:
    horizon = cands.portfolio.horizon
    rented = np.zeros(horizon.periods)
    on_owned = np.zeros(horizon.periods)   # jobs on owned machines of the catalog: owned, not rented
    owned_offers: dict[str, float] = {}    # owned catalog offer → its GPUs (capacity while used)
    for jc, c, use in zip(cands.jobs, choice, usage):
        if str(jc.kept["source"].iloc[c]):
            continue
        if str(jc.kept["kind"].iloc[c]) in ("owned", "edge"):
            on_owned += use[c]
            owned_offers[str(jc.kept["offer_id"].iloc[c])] = _owned_gpus(cands, str(jc.kept["offer_id"].iloc[c]))
        else:
            rented += use[c]
    owned_capacity = sum(owned_offers.values()) * horizon.period_hours
    out = []
    for p in range(1, horizon.periods + 1):
        units = {s.name: _on_hand(s, bought, k, p) for k, s in enumerate(cands.sources)}
        own = [s for s in cands.sources if s.kind == "purchase"]
        res = [s for s in cands.sources if s.kind == "reserved"]
        out.append(PeriodUse(
            period=p,
            owned_gpu_hours=sum(units[s.name] * s.gpus_per_unit * horizon.period_hours for s in own)
            + owned_capacity,
            used_gpu_hours=float(sum(used[s.name][p - 1] for s in own)) + float(on_owned[p - 1]),
            reserved_gpu_hours=sum(units[s.name] * s.gpus_per_unit * horizon.period_hours for s in res),
            reserved_used_gpu_hours=float(sum(used[s.name][p - 1] for s in res)),
            rented_gpu_hours=float(rented[p - 1]),
            units=units,
            jobs_started=tuple(a.job for a in assignments if a.period == p),
        ))
    return tuple(out)


def _costs(cands: PortfolioCandidates, assignments: tuple[Assignment, ...],
           bought: dict[tuple[int, int], int]) -> CostBreakdown:
    rental = sum((a.cost_usd for a in assignments if a.resource == "rental"), 0.0)
    power = sum((a.cost_usd for a in assignments if a.resource == "purchase"), 0.0)
    capex = resale = reserved = 0.0
    for (k, _), n in bought.items():
        s = cands.sources[k]
        if s.kind == "purchase":
            capex += n * s.unit_cost_usd
            resale += n * s.resale_usd
        else:
            reserved += n * s.unit_cost_usd
    reserved += sum(s.unit_cost_usd * s.fixed_count for s in cands.sources if s.fixed_count)
    return CostBreakdown(rental_usd=rental, capex_usd=capex, power_usd=power, reserved_usd=reserved,
                         resale_usd=resale, total_usd=rental + capex + power + reserved - resale,
                         cash_usd=rental + capex + power + reserved)


# ---------------------------------------------------------------------------
# break-even


def _reference_rental(catalog: Catalog, gpu: str, rentable: frozenset[str]) -> tuple[str, float] | None:
    """The cheapest $/GPU-h of the same GPU among rentals some job of the portfolio may use
    (its allow-lists admit the offer); spot is left out (interruptible, another product)."""
    offers = catalog.offers
    mask = (offers["gpu"] == gpu) & offers["kind"].isin(REFERENCE_RENTAL_KINDS) & offers["offer_id"].isin(rentable)
    rentals = offers[mask]
    if rentals.empty:
        return None
    per_gpu = (hourly_cost_usd(rentals) / rentals["gpus_per_instance"]).to_numpy(float)
    best = int(np.argmin(per_gpu))
    return str(rentals["offer_id"].iloc[best]), float(per_gpu[best])


def _cheapest_rental(jc: JobCandidates, source_ids: set[str]) -> float | None:
    """What the job would pay renting instead (its cheapest feasible catalog candidate)."""
    feasible = jc.evaluated.feasible
    rentals = feasible[~feasible["offer_id"].isin(source_ids)]
    return None if rentals.empty else float(rentals["cost_usd"].min())


def break_even(cands: PortfolioCandidates, bought: dict[tuple[int, int], int] | None,
               used: dict[str, np.ndarray] | None,
               assignments: tuple[Assignment, ...] = ()) -> tuple[OptionBreakEven, ...]:
    """Buy-vs-rent break-even of every capacity source, with the plan's use of it when there is one."""
    horizon = cands.portfolio.horizon
    source_ids = {s.offer_id for s in cands.sources}
    by_name = {jc.name: jc for jc in cands.jobs}
    out = []
    for k, s in enumerate(cands.sources):
        ref = _reference_rental(cands.catalog, s.gpu, cands.rentable)
        power = s.power_per_unit_hour_usd / s.gpus_per_unit
        net = s.unit_cost_usd - s.resale_usd
        if s.kind == "purchase":
            available = (horizon.periods - s.lead_time_periods) * horizon.period_hours
        else:
            available = float(s.term_periods or 1) * horizon.period_hours
        u_star, gpu_hours = (None, None) if ref is None else unit_break_even(
            net, ref[1], power, s.gpus_per_unit, available)
        units = capacity = use = 0.0
        if bought is not None and used is not None:
            units = float(sum(n for (kk, _), n in bought.items() if kk == k) + (s.fixed_count or 0))
            capacity = sum(_on_hand(s, bought, k, p) for p in range(1, horizon.periods + 1)) * \
                s.gpus_per_unit * horizon.period_hours
            use = float(used[s.name].sum())
        planned = use / capacity if capacity > 0 else None
        verb = "owning" if s.kind == "purchase" else "reserving"
        cost_text = (f"${net:,.0f} net of ${s.resale_usd:,.0f} resale" if s.kind == "purchase"
                     else f"${net:,.0f} for the term")
        if ref is None:
            note = (f"{s.name}: no on-demand or reserved {s.gpu} offer the jobs may rent to compare with; "
                    "the plan still compares every job's candidates")
        elif u_star is None:
            note = (f"{s.name}: power alone (${power:,.2f}/GPU-h) costs more than renting {s.gpu} at "
                    f"${ref[1]:,.2f}/GPU-h ({ref[0]}): {verb} never pays off")
        else:
            note = (f"{s.name}: {verb} a unit ({cost_text}) beats renting {s.gpu} at ${ref[1]:,.2f}/GPU-h "
                    f"({ref[0]}) when it is busy ≥ {u_star:.0%} of its {available:,.0f} available hours "
                    f"({gpu_hours:,.0f} GPU-h)")
            if u_star > 1:
                note += " — more than it has: renting always wins"
        on_it = tuple(a for a in assignments if a.option == s.name)
        alternatives = [_cheapest_rental(by_name[a.job], source_ids) for a in on_it]
        rent_instead = own_cost = plan_u = None
        if on_it and all(v is not None for v in alternatives):
            rent_instead = float(sum(v for v in alternatives if v is not None))
            power_cost = sum(a.cost_usd for a in on_it)
            acquired = sum(n for (kk, _), n in (bought or {}).items() if kk == k) + (s.fixed_count or 0)
            own_cost = acquired * net + power_cost
            rate = (rent_instead - power_cost) / use if use > 0 else 0.0
            plan_u = net / (rate * s.gpus_per_unit * available) if rate > 0 else None
        if bought is not None:
            note += (f"; planned: {int(units)} unit(s), busy {planned:.0%}" if planned is not None
                     else "; planned: none acquired")
        if rent_instead is not None and own_cost is not None:
            note += (f"; its {len(on_it)} job(s) would rent for ${rent_instead:,.0f} instead of "
                     f"${own_cost:,.0f} here")
            if plan_u is not None:
                note += f" (at their rental prices a unit pays off from {plan_u:.0%} busy)"
        out.append(OptionBreakEven(
            option=s.name, kind=s.kind, gpu=s.gpu, gpus_per_unit=s.gpus_per_unit,
            reference_offer_id=ref[0] if ref else None, rental_usd_per_gpu_hour=ref[1] if ref else None,
            power_usd_per_gpu_hour=power, net_cost_per_unit_usd=net, available_hours_per_unit=available,
            break_even_gpu_hours_per_unit=gpu_hours, break_even_utilization=u_star, units=int(units),
            capacity_gpu_hours=float(capacity), used_gpu_hours=use, planned_utilization=planned, note=note,
            jobs=tuple(a.job for a in on_it), rent_instead_usd=rent_instead, own_cost_usd=own_cost,
            plan_break_even_utilization=plan_u,
        ))
    return tuple(out)


# ---------------------------------------------------------------------------
# infeasibility


def explain_infeasible_plan(cands: PortfolioCandidates, solver: SolverName = "highs") -> tuple[str, str]:
    """Which limit binds, and the smallest relaxation that would let a plan exist.

    In order: a job no candidate can run (its deadline, the horizon, memory, budget or
    allow-lists, as ``solve`` explains it); the shared budget (the least cash any plan
    needs, from the program minimising cash without the budget row); max_count and
    quotas (relaxed one at a time, the relaxed plan says how much more is needed).
    """
    stuck = [jc for jc in cands.jobs if jc.kept.empty]
    if stuck:
        reasons = [_job_reason(cands, jc) for jc in stuck]
        more = f" ({len(stuck) - 1} more job(s) cannot run either: " + "; ".join(r[1] for r in reasons[1:]) + ")" \
            if len(stuck) > 1 else ""
        return reasons[0][0], reasons[0][1] + more
    portfolio = cands.portfolio
    if portfolio.budget_usd is not None:
        relaxed = _build(cands, budget=False, objective="cash")
        if _solve(relaxed, solver) == "optimal":
            need = float(relaxed.prob.objective.value())
            budget = portfolio.budget_usd
            return ("budget_usd", f"the least cash any plan spends is ${need:,.0f} (rentals, power, purchases and "
                    f"commitments over the horizon); budget_usd is ${budget:,.0f} — raise it by "
                    f"${need - budget:,.0f} (+{(need / budget - 1) * 100:.0f}%) or drop a job")
    no_counts = _build(cands, budget=False, max_counts=False)
    if _solve(no_counts, solver) == "optimal":
        return _max_count_reason(cands, no_counts)
    no_quotas = _build(cands, budget=False, quotas=False)
    if _solve(no_quotas, solver) == "optimal":
        return _quota_reason(cands, no_quotas)
    neither = _build(cands, budget=False, quotas=False, max_counts=False)
    if _solve(neither, solver) == "optimal":
        needs = [_max_count_reason(cands, neither), _quota_reason(cands, neither)]
        return (" and ".join(n[0] for n in needs), "; ".join(n[1] for n in needs))
    return ("unknown", "no combination of the jobs' candidates satisfies every shared limit; check the jobs' "
            "periods, quotas and max_count")


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


def _max_count_reason(cands: PortfolioCandidates, relaxed: _Model) -> tuple[str, str]:
    bought = _bought(relaxed)
    periods = cands.portfolio.horizon.periods
    for k, s in enumerate(cands.sources):
        if s.max_count is None or s.fixed_count is not None:
            continue
        peak = max(_on_hand(s, bought, k, p) for p in range(1, periods + 1))
        if peak > s.max_count:
            return (f"{s.where}.max_count", f"the jobs need {peak} unit(s) of {s.name} on hand at once; max_count "
                    f"is {s.max_count} — raise max_count to {peak}, or let jobs rent (allow-lists) or move periods")
    return ("max_count", "the jobs need more units of a purchase or reserved option than max_count allows")


def _quota_reason(cands: PortfolioCandidates, relaxed: _Model) -> tuple[str, str]:
    choice = _choices(relaxed)
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

