"""Enumerate (offer, GPU count, precision) candidates, drop infeasible and dominated ones.

The integer program only ever sees candidates that could be chosen: each dropped
candidate keeps the reason it was dropped, so "why not the A100?" has an answer.
Counts are whole instances: a ladder (the smallest admitted count, powers of two, the
largest) for tables and Pareto fronts, plus — per set of limits — each offer's exact cheapest
and fastest count (counts.py), so the optimum over every count is among the candidates.
constraints.gpu_count pins the count, min_gpus and max_gpus bound it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog, hourly_cost_usd
from ..catalogs.names import resolve as resolve_names
from .candidate_schema import LATE, NO_FIT, OVER_BUDGET, reason_texts
from .counts import Probes, exact_count_rows, repeat_shape, with_need
from .flops import FlopEstimate
from .job import OFFER_KINDS, Job
from .limits import fits_memory, meets_deadline, within_budget
from .performance import (
    Assumptions,
    effective_peaks,
    evaluate_once,
    with_columns,
)

DEFAULT_MAX_GPUS = 4096  # without max_gpus, the largest fleet considered per offer

@dataclass(frozen=True)
class Expansion:
    """Candidates before any assumption is applied (reused by every re-plan)."""

    table: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    base: pd.DataFrame | None = None   # one row per (offer, precision) with count_lo / count_hi
    shape_key: tuple[object, ...] | None = None   # what the rows follow from (shared_pricing.SharedPricing)


@dataclass(frozen=True)
class CandidateSet:
    """Candidates evaluated under one set of assumptions and limits."""

    table: pd.DataFrame          # every candidate: feasible, category, dominated (candidate_schema.py)
    excluded: dict[str, int]     # counts per reason category, incl. offers never expanded
    deadline_hours: float | None = None   # the limits it was assessed under (reasons quote them)
    budget_usd: float | None = None

    def reasons(self, rows: pd.DataFrame | None = None) -> np.ndarray:
        """Why each row (default: every candidate) was dropped; None for a kept one."""
        return reason_texts(self.table if rows is None else rows, deadline_hours=self.deadline_hours,
                            budget_usd=self.budget_usd)

    @property
    def enumerated(self) -> int:
        return len(self.table)

    @cached_property
    def feasible(self) -> pd.DataFrame:
        return self.table[self.table["feasible"]]

    @cached_property
    def survivors(self) -> pd.DataFrame:
        t = self.table
        return t[t["feasible"] & ~t["dominated"]]


def column_field(column: str) -> str:
    """The constraints key that filters an offers column."""
    return {"provider": "providers", "kind": "offer_kinds", "gpu": "gpus"}[column]


def allowed_offers(offers: pd.DataFrame, job: Job, excluded: dict[str, int],
                   gpus: pd.DataFrame | None = None) -> pd.DataFrame:
    """The offers the job's allow-lists admit; counts what each list excluded into ``excluded``.

    GPU, provider and kind names match as on the command line (catalogs/names.py): exact,
    else every name they prefix; an unknown name raises InputError with suggestions.
    """
    c = job.constraints
    # What a name may match: every GPU of gpus.csv and every kind (an allowed one without
    # offers just selects nothing), the providers that have offers.
    gpu_names = gpus.index if gpus is not None else offers["gpu"]
    known = {"gpu": [str(g) for g in gpu_names], "kind": list(OFFER_KINDS),
             "provider": [str(p) for p in offers["provider"].unique()]}
    filters = [
        ("provider not in constraints.providers", "provider", c.providers),
        ("kind not in constraints.offer_kinds", "kind", c.offer_kinds),
        ("gpu not in constraints.gpus", "gpu", c.gpus),
        ("region not in constraints.regions", "region", c.regions),
    ]
    for reason, column, allowed in filters:
        if allowed is None:
            continue
        if column == "region":   # regions are provider-specific labels: exact (any case)
            wanted = {str(a).lower() for a in allowed}
        else:   # GPU, provider, kind: the CLI's rule (exact, else prefix), unknown names exit 2
            wanted = {n.lower() for n in resolve_names([str(a) for a in allowed], known[column],
                                                        file=job.source_file,
                                                        field=f"constraints.{column_field(column)}",
                                                        what=column)}
        keep = offers[column].str.lower().isin(wanted)
        if (~keep).any():
            excluded[reason] = excluded.get(reason, 0) + int((~keep).sum())
        offers = offers[keep]
    return offers


def count_range(job: Job, per_instance: np.ndarray, quota: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per offer, the smallest and largest instance count the job admits (lo > hi: none).

    max_gpus (or DEFAULT_MAX_GPUS) and the offer's quota cap the count; min_gpus floors it;
    gpu_count pins it to exactly gpu_count / GPUs per instance (none when that is not whole).
    """
    c = job.constraints
    gpi = np.maximum(per_instance.astype(int), 1)
    hi = np.minimum(quota, np.floor((c.max_gpus or DEFAULT_MAX_GPUS) / gpi)).astype(int)
    lo = np.ones(len(gpi), dtype=int)
    if c.min_gpus is not None:
        lo = np.maximum(lo, -(-c.min_gpus // gpi))
    if c.gpu_count is not None:
        exact = c.gpu_count // gpi
        whole = exact * gpi == c.gpu_count
        lo = np.where(whole, np.maximum(lo, exact), hi + 1)
        hi = np.where(whole, np.minimum(hi, exact), hi)
    return lo, hi


def count_ladder(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: lo, the powers of two between, and hi — the ladder shown in tables and Pareto
    fronts — as flat (row, count) arrays, ascending per row (rows with lo > hi get none).
    The exact optimum count is added per set of limits by ``exact_count_rows``. Vectorised:
    a Python loop over 75,000 (offer, precision) rows took a second."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    if lo.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    top = max(int(hi.max()), 1)
    powers = np.left_shift(1, np.arange(top.bit_length(), dtype=np.int64))
    grid = np.concatenate([lo[:, None], np.broadcast_to(powers, (lo.size, powers.size)), hi[:, None]], axis=1)
    outside = (grid < lo[:, None]) | (grid > hi[:, None])
    grid = np.sort(np.where(outside, np.iinfo(np.int64).max, grid), axis=1)
    keep = grid != np.iinfo(np.int64).max
    keep[:, 1:] &= grid[:, 1:] != grid[:, :-1]
    rows, columns = np.nonzero(keep)
    return rows.astype(np.int64), grid[rows, columns]


# What sets an offer's hours and admissible counts (with the job). Two offers equal in all of
# these differ only in price per instance-hour (and in labels: provider, region, source).
IDENTICAL_KEY = ("gpu", "gpus_per_instance", "interconnect", "kind", "interruption_overhead",
                 "billing_increment_hours", "min_hours", "max_instances")
IDENTICAL_REASON = "identical to a cheaper offer"   # same IDENTICAL_KEY, higher hourly cost
Identical = Literal["merge", "keep"]


def cheapest_of_identical(offers: pd.DataFrame, identical: Identical) -> pd.DataFrame:
    """Drop offers equal to another in everything that sets hours and counts (IDENTICAL_KEY) but
    no cheaper per instance-hour (ties keep the first row). Under every assumption and limit
    such an offer has the same hours and a cost no lower at every count, so for one job it is
    never the only optimum: exact, and a 50,000-offer catalog of look-alikes shrinks to its
    distinct shapes. ``keep`` merges nothing: compare reports every quote file's own best, and
    in a portfolio a dearer offer can host a job when the cheaper one's quota or capacity is
    taken by another."""
    if identical == "keep" or offers.empty:
        return offers
    key = offers.groupby(list(IDENTICAL_KEY), sort=False, dropna=False).ngroup().to_numpy()
    order = np.lexsort((np.arange(len(offers)), offers["hourly_cost_usd"].to_numpy(float), key))
    first = np.zeros(len(offers), dtype=bool)
    first[order[np.r_[True, key[order][1:] != key[order][:-1]]]] = True
    return offers[first]


# Job-independent preparation, once per catalog (a portfolio expands 200 jobs on one catalog):
# keyed by the tables' ids and dropped when the offers table is garbage-collected.
_PREPARED: dict[tuple[object, ...], tuple[pd.DataFrame, tuple[object, ...]]] = {}


def _cached(anchor: pd.DataFrame, key: tuple[object, ...], keep: tuple[object, ...],
            build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``build()`` once per (anchor, key). ``keep`` are the objects whose ids ``key`` holds: the
    entry keeps them alive, so their ids cannot be reused while it lives."""
    full = (id(anchor), *key)
    found = _PREPARED.get(full)
    if found is None:
        found = (build(), keep)
        _PREPARED[full] = found
        weakref.finalize(anchor, _PREPARED.pop, full, None)
    return found[0]


def prepared_offers(catalog: Catalog) -> pd.DataFrame:
    """The catalog's offers with their effective hourly cost; text as numpy object arrays, which pandas
    keeps in one block (its ``str`` dtype keeps a block per column, and every take, filter and
    concat of a job's candidates pays per block: a fifth of pricing a 200-job portfolio)."""
    def build() -> pd.DataFrame:
        offers = catalog.offers.reset_index(drop=True)
        offers = offers.assign(hourly_cost_usd=hourly_cost_usd(offers).to_numpy())
        return _text_as_objects(offers)
    return _cached(catalog.offers, ("offers",), (), build)


def _text_as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its str columns as numpy object arrays, consolidated (see prepared_offers)."""
    text = [c for c, dtype in frame.dtypes.items() if pd.api.types.is_string_dtype(dtype)]
    return frame.astype(dict.fromkeys(text, object)).copy()


def precision_chunk(catalog: Catalog, workload: str, precision: str) -> pd.DataFrame:
    """Every prepared offer at one precision: effective peak (NaN: unsupported) and GPU facts,
    row for row with ``prepared_offers``."""
    def build() -> pd.DataFrame:
        offers, gpus = prepared_offers(catalog), catalog.gpus
        peaks = effective_peaks(gpus, catalog.precision, workload, offers["gpu"].to_numpy(), precision)
        chunk = pd.concat([offers, peaks], axis=1).assign(precision=precision)
        chunk["memory_gb"] = chunk["gpu"].map(gpus["memory_gb"]).astype(float)
        chunk["mem_bandwidth_gbs"] = chunk["gpu"].map(gpus["mem_bandwidth_gbs"]).astype(float)
        chunk["gpu_as_of"] = chunk["gpu"].map(gpus["as_of"])
        if "architecture" in gpus.columns:
            chunk["architecture"] = chunk["gpu"].map(gpus["architecture"]).fillna("")
        return _text_as_objects(chunk)   # the peaks' and GPUs' text too

    return _cached(catalog.offers, ("chunk", id(catalog.gpus), id(catalog.precision), workload, precision),
                   (catalog.gpus, catalog.precision), build)


def expand(job: Job, catalog: Catalog, estimate: FlopEstimate,
           precisions: list[str] | None = None, identical: Identical = "merge",
           only: np.ndarray | None = None) -> Expansion:
    """One row per (offer, instances, precision) the job's allow-lists and quotas admit, after
    ``cheapest_of_identical``. ``only``: a mask over ``catalog.offers``, the offers to consider
    at all (the others are not counted as excluded)."""
    shape, excluded, base = expansion_shape(job, catalog, list(precisions or job.precision), identical, only)
    return Expansion(table=with_need(shape, estimate), excluded=excluded, base=base)


def expansion_key(job: Job) -> tuple[object, ...]:
    """What ``expansion_shape`` reads of a job besides its precisions: the workload kind (which
    precision speed-ups apply), the allow-lists and the count limits. Jobs equal in these
    expand to the same rows."""
    c = job.constraints
    return (job.workload.kind, *(None if v is None else tuple(str(x) for x in v) for v in
                                 (c.providers, c.offer_kinds, c.gpus, c.regions)),
            c.gpu_count, c.min_gpus, c.max_gpus)


def expansion_shape(job: Job, catalog: Catalog, precisions: list[str], identical: Identical,
                    only: np.ndarray | None = None) -> tuple[pd.DataFrame, dict[str, int], pd.DataFrame]:
    """``expand`` before the memory need: (rows, exclusion counts, base rows). Reads only what
    ``expansion_key`` names (and the job's file, for an error)."""
    excluded: dict[str, int] = {}
    prepared = prepared_offers(catalog)   # cached per catalog; ``only`` selects rows of it, positions kept
    offers = allowed_offers(prepared if only is None else prepared[np.asarray(only, dtype=bool)], job, excluded,
                            catalog.gpus)
    merged = cheapest_of_identical(offers, identical)
    if len(merged) < len(offers):
        excluded[IDENTICAL_REASON] = len(offers) - len(merged)
        offers = merged
    parts: list[pd.DataFrame] = []
    for precision in precisions:
        chunk = precision_chunk(catalog, job.workload.kind, precision).iloc[offers.index.to_numpy()]
        supported = chunk["peak_tflops"].notna().to_numpy()
        if (~supported).any():
            key = f"gpu has no {precision} tensor throughput"
            excluded[key] = excluded.get(key, 0) + int((~supported).sum())
        parts.append(chunk[supported])
    base = pd.concat(parts, ignore_index=True) if parts else offers.iloc[0:0]
    quota = base["max_instances"].fillna(np.inf).to_numpy(dtype=float)
    lo, hi = count_range(job, base["gpus_per_instance"].to_numpy(dtype=int), quota)
    none = lo > hi
    if none.any():
        c = job.constraints
        why = (f"gpu_count={c.gpu_count} is not a whole number of instances within max_gpus"
               if c.gpu_count is not None else
               f"min_gpus={c.min_gpus} above the offer's quota or max_gpus" if c.min_gpus is not None else
               f"instance has more GPUs than max_gpus={c.max_gpus or DEFAULT_MAX_GPUS}")
        excluded[why] = excluded.get(why, 0) + int(none.sum())
    base = base.assign(count_lo=lo, count_hi=hi)[~none].reset_index(drop=True)
    rows, counts = count_ladder(base["count_lo"].to_numpy(int), base["count_hi"].to_numpy(int))
    return repeat_shape(base, rows, counts), excluded, base


def assess(
    expansion: Expansion,
    estimate: FlopEstimate,
    job: Job,
    catalog: Catalog,
    assumptions: Assumptions,
    *,
    deadline_hours: float | None,
    budget_usd: float | None,
    prune_by: list[str] | None = None,
    evaluated: pd.DataFrame | None = None,
    probes: Probes | None = None,
) -> CandidateSet:
    """Evaluate hours and cost, mark infeasible candidates with a reason, prune dominated.

    ``prune_by`` names columns whose groups are pruned separately; None prunes globally,
    which is exact for one job: the optimum is on the cost/hours Pareto front. Jobs that
    share quotas must prune per (offer_id, instances): a dearer candidate that occupies fewer
    instances of a shared offer can be the one that fits next to another job.
    ``evaluated``: the expansion's rows evaluated already (shared_pricing re-prices them from
    another job's; the exact-count rows added carry its columns), with ``probes``: where its
    first rungs are, if known.
    """
    t = evaluate_once(expansion.table, estimate, job, catalog.attenuation, assumptions) if evaluated is None \
        else evaluated
    extra = exact_count_rows(expansion.base, t, estimate, job, catalog.attenuation, assumptions,
                             deadline_hours=deadline_hours, budget_usd=budget_usd, probes=probes)
    if not extra.empty:
        if len(extra.columns) != len(t.columns):   # rows a calibrated fit evaluated in full, for a narrow t
            extra = extra[list(t.columns)]
        t = pd.concat([t, extra], ignore_index=True)
    feasible, category = judged(t["need_gb_per_gpu"].to_numpy(float), t["memory_gb"].to_numpy(float),
                                t["hours"].to_numpy(float), t["cost_usd"].to_numpy(float),
                                deadline_hours=deadline_hours, budget_usd=budget_usd)
    dominated = dominated_mask(t, prune_by, feasible).to_numpy(bool)
    t = with_columns(t, {"feasible": feasible, "category": category, "dominated": dominated})
    counts = dict(expansion.excluded)
    for cat in (OVER_BUDGET, LATE, NO_FIT):   # in the order a reader meets them: budget, deadline, memory
        n = int(np.count_nonzero(category == cat))
        if n:
            counts[cat] = n
    n_dominated = int(dominated.sum())
    if n_dominated:
        counts["dominated (another plan is no slower and no dearer)"] = n_dominated
    return CandidateSet(table=t, excluded=counts, deadline_hours=deadline_hours, budget_usd=budget_usd)


def judged(need_gb_per_gpu: np.ndarray, memory_gb: np.ndarray, hours: np.ndarray, cost_usd: np.ndarray, *,
           deadline_hours: float | None, budget_usd: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(feasible, category) per candidate: it fits in memory, meets the deadline and the budget;
    else the failing limit — the last of budget, deadline, memory wins, as reason_texts words it."""
    fits = fits_memory(need_gb_per_gpu, memory_gb)
    on_time = meets_deadline(hours, deadline_hours)
    affordable = within_budget(cost_usd, budget_usd)
    category = np.full(len(hours), None, dtype=object)
    category[~affordable] = OVER_BUDGET
    category[~on_time] = LATE
    category[~fits] = NO_FIT
    return fits & on_time & affordable, category


def dominated_mask(t: pd.DataFrame, group: list[str] | None, feasible: np.ndarray | None = None) -> pd.Series:
    """Feasible candidates with another feasible one (of the same ``group``) at most as dear
    and at most as slow — everything feasible that is off its group's Pareto front.
    ``feasible`` defaults to the table's column (assess passes it before writing it)."""
    ok = t["feasible"].to_numpy(bool) if feasible is None else feasible
    where = np.flatnonzero(ok)
    mask = np.zeros(len(t), dtype=bool)
    if where.size:
        keys = (np.zeros(where.size, dtype=int) if group is None
                else t.iloc[where].groupby(group, sort=False, dropna=False).ngroup().to_numpy())
        cost, hours = t["cost_usd"].to_numpy(float)[where], t["hours"].to_numpy(float)[where]
        mask[where[dominated_in_groups(cost, hours, keys)]] = True
    return pd.Series(mask, index=t.index)


def dominated_in_groups(cost_usd: np.ndarray, hours: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Boolean mask: some other point of the same group is at most as dear and at most as slow.

    Sort by (group, cost, hours, position); walking in that order a point survives only if it
    is strictly faster than everything before it in its group, so exact duplicates keep the
    first. One vectorised pass (a Python loop over thousands of groups took seconds): the running
    minimum restarts per group because each group's hours, as integer ranks, are shifted below
    every earlier group's — exact, no float offset.
    """
    cost = np.asarray(cost_usd, dtype=float)
    time = np.asarray(hours, dtype=float)
    unknown = np.isnan(time)
    if unknown.any():   # hours unknown: neither dominated nor dominating (a NaN compares false)
        known = np.flatnonzero(~unknown)
        dominated = np.zeros(cost.size, dtype=bool)
        dominated[known] = dominated_in_groups(cost[known], time[known], np.asarray(group)[known])
        return dominated
    if cost.size == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((np.arange(cost.size), time, cost, group))
    sorted_group = np.asarray(group)[order]
    rank = np.unique(time[order], return_inverse=True)[1].astype(np.int64)   # equal hours, equal rank
    starts = np.r_[True, sorted_group[1:] != sorted_group[:-1]]
    shifted = rank - np.cumsum(starts).astype(np.int64) * (int(rank.max()) + 1)
    fastest_before = np.minimum.accumulate(shifted)
    dominated = np.zeros(cost.size, dtype=bool)
    dominated[order[1:]] = ~starts[1:] & (shifted[1:] >= fastest_before[:-1])
    return dominated


def pareto_front(cost_usd: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Indices of the cost/hours Pareto front, ordered by cost ascending (exact duplicates:
    the lowest index is kept)."""
    cost = np.asarray(cost_usd, dtype=float)
    time = np.asarray(hours, dtype=float)
    if cost.size == 0:
        return np.zeros(0, dtype=int)
    dominated = dominated_in_groups(cost, time, np.zeros(cost.size, dtype=int))
    order = np.lexsort((np.arange(cost.size), time, cost))
    return np.asarray(order[~dominated[order]], dtype=int)
