"""The planner: one job's candidates, re-planned under other assumptions or limits.

``Planner`` holds everything needed to plan one job (the job, the catalog, its FLOPs and the
expanded candidates) so that solve, sensitivity, compare and portfolios share one way of turning
candidates into a plan; ``explain_infeasible`` says which limit binds and by how much.
It sits below solve.py and sensitivity.py, which both use it: neither imports the other's callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .candidates import CandidateSet, Expansion, Identical, assess, expand
from .counts import with_counts
from .errors import InputError
from .flops import FlopEstimate, estimate_flops
from .job import Job
from .limits import fits_memory, meets_deadline
from .model import JobOptions, ModelSolution, ModelSpec, SolverName, solve_model
from .performance import Assumptions, realistic_assumptions
from .result import Plan, plan_from_row


@dataclass(frozen=True)
class DeadlineQuantile:
    """The deadline judged on a sampled quantile of actual hours instead of the planned hours
    (``--confidence``, sensitivity.plan_with_confidence), for ``explain_infeasible``."""

    label: str             # "P90"
    hours: pd.Series       # per candidate, on the candidate table's index (NaN: not sampled)


@dataclass(frozen=True)
class Outcome:
    candidates: CandidateSet
    solution: ModelSolution
    chosen: pd.Series | None
    deadline_quantile: DeadlineQuantile | None = None   # set when the deadline was judged on a quantile

    @property
    def plan(self) -> Plan | None:
        return None if self.chosen is None else plan_from_row(self.chosen.to_dict())


@dataclass(frozen=True)
class Planner:
    """Everything needed to re-plan one job under other assumptions or limits
    (sensitivity.py re-plans a dozen times; expansion is done once)."""

    job: Job
    catalog: Catalog
    estimate: FlopEstimate
    expansion: Expansion
    solver: SolverName = "highs"
    time_limit_seconds: float | None = None   # None: solve to proven optimality
    identical: Identical = "merge"            # candidates.cheapest_of_identical
    offer_mask: np.ndarray | None = None      # the catalog offers considered (with_offers); None: all

    @classmethod
    def build(cls, job: Job, catalog: Catalog, solver: SolverName = "highs",
              identical: Identical = "merge") -> "Planner":
        estimate = checked_estimate(job, catalog)
        return cls(job, catalog, estimate, expand(job, catalog, estimate, identical=identical), solver,
                   identical=identical)

    @property
    def offers(self) -> pd.DataFrame:
        """The catalog offers this planner considers."""
        offers = self.catalog.offers
        return offers if self.offer_mask is None else offers[self.offer_mask]

    def expanded(self, job: Job, precisions: list[str] | None = None) -> Expansion:
        """``job`` expanded on this planner's offers (every re-expansion keeps a with_offers restriction)."""
        return expand(job, self.catalog, self.estimate, precisions, self.identical, only=self.offer_mask)

    def with_precisions(self, precisions: list[str]) -> "Planner":
        job = self.job.model_copy(update={"precision": precisions})
        return replace(self, job=job, expansion=self.expanded(job, precisions))

    def with_offers(self, keep: pd.Series) -> "Planner":
        """Only the catalog offers ``keep`` marks (a mask over the whole catalog's offers, replacing
        any earlier one), expanded afresh: identical offers are merged within them (restricting the
        expansion instead could miss one merged away). The catalog stays whole, so its prepared
        offers and per-precision peaks are reused."""
        restricted = replace(self, offer_mask=keep.to_numpy(dtype=bool))
        return replace(restricted, expansion=restricted.expanded(self.job))

    def with_limits(self, *, deadline_hours: float | None, budget_usd: float | None) -> "Planner":
        limits = self.job.constraints.model_copy(update={"deadline_hours": deadline_hours, "budget_usd": budget_usd})
        return replace(self, job=self.job.model_copy(update={"constraints": limits}))

    def assess(self, assumptions: Assumptions | None = None, *, deadline_hours: float | None | str = "job",
               budget_usd: float | None | str = "job") -> CandidateSet:
        c = self.job.constraints
        return assess(
            self.expansion, self.estimate, self.job, self.catalog,
            assumptions or realistic_assumptions(self.job, self.catalog.efficiency),
            deadline_hours=c.deadline_hours if deadline_hours == "job" else deadline_hours,  # type: ignore[arg-type]
            budget_usd=c.budget_usd if budget_usd == "job" else budget_usd,  # type: ignore[arg-type]
        )

    def plan(self, assumptions: Assumptions | None = None, *, deadline_hours: float | None | str = "job",
             budget_usd: float | None | str = "job") -> Outcome:
        return self.choose(self.assess(assumptions, deadline_hours=deadline_hours, budget_usd=budget_usd))

    def choose(self, cands: CandidateSet) -> Outcome:
        """Run the integer program over the surviving candidates."""
        survivors = cands.survivors
        options = JobOptions(
            name=self.job.name,
            cost_usd=survivors["cost_usd"].to_numpy(float),
            hours=survivors["hours"].to_numpy(float),
            offer_id=survivors["offer_id"].to_numpy(),
            instances=survivors["instances"].to_numpy(float),
        )
        solution = solve_model(ModelSpec(jobs=[options], objective=self.job.objective,
                                         time_limit_seconds=self.time_limit_seconds), self.solver)
        # an incumbent is a plan even when a time limit stopped the proof (solution.status says so)
        chosen = survivors.iloc[solution.choice[0]] if solution.choice else None
        return Outcome(cands, solution, chosen)

    def evaluate_plan(self, plan: Plan, assumptions: Assumptions | None = None) -> pd.Series:
        """The same (offer, count, precision) re-evaluated under other assumptions. The offer may
        be one this planner merged away (a restricted planner's plan): it is expanded alone."""
        base = self.expansion.base
        if base is None:
            raise KeyError("planner has no base offers")
        mask = (base["offer_id"] == plan.offer_id) & (base["precision"] == plan.precision)
        if not mask.any():
            alone = self.with_offers(self.catalog.offers["offer_id"] == plan.offer_id)   # from the whole catalog
            base = alone.expansion.base
            if base is None:
                raise KeyError(f"offer {plan.offer_id} is not in the catalog")
            mask = base["precision"] == plan.precision
            if not mask.any():
                raise KeyError(f"offer {plan.offer_id} has no {plan.precision} candidate")
        row = with_counts(base[mask].reset_index(drop=True), self.estimate, [[plan.instances]])
        one = replace(self, expansion=Expansion(table=row))
        return one.assess(assumptions, deadline_hours=None, budget_usd=None).table.iloc[0]


def checked_estimate(job: Job, catalog: Catalog) -> FlopEstimate:
    """The job's FLOPs, after the checks every planned batch job passes (InputError otherwise)."""
    if job.workload.kind == "transformer_serving":
        raise InputError.at(job.source_file, "workload.kind", "a transformer_serving job is a fleet sized for "
                            "its peak, planned by `flopopt solve`; for a batch of tokens with a deadline "
                            "use kind transformer_inference")
    check_familiar(job, catalog)
    return estimate_flops(job.workload, catalog.model_table(), job.source_file)


def check_familiar(job: Job, catalog: Catalog) -> None:
    """The tech-bias pitfall needs a real GPU/provider; a typo would silently report nonsense."""
    if job.familiar is None:
        return
    import difflib

    known = {"gpu": sorted(catalog.gpus.index.astype(str)),
             "provider": sorted(str(p) for p in catalog.offers["provider"].unique())}
    for field_name, value in (("gpu", job.familiar.gpu), ("provider", job.familiar.provider)):
        names = known[field_name]
        if value is None or value.lower() in {n.lower() for n in names}:
            continue
        close = difflib.get_close_matches(value, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise InputError.at(job.source_file, f"familiar.{field_name}",
                            f"unknown {field_name} {value!r}; {hint}known: {', '.join(names)}")


def ranked(feasible: pd.DataFrame, objective: str) -> pd.DataFrame:
    keys = ["cost_usd", "hours"] if objective == "cost" else ["hours", "cost_usd"]
    return feasible.sort_values(keys, kind="mergesort")


def explain_infeasible(planner: Planner, cands: CandidateSet,
                       deadline_quantile: DeadlineQuantile | None = None) -> tuple[str, str]:
    """Which limit binds, and the smallest relaxation that would let a plan exist.
    With ``deadline_quantile`` the deadline is judged on those hours (``--confidence``)."""
    job, t = planner.job, cands.table
    c = job.constraints
    owned_only = c.offer_kinds is not None and {str(k).lower() for k in c.offer_kinds} <= {"owned"}
    if t.empty and owned_only and not (planner.offers["kind"] == "owned").any():
        return ("allow_lists", "no owned hardware is declared: constraints.offer_kinds is [owned], but no "
                "catalog layer holds an offer of kind owned (the bundled catalog never does). Declare your "
                "machines as offers.csv rows with kind owned (capex_usd, amortization_years, power_kw, "
                "electricity_usd_per_kwh) and `flopopt catalog import FILE`, or pass --catalog DIR, a quotes "
                "file or a portfolio; examples/owned-machines.csv shows the format")
    if t.empty:
        allow = ", ".join(f"{k}" for k in cands.excluded) or "no offers in the catalog"
        return ("allow_lists", f"no candidate to choose from: every offer was excluded ({allow}); "
                "widen constraints.providers / offer_kinds / gpus / regions or max_gpus")
    fits = t[fits_memory(t["need_gb_per_gpu"].to_numpy(float), t["memory_gb"].to_numpy(float))]
    if fits.empty:
        worst = t.sort_values("need_gb_per_gpu").iloc[0]
        return ("memory", f"no candidate holds the job in GPU memory: even {int(worst['gpu_count'])}×"
                f"{worst['gpu']} needs {worst['need_gb_per_gpu']:,.0f} GB per GPU and has "
                f"{worst['memory_gb']:,.0f} GB — allow more GPUs (max_gpus), a lower precision "
                "or activation recomputation")
    deadline, budget = c.deadline_hours, c.budget_usd
    hours_col = "_deadline_hours"   # the hours the deadline is judged on: planned, or a sampled quantile
    fits = fits.assign(**{hours_col: fits["hours"] if deadline_quantile is None
                          else deadline_quantile.hours.reindex(fits.index)})
    fastest = fits.sort_values([hours_col, "cost_usd"]).iloc[0]
    if deadline is not None and fastest[hours_col] > deadline:
        need = float(fastest[hours_col])
        what = (f"{int(fastest['gpu_count'])}×{fastest['gpu']} {fastest['precision']}, "
                f"{fastest['provider']} {fastest['kind']}")
        if deadline_quantile is not None:
            label = deadline_quantile.label
            return ("confidence", f"no plan meets the deadline with the requested confidence: the fastest "
                    f"({what}) has a {label} of {need:,.0f} h of actual work against a {deadline:,.0f} h "
                    f"deadline — lower --confidence or raise the deadline to {math.ceil(need):,} h")
        text = (f"the fastest plan ({what}) needs {need:,.0f} h; deadline is {deadline:,.0f} h — raise the "
                f"deadline to {math.ceil(need):,} h (+{(need / deadline - 1) * 100:.0f}%)")
        more = _gpus_needed_for_deadline(planner, deadline)
        if more is not None:
            text += f" or max_gpus to {more:,}"
        return ("deadline_hours", text)
    on_time = fits[meets_deadline(fits[hours_col].to_numpy(float), deadline)]
    if budget is None or on_time.empty:
        return ("unknown", "no candidate passed every filter; see the candidates' reasons")
    cheapest = on_time.sort_values(["cost_usd", "hours"]).iloc[0]
    cost = float(cheapest["cost_usd"])
    return ("budget_usd", f"the cheapest plan meeting the deadline ({int(cheapest['gpu_count'])}×"
            f"{cheapest['gpu']}, {cheapest['provider']} {cheapest['kind']}) costs ${cost:,.0f}; budget is "
            f"${budget:,.0f} — raise the budget by ${cost - budget:,.0f} (+{(cost / budget - 1) * 100:.0f}%)")


def _gpus_needed_for_deadline(planner: Planner, deadline: float) -> int | None:
    """When max_gpus caps the fleet, the smallest cap (×2 steps, up to 64×) meeting the deadline."""
    c = planner.job.constraints
    if c.max_gpus is None:
        return None
    for factor in (2, 4, 8, 16, 32, 64):
        wider = planner.job.model_copy(update={"constraints": c.model_copy(update={"max_gpus": c.max_gpus * factor})})
        trial = replace(planner, job=wider, expansion=planner.expanded(wider))
        t = trial.assess(budget_usd=None).table
        ok = t[(t["need_gb_per_gpu"] <= t["memory_gb"]) & (t["hours"] <= deadline)]
        if not ok.empty:
            return int(ok["gpu_count"].min())
    return None
