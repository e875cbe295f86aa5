"""From (offer, GPU count, precision) to hours and cost — where attenuation is applied.

Attenuation means END-TO-END efficiency: model FLOPs delivered ÷ (GPUs × dense peak of the
reference precision × wall-clock), restarts, evaluation and stalls included, measured at
``ref_gpus`` GPUs (a column of attenuation.csv). Throughput at n GPUs:

    throughput = n · peak_ref · speedup(precision) · attenuation · scale(n) / scale(ref_gpus)
    hours      = FLOPs · (1 + buffer) / throughput / 3600

- peak_ref: the GPU's dense peak at its reference precision (bf16; fp16 where a GPU has no
  bf16, e.g. V100 and T4; else fp32). A bf16 job on a V100 runs as fp16.
- speedup: the realised speed-up of the job's precision over the reference precision for
  the workload (catalogs/precision.csv, measured: fp8 training is not 2× bf16). Without a row,
  the datasheet ratio is used only when it is a slow-down (tf32, fp32); an unmeasured gain
  counts as 1.
- scale(n): scale-out efficiency of the offer's layout; scale(ref_gpus) is that of the layout
  the figure was measured on (8-GPU NVLink nodes on InfiniBand, as nearly every published
  run). The multi-node loss is applied only relative to where the number was measured.
- The scenario describes the environment, never the plan's size (owned → lab, rented → cloud,
  cluster quote → cluster, edge → edge), so per-GPU throughput never rises with the count.
- Per-GPU efficiency attenuation · scale(n)/scale(ref) is capped at 1 (no GPU beats its peak).

Inference decode is additionally capped by memory bandwidth (roofline): each decode
step streams the weights and the KV cache once, so
    decode_seconds ≥ steps · (weight_bytes + kv_bytes) / (n · bandwidth · scale(n)/scale(ref)).

Every assumption used (scenario, attenuation and its range, buffer, scale-out
efficiency, precision speed-up, whether the roofline bound) is returned next to the number
it produced.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from .candidate_schema import ATTENUATION_COLUMNS
from .efficiency_fit import EfficiencyModel
from .flops import FlopEstimate
from .job import Job
from .limits import fits_memory
from .memory import BYTES_PER_VALUE, DEFAULT_SERVING_BATCH, kv_cache_bytes, need_gb_per_gpu

# Scale-out efficiency kept per doubling of the GPU count, by fabric. The infiniband
# figure follows Megatron-LM's 76% weak-scaling efficiency at 512 GPUs
# (Shoeybi et al. 2019, §5.1): 0.76^(1/9 doublings) ≈ 0.97. The others are engineering
# defaults ranked by fabric bandwidth (NVLink > InfiniBand > PCIe > Ethernet);
# override them per job (performance.scale_efficiency_per_doubling) or calibrate.
DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING: dict[str, float] = {
    "nvlink": 0.98,
    "infiniband": 0.97,
    "pcie": 0.93,
    "ethernet": 0.90,
}

MAX_EFFICIENCY = 1.0  # no GPU delivers more than its peak, whatever a rescaled figure says

# Buffer from uncertainty: ±10% → 20%, ±30% → 50%, linear between, clamped (README: How the numbers are made).
BUFFER_AT_LOW_UNCERTAINTY = (0.10, 0.20)
BUFFER_AT_HIGH_UNCERTAINTY = (0.30, 0.50)


def auto_buffer(uncertainty: np.ndarray | float) -> np.ndarray:
    (u0, b0), (u1, b1) = BUFFER_AT_LOW_UNCERTAINTY, BUFFER_AT_HIGH_UNCERTAINTY
    raw = b0 + (np.asarray(uncertainty, dtype=float) - u0) * (b1 - b0) / (u1 - u0)
    return np.clip(raw, b0, b1)


def auto_scenario(kind: pd.Series | np.ndarray) -> np.ndarray:
    """The environment, not the plan's size: edge → edge, cluster quote → cluster, owned →
    lab, rented (on-demand, spot, reserved) → cloud. Scenario used to switch to "cluster" at two
    instances, which made 16 GPUs 37% faster per GPU than 8; the multi-node loss is scale(n)."""
    kinds = np.asarray(kind, dtype=object)
    return np.select([kinds == "edge", kinds == "cluster_quote", kinds == "owned"],
                     ["edge", "cluster", "lab"], default="cloud")


@dataclass(frozen=True)
class Assumptions:
    """What the planner believes. The realistic model is the default; the pitfalls of
    sensitivity.py are other instances of this (e.g. attenuation_override=1.0)."""

    attenuation_override: float | None = None
    attenuation_point: Literal["mid", "low", "high"] = "mid"
    buffer_override: float | None = None
    attenuation_scenario: str | None = None   # use this scenario's factors for every candidate
    efficiency_fit: EfficiencyModel | None = None   # a calibrated fit (efficiency.csv), if any
    scale_efficiency: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING)
    )


def realistic_assumptions(job: Job, efficiency: pd.DataFrame | None = None) -> Assumptions:
    """The job's own overrides on top of the catalog; ``efficiency`` is the catalog's
    efficiency.csv (a calibrated fit), used for the job's workload when it has terms for it."""
    scale = dict(DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING)
    scale.update({str(k): float(v) for k, v in job.performance.scale_efficiency_per_doubling.items()})
    buffer = None if job.risk.buffer == "auto" else float(job.risk.buffer)
    fit = EfficiencyModel.from_table(efficiency, job.workload.kind) if efficiency is not None else None
    return Assumptions(
        attenuation_override=job.performance.attenuation, buffer_override=buffer, scale_efficiency=scale,
        efficiency_fit=fit,
    )



# Lookup order, most specific first. Scenario "any" rows are what `flopopt calibrate` writes:
# measured runs describe the workload on that GPU whatever environment the optimiser picks.
_LOOKUP_ORDER = (("any", "workload", "gpu"), ("any", "workload", ""),
                 ("scenario", "workload", "gpu"), ("scenario", "workload", ""),
                 ("scenario", "any", "gpu"), ("scenario", "any", ""))


def lookup_attenuation(
    attenuation: pd.DataFrame, scenario: np.ndarray, workload: str, gpu: np.ndarray
) -> pd.DataFrame:
    """Most specific row wins: calibrated (any scenario) rows for the workload and GPU, then
    (scenario, workload, gpu) > (scenario, workload) > (scenario, any, gpu) > (scenario, any).
    Returns low/high/median/uncertainty/ref_gpus/bottleneck/source per element."""
    return pd.DataFrame(attenuation_columns(attenuation, scenario, workload, gpu))


def attenuation_columns(attenuation: pd.DataFrame, scenario: np.ndarray, workload: str,
                        gpu: np.ndarray) -> dict[str, np.ndarray]:
    """``lookup_attenuation`` as plain arrays (ATTENUATION_COLUMNS)."""
    index = _lookup_index(attenuation)
    # one look-up per distinct (scenario, GPU), broadcast back by codes (no per-row tuples)
    scenario_codes, scenarios = pd.factorize(np.asarray(scenario, dtype=object))
    gpu_codes, gpu_names = pd.factorize(np.asarray(gpu, dtype=object))
    codes, pair_codes = pd.factorize(scenario_codes.astype(np.int64) * max(len(gpu_names), 1) + gpu_codes)
    found = [_most_specific(index, str(scenarios[p // max(len(gpu_names), 1)]),
                            str(gpu_names[p % max(len(gpu_names), 1)]), workload=workload) for p in pair_codes]
    numeric = {"att_low", "att_high", "att_median", "uncertainty", "ref_gpus"}
    columns = {name: np.array([f[i] for f in found], dtype=float if name in numeric else object)[codes]
               if found else np.array([], dtype=float if name in numeric else object)
               for i, name in enumerate(ATTENUATION_COLUMNS)}
    return columns


_INDEX_CACHE: dict[int, dict[tuple[str, str, str], dict[str, object]]] = {}


def _lookup_index(attenuation: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, object]]:
    """(scenario, workload, gpu) → row, built once per attenuation table (a solve looks up ~20
    times; building the dict each time was a fifth of a solve). Keyed by the table's id and
    dropped when the table is garbage-collected, so a new table never sees a stale index."""
    key = id(attenuation)
    found = _INDEX_CACHE.get(key)
    if found is None:
        # later rows (calibration, user layers) overwrite earlier ones with the same key
        found = {(str(r["scenario"]), str(r["workload"]), str(r["gpu"])): r for r in attenuation.to_dict("records")}
        _INDEX_CACHE[key] = found
        weakref.finalize(attenuation, _INDEX_CACHE.pop, key, None)
    return found


def _most_specific(index: dict[tuple[str, str, str], dict[str, object]], scenario: str, gpu: str, *,
                   workload: str) -> tuple[object, ...]:
    values = {"scenario": scenario, "workload": workload, "gpu": gpu, "any": "any", "": ""}
    for sc_key, wl_key, gpu_key in _LOOKUP_ORDER:
        sc, wl, g = values[sc_key], values[wl_key], values[gpu_key]
        row = index.get((sc, wl, g))
        if row is None:
            continue
        low, high = float(row["low"]), float(row["high"])  # type: ignore[arg-type]
        median = _number(row.get("median"), (low + high) / 2.0)
        ref_gpus = _number(row.get("ref_gpus"), 1.0)
        source = f"{sc}/{wl}" + (f"/{g}" if g else "")
        return (low, high, median, float(row["uncertainty"]), ref_gpus,  # type: ignore[arg-type]
                str(row["bottleneck"]), source)
    raise KeyError(f"no attenuation row for scenario {scenario!r}")


def _number(value: object, default: float) -> float:
    """A catalog cell that may be empty (NaN/None) → float, else ``default``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return default if number != number else number


# ---------------------------------------------------------------------------
# Precision: reference peak and realised speed-up

REFERENCE_PRECISIONS = ("bf16", "fp16", "fp32")   # the first a GPU has is its reference
FALLBACK_PRECISION = {"bf16": "fp16"}             # V100/T4 run "bf16" jobs in fp16 mixed precision
PRECISION_COLUMNS = ("run_precision", "ref_precision", "ref_peak_tflops", "datasheet_tflops",
                     "precision_speedup", "speedup_source", "peak_tflops")


def _peak(gpus: pd.DataFrame, gpu: np.ndarray, precision: str) -> np.ndarray:
    column = f"peak_tflops_{precision}"
    if column not in gpus.columns:
        return np.full(len(gpu), np.nan)
    values = pd.Series(gpu).map(gpus[column]).to_numpy(dtype=float)
    return np.where(values > 0, values, np.nan)


def effective_peaks(gpus: pd.DataFrame, speedups: pd.DataFrame, workload: str, gpu: np.ndarray,
                    precision: str) -> pd.DataFrame:
    """Per GPU: the precision it really runs, its reference precision and peak, the realised
    speed-up over the reference and the resulting ``peak_tflops`` (NaN: precision unsupported)."""
    names = np.asarray(gpu, dtype=object).astype(str)
    unique, inverse = np.unique(names, return_inverse=True)
    return _effective_peaks(gpus, speedups, workload, unique.astype(object), precision).iloc[inverse].reset_index(
        drop=True)


def _effective_peaks(gpus: pd.DataFrame, speedups: pd.DataFrame, workload: str, gpu: np.ndarray,
                     precision: str) -> pd.DataFrame:
    n = len(gpu)
    own = _peak(gpus, gpu, precision)
    run = np.full(n, precision, dtype=object)
    fallback = FALLBACK_PRECISION.get(precision)
    if fallback is not None:
        alt = _peak(gpus, gpu, fallback)
        use_alt = np.isnan(own) & ~np.isnan(alt)
        own = np.where(use_alt, alt, own)
        run = np.where(use_alt, fallback, run)
    ref_precision = np.full(n, "", dtype=object)
    ref_peak = np.full(n, np.nan)
    for candidate in reversed(REFERENCE_PRECISIONS):  # the first present wins
        peak = _peak(gpus, gpu, candidate)
        present = ~np.isnan(peak)
        ref_precision = np.where(present, candidate, ref_precision)
        ref_peak = np.where(present, peak, ref_peak)
    speedup = np.where(run == ref_precision, 1.0, np.minimum(own / ref_peak, 1.0))
    source = np.where(run == ref_precision, "reference precision",
                      np.where(own < ref_peak, "datasheet ratio (a slow-down)", "no measured gain: 1.0"))
    measured = _measured_speedups(speedups, workload, gpu, run, ref_precision)
    has = ~np.isnan(measured[0])
    speedup = np.where(has, measured[0], speedup)
    source = np.where(has, measured[1], source)
    supported = ~np.isnan(own) & ~np.isnan(ref_peak)
    ref_peak_or_nan = np.where(supported, ref_peak, np.nan)
    return pd.DataFrame({
        "run_precision": run, "ref_precision": ref_precision, "ref_peak_tflops": ref_peak_or_nan,
        "datasheet_tflops": own, "precision_speedup": speedup, "speedup_source": source,
        "peak_tflops": ref_peak_or_nan * speedup,
    })


def _measured_speedups(speedups: pd.DataFrame, workload: str, gpu: np.ndarray, run: np.ndarray,
                       ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """precision.csv look-up: (workload, gpu) > (workload, any gpu) > (any, gpu) > (any, any)."""
    n = len(gpu)
    value, source = np.full(n, np.nan), np.full(n, "", dtype=object)
    if speedups is None or speedups.empty:
        return value, source
    index = {(str(r["workload"]), str(r["gpu"]), str(r["precision"])): r for r in speedups.to_dict("records")}
    for i in range(n):
        if run[i] == ref[i]:
            continue
        for wl, g in ((workload, gpu[i]), (workload, ""), ("any", gpu[i]), ("any", "")):
            row = index.get((wl, str(g), str(run[i])))
            if row is not None:
                value[i] = float(row["speedup"])
                source[i] = f"precision.csv {wl}/{g or 'any'}/{run[i]}: {row['source']}"
                break
    return value, source


def reference_scale(ref_gpus: np.ndarray, per_doubling: dict[str, float]) -> np.ndarray:
    """scale(ref_gpus) on the layout published figures are measured on: 8-GPU NVLink nodes
    joined by InfiniBand (HGX/DGX), i.e. nvlink^log2(min(n, 8)) × infiniband^log2(n / 8)."""
    ref = np.maximum(np.asarray(ref_gpus, dtype=float), 1.0)
    intra = per_doubling.get("nvlink", 1.0) ** np.log2(np.minimum(ref, 8.0))
    inter = per_doubling.get("infiniband", 1.0) ** np.log2(np.maximum(ref / 8.0, 1.0))
    return np.asarray(intra * inter, dtype=float)


def evaluate(
    table: pd.DataFrame,
    estimate: FlopEstimate,
    job: Job,
    attenuation: pd.DataFrame,
    assumptions: Assumptions,
) -> pd.DataFrame:
    """Add scenario, attenuation, buffer, scale, hours, billed hours and cost columns.

    ``table`` holds one row per candidate with the offer columns plus ``instances``,
    ``gpu_count``, ``precision``, ``peak_tflops`` (effective: reference peak × speed-up),
    ``mem_bandwidth_gbs`` and ``hourly_cost_usd`` (per instance).
    """
    n = len(table)
    kind = table["kind"].to_numpy(dtype=object)
    scenario = auto_scenario(kind) if job.scenario == "auto" else np.full(n, job.scenario, dtype=object)
    factor_scenario = (np.full(n, assumptions.attenuation_scenario, dtype=object)
                       if assumptions.attenuation_scenario else scenario)
    new: dict[str, np.ndarray] = {"scenario": scenario}
    new.update(attenuation_columns(attenuation, factor_scenario, job.workload.kind, table["gpu"].to_numpy()))
    if assumptions.efficiency_fit is not None and not assumptions.attenuation_scenario and n:
        new.update(assumptions.efficiency_fit.columns(table, estimate))
    if assumptions.attenuation_override is not None:
        # A figure the user (or a pitfall) states is per GPU on one GPU: every multi-GPU loss applies.
        point = np.full(n, float(assumptions.attenuation_override))
        new["ref_gpus"] = np.ones(n)
    else:
        point = {"low": new["att_low"], "high": new["att_high"]}.get(assumptions.attenuation_point or "",
                                                                        new["att_median"])
    new["attenuation"] = np.asarray(point, dtype=float)
    buffer = (np.full(n, float(assumptions.buffer_override)) if assumptions.buffer_override is not None
              else auto_buffer(new["uncertainty"]))
    new["buffer"] = buffer
    model = CountModel(table, estimate, assumptions, attenuation=new["attenuation"], buffer=buffer,
                       ref_gpus=new["ref_gpus"])
    new.update(model.columns(np.arange(n), table["instances"].to_numpy(float)))
    return with_columns(table, new)


class CountModel:
    """The half of ``evaluate`` that follows the instance count, on arrays: scale-out, seconds,
    hours, billing and cost of given rows at any count k, and whether they fit in memory.

    One formula for every caller: ``evaluate`` prices its rows at their own counts with it,
    ``at_counts`` and ``repriced`` re-price evaluated rows, and the exact-count search (counts.py)
    probes hundreds of counts per row. Plain numpy on arrays taken once from the rows: building a
    DataFrame per probe made the search most of a solve.

        scale(k)   = intra^log2(GPUs per instance) / scale(ref_gpus) × inter^log2(k)
        seconds(k) = base_seconds(k × GPUs per instance, …, attenuation, scale(k))
        hours(k)   = seconds(k) × (1 + buffer) × (1 + spot interruption overhead) / 3600
        cost(k)    = k × hourly cost × billed_hours(hours(k))
    """

    def __init__(self, rows: pd.DataFrame, estimate: FlopEstimate, assumptions: Assumptions, *,
                 attenuation: np.ndarray | None = None, buffer: np.ndarray | None = None,
                 ref_gpus: np.ndarray | None = None, count_slope: float = 0.0, at: np.ndarray | None = None) -> None:
        """``rows`` (or its rows at positions ``at``), with their attenuation, buffer and ref_gpus
        columns unless given. ``count_slope``: a calibrated fit's β_n, when the attenuation of a
        row measured at count_lo is to follow the count (the search); 0 prices each row as is."""
        def col(name: str, dtype: type | None = float) -> np.ndarray:
            values = rows[name].to_numpy(dtype=dtype) if dtype is not None else rows[name].to_numpy(dtype=object)
            return np.asarray(values if at is None else values[at])

        def given(values: np.ndarray | None, name: str) -> np.ndarray:
            return col(name) if values is None else np.asarray(values, dtype=float)

        self.estimate = estimate
        per_doubling = assumptions.scale_efficiency
        self.gpi = col("gpus_per_instance")
        interconnect = pd.Series(col("interconnect", None))
        intra = mapped(interconnect, per_doubling, 1.0)
        self.inter = inter_node_efficiency(interconnect, pd.Series(self.gpi), per_doubling)
        ref_scale = reference_scale(given(ref_gpus, "ref_gpus"), per_doubling)
        self.intra_over_ref = np.power(intra, np.log2(np.maximum(self.gpi, 1.0))) / ref_scale
        self.peak = col("peak_tflops")
        self.precision = col("precision", None)
        self.value_bytes = mapped(pd.Series(self.precision), BYTES_PER_VALUE, np.nan)   # read for inference only
        self.bandwidth = col("mem_bandwidth_gbs") if "mem_bandwidth_gbs" in rows.columns else np.zeros(len(self.gpi))
        self.attenuation = given(attenuation, "attenuation")
        self.count_slope = float(count_slope)
        self.count_lo = col("count_lo") if count_slope else np.ones(len(self.gpi))
        spot = col("kind", None) == "spot"
        self.factor = (1.0 + given(buffer, "buffer")) * (
            1.0 + np.where(spot, np.nan_to_num(col("interruption_overhead")), 0.0))
        self.increment = np.nan_to_num(col("billing_increment_hours"))
        self.minimum = np.nan_to_num(col("min_hours"))
        self.hourly = col("hourly_cost_usd")
        self.memory = col("memory_gb") if "memory_gb" in rows.columns else np.full(len(self.gpi), np.nan)

    def for_estimate(self, estimate: FlopEstimate) -> "CountModel":
        """The same rows for another job of the same shape (shared_pricing.SharedPricing)."""
        other = copy.copy(self)
        other.estimate = estimate
        return other

    def _seconds(self, rows: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seconds, roofline-bound?, scale) of ``rows`` at ``k`` instances, before the buffer."""
        scale = self.intra_over_ref[rows] * np.power(self.inter[rows], np.log2(np.maximum(k, 1.0)))
        attenuation = self.attenuation[rows]
        if self.count_slope:   # at k: the probe's value × 2^(β_n · log2(k / count_lo)), capped at 1
            attenuation = np.minimum(attenuation * np.exp(self.count_slope * np.log2(k / self.count_lo[rows])), 1.0)
        seconds, roofline = base_seconds(k * self.gpi[rows], self.peak[rows], self.value_bytes[rows],
                                         self.bandwidth[rows], self.estimate, attenuation, scale)
        return seconds, roofline, scale

    def hours(self, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        seconds, _, _ = self._seconds(rows, np.asarray(k, dtype=float))
        return np.asarray(seconds * self.factor[rows] / 3600.0, dtype=float)

    def cost(self, rows: np.ndarray, k: np.ndarray, hours: np.ndarray) -> np.ndarray:
        billed = billed_hours(hours, self.increment[rows], self.minimum[rows])
        return np.asarray(k * self.hourly[rows] * billed, dtype=float)

    def lower_bound(self, rows: np.ndarray, k: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """k × price × max(min_hours, hours): ≤ cost(k), and non-decreasing in k (counts.py)."""
        return np.asarray(k * self.hourly[rows] * np.maximum(self.minimum[rows], hours), dtype=float)

    def need_gb(self, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        return need_gb_per_gpu(self.estimate.workload, self.precision[rows], k * self.gpi[rows])

    def fits(self, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.asarray(fits_memory(self.need_gb(rows, k), self.memory[rows]), dtype=bool)

    def columns(self, rows: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
        """The candidate columns that follow the count (candidate_schema ``evaluate`` stage)."""
        k = np.asarray(k, dtype=float)
        seconds, roofline, scale = self._seconds(rows, k)
        hours = np.asarray(seconds * self.factor[rows] / 3600.0, dtype=float)
        billed = billed_hours(hours, self.increment[rows], self.minimum[rows])
        return {"scale_efficiency": np.asarray(scale, dtype=float), "roofline_bound": roofline,
                "base_hours": seconds / 3600.0, "hours": hours, "billed_hours": billed,
                "cost_usd": np.asarray(k * self.hourly[rows] * billed, dtype=float)}


def attenuation_follows_count(assumptions: Assumptions) -> bool:
    """A calibrated fit makes the attenuation row itself depend on the GPU count."""
    return assumptions.efficiency_fit is not None and not assumptions.attenuation_scenario


def at_counts(evaluated: pd.DataFrame, positions: np.ndarray, instances: np.ndarray, estimate: FlopEstimate,
              assumptions: Assumptions, *, model: CountModel | None = None,
              model_rows: np.ndarray | None = None) -> pd.DataFrame:
    """Rows of ``evaluated`` (at ``positions``) re-priced at other instance counts, recomputing only
    the columns that follow the count — what ``evaluate`` gives for those rows, when the
    attenuation does not follow the count (``attenuation_follows_count``; callers check).
    ``model``: a count model whose rows ``model_rows`` are those rows (the exact-count search's),
    reused instead of building one."""
    rows = evaluated.take(np.asarray(positions, dtype=np.int64)).reset_index(drop=True)
    instances = np.asarray(instances, dtype=np.int64)
    if model is None or model_rows is None:
        model, model_rows = CountModel(rows, estimate, assumptions), np.arange(len(rows))
    gpu_count = instances * rows["gpus_per_instance"].to_numpy(np.int64)
    return with_columns(rows, {"instances": instances, "gpu_count": gpu_count,
                               "need_gb_per_gpu": model.need_gb(model_rows, instances),
                               **model.columns(model_rows, instances)})


def repriced(evaluated: pd.DataFrame, need_gb: np.ndarray, estimate: FlopEstimate,
             assumptions: Assumptions) -> pd.DataFrame:
    """``evaluated``'s rows for a job with ``estimate`` and this memory need per GPU: the columns
    that follow the FLOPs and the count recomputed, the rest (scenario, attenuation, buffer) kept.
    What ``evaluate`` gives when those kept columns are the same for both jobs: the same
    workload kind, scenario and assumptions, and the same model size under a calibrated fit
    (shared_pricing.SharedPricing keys on exactly these)."""
    model = CountModel(evaluated, estimate, assumptions)
    return with_columns(evaluated, {"need_gb_per_gpu": np.asarray(need_gb, dtype=float), **model.columns(
        np.arange(len(evaluated)), evaluated["instances"].to_numpy(float))})


def with_columns(table: pd.DataFrame, new: dict[str, np.ndarray]) -> pd.DataFrame:
    """``table`` with ``new`` columns added (or replaced), in one concat: setting twenty columns
    one by one cost more than computing them (pandas' per-column overhead, per job of a portfolio).
    Text stays in numpy object arrays (candidate_schema.py's dtype policy)."""
    frame = frame_of(new, table.index)
    overlap = [c for c in new if c in table.columns]
    return pd.concat([table.drop(columns=overlap) if overlap else table, frame], axis=1)


def frame_of(columns: dict[str, np.ndarray], index: pd.Index | None = None) -> pd.DataFrame:
    """A frame of ``columns``, text kept as numpy object arrays (candidate_schema.py's dtype policy;
    pandas would make each a ``str`` column of its own block)."""
    return pd.DataFrame({name: pd.Series(values, index=index, dtype=object) if values.dtype == object else values
                         for name, values in columns.items()}, index=index)


# value: (the evaluated frame, the estimate and attenuation table it used) — holding those keeps
# their ids from being reused by other objects while the entry lives
_EVALUATED: dict[tuple[int, int, int, str, str, str], tuple[pd.DataFrame, object, object]] = {}


def evaluate_once(table: pd.DataFrame, estimate: FlopEstimate, job: Job, attenuation: pd.DataFrame,
                  assumptions: Assumptions, owner: object | None = None) -> pd.DataFrame:
    """``evaluate``, memoised per (table, estimate, attenuation, scenario, workload, assumptions).

    Sensitivity re-plans one job a dozen times, and the stress tests change only the limits:
    the same candidates under the same assumptions are priced once. ``owner`` is the object whose
    lifetime the entry follows (default: the table); a copy is returned, so callers may add columns.
    """
    anchor = table if owner is None else owner
    key = (id(anchor), id(estimate), id(attenuation), job.scenario, job.workload.kind, repr(assumptions))
    found = _EVALUATED.get(key)
    if found is None:
        found = (evaluate(table, estimate, job, attenuation, assumptions), estimate, attenuation)
        _EVALUATED[key] = found
        weakref.finalize(anchor, _EVALUATED.pop, key, None)
    return found[0].copy(deep=False)


def relative_scale(out: pd.DataFrame, per_doubling: dict[str, float]) -> np.ndarray:
    """scale(n) of the candidate's layout ÷ scale(ref_gpus) of the figure it uses, in the order
    CountModel multiplies it (so ``flopopt estimate`` and ``solve`` agree to the last bit)."""
    ref = out["ref_gpus"].to_numpy(float) if "ref_gpus" in out.columns else np.ones(len(out))
    per_instance = out["gpus_per_instance"].to_numpy(float)
    intra = np.power(mapped(out["interconnect"], per_doubling, 1.0), np.log2(np.maximum(per_instance, 1.0)))
    inter = inter_node_efficiency(out["interconnect"], out["gpus_per_instance"], per_doubling)
    instances = out["instances"].to_numpy(float)
    return np.asarray(intra / reference_scale(ref, per_doubling) * np.power(inter, np.log2(np.maximum(instances, 1.0))),
                      dtype=float)


def inter_node_fabric(interconnect: pd.Series, gpus_per_instance: pd.Series) -> np.ndarray:
    """The fabric between instances: InfiniBand-class for IB offers and for 8-GPU NVLink
    servers (HGX nodes ship with IB or EFA/RoCE at 400 Gb/s per GPU), Ethernet otherwise."""
    fabric = np.asarray(interconnect, dtype=object)
    ib_class = (fabric == "infiniband") | ((fabric == "nvlink") & (np.asarray(gpus_per_instance, dtype=float) >= 8))
    return np.where(ib_class, "infiniband", "ethernet")


def mapped(labels: pd.Series, values: Mapping[str, float], default: float) -> np.ndarray:
    """``labels.map(values)`` as floats, looked up once per distinct label (a pointwise map over
    400,000 candidate rows of text took a tenth of a second per call)."""
    codes, uniques = pd.factorize(labels.to_numpy(dtype=object))
    table = np.array([values.get(str(u), default) for u in uniques] + [default], dtype=float)
    return np.asarray(table[codes], dtype=float)   # code -1 (missing) → the default


def inter_node_efficiency(interconnect: pd.Series, gpus_per_instance: pd.Series,
                          per_doubling: dict[str, float]) -> np.ndarray:
    """Efficiency per doubling of instances on the fabric between them (``inter_node_fabric``)."""
    ib_class = inter_node_fabric(interconnect, gpus_per_instance) == "infiniband"
    return np.where(ib_class, per_doubling.get("infiniband", 1.0), per_doubling.get("ethernet", 1.0)).astype(float)


def scale_out_efficiency(out: pd.DataFrame, per_doubling: dict[str, float]) -> np.ndarray:
    """efficiency(intra)^log2(GPUs per instance) × efficiency(inter)^log2(instances)."""
    per_instance = out["gpus_per_instance"].to_numpy(float)
    instances = out["instances"].to_numpy(float)
    intra = mapped(out["interconnect"], per_doubling, 1.0)
    inter = inter_node_efficiency(out["interconnect"], out["gpus_per_instance"], per_doubling)
    return np.asarray(np.power(intra, np.log2(np.maximum(per_instance, 1.0))) * np.power(
        inter, np.log2(np.maximum(instances, 1.0))), dtype=float)


def base_seconds_for(
    out: pd.DataFrame, estimate: FlopEstimate, attenuation: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds before the buffer, for given attenuation values (vectorised; also used by
    the Monte Carlo with one attenuation per sample). Returns (seconds, roofline-bound?)."""
    value_bytes = (mapped(out["precision"], BYTES_PER_VALUE, np.nan)
                   if estimate.workload.kind == "transformer_inference" else np.zeros(len(out)))
    bandwidth = (out["mem_bandwidth_gbs"].to_numpy(float) if "mem_bandwidth_gbs" in out.columns
                 else np.zeros(len(out)))
    return base_seconds(out["gpu_count"].to_numpy(dtype=float), out["peak_tflops"].to_numpy(dtype=float),
                        value_bytes, bandwidth, estimate, attenuation, scale)


def base_seconds(gpu_count: np.ndarray, peak_tflops: np.ndarray, value_bytes: np.ndarray,
                 mem_bandwidth_gbs: np.ndarray, estimate: FlopEstimate, attenuation: np.ndarray,
                 scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``base_seconds_for`` on plain arrays (the exact-count search calls it hundreds of times)."""
    n = gpu_count
    per_gpu_efficiency = np.minimum(attenuation * scale, MAX_EFFICIENCY)
    throughput = n * peak_tflops * 1e12 * per_gpu_efficiency
    total = estimate.total_flops
    w = estimate.workload
    if w.kind != "transformer_inference" or estimate.decode_tokens <= 0:
        return total / throughput, np.zeros(np.shape(throughput), dtype=bool)
    processed = estimate.terms.get("processed_tokens", 0.0) or 1.0
    decode_share = estimate.decode_tokens / processed
    compute_prefill = total * (1.0 - decode_share) / throughput
    compute_decode = total * decode_share / throughput
    weight_bytes = value_bytes * float(w.params or 0.0)
    steps = estimate.decode_tokens / float(w.batch_size or DEFAULT_SERVING_BATCH)
    bandwidth = n * mem_bandwidth_gbs * 1e9 * np.minimum(scale, MAX_EFFICIENCY)
    memory_decode = steps * (weight_bytes + kv_cache_bytes(w) / 2.0) / bandwidth  # KV: half-full on average
    return compute_prefill + np.maximum(compute_decode, memory_decode), memory_decode > compute_decode


def billed_hours(hours: np.ndarray, increment: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """Round up to the billing increment (0 = continuous), then apply the minimum."""
    safe = np.where(increment > 0, increment, 1.0)
    # subtract a hair so 2.0000000001 increments of float noise do not bill a third one
    rounded = np.where(increment > 0, np.ceil(hours / safe - 1e-9) * safe, hours)
    return np.asarray(np.maximum(rounded, minimum), dtype=float)
