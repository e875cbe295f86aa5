"""The candidate table's schema: every column a stage adds, with its dtype and meaning, once.

A candidate is one (offer, instance count, precision). The stages pass one pandas table along,
each adding columns: the catalog's offer columns (catalogs/schema.py ``OFFERS``), then

    expand   (candidates.py)   per (offer, precision): peaks, count range, GPU facts;
    count    (counts.py)       per count: instances, GPUs, memory need
    evaluate (performance.py)  scenario, attenuation row, buffer, scale-out, hours, cost
    assess   (candidates.py)   feasible, the limit that fails (category), dominated
    compare  (compare.py)      offer class, cost per PFLOP, which limits each plan meets

Stages and consumers name their columns from here (``columns(stage)`` and the named views
below) instead of writing lists of their own; ``tests/optimizer/test_candidate_schema.py`` checks that
each stage's output has exactly its schema's columns with these dtypes. Column names carry
their unit (``_usd``, ``_hours``, ``_gb``, ``_tflops``).

Reasons are derived, not stored: ``reason_texts`` words them from ``category`` and the
numbers on demand, so a 400,000-candidate solve formats only the rows somebody reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Stage = Literal["expand", "count", "evaluate", "assess", "compare"]
Dtype = Literal["str", "float", "int", "bool"]


@dataclass(frozen=True)
class CandidateColumn:
    name: str
    dtype: Dtype
    stage: Stage
    meaning: str


_COLUMNS = (
    # expand, per (offer, precision)
    CandidateColumn("hourly_cost_usd", "float", "expand", "effective cost of one instance-hour: list price for a "
                    "rental; amortised capex + power for owned/edge (0 capex when sunk)"),
    CandidateColumn("run_precision", "str", "expand", "the precision the GPU really runs (bf16 falls back to fp16)"),
    CandidateColumn("ref_precision", "str", "expand", "the GPU's reference (highest-listed) precision"),
    CandidateColumn("ref_peak_tflops", "float", "expand", "datasheet peak at the reference precision"),
    CandidateColumn("datasheet_tflops", "float", "expand", "datasheet peak at the run precision"),
    CandidateColumn("precision_speedup", "float", "expand", "realised speed-up over the reference (precision.csv)"),
    CandidateColumn("speedup_source", "str", "expand", "where the speed-up comes from"),
    CandidateColumn("peak_tflops", "float", "expand", "effective peak: reference peak × speed-up"),
    CandidateColumn("precision", "str", "expand", "the precision the job asked for"),
    CandidateColumn("count_lo", "int", "expand", "smallest instance count the job admits"),
    CandidateColumn("count_hi", "int", "expand", "largest instance count the job and quota admit"),
    CandidateColumn("memory_gb", "float", "expand", "memory per GPU (gpus.csv)"),
    CandidateColumn("mem_bandwidth_gbs", "float", "expand", "memory bandwidth per GPU (gpus.csv)"),
    CandidateColumn("gpu_as_of", "str", "expand", "date of the GPU's datasheet row"),
    CandidateColumn("architecture", "str", "expand", "GPU architecture (the efficiency fit's group)"),
    # expand, per count
    CandidateColumn("base_row", "int", "count", "position of the (offer, precision) row in the expansion base"),
    CandidateColumn("instances", "int", "count", "instances rented or owned"),
    CandidateColumn("gpu_count", "int", "count", "instances × GPUs per instance"),
    CandidateColumn("need_gb_per_gpu", "float", "count", "memory the job needs per GPU at this count"),
    # evaluate
    CandidateColumn("scenario", "str", "evaluate", "lab | cloud | cluster | edge: the attenuation row's scenario"),
    CandidateColumn("att_low", "float", "evaluate", "attenuation P10 at ref_gpus"),
    CandidateColumn("att_high", "float", "evaluate", "attenuation P90 at ref_gpus"),
    CandidateColumn("att_median", "float", "evaluate", "attenuation P50 at ref_gpus"),
    CandidateColumn("uncertainty", "float", "evaluate", "the row's uncertainty (sets the auto buffer)"),
    CandidateColumn("ref_gpus", "float", "evaluate", "GPU count the attenuation figure was measured at"),
    CandidateColumn("bottleneck", "str", "evaluate", "what limits the workload (attenuation row)"),
    CandidateColumn("att_source", "str", "evaluate", "which attenuation row (scenario/workload/gpu) or fit"),
    CandidateColumn("attenuation", "float", "evaluate", "end-to-end efficiency used, at ref_gpus"),
    CandidateColumn("buffer", "float", "evaluate", "risk buffer added to the hours (0.2 = +20%)"),
    CandidateColumn("scale_efficiency", "float", "evaluate", "scale-out factor: scale(count) ÷ scale(ref_gpus)"),
    CandidateColumn("roofline_bound", "bool", "evaluate", "decode is memory-bandwidth bound"),
    CandidateColumn("base_hours", "float", "evaluate", "hours before buffer and interruptions"),
    CandidateColumn("hours", "float", "evaluate", "wall-clock hours with buffer and spot interruptions"),
    CandidateColumn("billed_hours", "float", "evaluate", "hours billed (increments, minimum)"),
    CandidateColumn("cost_usd", "float", "evaluate", "instances × hourly_cost_usd × billed_hours"),
    # assess
    CandidateColumn("feasible", "bool", "assess", "fits in memory, meets the deadline and the budget"),
    CandidateColumn("category", "str", "assess", "the failing limit (None when feasible); reason_texts words it"),
    CandidateColumn("dominated", "bool", "assess", "feasible, but another plan is no slower and no dearer"),
    # compare (compare.py), after assess
    CandidateColumn("offer_class", "str", "compare", "cloud | spot | owned | cluster quote: the compared class"),
    CandidateColumn("cost_per_pflop_usd", "float", "compare", "cost_usd per 10^15 FLOP of the job"),
    CandidateColumn("deadline_met", "bool", "compare", "hours within the deadline"),
    CandidateColumn("within_budget", "bool", "compare", "cost within the budget"),
    CandidateColumn("fits", "bool", "compare", "fits in GPU memory"),
)

BY_NAME: dict[str, CandidateColumn] = {c.name: c for c in _COLUMNS}
STAGES: tuple[Stage, ...] = ("expand", "count", "evaluate", "assess", "compare")


def columns(stage: Stage) -> tuple[str, ...]:
    """The columns ``stage`` adds, in order."""
    return tuple(c.name for c in _COLUMNS if c.stage == stage)


ATTENUATION_COLUMNS = ("att_low", "att_high", "att_median", "uncertainty", "ref_gpus", "bottleneck", "att_source")

# What a Plan is built from (result.plan_from_row): the offer's columns it shows plus these.
PLAN_COLUMNS = ("offer_id", "provider", "kind", "region", "instance_type", "gpu", "gpu_count", "instances",
                "gpus_per_instance", "precision", "scenario", "attenuation", "att_low", "att_high", "att_source",
                "bottleneck", "buffer", "scale_efficiency", "roofline_bound", "hours", "billed_hours", "cost_usd",
                "hourly_cost_usd", "price_per_hour_usd", "as_of", "need_gb_per_gpu", "memory_gb", "feasible", "sunk",
                "price_quality", "fetched_at", "typical_quota_gpus", "dominated")

# What a portfolio keeps per job candidate (the integer program's inputs and the plan line).
PORTFOLIO_COLUMNS = ("offer_id", "provider", "kind", "region", "gpu", "gpu_count", "instances", "gpus_per_instance",
                     "precision", "scenario", "attenuation", "hours", "cost_usd", "hourly_cost_usd")

# What re-pricing a candidate for another job of its shape reads and writes (performance.repriced,
# at_counts), with what the exact-count search, the limits and PORTFOLIO_COLUMNS read: a
# portfolio prices every job on tables this wide (shared_pricing.SharedPricing), not on all ~60 columns.
PRICING_COLUMNS = (*PORTFOLIO_COLUMNS, "interconnect", "interruption_overhead", "billing_increment_hours",
                   "min_hours", "peak_tflops", "memory_gb", "mem_bandwidth_gbs", "count_lo", "count_hi", "base_row",
                   "need_gb_per_gpu", "buffer", "ref_gpus", "scale_efficiency", "roofline_bound", "base_hours",
                   "billed_hours")

# What compare ranks and filters on (a narrow view; full rows only for the plans it reports).
# ``quote_file`` is the quote's file ("" for catalog offers); compare's ``source`` is that file
# or "catalog" (it replaces the offer's price-source text in compare's table).
COMPARE_COLUMNS = ("offer_id", "kind", "offer_class", "source", "quote_file", "instances", "cost_usd", "hours",
                   "cost_per_pflop_usd", "feasible", "fits", "category")

# Plan field → candidate column where the names differ (the rest are the same).
PLAN_FIELD_COLUMN = {"price_as_of": "as_of", "attenuation_low": "att_low", "attenuation_high": "att_high",
                     "attenuation_source": "att_source"}

DOMINATED_REASON = "dominated: another plan is no slower and no dearer"
OVER_BUDGET, LATE, NO_FIT = "over budget", "misses deadline", "does not fit in GPU memory"


def reason_texts(table: pd.DataFrame, *, deadline_hours: float | None, budget_usd: float | None) -> np.ndarray:
    """Why each row was dropped (None: feasible and kept), worded from ``category`` and the
    numbers under the limits it was assessed with. A ``reason`` column, where a later stage
    wrote one (the --confidence re-plan), wins."""
    out = np.full(len(table), None, dtype=object)
    if table.empty:
        return out
    category = table["category"].to_numpy(dtype=object)
    cost, hours = table["cost_usd"].to_numpy(float), table["hours"].to_numpy(float)

    def word(mask: np.ndarray, text: Any) -> None:
        where = np.flatnonzero(mask)
        if where.size:
            out[where] = [text(i) for i in where]

    word(category == OVER_BUDGET, lambda i: f"costs ${cost[i]:,.0f}, budget ${budget_usd or 0:,.0f}")
    word(category == LATE, lambda i: f"needs {hours[i]:,.0f} h, deadline {deadline_hours or 0:,.0f} h")
    if (category == NO_FIT).any():
        need, have = table["need_gb_per_gpu"].to_numpy(float), table["memory_gb"].to_numpy(float)
        word(category == NO_FIT, lambda i: f"needs {need[i]:,.0f} GB per GPU, has {have[i]:,.0f} GB")
    if "dominated" in table.columns:
        out[table["dominated"].to_numpy(bool)] = DOMINATED_REASON
    if "reason" in table.columns:
        explicit = table["reason"].to_numpy(dtype=object)
        written = np.array([isinstance(r, str) for r in explicit], dtype=bool)
        out[written] = explicit[written]
    return out


def row_records(table: pd.DataFrame, names: tuple[str, ...] = PLAN_COLUMNS) -> list[dict[str, Any]]:
    """Rows as dicts of ``names`` (those present). ``DataFrame.to_dict("records")`` boxes every
    cell of pandas' string arrays one by one; with 40,000 candidates that alone took seconds."""
    present = [c for c in names if c in table.columns]
    arrays = [table[c].to_numpy(dtype=object) for c in present]
    return [dict(zip(present, values)) for values in zip(*arrays)]


def conforms(table: pd.DataFrame, stage: Stage) -> list[str]:
    """Problems with ``table`` as the output of ``stage``: schema columns missing or of another
    dtype (used by the tests; the stages themselves do not pay for the check)."""
    problems = []
    for name in (n for s in STAGES[: STAGES.index(stage) + 1] for n in columns(s)):
        if name not in table.columns:
            problems.append(f"{name}: missing after {stage}")
            continue
        kind = BY_NAME[name].dtype
        dtype = table[name].dtype
        ok = {"float": pd.api.types.is_float_dtype(dtype), "int": pd.api.types.is_integer_dtype(dtype),
              "bool": pd.api.types.is_bool_dtype(dtype),
              "str": pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)}[kind]
        if not ok:
            problems.append(f"{name}: {dtype}, schema says {kind}")
    return problems
