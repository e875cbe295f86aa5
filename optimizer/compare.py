"""``compare(job, catalog, quote_files) -> Comparison``: one job, every kind of offer side by side.

Users arrive with quotes in hand — a cloud price list, machines they already own, a
colocation or cluster vendor's offer — and want them compared for *one* job on the
same footing. This module reuses the solve pipeline unchanged (Planner: expand →
assess → MILP) on the catalog plus the quotes, then slices the evaluated candidates:

* per **offer class** (cloud on-demand, cloud spot, owned/local, cluster quote, edge)
  and per **quotes file**: the best plan under the job's limits, or the reason there
  is none ("no feasible candidate: 12 miss the deadline, 3 do not fit in GPU memory");
* the **overall optimum** (the MILP's choice over all candidates, as ``solve`` makes it);
* the **Pareto front** of cost vs hours over all feasible candidates;
* for owned/edge hardware, the **total cost of ownership** and the **break-even
  utilisation** at which owning beats renting (see ``ownership``).

Quotes files are offers.csv files (validated exactly like the catalog) or a short form
``provider,gpu,gpus,price_per_hour_usd,kind`` for a quick quote (see ``read_quotes``).
Each quote's rows are evaluated as an extra catalog layer; every plan remembers the
file it came from (``source``), so offer ids need not be unique across files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..catalogs import schema
from ..catalogs.loader import Catalog, cross_check, read_table
from ..catalogs.manage import ImportReport, import_file, import_offer_rows
from .candidate_schema import COMPARE_COLUMNS
from .candidates import CandidateSet, pareto_front
from .economics import HOURS_PER_YEAR, utilization_break_even
from .errors import CatalogError, InputError, ProblemList
from .flops import FlopEstimate
from .job import Job
from .limits import fits_memory, meets_deadline, within_budget
from .model import SolverName
from .planner import Planner, explain_infeasible
from .result import Plan, Status, plan_from_row

__all__ = [
    "OFFER_CLASSES",
    "SHORT_FORM",
    "ClassResult",
    "ComparedPlan",
    "Comparison",
    "FeasibleSet",
    "Ownership",
    "QuoteFile",
    "QuoteResult",
    "compare",
    "pareto_front",
    "read_quotes",
]

# (class id, label, offer kinds). Reserved capacity is bought from the same clouds at a
# list price, so it competes with on-demand rather than forming a class of its own.
OFFER_CLASSES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("cloud_on_demand", "cloud on-demand", ("on_demand", "reserved")),
    ("cloud_spot", "cloud spot", ("spot",)),
    ("owned", "owned/local", ("owned",)),
    ("cluster_quote", "cluster quote", ("cluster_quote",)),
    ("edge", "edge", ("edge",)),
)
CLASS_OF_KIND: dict[str, str] = {kind: cid for cid, _, kinds in OFFER_CLASSES for kind in kinds}
CLASS_LABEL: dict[str, str] = {cid: label for cid, label, _ in OFFER_CLASSES}
CATALOG_SOURCE = "catalog"
TOP_PER_CLASS = 3            # plans listed per class (one per offer), best first

# Short form of a quotes file. Only rental kinds: owned hardware needs capex, power and
# amortisation, i.e. the full offers.csv columns.
SHORT_FORM: tuple[schema.Column, ...] = (
    schema.Column("provider"),
    schema.Column("gpu"),
    schema.Column("gpus", "int", low=1),
    schema.Column("price_per_hour_usd", "float", low=0),   # 0 is caught by the catalog's cross-check
    schema.Column("kind", choices=schema.RENTAL_KINDS),
)
SHORT_FORM_BILLING_HOURS = 1.0 / 3600.0   # quick quotes carry no billing terms: bill per second
NVLINK_FROM_GPUS = 8                      # 8-GPU boards are NVLink/NVSwitch servers (HGX, MI300X OAM)
# A rental is "of comparable throughput" to an owned machine when it delivers the job's
# FLOPs within one doubling of the machine's speed (the candidate counts step by doublings,
# so every scalable offer has a count in that window).
COMPARABLE_THROUGHPUT_FACTOR = 2.0

_CATEGORY_PHRASES: dict[str, tuple[str, str]] = {   # category → (singular, plural)
    "misses deadline": ("misses the deadline", "miss the deadline"),
    "does not fit in GPU memory": ("does not fit in GPU memory", "do not fit in GPU memory"),
    "over budget": ("exceeds the budget", "exceed the budget"),
}


# ---------------------------------------------------------------------------
# result objects


@dataclass(frozen=True)
class ComparedPlan:
    """A plan plus what compare adds: its class, where it came from, $/PFLOP, limits met."""

    plan: Plan
    offer_class: str
    source: str                   # "catalog" or the quotes file path
    cost_per_pflop_usd: float     # cost_usd / (total FLOPs / 1e15): price of the work delivered
    deadline_met: bool
    within_budget: bool

    @property
    def label(self) -> str:
        return self.plan.label


@dataclass(frozen=True)
class ClassResult:
    offer_class: str
    label: str
    best: ComparedPlan | None
    reason: str
    top: tuple[ComparedPlan, ...]    # best feasible plan of up to TOP_PER_CLASS offers
    candidates: int
    feasible: int
    nearest: ComparedPlan | None     # no feasible plan: the best one that fits, limits ignored


@dataclass(frozen=True)
class QuoteResult:
    file: str
    form: Literal["full", "short"]
    offers: int
    best: ComparedPlan | None
    reason: str
    candidates: int
    feasible: int
    nearest: ComparedPlan | None


@dataclass(frozen=True)
class Ownership:
    """Total cost of ownership of one owned/edge offer, per instance-hour, and its break-even.

    All ``*_per_hour_usd`` figures are per instance and per *busy* hour, as the planner
    charges them. ``break_even_utilization`` counts the capex (the buy-or-rent view) even
    when the machine is marked sunk; ``beats_rental`` uses the planner's marginal view
    (sunk capex costs nothing).
    """

    offer_id: str
    provider: str
    kind: str
    gpu: str
    gpus_per_instance: int
    source: str
    capex_usd: float
    amortization_years: float
    utilization: float                       # planned share of hours the machine is busy
    capex_per_hour_usd: float                # capex / (years · 8760 h): per calendar hour
    amortized_capex_per_hour_usd: float      # per busy hour at ``utilization``; 0 when sunk
    power_per_hour_usd: float                # power_kw · electricity_usd_per_kwh
    fee_per_hour_usd: float                  # price_per_hour_usd (e.g. a colocation fee)
    total_per_hour_usd: float                # what the planner charges per busy instance-hour
    sunk: bool
    sunk_note: str | None
    note: str                                # how the comparison was made, or why it could not be
    # Against this job's candidates (None when the machine cannot run the job):
    instances: int | None = None                        # instances of the owned candidate compared
    delivered_pflop_per_hour: float | None = None       # that candidate's speed on this job
    rental_offer_id: str | None = None                  # cheapest rental per PFLOP of comparable throughput
    rental_source: str | None = None
    rental_cost_per_pflop_usd: float | None = None
    rental_equivalent_per_hour_usd: float | None = None  # renting the machine's throughput for one hour
    break_even_utilization: float | None = None         # owning beats renting at ≥ this; None = never
    beats_rental: bool | None = None                    # at the planned utilisation (sunk: marginal cost)


@dataclass(frozen=True, eq=False)   # arrays have no single truth value: compare by identity
class FeasibleSet:
    """Every feasible candidate as arrays (for the plot; one entry per candidate)."""

    cost_usd: np.ndarray
    hours: np.ndarray
    offer_class: np.ndarray
    source: np.ndarray


@dataclass(frozen=True, eq=False)
class QuoteFile:
    path: Path
    form: Literal["full", "short"]
    offers: pd.DataFrame     # offers.csv columns, typed, with origin_file / origin_row


@dataclass(frozen=True)
class Comparison:
    job: Job
    estimate: FlopEstimate
    classes: tuple[ClassResult, ...]
    quotes: tuple[QuoteResult, ...]
    pareto: tuple[ComparedPlan, ...]       # by cost ascending (hours descending)
    optimum: ComparedPlan | None
    ownership: tuple[Ownership, ...]
    feasible: FeasibleSet
    binding: str | None                    # when nothing is feasible: the limit that binds
    explanation: str | None
    catalog_layers: tuple[str, ...]

    @property
    def status(self) -> Status:
        return Status.OPTIMAL if self.optimum is not None else Status.INFEASIBLE

    @property
    def total_pflop(self) -> float:
        return self.estimate.total_flops / 1e15


# ---------------------------------------------------------------------------
# Pareto front (pure)


# ---------------------------------------------------------------------------
# quotes files


def read_quotes(path: Path, catalog: Catalog, problems: ProblemList) -> QuoteFile:
    """Read one quotes file as offers rows, recording every defect in ``problems``.

    Full form: the offers.csv columns, validated exactly like the catalog (cell checks,
    unique ids, gpu exists, price > 0 for rentals, capex fields for owned hardware).
    Short form — no ``offer_id`` column and only provider, gpu, gpus,
    price_per_hour_usd, kind — is a quick quote for a block of ``gpus`` GPUs; the
    rest is filled in: offer_id = file stem + CSV line, one instance of ``gpus`` GPUs
    (a quote is for that block, not for multiples of it), NVLink from 8 GPUs else PCIe,
    per-second billing, source = the file, as_of = the file's modification date.
    """
    file = str(path)
    raw = schema.read_raw(file, problems, "quotes")
    if raw is None:
        return QuoteFile(path, "full", _empty_offers(file))
    header = {str(c) for c in raw.columns}
    short_names = {c.name for c in SHORT_FORM}
    if "offer_id" in header or not header <= short_names:
        if "offer_id" not in header:
            problems.add(file, "offer_id", "not a full offers.csv (no offer_id column) nor a short-form "
                         f"quote (columns exactly {', '.join(c.name for c in SHORT_FORM)})",
                         row=1)  # the header line
        offers = read_table(path, "offers.csv", problems, kind="quotes")
        form: Literal["full", "short"] = "full"
    else:
        offers = _short_form_offers(raw, path, problems)
        form = "short"
    cross = ProblemList()
    cross_check({"gpus.csv": catalog.gpus, "offers.csv": offers,
                  "attenuation.csv": catalog.attenuation}, cross)
    problems.items.extend(p for p in cross.items if p.file == file)
    _guard_quotes(offers, catalog, file, problems)
    return QuoteFile(path, form, offers)


def _guard_quotes(offers: pd.DataFrame, catalog: Catalog, file: str, problems: ProblemList) -> None:
    """Quotes pass the same price guards as refreshed and imported offers (catalogs.guards):
    a quote at $0.0001/GPU-h must not decide a comparison. Each held row is one problem per reason."""
    from ..catalogs.guards import GuardSettings, check_prices, price_rows

    if offers.empty:
        return
    reference = [r for r in price_rows(catalog.offers.to_dict("records")) if r is not None]
    report = check_prices(price_rows(offers.to_dict("records")), reference=reference, previous={},
                          settings=GuardSettings.from_env())
    rows = {str(o): int(r) for o, r in zip(offers["offer_id"], offers["origin_row"])}
    for held in report.held:
        for reason in held.reasons:
            problems.add(file, "price_per_hour_usd", f"held back by the price guards: {reason}",
                         row=rows.get(held.offer_id))
def read_short_quote(path: Path, problems: ProblemList) -> pd.DataFrame | None:
    """The short form of a quotes file as offers rows (see read_quotes); None when the file is
    not in the short form. ``catalog import`` uses it so both commands accept the same files."""
    raw = schema.read_raw(str(path), problems)
    if raw is None:
        return None
    header = {str(c) for c in raw.columns}
    if "offer_id" in header or not header <= {c.name for c in SHORT_FORM}:
        return None
    return _short_form_offers(raw, path, problems)


def import_quotes_file(path: Path, *, accept_changes: bool = False) -> ImportReport:
    """``catalog import``: a short-form quote is filled in exactly as ``compare --quotes`` does,
    then imported like any offers.csv; every other file goes to ``catalogs.manage.import_file``."""
    if path.is_file():
        problems = ProblemList()
        short = read_short_quote(path, problems)
        problems.raise_if_any(CatalogError)
        if short is not None:
            return import_offer_rows(path, short, accept_changes=accept_changes)
    return import_file(path, accept_changes=accept_changes)


def _empty_offers(file: str) -> pd.DataFrame:
    table = schema.coerce(pd.DataFrame(columns=[c.name for c in schema.OFFERS]), schema.OFFERS,
                          file, ProblemList())
    table["origin_file"] = file
    table["origin_row"] = table.index + 2
    return table


def _short_form_offers(raw: pd.DataFrame, path: Path, problems: ProblemList) -> pd.DataFrame:
    file = str(path)
    short = schema.coerce(raw, SHORT_FORM, file, problems)
    rows = short.index + 2                       # CSV line numbers, header = 1
    gpus = short["gpus"].fillna(1).clip(lower=1).astype(int)
    as_of = dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
    filled = pd.DataFrame({
        "offer_id": [f"{path.stem}-{r}" for r in rows],
        "provider": short["provider"],
        "kind": short["kind"],
        "region": "",
        "instance_type": [f"{g}x {name}" for g, name in zip(gpus, short["gpu"])],
        "gpu": short["gpu"],
        "gpus_per_instance": gpus.astype(float),
        "price_per_hour_usd": short["price_per_hour_usd"],
        "billing_increment_hours": SHORT_FORM_BILLING_HOURS,
        "min_hours": np.nan,
        "max_instances": 1.0,
        "interconnect": np.where(gpus >= NVLINK_FROM_GPUS, "nvlink", "pcie"),
        "interruption_overhead": np.nan,
        "capex_usd": np.nan,
        "amortization_years": np.nan,
        "utilization": np.nan,
        "power_kw": np.nan,
        "electricity_usd_per_kwh": np.nan,
        "sunk": False,
        "source": file,
        "as_of": as_of,
    }, index=short.index)
    filled["origin_file"] = file
    filled["origin_row"] = rows
    return filled


def load_quotes(quote_files: list[Path], catalog: Catalog) -> list[QuoteFile]:
    """All quotes files, validated together: one InputError lists every defect of every file."""
    problems = ProblemList()
    quotes = [read_quotes(Path(p), catalog, problems) for p in quote_files]
    problems.raise_if_any(InputError)
    return quotes


# ---------------------------------------------------------------------------
# compare


def compare(job: Job, catalog: Catalog, quote_files: list[Path], *, solver: SolverName = "highs",
            confidence: float | None = None, samples: int = 2000, seed: int = 0) -> Comparison:
    """Best plan per offer class and per quote, the optimum, the Pareto front and the TCO.

    All candidates (catalog and quotes) are evaluated in one pass: candidates are
    independent of each other, so each quote's numbers are the same as evaluating it
    as a layer on its own, and the optimum is the MILP's choice over everything.
    ``solver``, ``confidence``, ``samples`` and ``seed`` mean what they mean for
    ``solve``, so the optimum here is the plan ``solve`` would choose with them.
    """
    unique_files = list(dict.fromkeys(Path(p) for p in quote_files))   # a file given twice counts once
    quotes = load_quotes(unique_files, catalog)
    parts = [catalog.offers.assign(quote_file="")]
    parts += [q.offers.assign(quote_file=str(q.path)) for q in quotes]
    offers = pd.concat(parts, ignore_index=True)
    merged = replace(catalog, offers=offers,
                     layers=catalog.layers + tuple(f"quotes {q.path}" for q in quotes))
    planner = Planner.build(job, merged, solver, identical="keep")   # every quote file keeps its own offers
    if confidence is not None and not planner.expansion.table.empty:
        from .sensitivity import plan_with_confidence

        outcome = plan_with_confidence(planner, confidence, samples, seed)
        cands, chosen, quantile = outcome.candidates, outcome.chosen, outcome.deadline_quantile
    else:
        cands = _assess(planner)
        chosen = planner.choose(cands).chosen if not cands.survivors.empty else None
        quantile = None
    full = _annotate(cands.table, job, planner.estimate)
    # Filtering the ~60-column candidate table copies every column; slice a narrow view
    # and fetch full rows only for the few plans reported.
    table = full[list(COMPARE_COLUMNS)]
    feasible = table[table["feasible"]]
    objective = job.objective

    cells, columns = full.to_numpy(dtype=object), list(full.columns)   # one conversion, then cheap rows

    def pick(labels: Any) -> tuple[ComparedPlan, ...]:
        return tuple(_compared(dict(zip(columns, cells[i]))) for i in full.index.get_indexer(list(labels)))

    classes = tuple(
        _class_result(cid, label, kinds, table, pick, offers, job, objective)
        for cid, label, kinds in OFFER_CLASSES
    )
    quote_results = tuple(_quote_result(q, table, pick, job, objective) for q in quotes)
    front = pareto_front(feasible["cost_usd"].to_numpy(float), feasible["hours"].to_numpy(float))
    pareto = pick(feasible.index[front])
    optimum = None if chosen is None else pick([chosen.name])[0]
    binding = explanation = None
    if optimum is None:
        binding, explanation = explain_infeasible(planner, cands, quantile)
    ownership = tuple(
        _ownership(o, table, planner.estimate)
        for o in offers[offers["kind"].isin(schema.CAPEX_KINDS)].to_dict("records")
    )
    points = FeasibleSet(
        cost_usd=feasible["cost_usd"].to_numpy(float),
        hours=feasible["hours"].to_numpy(float),
        offer_class=feasible["offer_class"].to_numpy(object),
        source=feasible["source"].to_numpy(object),
    )
    return Comparison(job=job, estimate=planner.estimate, classes=classes, quotes=quote_results,
                      pareto=pareto, optimum=optimum, ownership=ownership, feasible=points,
                      binding=binding, explanation=explanation, catalog_layers=merged.layers)


def _assess(planner: Planner) -> CandidateSet:
    """The planner's candidates under the job's limits. With no candidate at all (every
    offer excluded by the allow-lists) there is nothing to price, and pricing an empty
    table fails inside performance.evaluate, so an empty, correctly-shaped set is returned."""
    expansion = planner.expansion
    if not expansion.table.empty:
        return planner.assess()
    empty = expansion.table.assign(hours=0.0, cost_usd=0.0, feasible=False, reason=None, category=None,
                                   dominated=False)
    return CandidateSet(table=empty, excluded=dict(expansion.excluded))


Pick = Callable[[Any], tuple[ComparedPlan, ...]]   # candidate-table index labels → plans


def _annotate(table: pd.DataFrame, job: Job, estimate: FlopEstimate) -> pd.DataFrame:
    t = table.copy()
    c = job.constraints
    t["offer_class"] = t["kind"].map(CLASS_OF_KIND)
    t["source"] = t["quote_file"].where(t["quote_file"] != "", CATALOG_SOURCE)
    t["cost_per_pflop_usd"] = t["cost_usd"] / (estimate.total_flops / 1e15)
    t["deadline_met"] = meets_deadline(t["hours"].to_numpy(float), c.deadline_hours)
    t["within_budget"] = within_budget(t["cost_usd"].to_numpy(float), c.budget_usd)
    t["fits"] = fits_memory(t["need_gb_per_gpu"].to_numpy(float), t["memory_gb"].to_numpy(float))
    return t


def _compared(row: dict[str, Any]) -> ComparedPlan:
    return ComparedPlan(
        plan=plan_from_row(row),
        offer_class=str(row["offer_class"]),
        source=str(row["source"]),
        cost_per_pflop_usd=float(row["cost_per_pflop_usd"]),
        deadline_met=bool(row["deadline_met"]),
        within_budget=bool(row["within_budget"]),
    )


def _ranked(rows: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Cheapest first for objective cost, fastest first for time; the other breaks ties."""
    keys = ["cost_usd", "hours"] if objective == "cost" else ["hours", "cost_usd"]
    return rows.sort_values(keys, kind="mergesort")


def _best_of(rows: pd.DataFrame, pick: Pick, objective: str) -> tuple[
        ComparedPlan | None, tuple[ComparedPlan, ...], ComparedPlan | None]:
    """(best feasible, best per offer for up to TOP_PER_CLASS offers, nearest when none is feasible)."""
    feasible = _ranked(rows[rows["feasible"]], objective)
    top = pick(feasible.drop_duplicates(["source", "offer_id"]).index[:TOP_PER_CLASS])
    if top:
        return top[0], top, None
    fitting = _ranked(rows[rows["fits"]], objective)
    nearest = pick(fitting.index[:1])
    return None, (), (nearest[0] if nearest else None)


def _why_infeasible(rows: pd.DataFrame) -> str:
    counts = rows["category"].value_counts()
    parts = []
    for category, (one, many) in _CATEGORY_PHRASES.items():
        n = int(counts.get(category, 0))
        if n:
            parts.append(f"{n:,} {one if n == 1 else many}")
    return "no feasible candidate: " + ", ".join(parts)


def _why_no_candidates(offers: pd.DataFrame, job: Job, what: str) -> str:
    """Why offers of a class never became candidates: the job's allow-lists, precisions or size cap."""
    if offers.empty:
        return f"no {what} offers in the catalog or quotes"
    c = job.constraints
    reasons: list[str] = []
    checks = [("provider", c.providers, "constraints.providers"), ("kind", c.offer_kinds, "constraints.offer_kinds"),
              ("gpu", c.gpus, "constraints.gpus"), ("region", c.regions, "constraints.regions")]
    for column, allowed, name in checks:
        if allowed is None:
            continue
        outside = ~offers[column].str.lower().isin({str(a).lower() for a in allowed})
        if outside.any():
            reasons.append(f"{int(outside.sum())} not in {name}")
    if c.max_gpus is not None:
        too_big = offers["gpus_per_instance"] > c.max_gpus
        if too_big.any():
            reasons.append(f"{int(too_big.sum())} with more GPUs per instance than max_gpus={c.max_gpus}")
    detail = "; ".join(reasons) or f"their GPUs support none of the job's precisions ({', '.join(job.precision)})"
    return f"no candidate: {len(offers)} {what} offer(s) excluded ({detail})"


def _class_result(cid: str, label: str, kinds: tuple[str, ...], table: pd.DataFrame, pick: Pick,
                  offers: pd.DataFrame, job: Job, objective: str) -> ClassResult:
    rows = table[table["offer_class"] == cid]
    best, top, nearest = _best_of(rows, pick, objective)
    n_feasible = int(rows["feasible"].sum())
    if best is not None:
        word = "cheapest" if objective == "cost" else "fastest"
        n_offers = rows.loc[rows["feasible"], ["source", "offer_id"]].drop_duplicates().shape[0]
        reason = f"{word} of {n_feasible:,} feasible candidate(s) from {n_offers} offer(s)"
    elif rows.empty:
        reason = _why_no_candidates(offers[offers["kind"].isin(kinds)], job, label)
    else:
        reason = _why_infeasible(rows)
    return ClassResult(offer_class=cid, label=label, best=best, reason=reason, top=top,
                       candidates=len(rows), feasible=n_feasible, nearest=nearest)


def _quote_result(quote: QuoteFile, table: pd.DataFrame, pick: Pick, job: Job, objective: str) -> QuoteResult:
    rows = table[table["quote_file"] == str(quote.path)]
    best, _, nearest = _best_of(rows, pick, objective)
    n_feasible = int(rows["feasible"].sum())
    if best is not None:
        reason = f"{'cheapest' if objective == 'cost' else 'fastest'} of {n_feasible:,} feasible candidate(s)"
    elif rows.empty:
        reason = _why_no_candidates(quote.offers, job, "quoted")
    else:
        reason = _why_infeasible(rows)
    return QuoteResult(file=str(quote.path), form=quote.form, offers=len(quote.offers), best=best,
                       reason=reason, candidates=len(rows), feasible=n_feasible, nearest=nearest)


# ---------------------------------------------------------------------------
# total cost of ownership


def _number(value: Any, default: float) -> float:
    number = float(value) if value is not None else float("nan")
    return default if np.isnan(number) else number


def _ownership(offer: dict[str, Any], table: pd.DataFrame, estimate: FlopEstimate) -> Ownership:
    """TCO per busy instance-hour and the break-even utilisation against renting.

    The owned candidate compared is the one that delivers this job's FLOPs at the lowest
    cost (all precisions and instance counts that fit in memory); the rental is the
    cheapest per PFLOP among rentals (catalog and quotes, limits ignored: this is about
    the machine, not the deadline) within ×2 of the machine's throughput — or of any
    size when none is that close. Then, with n instances,
        V = rental USD/PFLOP × machine PFLOP/h,  u* = n·K / (V − n·R)   (break_even_utilization).
    """
    capex = _number(offer.get("capex_usd"), 0.0)
    years = _number(offer.get("amortization_years"), 1.0)
    utilization = _number(offer.get("utilization"), 1.0)
    power = _number(offer.get("power_kw"), 0.0) * _number(offer.get("electricity_usd_per_kwh"), 0.0)
    fee = _number(offer.get("price_per_hour_usd"), 0.0)
    sunk = bool(offer.get("sunk", False))
    capex_per_hour = capex / (years * HOURS_PER_YEAR)
    amortized = 0.0 if sunk else capex_per_hour / utilization
    source = str(offer["quote_file"]) or CATALOG_SOURCE
    sunk_note = "capex counted as zero marginal cost because marked sunk" if sunk else None
    base = Ownership(
        offer_id=str(offer["offer_id"]), provider=str(offer["provider"]), kind=str(offer["kind"]),
        gpu=str(offer["gpu"]), gpus_per_instance=int(offer["gpus_per_instance"]), source=source,
        capex_usd=capex, amortization_years=years, utilization=utilization,
        capex_per_hour_usd=capex_per_hour, amortized_capex_per_hour_usd=amortized,
        power_per_hour_usd=power, fee_per_hour_usd=fee, total_per_hour_usd=amortized + power + fee,
        sunk=sunk, sunk_note=sunk_note,
        note="no candidate of this machine fits the job (GPU memory, precision or the job's allow-lists)",
    )
    mine = table[(table["offer_id"] == offer["offer_id"]) & (table["source"] == source) & table["fits"]]
    if mine.empty:
        return base
    own = mine.sort_values(["cost_usd", "hours"], kind="mergesort").iloc[0]
    instances = int(own["instances"])
    total_pflop = estimate.total_flops / 1e15
    speed = total_pflop / float(own["hours"])                      # PFLOP per hour delivered
    rentals = table[table["kind"].isin(schema.RENTAL_KINDS) & table["fits"]]
    if rentals.empty:
        return replace(base, instances=instances, delivered_pflop_per_hour=speed,
                       note="no rental candidate fits the job, nothing to compare with")
    rental_speed = total_pflop / rentals["hours"]
    close = rentals[(rental_speed <= speed * COMPARABLE_THROUGHPUT_FACTOR)
                    & (rental_speed >= speed / COMPARABLE_THROUGHPUT_FACTOR)]
    note = f"cheapest rental within ×{COMPARABLE_THROUGHPUT_FACTOR:g} of the machine's throughput"
    if close.empty:
        close = rentals
        note = f"no rental within ×{COMPARABLE_THROUGHPUT_FACTOR:g} of the machine's throughput; " \
               "cheapest rental of any size"
    rental = close.sort_values(["cost_per_pflop_usd", "hours"], kind="mergesort").iloc[0]
    equivalent = float(rental["cost_per_pflop_usd"]) * speed
    u_star = utilization_break_even(instances * capex_per_hour, instances * (power + fee), equivalent)
    if sunk:   # the planner's marginal view: only power and fees are still to be paid
        beats = instances * (power + fee) < equivalent
    else:
        beats = u_star is not None and utilization >= u_star
    return replace(base, instances=instances, delivered_pflop_per_hour=speed,
                   rental_offer_id=str(rental["offer_id"]), rental_source=str(rental["source"]),
                   rental_cost_per_pflop_usd=float(rental["cost_per_pflop_usd"]),
                   rental_equivalent_per_hour_usd=equivalent, break_even_utilization=u_star,
                   beats_rental=beats, note=note)
