"""Exact instance counts: for every (offer, precision), the cheapest count and the fastest count
that meet the limits — found over *every* count, not a power-of-two ladder.

Under the performance model (performance.py) an offer's hours fall and its memory need per GPU
falls as instances are added, both monotonically, while cost is not monotone (billing increments
and minimum hours make a larger fleet sometimes cheaper). So, per offer and precision, with k
instances between the job's count_lo and count_hi:

    k*       = the smallest k that fits in memory and meets the deadline   (bisection: monotone)
    LB(k)    = k · price · max(min_hours, hours(k))                        (≤ cost(k), non-decreasing:
               k · hours(k) ∝ 1 / per-GPU efficiency(k), which never falls as k grows)
    cheapest = argmin cost(k) over k ≥ k*, scanning upward until LB(k) ≥ the best cost found
    fastest  = the largest k ≤ count_hi with cost(k) ≤ budget (bisection on LB, then a scan down)

These two rows join the ladder of candidates; for one job the integer program's optimum is then
the optimum over all counts (cost objective: some offer's cheapest; time objective: some offer's
fastest within budget), which tests/optimizer/test_model.py checks against brute force.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .efficiency_fit import COUNT
from .flops import FlopEstimate
from .job import Job
from .limits import BUDGET_RELATIVE_TOLERANCE, meets_deadline, within_budget
from .memory import need_gb_per_gpu
from .performance import (
    Assumptions,
    CountModel,
    at_counts,
    attenuation_follows_count,
    evaluate,
    evaluate_once,
    with_columns,
)

SCAN_CHUNK = 64          # counts evaluated at once per offer while scanning


def search_model(ev: pd.DataFrame, estimate: FlopEstimate, assumptions: Assumptions,
                 at: np.ndarray | None = None) -> CountModel:
    """The count model of ``ev``'s rows (or its rows at ``at``), one probe per base row. A calibrated
    fit makes attenuation depend on the count (β_n · log2(n / ref), β_n ≤ 0): the probe, measured
    at count_lo, then follows it."""
    fit = assumptions.efficiency_fit
    uses_fit = fit is not None and assumptions.attenuation_override is None and not assumptions.attenuation_scenario
    slope = float(fit.coefficients.get(COUNT, 0.0)) if uses_fit and fit is not None else 0.0
    return CountModel(ev, estimate, assumptions, count_slope=slope, at=at)


def _smallest(pred: Callable[[np.ndarray, np.ndarray], np.ndarray], rows: np.ndarray,
              lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Smallest k in [lo, hi] with pred true (pred monotone: false… then true); hi + 1 if none."""
    ok_hi = pred(rows, hi.astype(float))
    left, right = lo.copy(), hi.copy()
    answer = np.where(ok_hi, hi, hi + 1)
    active = ok_hi & (left < right)
    while active.any():
        mid = (left + right) // 2
        ok = pred(rows, mid.astype(float))
        right = np.where(active & ok, mid, right)
        left = np.where(active & ~ok, mid + 1, left)
        active = active & (left < right)
    return np.where(ok_hi, right, answer)


def exact_counts(ev: pd.DataFrame, estimate: FlopEstimate, assumptions: Assumptions, *,
                 deadline_hours: float | None, budget_usd: float | None,
                 at: np.ndarray | None = None, model: CountModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per evaluated base row (``ev``'s rows, or its rows at positions ``at``): (cheapest count,
    fastest count) meeting the limits; 0 = none. ``model``: those rows' probes, if built already."""
    n = len(ev) if at is None else len(at)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    m = search_model(ev, estimate, assumptions, at) if model is None else model.for_estimate(estimate)
    rows = np.arange(n)
    lo = ev["count_lo"].to_numpy(int) if at is None else ev["count_lo"].to_numpy(int)[at]
    hi = ev["count_hi"].to_numpy(int) if at is None else ev["count_hi"].to_numpy(int)[at]
    budget = np.inf if budget_usd is None else float(budget_usd) * (1 + BUDGET_RELATIVE_TOLERANCE)

    def admissible(r: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.asarray(m.fits(r, k) & meets_deadline(m.hours(r, k), deadline_hours), dtype=bool)

    k_star = _smallest(admissible, rows, lo, hi)
    feasible = k_star <= hi
    cheapest = np.zeros(n, dtype=int)
    fastest = np.zeros(n, dtype=int)
    if not feasible.any():
        return cheapest, fastest
    r = rows[feasible]
    start, top = k_star[feasible], hi[feasible]
    h0 = m.hours(r, start.astype(float))
    best_cost, best_k = m.cost(r, start.astype(float), h0), start.copy()
    nxt = start + 1
    active = nxt <= top
    while active.any():
        ar = np.flatnonzero(active)
        ks = nxt[ar, None] + np.arange(SCAN_CHUNK)[None, :]
        valid = ks <= top[ar, None]
        rr = np.repeat(r[ar], SCAN_CHUNK)
        flat_k = np.minimum(ks, top[ar, None]).ravel().astype(float)
        hours = m.hours(rr, flat_k)
        cost = m.cost(rr, flat_k, hours).reshape(ks.shape)
        bound = m.lower_bound(rr, flat_k, hours).reshape(ks.shape)
        cost = np.where(valid, cost, np.inf)
        at = np.argmin(cost, axis=1)
        chunk_best = cost[np.arange(len(ar)), at]
        better = chunk_best < best_cost[ar] - 1e-9
        best_cost[ar] = np.where(better, chunk_best, best_cost[ar])
        best_k[ar] = np.where(better, ks[np.arange(len(ar)), at], best_k[ar])
        last_bound = np.where(valid, bound, -np.inf).max(axis=1)
        nxt[ar] = nxt[ar] + SCAN_CHUNK
        active[ar] = (nxt[ar] <= top[ar]) & (last_bound < best_cost[ar])
    cheapest[feasible] = np.where(within_budget(best_cost, budget_usd), best_k, 0)
    fastest[feasible] = _fastest_within_budget(m, r, start, top, budget)
    return cheapest, fastest


def _fastest_within_budget(m: CountModel, r: np.ndarray, start: np.ndarray, top: np.ndarray,
                           budget: float) -> np.ndarray:
    """Largest k in [start, top] with cost(k) ≤ budget (0: none). Hours fall with k, so this is
    the fastest plan of the offer; LB(k) ≤ cost(k) and LB is non-decreasing, so no k with
    LB(k) > budget qualifies and the search starts at the largest k with LB(k) ≤ budget."""
    if np.isinf(budget):
        return top.copy()

    def over(rr: np.ndarray, k: np.ndarray) -> np.ndarray:
        return m.lower_bound(rr, k, m.hours(rr, k)) > budget

    first_over = _smallest(over, r, start, top)   # LB > budget from here on
    k = first_over - 1
    found = np.zeros(len(r), dtype=int)
    active = k >= start
    while active.any():
        ar = np.flatnonzero(active)
        ks = k[ar, None] - np.arange(SCAN_CHUNK)[None, :]
        valid = ks >= start[ar, None]
        rr = np.repeat(r[ar], SCAN_CHUNK)
        flat_k = np.maximum(ks, start[ar, None]).ravel().astype(float)
        cost = m.cost(rr, flat_k, m.hours(rr, flat_k)).reshape(ks.shape)
        ok = valid & (cost <= budget)
        hit = ok.any(axis=1)
        first = np.argmax(ok, axis=1)
        found[ar] = np.where(hit, ks[np.arange(len(ar)), first], found[ar])
        k[ar] = k[ar] - SCAN_CHUNK
        active[ar] = ~hit & (k[ar] >= start[ar])
    return found


@dataclass(frozen=True)
class Probes:
    """Each base row's first rung: its position in an evaluated table and the search's arrays
    for it. Both follow the rows' shape and the assumptions (under a calibrated fit, the model
    size too), not the job's FLOPs or limits, so jobs of one shape share them
    (shared_pricing.SharedPricing keys its templates on exactly these)."""

    at: np.ndarray
    model: CountModel


def probes_for(base: pd.DataFrame | None, table: pd.DataFrame, estimate: FlopEstimate,
               assumptions: Assumptions) -> Probes | None:
    """The probes of ``table`` (the expansion's rows as evaluated for ``estimate``), None when
    some base row has no first rung in it."""
    at = None if base is None or base.empty else _at_count_lo(base, table)
    if at is None:
        return None
    return Probes(at=at, model=search_model(table, estimate, assumptions, at))


def exact_count_rows(base: pd.DataFrame | None, table: pd.DataFrame, estimate: FlopEstimate, job: Job,
                     attenuation: pd.DataFrame, assumptions: Assumptions, *, deadline_hours: float | None,
                     budget_usd: float | None, probes: Probes | None = None) -> pd.DataFrame:
    """The exact cheapest and fastest counts not yet in ``table`` (the expansion's table as
    evaluated under ``assumptions``), as evaluated rows. The search is seeded
    with each base row's evaluation at count_lo: the ladder's first rung, already in ``table``
    (``probes``: where, if known)."""
    if base is None or base.empty:
        return table.iloc[0:0]
    at = _at_count_lo(base, table) if probes is None else probes.at
    ev = table
    if at is None:   # a table without every base row's first rung: evaluate the probe itself
        probe = base.assign(instances=base["count_lo"].astype(int))
        probe["gpu_count"] = probe["instances"] * probe["gpus_per_instance"].astype(int)
        ev = evaluate_once(probe, estimate, job, attenuation, assumptions, owner=base)
    model = search_model(ev, estimate, assumptions, at) if probes is None else probes.model.for_estimate(estimate)
    cheapest, fastest = exact_counts(ev, estimate, assumptions, deadline_hours=deadline_hours, budget_usd=budget_usd,
                                     at=at, model=model)
    rows, counts = new_pairs(cheapest, fastest, *count_keys(base, table))
    if rows.size == 0:
        return table.iloc[0:0]
    if at is not None and not attenuation_follows_count(assumptions):
        # only the count's columns change; the search's model has each base row's first rung
        return at_counts(table, at[rows], counts, estimate, assumptions, model=model, model_rows=rows)
    return evaluate(repeat_counts(base, estimate, rows, counts), estimate, job, attenuation, assumptions)


def count_keys(base: pd.DataFrame, table: pd.DataFrame) -> tuple[np.ndarray, int]:
    """The (base row, count) pairs ``table`` holds, as sorted int64 keys row × width + count, and the width."""
    width = int(max(base["count_hi"].max(), table["instances"].max() if len(table) else 0)) + 1
    have = table["base_row"].to_numpy(np.int64) * width + table["instances"].to_numpy(np.int64)
    return np.sort(have), width


def new_pairs(cheapest: np.ndarray, fastest: np.ndarray, keys: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact counts (``exact_counts``, one per base row; 0 = none) not among ``keys``, as
    (base rows, counts) sorted by row then count, each pair once (cheapest = fastest: once)."""
    rows = np.concatenate([np.arange(len(cheapest)), np.arange(len(fastest))])
    counts = np.concatenate([cheapest, fastest]).astype(np.int64)
    new = (counts > 0) & ~sorted_contains(keys, rows * width + counts)
    key = np.unique(rows[new] * width + counts[new])
    return key // width, key % width


def _at_count_lo(base: pd.DataFrame, table: pd.DataFrame) -> np.ndarray | None:
    """Positions in ``table`` of each base row's row at its count_lo, in base order (None if one
    is missing). Positions, not a copy: the search reads a dozen columns of those rows."""
    if "base_row" not in table.columns:
        return None
    first = np.flatnonzero(table["instances"].to_numpy(np.int64) == table["count_lo"].to_numpy(np.int64))
    rows = table["base_row"].to_numpy(np.int64)[first]
    if len(rows) != len(base) or not np.array_equal(np.sort(rows), np.arange(len(base))):
        return None
    return np.asarray(first[np.argsort(rows, kind="stable")], dtype=np.int64)


def sorted_contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.isin(keys, sorted_keys)`` by binary search (numpy's hash-based isin took half a
    second on 460,000 keys)."""
    if sorted_keys.size == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return np.asarray(sorted_keys[at] == keys, dtype=bool)


def with_counts(base: pd.DataFrame, estimate: FlopEstimate, counts: list[list[int]]) -> pd.DataFrame:
    """Base rows (offer × precision) repeated once per instance count in ``counts[row]``."""
    lengths = np.array([len(r) for r in counts], dtype=int)
    flat = np.concatenate(counts) if len(counts) and lengths.sum() else np.array([], dtype=int)
    return repeat_counts(base, estimate, np.repeat(np.arange(len(base)), lengths), flat)


def repeat_counts(base: pd.DataFrame, estimate: FlopEstimate, rows: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """Base row ``rows[i]`` at ``counts[i]`` instances, with GPUs, memory need per GPU and
    ``base_row`` (the row's position in ``base``, the key the exact-count search matches on)."""
    table, columns = _repeated(base, rows, counts)
    columns["need_gb_per_gpu"] = need_gb_per_gpu(estimate.workload, table["precision"].to_numpy(dtype=object),
                                                 columns["gpu_count"])
    return with_columns(table, columns)


def repeat_shape(base: pd.DataFrame, rows: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """``repeat_counts`` without the memory need: what every job with the same allow-lists,
    precisions and count limits shares (``with_need`` adds the job's own)."""
    table, columns = _repeated(base, rows, counts)
    return with_columns(table, columns)


def with_need(shape: pd.DataFrame, estimate: FlopEstimate) -> pd.DataFrame:
    """``repeat_shape``'s rows with the job's memory need per GPU: what ``repeat_counts`` gives."""
    need = need_gb_per_gpu(estimate.workload, shape["precision"].to_numpy(dtype=object),
                           shape["gpu_count"].to_numpy(np.int64))
    return with_columns(shape, {"need_gb_per_gpu": need})


def _repeated(base: pd.DataFrame, rows: np.ndarray, counts: np.ndarray) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rows = np.asarray(rows, dtype=np.int64)
    instances = np.asarray(counts, dtype=np.int64)
    gpu_count = instances * base["gpus_per_instance"].to_numpy(np.int64)[rows]
    return base.take(rows).reset_index(drop=True), {"base_row": rows, "instances": instances, "gpu_count": gpu_count}
