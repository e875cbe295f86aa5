"""What ``plan`` returns: purchases, commitments, placements, per-period use, costs, break-even.

Frozen records only, so the library computes and the CLI formats (``cli/plan_cmd.py``);
``PlanResult`` is public in ``flopopt.__all__`` and its JSON is ``docs/schema/plan.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .portfolio import Portfolio
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
]


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
    # The solver's relative MIP gap of the plan and its tolerance for "optimal" (result.ModelStats's
    # meaning), and why it ended (outcome.TerminationCondition's value).
    mip_gap: float | None = None
    mip_gap_tolerance: float | None = None
    termination: str | None = None


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
    binding: str | None                # the limit that binds (infeasible only)
    explanation: str | None            # why there is no plan, or (a stop) why the plan is not proven optimal
    stats: PlanStats
    catalog_layers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rentals(self) -> tuple[Assignment, ...]:
        return tuple(a for a in self.assignments if a.resource == "rental")
