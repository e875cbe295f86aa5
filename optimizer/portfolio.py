"""Portfolio files, and each job's candidates for planning several jobs together.

A portfolio is a year (or any horizon) of jobs that share money and machines: a
budget, the quotas of catalog offers, and hardware the lab may buy or reserve. This
module reads the file (strictly, like a job file), turns purchase and reserved
options into *capacity sources*, and prices every job on every offer and source with
the same pipeline as ``solve`` (expand → performance → memory → limits). What the
integer program of ``procurement.py`` then sees is each job's short list of
candidates that could be part of an optimal plan (see ``prune_for_portfolio``).

File format (YAML; unknown keys are errors naming the field path, e.g.
``jobs[2].constraints.deadline_hours``)::

    name: research-lab
    horizon: {periods: 12, period_hours: 730}    # monthly periods over one year
    budget_usd: $3M                              # shared by every job and purchase (optional)
    jobs:
      - file: ../llama3-8b-finetune.yaml         # a job file, relative to this file
        period: 3                                # the period the job starts in (default 1)
      - name: tokenizer-ablation                 # or a job mapping in the job-file format
        period: 5
        workload: {kind: custom, total_flops: 1e20}
    purchase_options:                            # hardware the optimiser may buy
      - option: dgx-h100
        gpu: H100-SXM
        gpus: 8                                  # GPUs per unit
        capex_usd: $270k                         # paid in the period of purchase
        power_kw: 10.2                           # per unit, charged per busy hour
        electricity_usd_per_kwh: 0.127
        resale_fraction: 0.5                     # share of capex recovered at the horizon's end
        lead_time_periods: 1                     # bought in p, usable from p + 1
        max_count: 4                             # units on hand at most
      - option: more-dgx-a100
        offer: owned-dgx-a100-8x                 # or take gpu/gpus/capex/power from an owned offer
    reserved:                                    # reserved-capacity commitments (optional)
      - option: lambda-h100-1y
        offer: lambda-gpu_8x_h100_sxm5-ondemand  # gpu, gpus, provider, interconnect from this offer
        price_per_hour_usd: 19.0                 # per unit, paid for every hour of the term
        term_periods: 12
        count: 1                                 # a commitment already signed (else: optimiser decides)
        start_period: 1
    quotas: {quote-h100-64x-reserved-1m: 1}      # instances of an offer shared per period

Semantics that the planner relies on:

* A job starts at the beginning of its ``period`` and runs for its planned hours,
  possibly across several periods; it must finish within the horizon, so its
  effective deadline is min(deadline_hours, hours left in the horizon).
* A job's own ``budget_usd`` limits its direct cost: the rental bill, or the power
  bill when it runs on bought hardware (capex is a portfolio decision, not the job's).
* Bought hardware is offer kind ``owned``, provider ``owned``; reserved capacity is kind
  ``reserved`` under its provider. A job's allow-lists apply to them as to any offer.
* The job's ``objective`` is ignored: a portfolio minimises total cost of ownership.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, ValidationError, field_validator

from ..catalogs.loader import Catalog
from .candidates import CandidateSet, assess, dominated_in_groups
from .errors import InputError, Problem
from .job import (
    Hours,
    Interconnect,
    Job,
    Money,
    PositiveInt,
    _Strict,
    parse_job,
    read_yaml_mapping,
    translate_validation_error,
)
from .model import JobOptions, ModelSolution, ModelSpec, SolverName, solve_model
from .performance import realistic_assumptions
from .planner import Planner
from .units import parse_count

__all__ = [
    "CapacitySource",
    "Horizon",
    "JobCandidates",
    "Portfolio",
    "PortfolioJob",
    "PortfolioSpec",
    "PurchaseOption",
    "ReservedOption",
    "build_candidates",
    "capacity_sources",
    "load_portfolio",
    "parse_portfolio",
    "dominated_by_use",
    "dominated_within",
    "period_gpu_hours",
    "plan_side_by_side",
    "prune_for_portfolio",
]

MAX_PERIODS = 240              # 20 years of months; more is a typo, and each period adds rows
PURCHASE_PREFIX = "buy:"       # synthetic offer ids of capacity sources, never in a catalog
RESERVED_PREFIX = "reserve:"
# Offer kinds whose reference price says what an hour of a GPU costs without owning it
# (break-even); spot is left out because its interruptions make it a different product.
REFERENCE_RENTAL_KINDS = ("on_demand", "reserved", "cluster_quote")


def _non_negative(value: Any) -> float:
    number = parse_count(value)
    if number < 0:
        raise ValueError(f"must be ≥ 0 (got {number:g})")
    return number


NonNegative = Annotated[float, BeforeValidator(_non_negative)]
NonNegativeInt = Annotated[int, BeforeValidator(_non_negative), Field(ge=0)]
Fraction = Annotated[float, BeforeValidator(_non_negative), Field(le=1.0)]
Periods = Annotated[int, BeforeValidator(_non_negative), Field(ge=1, le=MAX_PERIODS)]
Name = Annotated[str, Field(min_length=1, max_length=80)]


# ---------------------------------------------------------------------------
# The file


class Horizon(_Strict):
    """Planning periods; 12 × 730 h is a year of months (8,760 h / 12)."""

    periods: Periods = 12
    period_hours: Annotated[Hours, Field(le=8784.0)] = 730.0  # at most a (leap) year per period


class PurchaseOption(_Strict):
    """Hardware the optimiser may buy, in whole units of ``gpus`` GPUs.

    ``offer`` names an owned catalog offer to take gpu, gpus, capex, power and
    interconnect from (fields given here override it). ``resale_fraction`` is the share
    of capex recovered when the horizon ends, for every unit whenever it was bought
    (simple, and conservative for late purchases); there is no discounting.
    """

    option: Name
    offer: str | None = None
    gpu: str | None = None
    gpus: PositiveInt | None = None
    capex_usd: Money | None = None
    power_kw: NonNegative | None = None
    electricity_usd_per_kwh: NonNegative | None = None
    interconnect: Interconnect | None = None
    resale_fraction: Fraction = 0.0
    lead_time_periods: NonNegativeInt = 0
    max_count: NonNegativeInt | None = None
    source: str | None = None


class ReservedOption(_Strict):
    """Reserved capacity: ``count`` units committed for ``term_periods``, paid for every hour.

    With ``count`` the commitment is fixed (already signed) from ``start_period``; without
    it the optimiser chooses how many units to commit in which period (≤ ``max_count`` on
    hand at once). The whole term is paid even where it runs past the horizon.
    """

    option: Name
    offer: str | None = None
    provider: str | None = None
    gpu: str | None = None
    gpus: PositiveInt | None = None
    interconnect: Interconnect | None = None
    price_per_hour_usd: Money | None = None
    term_periods: Periods = 12
    lead_time_periods: NonNegativeInt = 0
    max_count: NonNegativeInt | None = None
    count: NonNegativeInt | None = None
    start_period: Periods | None = None
    source: str | None = None


class PortfolioSpec(_Strict):
    """The portfolio file as written; jobs are validated one by one (``parse_portfolio``)."""

    name: Name = "portfolio"
    horizon: Horizon = Field(default_factory=Horizon)
    budget_usd: Money | None = None
    jobs: list[dict[str, Any]] = Field(min_length=1)
    purchase_options: list[PurchaseOption] = Field(default_factory=list)
    reserved: list[ReservedOption] = Field(default_factory=list)
    quotas: dict[str, NonNegativeInt] = Field(default_factory=dict)

    @field_validator("jobs", mode="before")
    @classmethod
    def _jobs_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            raise ValueError("must be a list of jobs (each a job mapping or {file: ..., period: ...})")
        return value


@dataclass(frozen=True)
class PortfolioJob:
    """One job of the portfolio and the period it starts in (1-based)."""

    index: int              # position in the file's jobs list (for field paths)
    job: Job
    period: int
    inline: bool            # written in the portfolio file (else loaded from job.source_file)

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def field_prefix(self) -> str:
        """Where the job's fields live, for error messages about an inline job."""
        return f"jobs[{self.index}]." if self.inline else ""


@dataclass(frozen=True)
class Portfolio:
    name: str
    horizon: Horizon
    budget_usd: float | None
    jobs: tuple[PortfolioJob, ...]
    purchase_options: tuple[PurchaseOption, ...]
    reserved: tuple[ReservedOption, ...]
    quotas: dict[str, int]
    source_file: str = "<portfolio>"


JOB_FILE_KEYS = ("file", "period")


def parse_portfolio(data: dict[str, Any], file: str = "<portfolio>", base_dir: Path | None = None) -> Portfolio:
    """Validate a portfolio mapping; every problem of every job is reported at once."""
    try:
        spec = PortfolioSpec.model_validate(data)
    except ValidationError as exc:
        raise translate_validation_error(exc, file, PortfolioSpec) from None
    problems: list[Problem] = []
    jobs: list[PortfolioJob] = []
    periods = spec.horizon.periods
    for i, entry in enumerate(spec.jobs):
        where = f"jobs[{i}]"
        bad_keys = [k for k in entry if not isinstance(k, str)]
        if bad_keys:
            problems.append(Problem(file, f"{where}.{bad_keys[0]}", "keys must be text"))
            continue
        period, period_problem = _period(entry.get("period", 1), periods)
        if period_problem:
            problems.append(Problem(file, f"{where}.period", period_problem))
        body = {k: v for k, v in entry.items() if k != "period"}
        try:
            if "file" in entry:
                job = _job_from_file(body, file, where, base_dir)
                inline = False
            else:
                job = parse_job(body, file, prefix=f"{where}.")
                inline = True
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        jobs.append(PortfolioJob(index=i, job=job, period=period, inline=inline))
    seen: dict[str, int] = {}
    for pj in jobs:
        if pj.name in seen:
            problems.append(Problem(file, f"jobs[{pj.index}].name", f"duplicate job name {pj.name!r} (also "
                                    f"jobs[{seen[pj.name]}]); every job needs its own name"))
        seen.setdefault(pj.name, pj.index)
    problems.extend(_option_problems(spec, file))
    if problems:
        raise InputError(problems)
    return Portfolio(name=spec.name, horizon=spec.horizon, budget_usd=spec.budget_usd, jobs=tuple(jobs),
                     purchase_options=tuple(spec.purchase_options), reserved=tuple(spec.reserved),
                     quotas=dict(spec.quotas), source_file=file)


def _period(value: Any, periods: int) -> tuple[int, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return 1, f"must be a whole period number 1…{periods} (got {value!r})"
    if not 1 <= int(value) <= periods:
        return 1, f"must be within the horizon, 1…{periods} (got {int(value)})"
    return int(value), None


def _job_from_file(body: dict[str, Any], file: str, where: str, base_dir: Path | None) -> Job:
    extra = [k for k in body if k not in JOB_FILE_KEYS]
    if extra:
        raise InputError.at(file, f"{where}.{extra[0]}", "unknown key next to 'file'; a job given by file "
                            "takes only 'file' and 'period' (put other fields in the job file)")
    name = body["file"]
    if not isinstance(name, str) or not name.strip():
        raise InputError.at(file, f"{where}.file", f"must be a path to a job YAML file (got {name!r})")
    path = Path(name)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        data = read_yaml_mapping(path, "job")
    except InputError as exc:
        raise InputError([Problem(file, f"{where}.file", f"{p.file}: {p.message}") for p in exc.problems]) from None
    return parse_job(data, str(path))


def _option_problems(spec: PortfolioSpec, file: str) -> list[Problem]:
    """Rules between fields of the options that pydantic cannot see one field at a time."""
    problems: list[Problem] = []
    periods = spec.horizon.periods
    names: dict[str, str] = {}
    entries: list[tuple[str, PurchaseOption | ReservedOption]] = [
        *((f"purchase_options[{i}]", o) for i, o in enumerate(spec.purchase_options)),
        *((f"reserved[{i}]", o) for i, o in enumerate(spec.reserved)),
    ]
    for where, option in entries:
        if option.option in names:
            problems.append(Problem(file, f"{where}.option", f"duplicate option name {option.option!r} "
                                    f"(also {names[option.option]})"))
        names.setdefault(option.option, where)
        if option.lead_time_periods >= periods:
            problems.append(Problem(file, f"{where}.lead_time_periods", f"a lead time of {option.lead_time_periods} "
                                    f"period(s) leaves no period to use the hardware in a {periods}-period "
                                    "horizon"))
        if not isinstance(option, ReservedOption):
            continue
        if option.start_period is not None and option.count is None:
            problems.append(Problem(file, f"{where}.start_period", "only with 'count' (a fixed commitment); "
                                    "without count the optimiser chooses when to commit"))
        start = option.start_period or 1
        if option.count is not None and start > periods:
            problems.append(Problem(file, f"{where}.start_period", f"must be within the horizon, 1…{periods} "
                                    f"(got {start})"))
    return problems


def load_portfolio(path: str | Path) -> Portfolio:
    """Load and validate a portfolio YAML file (job files it names are read relative to it)."""
    p = Path(path)
    return parse_portfolio(read_yaml_mapping(p, "portfolio"), str(path), p.parent)


# ---------------------------------------------------------------------------
# Capacity sources: purchase and reserved options resolved against the catalog


@dataclass(frozen=True)
class CapacitySource:
    """Bought or reserved GPUs: capacity per period, paid per unit, used by jobs for free
    (reserved) or for their power (bought).

    A unit acquired in period q is usable in period p when ``available(q, p)``; purchases
    are usable from q + lead time to the horizon's end, commitments for their term.
    """

    name: str
    kind: Literal["purchase", "reserved"]
    where: str                     # field path of the option in the portfolio file
    offer_id: str                  # the synthetic offer jobs see ("buy:<name>" / "reserve:<name>")
    provider: str
    gpu: str
    gpus_per_unit: int
    interconnect: str
    unit_cost_usd: float           # capex, or price × term hours of a commitment
    resale_usd: float              # recovered per unit at the horizon's end (purchases)
    power_kw: float                # per unit (purchases; reserved capacity bills no power)
    electricity_usd_per_kwh: float
    lead_time_periods: int
    term_periods: int | None       # reserved only
    max_count: int | None          # units on hand at once
    fixed_count: int | None        # reserved: a signed commitment
    fixed_start: int | None
    price_per_hour_usd: float | None = None    # reserved: per unit-hour
    source_note: str | None = None

    @property
    def power_per_unit_hour_usd(self) -> float:
        return self.power_kw * self.electricity_usd_per_kwh

    def acquire_periods(self, periods: int) -> list[int]:
        """Periods in which the integer program may buy / commit units.

        Commitments: any period whose term starts inside the horizon. Purchases: period 1
        only. A bought unit costs the same whenever it is bought (no discounting, resale
        independent of age, one budget for the horizon) and an earlier unit is usable in
        every period a later one is, so buying in period 1 is never worse; letting the
        program also choose the period would only add equivalent solutions for it to
        search (it made the 200-job benchmark 50% slower). The report then schedules each
        unit just in time (procurement._just_in_time).
        """
        if self.fixed_count is not None or self.lead_time_periods >= periods:
            return []
        if self.kind == "purchase":
            return [1]
        return [q for q in range(1, periods + 1) if q + self.lead_time_periods <= periods]

    def available(self, acquired: int, period: int) -> bool:
        first = acquired + self.lead_time_periods
        if self.kind == "purchase":
            return period >= first
        return first <= period < first + int(self.term_periods or 1)

    def fixed_units(self, period: int) -> int:
        """Units of a signed commitment usable in ``period``."""
        if self.fixed_count is None:
            return 0
        return self.fixed_count if self.available(int(self.fixed_start or 1), period) else 0


def capacity_sources(portfolio: Portfolio, catalog: Catalog) -> tuple[CapacitySource, ...]:
    """Purchase and reserved options, completed from the catalog and checked against it."""
    file = portfolio.source_file
    problems: list[Problem] = []
    known_gpus = sorted(str(g) for g in catalog.gpus.index)
    offers = catalog.offers.set_index("offer_id", drop=False)
    hours = portfolio.horizon.period_hours
    sources: list[CapacitySource] = []

    def offer_row(where: str, offer_id: str | None, kinds: tuple[str, ...] | None) -> dict[str, Any] | None:
        if offer_id is None:
            return None
        if offer_id not in offers.index:
            close = difflib.get_close_matches(offer_id, [str(o) for o in offers.index], n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(Problem(file, f"{where}.offer", f"no offer {offer_id!r} in the catalog; {hint}"
                                    "see `flopopt catalog list`"))
            return None
        row = dict(offers.loc[offer_id])
        if kinds is not None and row["kind"] not in kinds:
            problems.append(Problem(file, f"{where}.offer", f"offer {offer_id!r} is {row['kind']}; a purchase "
                                    f"option takes its capex and power from an offer of kind {' or '.join(kinds)}"))
            return None
        return row

    def need(where: str, name: str, value: Any, row: dict[str, Any] | None, column: str) -> Any:
        if value is not None:
            return value
        if row is not None and _present(row.get(column)):
            return row[column]
        problems.append(Problem(file, f"{where}.{name}", "required field is missing (or give 'offer' to take it "
                                "from a catalog offer)"))
        return None

    def check_gpu(where: str, gpu: Any) -> None:
        if gpu is not None and str(gpu) not in known_gpus:
            close = difflib.get_close_matches(str(gpu), known_gpus, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(Problem(file, f"{where}.gpu", f"unknown gpu {gpu!r}; {hint}known: {', '.join(known_gpus)}"))

    for i, o in enumerate(portfolio.purchase_options):
        where = f"purchase_options[{i}]"
        row = offer_row(where, o.offer, ("owned", "edge"))
        gpu = need(where, "gpu", o.gpu, row, "gpu")
        gpus = need(where, "gpus", o.gpus, row, "gpus_per_instance")
        capex = need(where, "capex_usd", o.capex_usd, row, "capex_usd")
        power = need(where, "power_kw", o.power_kw, row, "power_kw")
        price = need(where, "electricity_usd_per_kwh", o.electricity_usd_per_kwh, row, "electricity_usd_per_kwh")
        check_gpu(where, gpu)
        if None in (gpu, gpus, capex, power, price):
            continue
        sources.append(CapacitySource(
            name=o.option, kind="purchase", where=where, offer_id=PURCHASE_PREFIX + o.option, provider="owned",
            gpu=str(gpu), gpus_per_unit=int(gpus),
            interconnect=o.interconnect or (str(row["interconnect"]) if row else _default_fabric(int(gpus))),
            unit_cost_usd=float(capex), resale_usd=float(capex) * o.resale_fraction, power_kw=float(power),
            electricity_usd_per_kwh=float(price), lead_time_periods=o.lead_time_periods, term_periods=None,
            max_count=o.max_count, fixed_count=None, fixed_start=None,
            source_note=o.source or (f"catalog offer {o.offer}" if o.offer else None)))
    for i, r in enumerate(portfolio.reserved):
        where = f"reserved[{i}]"
        row = offer_row(where, r.offer, None)
        gpu = need(where, "gpu", r.gpu, row, "gpu")
        gpus = need(where, "gpus", r.gpus, row, "gpus_per_instance")
        provider = need(where, "provider", r.provider, row, "provider")
        price = need(where, "price_per_hour_usd", r.price_per_hour_usd, row, "price_per_hour_usd")
        check_gpu(where, gpu)
        if None in (gpu, gpus, provider, price):
            continue
        sources.append(CapacitySource(
            name=r.option, kind="reserved", where=where, offer_id=RESERVED_PREFIX + r.option, provider=str(provider),
            gpu=str(gpu), gpus_per_unit=int(gpus),
            interconnect=r.interconnect or (str(row["interconnect"]) if row else _default_fabric(int(gpus))),
            unit_cost_usd=float(price) * r.term_periods * hours, resale_usd=0.0, power_kw=0.0,
            electricity_usd_per_kwh=0.0, lead_time_periods=r.lead_time_periods, term_periods=r.term_periods,
            max_count=r.max_count if r.count is None else r.count, fixed_count=r.count,
            fixed_start=(r.start_period or 1) if r.count is not None else None,
            price_per_hour_usd=float(price),
            source_note=r.source or (f"catalog offer {r.offer}" if r.offer else None)))
    for offer_id in portfolio.quotas:
        if offer_id not in offers.index:
            close = difflib.get_close_matches(offer_id, [str(o) for o in offers.index], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(Problem(file, f"quotas.{offer_id}", f"no offer {offer_id!r} in the catalog{hint}"))
    if problems:
        raise InputError(problems)
    return tuple(sources)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _default_fabric(gpus: int) -> str:
    # 8-GPU boards are NVLink/NVSwitch servers (HGX/DGX); smaller boxes talk over PCIe.
    return "nvlink" if gpus >= 8 else "pcie"


def catalog_with_sources(catalog: Catalog, sources: tuple[CapacitySource, ...], quotas: dict[str, int]) -> Catalog:
    """The catalog plus one synthetic offer per capacity source, quotas overridden.

    A source's offer costs only what using it adds per busy hour — power for bought
    hardware, nothing for reserved capacity — because its units are paid for in the
    integer program. Bought hardware is kind ``owned`` so the performance model treats it
    as the lab/cluster scenario, exactly like an owned catalog offer.
    """
    offers = catalog.offers
    if quotas:
        offers = offers.copy()
        for offer_id, quota in quotas.items():
            offers.loc[offers["offer_id"] == offer_id, "max_instances"] = float(quota)
    if not sources:
        return replace(catalog, offers=offers)
    rows = []
    for s in sources:
        rows.append({
            "offer_id": s.offer_id, "provider": s.provider, "kind": "owned" if s.kind == "purchase" else "reserved",
            "region": "portfolio", "instance_type": s.name, "gpu": s.gpu, "gpus_per_instance": float(s.gpus_per_unit),
            "price_per_hour_usd": 0.0, "billing_increment_hours": 0.0, "min_hours": 0.0,
            "max_instances": float(s.max_count) if s.max_count is not None else np.nan,
            "interconnect": s.interconnect, "interruption_overhead": np.nan,
            # capex is paid in the MILP; per busy hour only power is charged (1 year, full use: no amortisation)
            "capex_usd": 0.0 if s.kind == "purchase" else np.nan,
            "amortization_years": 1.0 if s.kind == "purchase" else np.nan,
            "utilization": 1.0 if s.kind == "purchase" else np.nan,
            "power_kw": s.power_kw, "electricity_usd_per_kwh": s.electricity_usd_per_kwh, "sunk": False,
            "source": s.source_note or "portfolio file", "as_of": "", "origin_file": "portfolio", "origin_row": 0,
        })
    extra = pd.DataFrame(rows, columns=list(offers.columns)).astype(offers.dtypes.to_dict())
    return replace(catalog, offers=pd.concat([offers, extra], ignore_index=True),
                   layers=catalog.layers + ("portfolio options",))


# ---------------------------------------------------------------------------
# Candidates per job


# Columns the integer program and the report need (the full candidate table has ~50).
CANDIDATE_COLUMNS = ["offer_id", "provider", "kind", "region", "gpu", "gpu_count", "instances", "gpus_per_instance",
                     "precision", "scenario", "attenuation", "hours", "cost_usd", "hourly_cost_usd"]


@dataclass(frozen=True)
class JobCandidates:
    """One job's candidates: all evaluated ones (for explanations and tests) and the kept few.

    ``kept`` has the CANDIDATE_COLUMNS plus ``resource`` (``free`` | ``quota`` | ``source``)
    and ``source`` (capacity-source name, "" for catalog offers).
    """

    pjob: PortfolioJob
    planner: Planner
    evaluated: CandidateSet
    deadline_hours: float          # effective: min(job deadline, hours left in the horizon)
    horizon_bound: bool            # the horizon, not the job's deadline, sets deadline_hours
    kept: pd.DataFrame
    feasible_count: int
    window: tuple[int, int]        # first and last period any feasible candidate runs in

    @property
    def name(self) -> str:
        return self.pjob.name


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
        return sum(j.evaluated.enumerated for j in self.jobs)

    @property
    def feasible(self) -> int:
        return sum(j.feasible_count for j in self.jobs)

    @property
    def kept(self) -> int:
        return sum(len(j.kept) for j in self.jobs)


def build_candidates(portfolio: Portfolio, catalog: Catalog, solver: SolverName = "highs") -> PortfolioCandidates:
    """Every job priced on every offer and capacity source, then pruned to what can be optimal."""
    sources = capacity_sources(portfolio, catalog)
    extended = catalog_with_sources(catalog, sources, portfolio.quotas)
    source_of = {s.offer_id: s.name for s in sources}
    quota_table = extended.offers.dropna(subset=["max_instances"])
    quotas = {str(o): int(q) for o, q in zip(quota_table["offer_id"], quota_table["max_instances"])
              if o not in source_of}
    horizon = portfolio.horizon
    evaluated: list[tuple[PortfolioJob, Planner, CandidateSet, float, bool]] = []
    problems: list[Problem] = []
    warnings: list[str] = []
    for pj in portfolio.jobs:
        try:
            # shared quotas and capacity: identical offers are not merged (see cheapest_of_identical)
            planner = Planner.build(pj.job, extended, solver, identical="keep")
        except InputError as exc:   # e.g. familiar.gpu unknown: point at the job inside the portfolio
            problems.extend(Problem(p.file, pj.field_prefix + p.field if p.field else p.field, p.message, p.row)
                            for p in exc.problems)
            continue
        left = (horizon.periods - pj.period + 1) * horizon.period_hours
        own = pj.job.constraints.deadline_hours
        deadline = left if own is None else min(own, left)
        cands = _evaluate(planner, deadline)
        evaluated.append((pj, planner, cands, deadline, own is None or left < own))
        if pj.job.objective == "time":
            warnings.append(f"{pj.name}: objective 'time' is ignored by plan (it minimises total cost of "
                            "ownership); the job's deadline still holds")
    if problems:
        raise InputError(problems)
    windows = [_window(c.feasible["hours"].to_numpy(float), pj.period, horizon) for pj, _, c, _, _ in evaluated]
    jobs = []
    for k, (pj, planner, cands, deadline, horizon_bound) in enumerate(evaluated):
        rivals = sum(1 for i, w in enumerate(windows) if i != k and w[0] <= windows[k][1] and windows[k][0] <= w[1])
        kept = prune_for_portfolio(cands.feasible, source_of, quotas, rivals, pj.period, horizon)
        jobs.append(JobCandidates(pjob=pj, planner=planner, evaluated=cands, deadline_hours=deadline,
                                  horizon_bound=horizon_bound, kept=kept, feasible_count=len(cands.feasible),
                                  window=windows[k]))
    rentable = frozenset(str(o) for _, planner, _, _, _ in evaluated
                         for o in planner.expansion.table["offer_id"].unique() if o not in source_of)
    return PortfolioCandidates(portfolio=portfolio, catalog=extended, sources=sources, jobs=tuple(jobs),
                               quotas=quotas, rentable=rentable, warnings=tuple(warnings))


def _evaluate(planner: Planner, deadline_hours: float) -> CandidateSet:
    """Price the job's candidates under its limits. ``dominated`` is the single-job
    (global) flag; the portfolio prunes per offer and instance count itself
    (``dominated_within``), because with shared quotas a dearer plan that holds fewer
    instances can be the one that fits."""
    job = planner.job
    if planner.expansion.table.empty:   # every offer excluded by allow-lists: nothing to price
        empty = planner.expansion.table.assign(hours=0.0, cost_usd=0.0, feasible=False, reason=None,
                                               category=None, dominated=False)
        return CandidateSet(table=empty, excluded=dict(planner.expansion.excluded))
    realistic = realistic_assumptions(job, planner.catalog.efficiency)
    return assess(planner.expansion, planner.estimate, job, planner.catalog, realistic,
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
    """
    if feasible.empty:
        return pd.DataFrame(columns=[*CANDIDATE_COLUMNS, "resource", "source"])
    # On arrays, and one take at the end: on frames these steps cost more than pricing the job.
    offer_codes, offers = pd.factorize(feasible["offer_id"].to_numpy(dtype=object))
    cost, hours = feasible["cost_usd"].to_numpy(float), feasible["hours"].to_numpy(float)
    instances = feasible["instances"].to_numpy(np.int64)
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
    order = idx[np.lexsort((np.arange(idx.size), hours[idx], cost[idx]))]   # by cost, then hours, stable
    kinds = resource[order]
    first_of_offer = np.zeros(order.size, dtype=bool)
    first_of_offer[np.unique(offer_codes[order], return_index=True)[1]] = True
    distinct = np.cumsum(first_of_offer & (kinds == "quota"))
    guaranteed = (kinds == "free") | (distinct >= rivals + 1)
    if guaranteed.any():   # rule 3
        order = order[: int(np.argmax(guaranteed)) + 1]
    use = period_gpu_hours(hours[order], feasible["gpu_count"].to_numpy(float)[order], start, horizon)
    order = order[~dominated_by_use(offer_codes[order], cost[order], instances[order].astype(float), use)]  # rule 4
    kept = feasible[CANDIDATE_COLUMNS].iloc[order].reset_index(drop=True)
    names = np.array(offer_names, dtype=object)[offer_codes[order]]
    return kept.assign(resource=pd.Series(resource[order], dtype=object),
                       source=pd.Series([source_of.get(o, "") for o in names], dtype=object))


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
