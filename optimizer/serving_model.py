"""The serving integer program: how many instances of each replica option carry the peak load.

A Mélange-style fleet (Griggs et al. 2024, "Mélange: Cost Efficient LLM Serving by Exploiting
GPU Heterogeneity", arXiv 2404.14527 §4): request buckets may be routed to different GPU types,
and a replica may serve a mix of buckets, each bucket using its share of the replica's capacity.

Sets
    K           replica options: (offer, precision, tensor-parallel degree)
    B           request buckets (prompt/output shapes)
    O           offers; K_o ⊆ K the options that run on offer o
Parameters
    cost_k      cost of one instance of option k over the whole window       [USD]
    r_k         replicas per instance of option k (GPUs per instance / TP)   [replicas]
    g_k         GPUs per instance of option k                                [GPUs]
    mu_kb       requests/s one replica of k sustains on bucket b at its      [requests/s]
                largest latency-feasible batch (0: k cannot serve b)
    lambda_b    peak demand of bucket b                                      [requests/s]
    Q_o         quota of offer o (offers.csv max_instances, optional)        [instances]
    G, C        max_gpus and budget (optional)                               [GPUs], [USD]
Variables
    n_k ∈ Z≥0   instances of option k
    y_kb ≥ 0    peak requests/s of bucket b routed to option k (only where mu_kb > 0)
Objective
    min Σ_k cost_k · n_k
Constraints
    (1) Σ_k y_kb = lambda_b                 ∀ b    every bucket's peak is served
    (2) Σ_b y_kb / mu_kb ≤ r_k · n_k        ∀ k    replicas busy ≤ replicas provisioned
    (3) Σ_{k ∈ K_o} n_k ≤ Q_o               ∀ o    quota per offer
    (4) Σ_k g_k · n_k ≤ G                          max_gpus
    (5) Σ_k cost_k · n_k ≤ C                       budget
``carried_share`` solves the linear programme max s subject to (1) with s·lambda_b and (2) at
fixed n: the multiple of the peak a given fleet carries (used for "capacity vs peak" and to
judge a fleet chosen under a mistaken belief against the realistic model).

Solved as every program is (model.solve_outcome): a search stopped by the time limit (or another
limit) with an incumbent returns that fleet, its status saying why it is not proven optimal and
``mip_gap`` how far from proven; only a proof of infeasibility has status "infeasible".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import ModelStatus, SolverName, make_solver, model_status, solve_outcome, variable
from .outcome import SolverOutcome, infeasible_by_construction


def serving_engine(solver: SolverName, time_limit_seconds: float | None = None) -> object:
    """The project's solver with its defaults. (Presolve was switched off while the programmes had a
    few dozen free variables; with the capacity caps of catalogs/quotas.csv the quota rows bind,
    and presolve halves the time: chat example 1.30 → 0.70 s CPU with sensitivity, same optimum.)"""
    return make_solver(solver, time_limit_seconds)


CAPACITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FleetSpec:
    """The numbers of the integer program above, one array entry per option k (and bucket b)."""

    cost_usd: np.ndarray            # cost_k
    replicas_per_instance: np.ndarray  # r_k
    gpus_per_instance: np.ndarray   # g_k
    offer_id: np.ndarray            # the quota group of each option
    capacity_rps: np.ndarray        # mu_kb, shape (K, B)
    demand_rps: np.ndarray          # lambda_b, shape (B,)
    quotas: dict[str, int] = field(default_factory=dict)
    max_gpus: int | None = None
    budget_usd: float | None = None
    time_limit_seconds: float | None = None   # None: solve to proven optimality


@dataclass(frozen=True)
class FleetSolution:
    """``status`` is the termination condition (model.ModelSolution's meaning): an incumbent
    (``instances`` non-empty) when optimal or stopped early with one."""

    status: ModelStatus
    instances: tuple[int, ...]      # n_k (empty without an incumbent)
    routed_rps: np.ndarray          # y_kb, shape (K, B) (empty without an incumbent)
    cost_usd: float | None
    variables: int
    constraints: int
    solver: str
    seconds: float
    outcome: SolverOutcome

    @property
    def mip_gap(self) -> float | None:
        """The solver's relative MIP gap of the incumbent (model.solver_gap)."""
        return self.outcome.mip_gap

    @property
    def mip_gap_tolerance(self) -> float | None:
        return self.outcome.mip_gap_tolerance


def dominated_options(spec: FleetSpec) -> np.ndarray:
    """Options another option can replace instance for instance: no dearer, no more GPUs, at least
    the capacity on every bucket, and without a quota (so the swap is always allowed). Dropping
    them is exact: any fleet using one costs no less after the swap. Ties keep the first."""
    cost = np.asarray(spec.cost_usd, dtype=float)
    gpus = np.asarray(spec.gpus_per_instance, dtype=float)
    cap = np.asarray(spec.capacity_rps, dtype=float) * np.asarray(spec.replicas_per_instance, dtype=float)[:, None]
    free = np.array([str(o) not in spec.quotas for o in spec.offer_id], dtype=bool)
    useless = ~(cap > 0).any(axis=1)
    k = len(cost)
    if k == 0:
        return np.zeros(0, dtype=bool)
    # better[a, b]: option a can replace option b
    better = ((cost[:, None] <= cost[None, :]) & (gpus[:, None] <= gpus[None, :])
              & (cap[:, None, :] >= cap[None, :, :]).all(axis=2) & free[:, None] & ~useless[:, None])
    same = ((cost[:, None] == cost[None, :]) & (gpus[:, None] == gpus[None, :])
            & (cap[:, None, :] == cap[None, :, :]).all(axis=2))
    later = np.arange(k)[:, None] < np.arange(k)[None, :]
    better &= ~same | later   # of identical options keep the first
    np.fill_diagonal(better, False)
    return np.asarray(useless | better.any(axis=0), dtype=bool)


def _routing(prob: Any, mu: np.ndarray) -> dict[tuple[int, int], Any]:
    return {(k, b): variable(prob, f"y_{k}_{b}", low=0.0)
            for k in range(mu.shape[0]) for b in range(mu.shape[1]) if mu[k, b] > 0}


def _busy(y: dict[tuple[int, int], Any], mu: np.ndarray, k: int) -> Any:
    import pulp

    return pulp.lpSum(y[k, b] * (1.0 / float(mu[k, b])) for b in range(mu.shape[1]) if (k, b) in y)


def solve_fleet(spec: FleetSpec, solver: SolverName = "highs") -> FleetSolution:
    """The cheapest integer fleet carrying every bucket's peak (the programme in the docstring)."""
    import pulp

    started = time.perf_counter()
    mu_all = np.asarray(spec.capacity_rps, dtype=float)
    if mu_all.shape[0] == 0 or any(not (mu_all[:, b] > 0).any() for b in range(mu_all.shape[1])):
        return FleetSolution("infeasible", (), np.zeros((0, 0)), None, 0, 0, solver,
                             time.perf_counter() - started, infeasible_by_construction())
    keep = np.flatnonzero(~dominated_options(spec))
    mu = mu_all[keep]
    n_options, n_buckets = mu.shape
    engine = serving_engine(solver, spec.time_limit_seconds)
    prob = pulp.LpProblem("flopopt_serving", pulp.LpMinimize)
    n = [variable(prob, f"n_{k}", low=0.0, cat="Integer") for k in range(n_options)]
    # No optimal fleet has more instances of an option than that option alone needs for all the
    # traffic (fewer would carry the same load for less), so bound n_k there: it keeps the
    # branch-and-bound small.
    per_instance = mu * np.asarray(spec.replicas_per_instance, dtype=float)[keep][:, None]
    alone = (np.asarray(spec.demand_rps, dtype=float)[None, :]
             / np.where(per_instance > 0, per_instance, np.inf)).sum(axis=1)
    for k in range(n_options):
        n[k].upBound = int(math.ceil(alone[k] - 1e-9))
    y = _routing(prob, mu)
    unit_cost = np.asarray(spec.cost_usd, dtype=float)[keep]
    cost = pulp.lpSum(float(unit_cost[k]) * n[k] for k in range(n_options))
    prob += cost
    # (1) every bucket's peak is served
    for b in range(n_buckets):
        prob += pulp.lpSum(y[k, b] for k in range(n_options) if (k, b) in y) == float(spec.demand_rps[b]), \
            f"demand_{b}"
    # (2) replicas busy ≤ replicas provisioned
    for k in range(n_options):
        prob += _busy(y, mu, k) <= float(spec.replicas_per_instance[keep[k]]) * n[k], f"capacity_{k}"
    # (3) quota per offer
    offers = np.asarray(spec.offer_id)[keep]
    for offer, quota in spec.quotas.items():
        members = [n[k] for k in np.flatnonzero(offers == offer)]
        if members:
            prob += pulp.lpSum(members) <= int(quota), f"quota_{offer}"
    # (4) max_gpus
    if spec.max_gpus is not None:
        gpus = np.asarray(spec.gpus_per_instance, dtype=float)[keep]
        prob += pulp.lpSum(float(gpus[k]) * n[k] for k in range(n_options)) <= spec.max_gpus, "max_gpus"
    # (5) budget
    if spec.budget_usd is not None:
        prob += cost <= float(spec.budget_usd), "budget"
    outcome = solve_outcome(prob, engine, time_limited=spec.time_limit_seconds is not None)
    seconds = time.perf_counter() - started
    n_vars, n_cons = prob.numVariables(), prob.numConstraints()
    if not outcome.has_solution:
        return FleetSolution(model_status(outcome), (), np.zeros((0, 0)), None, n_vars, n_cons, solver, seconds,
                             outcome)
    counts = np.zeros(mu_all.shape[0], dtype=int)
    counts[keep] = [int(round(v.varValue or 0.0)) for v in n]
    routed = np.zeros(mu_all.shape)
    for (k, b), var in y.items():
        routed[keep[k], b] = max(float(var.varValue or 0.0), 0.0)
    total = float(np.dot(np.asarray(spec.cost_usd, dtype=float), counts))
    return FleetSolution(model_status(outcome), tuple(int(c) for c in counts), routed, total, n_vars, n_cons, solver,
                         seconds, outcome)


def carried_share(instances: np.ndarray, replicas_per_instance: np.ndarray, capacity_rps: np.ndarray,
                  demand_rps: np.ndarray, solver: SolverName = "highs") -> float:
    """The largest s such that s × every bucket's peak can be routed onto this fleet (an LP)."""
    import pulp

    mu = np.asarray(capacity_rps, dtype=float)
    replicas = np.asarray(instances, dtype=float) * np.asarray(replicas_per_instance, dtype=float)
    if mu.size == 0 or not (replicas > 0).any():
        return 0.0
    if mu.shape[1] == 1:  # one bucket: capacity adds up, no routing to choose
        return float(np.dot(replicas, mu[:, 0]) / float(demand_rps[0]))
    prob = pulp.LpProblem("flopopt_carried", pulp.LpMaximize)
    s = variable(prob, "s", low=0.0)
    y = {key: v for key, v in _routing(prob, mu).items() if replicas[key[0]] > 0}
    prob += s
    for b in range(mu.shape[1]):
        prob += pulp.lpSum(y[k, b] for k in range(mu.shape[0]) if (k, b) in y) == float(demand_rps[b]) * s, \
            f"demand_{b}"
    for k in range(mu.shape[0]):
        if replicas[k] > 0 and any((k, b) in y for b in range(mu.shape[1])):
            prob += _busy(y, mu, k) <= float(replicas[k]), f"capacity_{k}"
    if not solve_outcome(prob, serving_engine(solver)).is_optimal:
        return 0.0
    return float(s.varValue or 0.0)
