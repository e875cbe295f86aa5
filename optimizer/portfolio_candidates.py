"""Each portfolio job priced on every offer and capacity source, pruned to what can be optimal.

The same model as ``solve`` (expand → performance → memory → limits), with the work that jobs
of one shape share done once (shared_pricing.py: a 1,000-job portfolio has a handful of
shapes) and each job priced on arrays; then ``prune_for_portfolio``'s exact rules leave the
short list the procurement integer program chooses from. No job's full candidate table is
kept: ``JobCandidates.evaluated`` prices one job again, alone, when a diagnosis asks.
``plan_side_by_side`` is the periodless batch version (model.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .candidate_schema import PORTFOLIO_COLUMNS
from .candidates import CandidateSet, Expansion, assess, dominated_in_groups
from .capacity_sources import CapacitySource, capacity_sources, catalog_with_sources
from .errors import InputError, Problem
from .flops import FlopEstimate
from .job import Job
from .model import JobOptions, ModelSolution, ModelSpec, SolverName, solve_model
from .performance import frame_of, realistic_assumptions
from .planner import Planner, checked_estimate
from .portfolio import Horizon, Portfolio, PortfolioJob
from .shared_pricing import Feasible, SharedPricing

# ---------------------------------------------------------------------------
# Candidates per job


# Columns the integer program and the report need (the full candidate table has ~50).
CANDIDATE_COLUMNS = list(PORTFOLIO_COLUMNS)


@dataclass(frozen=True)
class JobCandidates:
    """One job's kept candidates, with what the report and the diagnosis need of the rest.

    ``kept`` has the CANDIDATE_COLUMNS plus ``resource`` (``free`` | ``quota`` | ``source``)
    and ``source`` (capacity-source name, "" for catalog offers). The job's full candidate
    table is not held (a 1,000-job portfolio would hold about two million rows of sixty
    columns): ``planner`` and ``evaluated`` price the job again, alone, when asked — the
    same numbers (tests/optimizer/test_shared_pricing.py).
    """

    pjob: PortfolioJob
    catalog: Catalog               # with the capacity sources' synthetic offers
    solver: SolverName
    deadline_hours: float          # effective: min(job deadline, hours left in the horizon)
    horizon_bound: bool            # the horizon, not the job's deadline, sets deadline_hours
    kept: pd.DataFrame
    enumerated: int                # candidates priced
    feasible_count: int
    window: tuple[int, int]        # first and last period any feasible candidate runs in
    cheapest_rental_usd: float | None   # the cheapest feasible candidate on a catalog offer

    @property
    def name(self) -> str:
        return self.pjob.name

    @cached_property
    def planner(self) -> Planner:
        # shared quotas and capacity: identical offers are not merged (see cheapest_of_identical)
        return Planner.build(self.pjob.job, self.catalog, self.solver, identical="keep")

    @cached_property
    def evaluated(self) -> CandidateSet:
        """Every candidate of the job under its limits, in full (explanations, tests)."""
        return _evaluate(self.planner.expansion, self.planner.estimate, self.pjob.job, self.catalog,
                         self.deadline_hours)


@dataclass(frozen=True)
class PortfolioCandidates:
    portfolio: Portfolio
    catalog: Catalog                # with the sources' synthetic offers
    sources: tuple[CapacitySource, ...]
    jobs: tuple[JobCandidates, ...]
    quotas: dict[str, int]          # offer_id → instances shared per period (catalog + overrides)
    rentable: frozenset[str] = frozenset()   # catalog offers some job's allow-lists admit
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def enumerated(self) -> int:
        return sum(j.enumerated for j in self.jobs)

    @property
    def feasible(self) -> int:
        return sum(j.feasible_count for j in self.jobs)

    @property
    def kept(self) -> int:
        return sum(len(j.kept) for j in self.jobs)


@dataclass(frozen=True)
class _Priced:
    """A job after pricing, before the rules that depend on the other jobs (pass 1 of build_candidates)."""

    pjob: PortfolioJob
    deadline_hours: float
    horizon_bound: bool
    short_list: dict[str, np.ndarray]   # prune_alone's rows
    enumerated: int
    feasible_count: int
    window: tuple[int, int]
    cheapest_rental_usd: float | None


def build_candidates(portfolio: Portfolio, catalog: Catalog, solver: SolverName = "highs") -> PortfolioCandidates:
    """Every job priced on every offer and capacity source, then pruned to what can be optimal.

    Two passes: each job is priced (jobs of one shape share the work: shared_pricing.py)
    and cut by the rules that need no other job; then each job's time window is known, and the
    rules that count the jobs overlapping it finish the pruning."""
    sources = capacity_sources(portfolio, catalog)
    extended = catalog_with_sources(catalog, sources, portfolio.quotas)
    source_of = {s.offer_id: s.name for s in sources}
    quota_table = extended.offers.dropna(subset=["max_instances"])
    quotas = {str(o): int(q) for o, q in zip(quota_table["offer_id"], quota_table["max_instances"])
              if o not in source_of}
    horizon = portfolio.horizon
    shared = SharedPricing(extended)
    priced: list[_Priced] = []
    rentable: set[str] = set()
    problems: list[Problem] = []
    warnings: list[str] = []
    for pj in portfolio.jobs:
        try:
            estimate = checked_estimate(pj.job, extended)
            # shared quotas and capacity: identical offers are not merged (see cheapest_of_identical)
            expansion = shared.expansion(pj.job, "keep")
        except InputError as exc:   # e.g. familiar.gpu unknown: point at the job inside the portfolio
            problems.extend(Problem(p.file, pj.field_prefix + p.field if p.field else p.field, p.message, p.row)
                            for p in exc.problems)
            continue
        left = (horizon.periods - pj.period + 1) * horizon.period_hours
        own = pj.job.constraints.deadline_hours
        deadline = left if own is None else min(own, left)
        if expansion.table.empty:   # every offer excluded by allow-lists: nothing to price
            feasible = Feasible.of(0, pd.DataFrame({name: [] for name in CANDIDATE_COLUMNS}))
        else:
            feasible = shared.feasible(expansion, estimate, pj.job, realistic_assumptions(pj.job, extended.efficiency),
                                       deadline_hours=deadline, budget_usd=pj.job.constraints.budget_usd)
        hours, cost = feasible.columns["hours"].astype(float), feasible.columns["cost_usd"].astype(float)
        rentals = np.array([o not in source_of for o in feasible.columns["offer_id"]], dtype=bool)
        rentable.update(str(o) for o in pd.unique(expansion.table["offer_id"].to_numpy(dtype=object))
                        if o not in source_of)
        priced.append(_Priced(
            pjob=pj, deadline_hours=deadline, horizon_bound=own is None or left < own,
            short_list=prune_alone(feasible.columns, source_of, quotas), enumerated=feasible.enumerated,
            feasible_count=len(feasible), window=_window(hours, pj.period, horizon),
            cheapest_rental_usd=float(cost[rentals].min()) if rentals.any() else None))
        if pj.job.objective == "time":
            warnings.append(f"{pj.name}: objective 'time' is ignored by plan (it minimises total cost of "
                            "ownership); the job's deadline still holds")
    if problems:
        raise InputError(problems)
    windows = [p.window for p in priced]
    jobs = []
    for k, p in enumerate(priced):
        rivals = sum(1 for i, w in enumerate(windows) if i != k and w[0] <= windows[k][1] and windows[k][0] <= w[1])
        jobs.append(JobCandidates(
            pjob=p.pjob, catalog=extended, solver=solver, deadline_hours=p.deadline_hours,
            horizon_bound=p.horizon_bound, kept=prune_with_rivals(p.short_list, rivals, p.pjob.period, horizon),
            enumerated=p.enumerated, feasible_count=p.feasible_count, window=p.window,
            cheapest_rental_usd=p.cheapest_rental_usd))
    return PortfolioCandidates(portfolio=portfolio, catalog=extended, sources=sources, jobs=tuple(jobs),
                               quotas=quotas, rentable=frozenset(rentable), warnings=tuple(warnings))


def _evaluate(expansion: Expansion, estimate: FlopEstimate, job: Job, catalog: Catalog,
              deadline_hours: float) -> CandidateSet:
    """Price the job's candidates under its limits, alone. ``dominated`` is the single-job
    (global) flag; the portfolio prunes per offer and instance count itself
    (``dominated_within``), because with shared quotas a dearer plan that holds fewer
    instances can be the one that fits."""
    if expansion.table.empty:   # every offer excluded by allow-lists: nothing to price
        empty = expansion.table.assign(need_gb_per_gpu=0.0, hours=0.0, cost_usd=0.0, feasible=False, reason=None,
                                       category=None, dominated=False)
        return CandidateSet(table=empty, excluded=dict(expansion.excluded))
    realistic = realistic_assumptions(job, catalog.efficiency)
    return assess(expansion, estimate, job, catalog, realistic,
                  deadline_hours=deadline_hours, budget_usd=job.constraints.budget_usd)


def _window(hours: np.ndarray, start: int, horizon: Horizon) -> tuple[int, int]:
    if hours.size == 0:
        return (start, start)
    spans = int(math.ceil(float(hours.max()) / horizon.period_hours - 1e-9))
    return (start, min(horizon.periods, start + max(spans, 1) - 1))


def dominated_within(t: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Rows of ``t`` with another row of the same ``keys`` at most as dear and at most as slow
    (candidates.dominated_in_groups over the groups of ``keys``)."""
    if t.empty:
        return np.zeros(0, dtype=bool)
    group = np.zeros(len(t), dtype=np.int64)
    for key in keys:   # one integer per distinct key tuple, without a pandas groupby
        codes, uniques = pd.factorize(t[key].to_numpy(dtype=object))
        group = group * (len(uniques) + 1) + codes
    return dominated_in_groups(t["cost_usd"].to_numpy(float), t["hours"].to_numpy(float), group)


def prune_for_portfolio(feasible: pd.DataFrame, source_of: dict[str, str], quotas: dict[str, int],
                        rivals: int, start: int, horizon: Horizon) -> pd.DataFrame:
    """The candidates of one job that can be part of an optimal portfolio plan (exact).

    Resources a candidate may hold: nothing shared (``free``: a rental without quota), a
    catalog offer's per-period quota (``quota``), or a capacity source (``source``).

    1. Within one (offer, instance count), a candidate no cheaper and no faster than
       another is dominated (``dominated_within``; fewer hours never use more of a
       period's quota or capacity).
    2. Among free candidates only the cheapest matters: nothing else distinguishes them
       (a portfolio minimises cost; per-job deadlines were applied already).
    3. Walk the rest by cost. The job overlaps in time with at most ``rivals`` other
       jobs, and each of those holds at most one offer's quota. Once the walk has passed
       a free candidate, or the cheapest candidate of ``rivals + 1`` distinct quota
       offers, one of those is always available to this job at no more cost, so every
       later (dearer) candidate — quota or capacity source — can be dropped: swapping to
       the available one never raises cost, budget use, quota use or capacity use.
    4. Among what is left, on one offer or source, a candidate is dominated by another
       that is no dearer and, in every period, holds no more instances and no more
       GPU-hours (``dominated_by_use``: e.g. 16 GPUs for a short job that 8 GPUs finish
       in the same period for less).

    Rules 1–2 need only the job (``prune_alone``); 3–4 the number of rivals and the job's
    start (``prune_with_rivals``).
    """
    columns = {name: feasible[name].to_numpy() for name in CANDIDATE_COLUMNS}
    return prune_with_rivals(prune_alone(columns, source_of, quotas), rivals, start, horizon)


def prune_alone(feasible: Mapping[str, np.ndarray], source_of: dict[str, str],
                quotas: dict[str, int]) -> dict[str, np.ndarray]:
    """Rules 1 and 2 of ``prune_for_portfolio`` on the feasible candidates' CANDIDATE_COLUMNS:
    those columns plus ``resource`` and ``source``, in the candidates' order. Arrays in, arrays
    out: on frames these steps cost more than pricing the job."""
    if len(feasible["cost_usd"]) == 0:
        return {name: np.zeros(0, dtype=object) for name in (*CANDIDATE_COLUMNS, "resource", "source")}
    offer_codes, offers = pd.factorize(np.asarray(feasible["offer_id"], dtype=object))
    cost, hours = np.asarray(feasible["cost_usd"], dtype=float), np.asarray(feasible["hours"], dtype=float)
    instances = np.asarray(feasible["instances"], dtype=np.int64)
    rule1 = dominated_in_groups(cost, hours, offer_codes * (int(instances.max()) + 1) + instances)
    offer_names = [str(o) for o in offers]
    is_source = np.array([o in source_of for o in offer_names], dtype=bool)[offer_codes]
    is_quota = np.array([o in quotas for o in offer_names], dtype=bool)[offer_codes] & ~is_source
    resource = np.where(is_source, "source", np.where(is_quota, "quota", "free")).astype(object)
    idx = np.flatnonzero(~rule1)
    free = idx[resource[idx] == "free"]
    if free.size:   # rule 2: the cheapest free candidate (ties: the faster, then the first)
        cheapest = free[np.lexsort((np.arange(free.size), hours[free], cost[free]))[0]]
        idx = idx[(resource[idx] != "free") | (idx == cheapest)]
    names = np.array(offer_names, dtype=object)[offer_codes[idx]]
    return {**{name: np.asarray(feasible[name])[idx] for name in CANDIDATE_COLUMNS}, "resource": resource[idx],
            "source": np.array([source_of.get(o, "") for o in names], dtype=object)}


def prune_with_rivals(short_list: Mapping[str, np.ndarray], rivals: int, start: int,
                      horizon: Horizon) -> pd.DataFrame:
    """Rules 3 and 4 of ``prune_for_portfolio`` on ``prune_alone``'s rows, by cost then hours:
    the kept candidates, as the frame the integer program reads (``JobCandidates.kept``)."""
    if len(short_list["cost_usd"]) == 0:
        return pd.DataFrame(columns=[*CANDIDATE_COLUMNS, "resource", "source"])
    offer_codes, _ = pd.factorize(np.asarray(short_list["offer_id"], dtype=object))
    cost, hours = np.asarray(short_list["cost_usd"], dtype=float), np.asarray(short_list["hours"], dtype=float)
    kinds_all = np.asarray(short_list["resource"], dtype=object)
    order = np.lexsort((np.arange(len(cost)), hours, cost))   # by cost, then hours, stable
    kinds = kinds_all[order]
    first_of_offer = np.zeros(order.size, dtype=bool)
    first_of_offer[np.unique(offer_codes[order], return_index=True)[1]] = True
    distinct = np.cumsum(first_of_offer & (kinds == "quota"))
    guaranteed = (kinds == "free") | (distinct >= rivals + 1)
    if guaranteed.any():   # rule 3
        order = order[: int(np.argmax(guaranteed)) + 1]
    use = period_gpu_hours(hours[order], np.asarray(short_list["gpu_count"], dtype=float)[order], start, horizon)
    instances = np.asarray(short_list["instances"], dtype=float)
    order = order[~dominated_by_use(offer_codes[order], cost[order], instances[order], use)]  # rule 4
    return frame_of({name: np.asarray(values)[order] for name, values in short_list.items()})


def dominated_by_use(offer: np.ndarray, cost_usd: np.ndarray, instances: np.ndarray,
                     gpu_hours: np.ndarray) -> np.ndarray:
    """Candidates another candidate of the same offer beats on cost and on every period's use.

    A dominates B when cost_A ≤ cost_B and, in every period, A holds at most B's
    instances (while running) and at most B's GPU-hours: every quota, capacity and fit
    row B satisfies, A satisfies too. Of two candidates that dominate each other the
    first (cheaper in the caller's order) is kept. Pairwise, so only for the short lists
    left after the cheaper rules (a few dozen per job).
    """
    n = len(cost_usd)
    if n < 2:
        return np.zeros(n, dtype=bool)
    held = instances[:, None] * (gpu_hours > 0)
    dominates = ((offer[:, None] == offer[None, :])
                 & (cost_usd[:, None] <= cost_usd[None, :] * (1 + 1e-12))
                 & (held[:, None, :] <= held[None, :, :]).all(axis=2)
                 & (gpu_hours[:, None, :] <= gpu_hours[None, :, :] + 1e-9).all(axis=2))
    np.fill_diagonal(dominates, False)
    mutual = dominates & dominates.T
    earlier = np.arange(n)[:, None] < np.arange(n)[None, :]
    result: np.ndarray = ((dominates & ~mutual) | (mutual & earlier)).any(axis=0)
    return result


def period_gpu_hours(hours: np.ndarray, gpu_count: np.ndarray, start: int, horizon: Horizon) -> np.ndarray:
    """GPU-hours each candidate uses in each period (candidates × periods, period 1 first).

    The job starts at the beginning of period ``start`` and runs ``hours`` back to back:
    in period start + k it runs min(H, hours − k·H) hours (H = period_hours), if positive.
    """
    h = horizon.period_hours
    offsets = np.arange(horizon.periods) - (start - 1)          # k per period (negative: before start)
    running = np.clip(hours[:, None] - offsets[None, :] * h, 0.0, h)
    running[:, offsets < 0] = 0.0
    running[running < 1e-9] = 0.0
    gpu_hours: np.ndarray = running * gpu_count[:, None]
    return gpu_hours


# ---------------------------------------------------------------------------
# All jobs side by side, with model.py's integer program


def plan_side_by_side(portfolio: Portfolio, catalog: Catalog, solver: SolverName = "highs") -> ModelSolution:
    """The portfolio as one batch: every job runs at the same time on catalog offers, sharing
    the budget and the offers' quotas — model.py's N-job program, no periods, no purchases.

    Periods are collapsed into one of the horizon's length and every job starts at once.
    With one period and no purchase or reserved options this is exactly what ``plan``
    solves, by model.py's independent formulation; tests hold the two to the same optimum.
    """
    total_hours = portfolio.horizon.periods * portfolio.horizon.period_hours
    batch = replace(
        portfolio, purchase_options=(), reserved=(),
        horizon=Horizon(periods=1, period_hours=total_hours),
        jobs=tuple(replace(pj, period=1) for pj in portfolio.jobs),
    )
    cands = build_candidates(batch, catalog, solver)
    options = [
        JobOptions(name=j.name, cost_usd=j.kept["cost_usd"].to_numpy(float), hours=j.kept["hours"].to_numpy(float),
                   offer_id=j.kept["offer_id"].to_numpy(), instances=j.kept["instances"].to_numpy(float))
        for j in cands.jobs
    ]
    return solve_model(ModelSpec(jobs=options, budget_usd=portfolio.budget_usd, quotas=cands.quotas), solver)

