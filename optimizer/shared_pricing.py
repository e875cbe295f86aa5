"""A portfolio's jobs priced together: jobs of one shape share their rows, evaluation and search.

A portfolio of 1,000 jobs has a handful of job *shapes*. Jobs with the same precisions, workload
kind, allow-lists and count limits (``candidates.expansion_key`` and the precisions) expand to the
same candidate rows.
Under the same assumptions, scenario and workload kind — and the same model size when a
calibrated fit reads it — those rows also get the same attenuation, buffer and scale-out
columns: only the memory need and what follows the job's FLOPs differ. So:

    template   the first job of a kind is evaluated in full (performance.evaluate), and the
               exact-count search's probes are built from it (counts.probes_for);
    each job   is priced on arrays: performance.CountModel over the template's base rows gives
               hours and cost at every (base row, count) — the template's rows and the job's own
               exact counts — and candidates.judged applies its limits.

Every number is what pricing the job alone gives, to the last bit: the same functions on the same
inputs (tests/optimizer/test_shared_pricing.py holds each job to its own ``assess``). A
calibrated fit whose attenuation follows the count is re-priced on frames instead
(``SharedPricing.evaluated`` and ``candidates.assess``): each exact count is evaluated
in full there. Nothing is cached on the catalog: a ``SharedPricing`` lives for one portfolio,
since a cache on the catalog would keep a table per allow-list combination for as long as the
catalog lives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .candidate_schema import PORTFOLIO_COLUMNS, PRICING_COLUMNS
from .candidates import CandidateSet, Expansion, Identical, assess, expansion_key, expansion_shape, judged
from .counts import Probes, count_keys, exact_counts, new_pairs, probes_for, with_need
from .flops import FlopEstimate
from .job import Job
from .memory import need_gb_per_gpu
from .performance import Assumptions, attenuation_follows_count, evaluate, repriced

__all__ = ["Feasible", "SharedPricing"]

# PORTFOLIO_COLUMNS that are the same at every count of an (offer, precision) row
_PER_BASE_ROW = tuple(c for c in PORTFOLIO_COLUMNS if c not in ("gpu_count", "instances", "hours", "cost_usd"))


@dataclass(frozen=True)
class Feasible:
    """One job's candidates, as a portfolio needs them: how many were priced, and the feasible
    ones' PORTFOLIO_COLUMNS as arrays, in the order ``assess`` gives them (a frame per job cost
    more than the pruning that reads it)."""

    enumerated: int
    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, enumerated: int, feasible: pd.DataFrame) -> "Feasible":
        return cls(enumerated, {name: feasible[name].to_numpy() for name in PORTFOLIO_COLUMNS})

    def __len__(self) -> int:
        return len(self.columns["cost_usd"])


@dataclass(frozen=True)
class _Rows:
    """What the array pricing reads of a template, taken once."""

    base_row: np.ndarray            # per template row: its (offer, precision) row and count
    instances: np.ndarray
    keys: np.ndarray                # those pairs as sorted keys (counts.count_keys), and the key width
    width: int
    gpus_per_instance: np.ndarray   # per base row (at its first rung), as int64
    per_base_row: dict[str, np.ndarray]   # per base row: the PORTFOLIO_COLUMNS that do not follow the count

    @classmethod
    def of(cls, table: pd.DataFrame, base: pd.DataFrame, at: np.ndarray) -> "_Rows":
        keys, width = count_keys(base, table)
        return cls(base_row=table["base_row"].to_numpy(np.int64), instances=table["instances"].to_numpy(np.int64),
                   keys=keys, width=width, gpus_per_instance=table["gpus_per_instance"].to_numpy(np.int64)[at],
                   per_base_row={name: table[name].to_numpy()[at] for name in _PER_BASE_ROW})


@dataclass
class _Template:
    table: pd.DataFrame          # the first job's evaluation, in PRICING_COLUMNS
    probes: Probes | None
    rows: _Rows | None = None    # taken on first use by SharedPricing.feasible


@dataclass
class SharedPricing:
    """Pricing work shared by the jobs of one portfolio on one catalog (module docstring). The
    catalog is held, so the tables the cached work was computed from stay the ones it is used with."""

    catalog: Catalog
    shapes: dict[tuple[object, ...], Expansion] = field(default_factory=dict)
    templates: dict[tuple[object, ...], _Template] = field(default_factory=dict)

    def expansion(self, job: Job, identical: Identical) -> Expansion:
        """``candidates.expand`` without the memory need, which the pricing adds per job: ``table``
        is the rows every job of this shape shares."""
        key = (tuple(job.precision), identical, *expansion_key(job))
        found = self.shapes.get(key)
        if found is None:
            shape, excluded, base = expansion_shape(job, self.catalog, list(job.precision), identical)
            found = self.shapes[key] = Expansion(table=shape, excluded=excluded, base=base, shape_key=key)
        return found

    def _template(self, expansion: Expansion, estimate: FlopEstimate, job: Job,
                  assumptions: Assumptions) -> tuple[_Template, bool]:
        """The template of the job's kind, and whether this job made it."""
        params = estimate.workload.compute_params if attenuation_follows_count(assumptions) else None
        key = (expansion.shape_key, job.scenario, job.workload.kind, repr(assumptions), params)
        found = self.templates.get(key)
        if found is not None:
            return found, False
        full = evaluate(with_need(expansion.table, estimate), estimate, job, self.catalog.attenuation, assumptions)
        made = self.templates[key] = _Template(narrowed(full), probes_for(expansion.base, full, estimate, assumptions))
        return made, True

    def evaluated(self, expansion: Expansion, estimate: FlopEstimate, job: Job,
                  assumptions: Assumptions) -> tuple[pd.DataFrame, Probes | None]:
        """``evaluate`` of the job's rows, in PRICING_COLUMNS, and the probes of their first rungs."""
        return self._evaluated(*self._template(expansion, estimate, job, assumptions), estimate, assumptions)

    @staticmethod
    def _evaluated(template: _Template, made: bool, estimate: FlopEstimate,
                   assumptions: Assumptions) -> tuple[pd.DataFrame, Probes | None]:
        if made:   # the template is this job's own evaluation
            return template.table, template.probes
        t = template.table
        need = need_gb_per_gpu(estimate.workload, t["precision"].to_numpy(dtype=object),
                               t["gpu_count"].to_numpy(np.int64))
        return repriced(t, need, estimate, assumptions), template.probes

    def assess(self, expansion: Expansion, estimate: FlopEstimate, job: Job, assumptions: Assumptions, *,
               deadline_hours: float | None, budget_usd: float | None) -> CandidateSet:
        """``candidates.assess`` of the job, on tables of PRICING_COLUMNS."""
        return self._assess(*self._template(expansion, estimate, job, assumptions), expansion, estimate, job,
                            assumptions, deadline_hours=deadline_hours, budget_usd=budget_usd)

    def _assess(self, template: _Template, made: bool, expansion: Expansion, estimate: FlopEstimate, job: Job,
                assumptions: Assumptions, *, deadline_hours: float | None, budget_usd: float | None) -> CandidateSet:
        t, probes = self._evaluated(template, made, estimate, assumptions)
        return assess(expansion, estimate, job, self.catalog, assumptions, deadline_hours=deadline_hours,
                      budget_usd=budget_usd, evaluated=t, probes=probes)

    def feasible(self, expansion: Expansion, estimate: FlopEstimate, job: Job, assumptions: Assumptions, *,
                 deadline_hours: float | None, budget_usd: float | None) -> Feasible:
        """The job's feasible candidates: on arrays (module docstring), or through ``assess`` when the
        attenuation follows the count or a base row has no first rung to probe from."""
        template, made = self._template(expansion, estimate, job, assumptions)
        if template.probes is None or expansion.base is None or attenuation_follows_count(assumptions):
            cands = self._assess(template, made, expansion, estimate, job, assumptions,
                                 deadline_hours=deadline_hours, budget_usd=budget_usd)
            return Feasible.of(cands.enumerated, cands.feasible)
        probes = template.probes
        if template.rows is None:
            template.rows = _Rows.of(template.table, expansion.base, probes.at)
        r = template.rows
        model = probes.model.for_estimate(estimate)
        cheapest, fastest = exact_counts(template.table, estimate, assumptions, deadline_hours=deadline_hours,
                                         budget_usd=budget_usd, at=probes.at, model=model)
        rows, counts = new_pairs(cheapest, fastest, r.keys, r.width)
        row = np.concatenate([r.base_row, rows])          # the template's rows, then the exact counts
        k = np.concatenate([r.instances, counts])
        priced = model.columns(row, k)
        ok, _ = judged(model.need_gb(row, k), model.memory[row], priced["hours"], priced["cost_usd"],
                       deadline_hours=deadline_hours, budget_usd=budget_usd)
        pick = np.flatnonzero(ok)
        on = row[pick]
        columns = {name: values[on] for name, values in r.per_base_row.items()}
        columns.update(instances=k[pick], gpu_count=k[pick] * r.gpus_per_instance[on], hours=priced["hours"][pick],
                       cost_usd=priced["cost_usd"][pick])
        return Feasible(len(row), columns)


def narrowed(table: pd.DataFrame) -> pd.DataFrame:
    """An evaluated table cut to PRICING_COLUMNS."""
    return table[list(PRICING_COLUMNS)]
