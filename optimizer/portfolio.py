"""Portfolio files, and each job's candidates for planning several jobs together.

A portfolio is a year (or any horizon) of jobs that share money and machines: a
budget, the quotas of catalog offers, and hardware the lab may buy or reserve. This
module reads the file (strictly, like a job file), turns purchase and reserved
options into *capacity sources*, and prices every job on every offer and source with
the same pipeline as ``solve`` (expand → performance → memory → limits). What the
integer program of ``procurement_model.py`` then sees is each job's short list of
candidates that could be part of an optimal plan (see ``portfolio_candidates.py``).
This module is the file; ``capacity_sources.py`` turns its options into offers and
``portfolio_candidates.py`` prices and prunes each job's candidates.

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

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, field_validator

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
from .units import parse_count

__all__ = [
    "Horizon",
    "Portfolio",
    "PortfolioJob",
    "PortfolioSpec",
    "PurchaseOption",
    "ReservedOption",
    "load_portfolio",
    "parse_portfolio",
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


