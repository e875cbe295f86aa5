"""``solve_serving(job, catalog) -> ServingResult``: replica model → integer program → fleet,
then the four pitfalls and three stress tests re-planned (sensitivity.py's meaning).

| check             | what changes                                                    |
|-------------------|-----------------------------------------------------------------|
| over_optimism     | believed: attenuation 1.0, no buffer                            |
| over_conservatism | believed: attenuation at the low end of its range, 50% buffer  |
| tech_bias         | only the familiar GPU / provider is considered                  |
| empiricism        | believed: the history scenario's attenuation everywhere         |
| traffic_x2        | stress: twice the traffic                                       |
| latency_halved    | stress: TTFT and TPOT targets halved                            |
| precision_up      | stress: precision one step up (fp8/int8 → bf16 → tf32 → fp32)    |

A pitfall's fleet is chosen under the mistaken belief, then judged under the realistic model:
its cost, and the share of the peak it really carries (1.0 = all of it, at the latency targets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .demand import Demand, serving_demand
from .errors import InputError
from .flops import FlopEstimate, estimate_flops, resolve_workload
from .job import Job
from .model import SolverName
from .outcome import result_status
from .performance import Assumptions, realistic_assumptions
from .result import ModelStats, Status
from .serving import ModelShape, ReplicaTable, model_shape, replica_options, replica_table
from .serving_model import FleetSolution, FleetSpec, carried_share, dominated_options, solve_fleet

PRECISION_UP = {"int8": "bf16", "fp8": "bf16", "bf16": "tf32", "fp16": "tf32", "tf32": "fp32", "fp32": "fp32",
                "fp64": "fp64"}


@dataclass(frozen=True)
class BucketLoad:
    """One bucket's share of one fleet line, at the batch the replica model chose."""

    bucket: str
    peak_rps: float                      # routed to this line at the peak
    batch: int
    ttft_seconds: float
    tpot_seconds: float
    requests_per_s_per_replica: float    # buffer excluded
    tokens_per_s_per_replica: float      # prompt + output tokens
    batch_limited_by: str


@dataclass(frozen=True)
class FleetLine:
    option_id: str
    offer_id: str
    provider: str
    kind: str
    gpu: str
    precision: str
    tensor_parallel: int
    instances: int
    replicas: int
    gpus: int
    scenario: str
    attenuation: float
    buffer: float
    effective_cost_per_instance_hour_usd: float   # list price for rentals; owned: + amortised capex and power
    list_price_per_instance_hour_usd: float       # offers.csv price_per_hour_usd
    cost_usd: float
    price_as_of: str
    weights_gb_per_replica: float
    memory_gb_per_replica: float
    peak_utilisation: float              # busy replicas / replicas at the peak (planning capacity)
    loads: tuple[BucketLoad, ...]
    region: str = ""

    @property
    def label(self) -> str:
        return f"{self.replicas}× {self.gpu} TP{self.tensor_parallel} {self.precision} ({self.provider} {self.kind})"


@dataclass(frozen=True)
class ServingPlan:
    lines: tuple[FleetLine, ...]
    replicas: int
    gpus: int
    cost_usd: float
    fleet_hours: float
    peak_rps: float
    average_rps: float
    capacity_vs_peak: float              # the fleet carries this multiple of the peak (buffer excluded)
    utilisation_at_average: float        # average load / modelled capacity
    usd_per_million_tokens: float
    usd_per_million_output_tokens: float
    binds: tuple[str, ...]               # what limits the plan

    @property
    def label(self) -> str:
        return " + ".join(line.label for line in self.lines)

    # The single-plan fields of the solve JSON contract, for the whole fleet: totals where they
    # add up, "+"-joined names where the fleet mixes, GPU-weighted means of the assumptions.
    @property
    def gpu_count(self) -> int:
        return self.gpus

    @property
    def instances(self) -> int:
        return sum(line.instances for line in self.lines)

    @property
    def hours(self) -> float:
        return self.fleet_hours

    def _joined(self, name: str) -> str:
        return "+".join(dict.fromkeys(str(getattr(line, name)) for line in self.lines))

    def _weighted(self, name: str) -> float:
        return sum(float(getattr(line, name)) * line.gpus for line in self.lines) / max(self.gpus, 1)

    def contract_fields(self) -> dict[str, object]:
        return {"offer_id": self._joined("offer_id"), "provider": self._joined("provider"),
                "kind": self._joined("kind"), "gpu": self._joined("gpu"), "gpu_count": self.gpu_count,
                "instances": self.instances, "precision": self._joined("precision"),
                "scenario": self._joined("scenario"), "attenuation": self._weighted("attenuation"),
                "buffer": self._weighted("buffer"), "hours": self.hours,
                "price_as_of": min((line.price_as_of for line in self.lines), default="")}


@dataclass(frozen=True)
class ReplicaCandidate:
    """One replica option as the JSON "candidates" list shows it."""

    option_id: str
    gpu: str
    precision: str
    tensor_parallel: int
    effective_cost_per_instance_hour_usd: float   # list price for rentals; owned: + amortised capex and power
    list_price_per_instance_hour_usd: float       # offers.csv price_per_hour_usd
    cost_window_usd: float
    batch: tuple[int, ...]
    requests_per_s_per_replica: tuple[float, ...]
    feasible: bool
    reason: str | None


@dataclass(frozen=True)
class ServingCheck:
    """A pitfall or stress test, re-planned (the serving counterpart of SensitivityItem)."""

    name: str
    category: str               # "pitfall" | "stress"
    assumption: str
    fleet: str | None           # label of the fleet it leads to
    cost_usd: float
    delta_cost_pct: float
    carries_peak: float         # share of the real peak the fleet carries (realistic model)
    within_budget: bool
    summary: str


@dataclass(frozen=True)
class ServingResult:
    status: Status
    job: Job
    estimate: FlopEstimate
    demand: Demand
    plan: ServingPlan | None
    candidates: tuple[ReplicaCandidate, ...]
    excluded: dict[str, int]
    binding: str | None
    explanation: str | None
    stats: ModelStats
    sensitivity: tuple[ServingCheck, ...] = ()
    catalog_layers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# planning


@dataclass(frozen=True)
class ServingPlanner:
    """Everything needed to re-plan one service under other beliefs or in a harder world."""

    job: Job
    catalog: Catalog
    shape: ModelShape
    demand: Demand
    options: pd.DataFrame
    excluded: dict[str, int]
    solver: SolverName = "highs"
    time_limit_seconds: float | None = None   # None: solve every fleet to proven optimality

    @classmethod
    def build(cls, job: Job, catalog: Catalog, solver: SolverName = "highs") -> "ServingPlanner":
        for name in ("gpu_count", "min_gpus", "deadline_hours"):
            if getattr(job.constraints, name, None) is not None:
                raise InputError.at(job.source_file, f"constraints.{name}",
                                    "does not apply to a serving fleet, which is sized for its peak over "
                                    "workload.window_hours; limit it with max_gpus, budget_usd or offer quotas")
        w = resolve_workload(job.workload, catalog.model_table(), job.source_file)
        options, excluded = replica_options(job, catalog)
        return cls(job, catalog, model_shape(w, job.source_file), serving_demand(job.workload, job.source_file),
                   options, excluded, solver)

    def table(self, assumptions: Assumptions | None = None, demand: Demand | None = None) -> ReplicaTable:
        return replica_table(self.options, self.shape, demand or self.demand, self.job, self.catalog,
                             assumptions or realistic_assumptions(self.job))

    def spec(self, table: ReplicaTable, demand: Demand | None = None, budget: bool = True) -> FleetSpec:
        o = table.options
        c = self.job.constraints
        if o.empty:
            return FleetSpec(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, dtype=object), np.zeros((0, 1)),
                             (demand or self.demand).bucket_peak_rps)
        limited = o.dropna(subset=["max_instances"]).drop_duplicates("offer_id")
        quotas = dict(zip(limited["offer_id"].astype(str), limited["max_instances"].astype(int)))
        return FleetSpec(
            cost_usd=o["cost_window_usd"].to_numpy(float),
            replicas_per_instance=o["replicas_per_instance"].to_numpy(float),
            gpus_per_instance=o["gpus_per_instance"].to_numpy(float), offer_id=o["offer_id"].to_numpy(),
            capacity_rps=table.planning_rps, demand_rps=(demand or self.demand).bucket_peak_rps,
            quotas=quotas, max_gpus=c.max_gpus, budget_usd=c.budget_usd if budget else None,
            time_limit_seconds=self.time_limit_seconds)

    def plan(self, assumptions: Assumptions | None = None, demand: Demand | None = None
             ) -> tuple[ReplicaTable, FleetSolution]:
        table = self.table(assumptions, demand)
        return table, solve_fleet(self.spec(table, demand), self.solver)

    def restricted(self, mask: np.ndarray) -> "ServingPlanner":
        return replace(self, options=self.options[mask].reset_index(drop=True))

    def with_precisions(self, precisions: list[str]) -> "ServingPlanner":
        job = self.job.model_copy(update={"precision": precisions})
        options, excluded = replica_options(job, self.catalog)
        return replace(self, job=job, options=options, excluded=excluded)


def _bucket_loads(table: ReplicaTable, demand: Demand, k: int, routed: np.ndarray) -> tuple[BucketLoad, ...]:
    return tuple(
        BucketLoad(bucket=bucket.name, peak_rps=float(routed[k, b]), batch=int(table.batch[k, b]),
                   ttft_seconds=float(table.ttft_seconds[k, b]), tpot_seconds=float(table.tpot_seconds[k, b]),
                   requests_per_s_per_replica=float(table.rps_per_replica[k, b]),
                   tokens_per_s_per_replica=float(table.rps_per_replica[k, b] * bucket.tokens),
                   batch_limited_by=str(table.limited_by[k, b]))
        for b, bucket in enumerate(demand.buckets) if routed[k, b] > 1e-12
    )


def fleet_plan(planner: ServingPlanner, table: ReplicaTable, solution: FleetSolution,
               demand: Demand | None = None, detail: bool = True) -> ServingPlan:
    """The solution as fleet lines with capacity, utilisation, $/Mtok and what binds
    (``detail=False``: lines and cost only, for re-plans that are judged elsewhere)."""
    demand = demand or planner.demand
    o = table.options
    counts = np.array(solution.instances, dtype=float)
    chosen = np.flatnonzero(counts > 0)
    rows = dict(zip(chosen.tolist(), o.iloc[chosen].to_dict("records")))
    lines = []
    for k in np.flatnonzero(counts > 0):
        row = rows[int(k)]
        replicas = int(counts[k] * row["replicas_per_instance"])
        busy = float(sum(solution.routed_rps[k, b] / table.planning_rps[k, b]
                         for b in range(len(demand.buckets)) if table.planning_rps[k, b] > 0))
        lines.append(FleetLine(
            option_id=str(row["option_id"]), offer_id=str(row["offer_id"]), provider=str(row["provider"]),
            kind=str(row["kind"]), gpu=str(row["gpu"]), precision=str(row["precision"]),
            tensor_parallel=int(row["tensor_parallel"]), instances=int(counts[k]), replicas=replicas,
            gpus=int(counts[k] * row["gpus_per_instance"]), scenario=str(row["scenario"]),
            attenuation=float(row["attenuation"]), buffer=float(row["buffer"]),
            effective_cost_per_instance_hour_usd=float(row["hourly_cost_usd"]),
            list_price_per_instance_hour_usd=float(row["price_per_hour_usd"]),
            cost_usd=float(counts[k] * row["cost_window_usd"]), price_as_of=str(row["as_of"]),
            weights_gb_per_replica=float(table.weights_gb[k]), memory_gb_per_replica=float(table.usable_memory_gb[k]),
            peak_utilisation=busy / replicas if replicas else math.nan,
            loads=_bucket_loads(table, demand, int(k), solution.routed_rps),
            region=str(row.get("region", "") or "")))
    share = carried_share(counts, o["replicas_per_instance"].to_numpy(float), table.rps_per_replica,
                          demand.bucket_peak_rps, planner.solver) if detail else math.nan
    cost = float(solution.cost_usd or 0.0)
    tokens = demand.requests_in_window * demand.tokens_per_request
    output = demand.requests_in_window * demand.output_tokens_per_request
    plan = ServingPlan(
        lines=tuple(lines), replicas=sum(line.replicas for line in lines), gpus=sum(line.gpus for line in lines),
        cost_usd=cost, fleet_hours=demand.fleet_hours, peak_rps=demand.peak_rps, average_rps=demand.average_rps,
        capacity_vs_peak=share, utilisation_at_average=demand.average_rps / (share * demand.peak_rps)
        if share > 0 else math.nan,
        usd_per_million_tokens=cost / tokens * 1e6 if tokens > 0 else math.nan,
        usd_per_million_output_tokens=cost / output * 1e6 if output > 0 else math.nan, binds=())
    return replace(plan, binds=what_binds(planner, plan, table)) if detail else plan


def what_binds(planner: ServingPlanner, plan: ServingPlan, table: ReplicaTable) -> tuple[str, ...]:
    """Limits the plan touches: the batch limits of the chosen lines, and quotas, max_gpus or
    budget when one more instance of the cheapest chosen line would break them."""
    found: list[str] = []
    for line in plan.lines:
        for load in line.loads:
            text = (f"{line.gpu} TP{line.tensor_parallel} {load.bucket}: batch {load.batch} limited by "
                    f"{load.batch_limited_by}")
            if load.batch_limited_by and text not in found:
                found.append(text)
    c = planner.job.constraints
    if c.max_gpus is not None and plan.lines and plan.gpus + min(
            line.gpus // line.instances for line in plan.lines) > c.max_gpus:
        found.append(f"max_gpus ({plan.gpus} of {c.max_gpus} GPUs used)")
    if c.budget_usd is not None and plan.lines and plan.cost_usd + min(
            line.cost_usd / line.instances for line in plan.lines) > c.budget_usd:
        found.append(f"budget_usd (${plan.cost_usd:,.0f} of ${c.budget_usd:,.0f})")
    quotas = planner.spec(table).quotas
    for line in plan.lines:
        quota = quotas.get(line.offer_id)
        used = sum(x.instances for x in plan.lines if x.offer_id == line.offer_id)
        if quota is not None and used >= quota and f"quota {line.offer_id}" not in " ".join(found):
            found.append(f"quota {line.offer_id} ({used} of {quota} instances)")
    return tuple(found)


# ---------------------------------------------------------------------------
# infeasibility


def explain_infeasible_serving(planner: ServingPlanner, table: ReplicaTable) -> tuple[str, str]:
    """Which limit binds: allow-lists, memory, a latency target, capacity limits or the budget."""
    demand = planner.demand
    o = table.options
    if o.empty:
        allow = ", ".join(planner.excluded) or "no offers in the catalog"
        return ("allow_lists", f"no replica option to choose from: every offer was excluded ({allow}); "
                "widen constraints.providers / offer_kinds / gpus / regions or max_gpus")
    needs = planner.shape.kv_bytes_per_token * max(b.tokens for b in demand.buckets) / 1e9
    room = table.usable_memory_gb - table.weights_gb
    if not (room >= needs).any():
        best = int(np.argmax(room))
        return ("memory", f"no replica holds the model and one sequence's KV cache: the largest, "
                f"{o['option_id'].iloc[best]}, has {table.usable_memory_gb[best]:,.0f} GB usable for "
                f"{table.weights_gb[best]:,.0f} GB of weights + {needs:,.1f} GB of KV cache — allow larger "
                "instances (tensor parallel within one node), a lower precision or shorter requests")
    for b, bucket in enumerate(demand.buckets):
        if (table.batch[:, b] > 0).any():
            continue
        fits = room >= planner.shape.kv_bytes_per_token * bucket.tokens / 1e9
        ttft, tpot = table.ttft_seconds[fits, b], table.tpot_seconds[fits, b]
        names = o["option_id"].to_numpy()[fits]
        if demand.ttft_seconds is not None and ttft.min() > demand.ttft_seconds:
            i = int(np.argmin(ttft))
            return ("ttft_seconds", f"no replica meets the time-to-first-token target of "
                    f"{demand.ttft_seconds * 1000:,.0f} ms for bucket {bucket.name} ({bucket.prompt_tokens:,.0f} "
                    f"prompt tokens): the fastest replica ({names[i]}, batch 1) takes {ttft[i] * 1000:,.0f} ms — "
                    f"raise ttft_seconds to {math.ceil(ttft[i] * 1000):,} ms or allow faster GPUs")
        i = int(np.argmin(tpot))
        return ("tpot_seconds", f"no replica meets the time-per-output-token target of "
                f"{(demand.tpot_seconds or 0) * 1000:,.1f} ms for bucket {bucket.name}: the fastest replica "
                f"({names[i]}, batch 1) takes {tpot[i] * 1000:,.1f} ms per token — raise tpot_seconds to "
                f"{math.ceil(tpot[i] * 10000) / 10:,.1f} ms or allow faster GPUs")
    spec = planner.spec(table)
    # The limits are dropped one at a time and the program re-solved (within the same time limit):
    # without the budget, is there a fleet at all? A relaxation that stops undecided says so.
    no_budget = solve_fleet(replace(spec, budget_usd=None), planner.solver)
    if no_budget.outcome.proven_infeasible:
        cheapest = solve_fleet(replace(spec, quotas={}, max_gpus=None, budget_usd=None), planner.solver)
        if not cheapest.instances:
            return _undecided(cheapest)
        gpus = int(sum(n * g for n, g in zip(cheapest.instances, spec.gpus_per_instance)))
        what = f"max_gpus={spec.max_gpus}" if spec.max_gpus is not None else "the offers' quotas (max_instances)"
        return ("capacity", f"the peak of {demand.peak_rps:,.1f} requests/s needs more replicas than "
                f"{what} allow; the cheapest unconstrained fleet uses {gpus:,} GPUs — raise max_gpus or quotas")
    if not no_budget.instances:
        return _undecided(no_budget)
    cost = float(no_budget.cost_usd or 0.0)
    budget = spec.budget_usd or 0.0
    which = ("the cheapest fleet carrying the peak costs" if no_budget.outcome.is_optimal else
             f"a fleet carrying the peak (the solver stopped ({no_budget.status}) before proving it the cheapest) "
             "costs")
    return ("budget_usd", f"{which} ${cost:,.0f} over the {demand.window_hours:,.0f} h window; budget is "
            f"${budget:,.0f} — raise it by ${cost - budget:,.0f} (+{(cost / budget - 1) * 100:.0f}%)")


def _undecided(relaxed: FleetSolution) -> tuple[str, str]:
    """No fleet exists (proven), but a relaxed program stopped before telling which limit binds."""
    return ("unknown", f"no fleet meets every limit, but the solver stopped ({relaxed.status}) before finding "
            "which limit binds; raise the time limit")


# ---------------------------------------------------------------------------
# sensitivity


def _pct(new: float, old: float) -> float:
    return (new / old - 1.0) * 100.0 if old > 0 and math.isfinite(new) else math.nan


def _check(planner: ServingPlanner, optimum: ServingPlan, name: str, category: str, assumption: str,
           believed: Assumptions | None, demand: Demand | None = None,
           sub: ServingPlanner | None = None, real_table: ReplicaTable | None = None) -> ServingCheck:
    """Re-plan under ``believed`` (pitfall) or in a harder world (stress), judge it realistically."""
    sub = sub or planner
    realistic = realistic_assumptions(planner.job)
    table, solution = sub.plan(believed, demand)
    budget = planner.job.constraints.budget_usd
    if not solution.instances:
        if not solution.outcome.proven_infeasible:   # stopped: nothing shows that a limit binds
            why = result_status(solution.outcome, what="fleet", time_limit_seconds=sub.time_limit_seconds)[1]
            return ServingCheck(name, category, assumption, None, math.nan, math.nan, 0.0, False,
                                f"the re-plan stopped: {why}")
        why = (explain_infeasible_serving(sub, table)[1] if table.options.size else "no replica option left")
        return ServingCheck(name, category, assumption, None, math.nan, math.nan, 0.0, False,
                            f"no fleet: {why}")
    plan = fleet_plan(sub, table, solution, demand, detail=False)
    real_demand = demand or planner.demand
    if real_table is None or sub is not planner:
        real_table = sub.table(realistic, real_demand)
    share = carried_share(np.array(solution.instances, dtype=float),
                          real_table.options["replicas_per_instance"].to_numpy(float),
                          real_table.rps_per_replica, real_demand.bucket_peak_rps, planner.solver)
    delta = _pct(plan.cost_usd, optimum.cost_usd)
    within = budget is None or plan.cost_usd <= budget * (1 + 1e-12)
    carried = ("carries the peak" if share >= 1 - 1e-9 else
               f"realistically carries only {share:.0%} of the peak at the latency targets")
    summary = (f"fleet {plan.label}: ${plan.cost_usd:,.0f} ({delta:+.0f}% vs the plan), {carried}"
               + ("" if within else f"; over the ${budget:,.0f} budget"))
    return ServingCheck(name, category, assumption, plan.label, plan.cost_usd, delta, share, within, summary)


def serving_sensitivity(planner: ServingPlanner, optimum: ServingPlan, table: ReplicaTable
                        ) -> tuple[ServingCheck, ...]:
    """``table``: the realistic replica table of the plan (pitfalls are judged against it)."""
    job = planner.job
    realistic = realistic_assumptions(job)
    checks = [
        _check(planner, optimum, "over_optimism", "pitfall", "attenuation = 1.0 (peak FLOP/s) and no buffer",
               replace(realistic, attenuation_override=1.0, buffer_override=0.0), real_table=table),
        _check(planner, optimum, "over_conservatism", "pitfall", "attenuation at the low end and a 50% buffer",
               replace(realistic, attenuation_override=None, attenuation_point="low", buffer_override=0.5),
               real_table=table),
    ]
    familiar = job.familiar
    if familiar is not None and (familiar.gpu or familiar.provider):
        o = planner.options
        mask = np.ones(len(o), dtype=bool)
        if familiar.gpu:
            mask &= o["gpu"].str.lower().to_numpy() == familiar.gpu.lower()
        if familiar.provider:
            mask &= o["provider"].str.lower().to_numpy() == familiar.provider.lower()
        what = " / ".join(x for x in (familiar.gpu, familiar.provider) if x)
        checks.append(_check(planner, optimum, "tech_bias", "pitfall", f"only the familiar {what}", None,
                             sub=planner.restricted(mask)))
    if job.history_scenario is not None:
        checks.append(_check(planner, optimum, "empiricism", "pitfall",
                             f"the {job.history_scenario} scenario's attenuation applies everywhere",
                             replace(realistic, attenuation_scenario=job.history_scenario), real_table=table))
    checks.append(_check(planner, optimum, "traffic_x2", "stress", "twice the traffic", None,
                         planner.demand.scaled(traffic=2.0)))
    checks.append(_check(planner, optimum, "latency_halved", "stress", "TTFT and TPOT targets halved", None,
                         planner.demand.scaled(latency=0.5)))
    up = sorted({PRECISION_UP[p] for p in job.precision})
    if up != sorted(job.precision):
        checks.append(_check(planner, optimum, "precision_up", "stress", f"precision up to {', '.join(up)}", None,
                             sub=planner.with_precisions(up)))
    return tuple(checks)


# ---------------------------------------------------------------------------
# entry point


def _candidates(table: ReplicaTable) -> tuple[ReplicaCandidate, ...]:
    o = table.options
    out = []
    for k, row in enumerate(o.to_dict("records")):
        feasible = bool((table.batch[k] > 0).any())
        reasons = sorted({str(r) for r, n in zip(table.limited_by[k], table.batch[k]) if n == 0})
        out.append(ReplicaCandidate(
            option_id=str(row["option_id"]), gpu=str(row["gpu"]), precision=str(row["precision"]),
            tensor_parallel=int(row["tensor_parallel"]),
            effective_cost_per_instance_hour_usd=float(row["hourly_cost_usd"]),
            list_price_per_instance_hour_usd=float(row["price_per_hour_usd"]),
            cost_window_usd=float(row["cost_window_usd"]), batch=tuple(int(x) for x in table.batch[k]),
            requests_per_s_per_replica=tuple(float(x) for x in table.rps_per_replica[k]), feasible=feasible,
            reason=", ".join(reasons) or None))
    return tuple(out)


def solve_serving(job: Job, catalog: Catalog, *, solver: SolverName = "highs",
                  sensitivity: bool = True, time_limit_seconds: float | None = None) -> ServingResult:
    """Cheapest fleet of replicas (mixing GPU types) carrying the peak within latency targets.

    A solver stopped by ``time_limit_seconds`` (or another limit) with an incumbent returns that
    fleet, status time_limit (not_solved for another stop) and ``explanation`` saying it is not
    proven optimal; without one, no fleet and no binding limit. Only a proof is "infeasible"."""
    from .planner import check_familiar

    check_familiar(job, catalog)
    planner = replace(ServingPlanner.build(job, catalog, solver), time_limit_seconds=time_limit_seconds)
    estimate = estimate_flops(job.workload, catalog.model_table(), job.source_file)
    table, solution = planner.plan()
    plan = fleet_plan(planner, table, solution) if solution.instances else None
    status, explanation = result_status(solution.outcome, what="fleet", time_limit_seconds=time_limit_seconds)
    binding = None
    if status is Status.INFEASIBLE:
        binding, explanation = explain_infeasible_serving(planner, table)
    candidates = _candidates(table)
    excluded = dict(planner.excluded)
    unusable = sum(1 for c in candidates if not c.feasible)
    if unusable:
        excluded["cannot serve a bucket (memory or latency)"] = unusable
    kept = int((~dominated_options(planner.spec(table))).sum()) if len(candidates) else 0
    stats = ModelStats(enumerated=len(candidates), feasible=len(candidates) - unusable, after_pruning=kept,
 variables=solution.variables,
                       constraints=solution.constraints, solver=solution.solver, solve_seconds=solution.seconds,
                       mip_gap=solution.mip_gap, mip_gap_tolerance=solution.mip_gap_tolerance,
                       termination=solution.outcome.termination.value)
    result = ServingResult(
        status=status, job=job, estimate=estimate, demand=planner.demand,
        plan=plan, candidates=candidates, excluded=excluded, binding=binding, explanation=explanation,
        stats=stats, catalog_layers=catalog.layers,
        warnings=tuple(w for w in [catalog.staleness_warning()] if w))
    if sensitivity and plan is not None:
        result = replace(result, sensitivity=serving_sensitivity(planner, plan, table))
    return result
