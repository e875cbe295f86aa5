"""Typed, frozen result objects. The library returns these; the CLI only renders them."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, overload

import pandas as pd

from ..catalogs.guards import finite_number
from .candidate_schema import PLAN_FIELD_COLUMN, reason_texts, row_records
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


def plan_from_row(row: dict[str, Any]) -> Plan:
    """A candidate-table row (candidate_schema.PLAN_COLUMNS) as a Plan."""
    instances = int(row["instances"])
    hourly = float(row["hourly_cost_usd"])
    return Plan(
        offer_id=str(row["offer_id"]),
        provider=str(row["provider"]),
        kind=str(row["kind"]),
        region=str(row.get("region", "")),
        instance_type=str(row.get("instance_type", "")),
        gpu=str(row["gpu"]),
        gpu_count=int(row["gpu_count"]),
        instances=instances,
        precision=str(row["precision"]),
        scenario=str(row["scenario"]),
        attenuation=float(row["attenuation"]),
        attenuation_low=float(row["att_low"]),
        attenuation_high=float(row["att_high"]),
        attenuation_source=str(row["att_source"]),
        bottleneck=str(row["bottleneck"]),
        buffer=float(row["buffer"]),
        scale_efficiency=float(row["scale_efficiency"]),
        roofline_bound=bool(row["roofline_bound"]),
        hours=float(row["hours"]),
        billed_hours=float(row["billed_hours"]),
        days=float(row["hours"]) / 24.0,
        cost_usd=float(row["cost_usd"]),
        effective_cost_per_instance_hour_usd=hourly,
        effective_cost_per_gpu_hour_usd=hourly / float(row["gpus_per_instance"]),
        list_price_per_instance_hour_usd=float(row["price_per_hour_usd"]),
        price_as_of=str(row["as_of"]),
        need_gb_per_gpu=float(row["need_gb_per_gpu"]),
        memory_gb=float(row["memory_gb"]),
        capex_sunk=bool(row.get("sunk", False)) and str(row["kind"]) in ("owned", "edge"),
        price_quality=_text(row.get("price_quality"), "primary"),
        price_fetched_at=_text(row.get("fetched_at"), ""),
        typical_quota_gpus=finite_number(row.get("typical_quota_gpus")),
    )


def _text(value: Any, default: str) -> str:
    """A text cell, or ``default`` when it is empty or missing (NaN after a concat)."""
    return value if isinstance(value, str) and value else default




_INT_FIELDS = frozenset(f.name for f in fields(Plan) if f.type in ("int", int))


@dataclass(frozen=True, eq=False)
class CandidateTable(Sequence[Candidate]):
    """Every enumerated candidate of a solve, held column-wise (no object per candidate: a
    50,000-offer catalog enumerates ~460,000 of them). Indexing or iterating builds a
    ``Candidate`` on demand; ``records`` serialises columns straight to JSON-ready dicts."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    deadline_hours: float | None = None   # the limits the candidates were assessed under
    budget_usd: float | None = None

    def __len__(self) -> int:
        return len(self.table)

    @overload
    def __getitem__(self, index: int) -> Candidate: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Candidate]: ...

    def __getitem__(self, index: int | slice) -> Candidate | Sequence[Candidate]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        rows = self.table.iloc[[index]]
        return self._candidates(rows)[0]

    def __iter__(self) -> Iterator[Candidate]:
        chunk = 4096
        for start in range(0, len(self.table), chunk):
            yield from self._candidates(self.table.iloc[start:start + chunk])

    def _candidates(self, rows: pd.DataFrame) -> list[Candidate]:
        reasons = reason_texts(rows, deadline_hours=self.deadline_hours, budget_usd=self.budget_usd)
        return [Candidate(plan_from_row(r), bool(r["feasible"]), reason, bool(r.get("dominated", False)))
                for r, reason in zip(row_records(rows), reasons)]

    @property
    def feasible_count(self) -> int:
        return int(self.table["feasible"].sum()) if len(self.table) else 0

    def records(self, plan_fields: Sequence[str], *, feasible_only: bool) -> list[dict[str, Any]]:
        """``plan_fields`` of each candidate (Plan field names) plus feasible and reason, as
        plain Python values (NaN → None), one column at a time."""
        rows = self.table[self.table["feasible"]] if feasible_only and len(self.table) else self.table
        values: dict[str, list[Any]] = {}
        for name in plan_fields:
            column = rows[PLAN_FIELD_COLUMN.get(name, name)]
            array = column.to_numpy()
            if name in _INT_FIELDS:
                values[name] = [int(v) for v in array.tolist()]
            elif array.dtype.kind == "f":
                values[name] = [None if not math.isfinite(v) else v for v in array.tolist()]
            elif array.dtype.kind in "iub":
                values[name] = array.tolist()
            else:
                values[name] = [None if isinstance(v, float) and v != v else v
                                for v in column.to_numpy(dtype=object).tolist()]
        values["feasible"] = rows["feasible"].to_numpy(bool).tolist()
        values["reason"] = reason_texts(rows, deadline_hours=self.deadline_hours, budget_usd=self.budget_usd).tolist()
        names = list(values)
        return [dict(zip(names, cells)) for cells in zip(*values.values())]


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
    # Why the solver ended (outcome.TerminationCondition's value): "optimal", "infeasible", or the
    # limit or event that stopped it ("time_limit", "interrupted", …); status says what it means.
    termination: str | None = None


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
    candidates: CandidateTable
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
