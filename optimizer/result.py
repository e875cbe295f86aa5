"""Typed, frozen result objects. The library returns these; the CLI only renders them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from .flops import FlopEstimate
from .job import Job
from .vocabulary import Status as Status


@dataclass(frozen=True)
class Plan:
    """One (offer, count, precision) with its hours, cost and the assumptions behind them."""

    offer_id: str
    provider: str
    kind: str
    region: str
    instance_type: str
    gpu: str
    gpu_count: int
    instances: int
    precision: str
    scenario: str
    attenuation: float
    attenuation_low: float
    attenuation_high: float
    attenuation_source: str
    bottleneck: str
    buffer: float
    scale_efficiency: float
    roofline_bound: bool
    hours: float
    billed_hours: float
    days: float
    cost_usd: float
    # What one instance-hour of this plan costs (cost_usd = instances × this × billed_hours): the list
    # price for rentals; for owned/edge hardware the hourly fee + amortised capex + power (loader.hourly_cost_usd).
    effective_cost_per_instance_hour_usd: float
    effective_cost_per_gpu_hour_usd: float    # the same per GPU (÷ gpus_per_instance)
    # The offer's own price per instance-hour, offers.csv's price_per_hour_usd (owned/edge: the hourly fee).
    list_price_per_instance_hour_usd: float
    price_as_of: str
    need_gb_per_gpu: float
    memory_gb: float
    capex_sunk: bool = False      # owned hardware whose capex is counted as already spent
    price_quality: str = "primary"   # "estimate": not from the provider's page/API (catalog source says why)
    price_fetched_at: str = ""       # when a refreshed price was read ("" = bundled/imported row)
    typical_quota_gpus: float | None = None  # default quota a new account typically has, if known

    @property
    def label(self) -> str:
        return f"{self.gpu_count}×{self.gpu} {self.precision} ({self.provider} {self.kind})"


@dataclass(frozen=True)
class Candidate:
    plan: Plan
    feasible: bool
    reason: str | None
    dominated: bool = False   # feasible, but another plan is no slower and no dearer (pruned)


@dataclass(frozen=True)
class ModelStats:
    enumerated: int
    feasible: int
    after_pruning: int
    variables: int
    constraints: int
    solver: str
    solve_seconds: float
    # Relative gap (incumbent − best bound) / |incumbent| of the returned plan, as the solver reports
    # it (model.solver_gap); ≤ mip_gap_tolerance when optimal. None: no incumbent or no bound reported.
    mip_gap: float | None = None
    mip_gap_tolerance: float | None = None    # the solver's relative gap tolerance for "optimal"


@dataclass(frozen=True)
class SensitivityItem:
    """A pitfall (a mistaken belief) or a stress test (a harder world), re-planned."""

    name: str
    category: str                 # "pitfall" | "stress"
    assumption: str
    plan: Plan | None
    hours: float
    cost_usd: float
    delta_cost_pct: float
    deadline_met: bool
    within_budget: bool
    skipped: str | None
    summary: str
    believed_hours: float | None = None


@dataclass(frozen=True)
class Risk:
    samples: int
    seed: int
    p_deadline: float | None     # None: the job has no deadline
    p_budget: float | None       # None: the job has no budget
    hours_p50: float
    hours_p90: float
    cost_p50: float
    cost_p90: float


@dataclass(frozen=True)
class Result:
    status: Status
    job: Job
    estimate: FlopEstimate
    plan: Plan | None
    alternatives: tuple[Plan, ...]
    candidates: tuple[Candidate, ...]
    excluded: dict[str, int]
    binding: str | None               # the limit that binds (infeasible only)
    explanation: str | None           # why there is no plan, or (status time_limit) why the plan is unproven
    stats: ModelStats
    sensitivity: tuple[SensitivityItem, ...] = ()
    break_even: dict[str, Any] = field(default_factory=dict)
    risk: Risk | None = None
    catalog_layers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


PLAN_FIELDS = tuple(f.name for f in fields(Plan))


def plan_dict(plan: Plan | None) -> dict[str, Any] | None:
    """Plan as a JSON-ready dict (flat, so no deep copy as ``asdict`` would make)."""
    if plan is None:
        return None
    values = ((name, getattr(plan, name)) for name in PLAN_FIELDS)
    return {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in values}
