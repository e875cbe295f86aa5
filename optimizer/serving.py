"""Serving fleets (``kind: transformer_serving``): replicas that carry the peak within latency targets.

A service runs for its whole window and must carry its *peak* load at its latency targets, so
it is sized in replicas, not in hours of work. Per replica option — (offer, precision,
tensor-parallel degree TP within one instance) — this module computes, per request bucket:

Memory (vLLM-style paged KV cache):
    usable  = TP · memory_gb · 0.9          vLLM's default gpu_memory_utilization = 0.9
    W       = params · bytes(precision)     weights, split over the TP GPUs
    kv      = 2 · L · d_kv · 2 B per token  K and V per layer in 16 bit; d_kv = d · n_kv/n_heads
    B_mem   = ⌊(usable − W) / (kv · (P + O))⌋   every sequence of the batch at its full context
Roofline (Williams et al. 2009) with F = TP · peak · min(attenuation · scale(TP) / scale(ref_gpus), 1)
(performance.py's effective peak and end-to-end attenuation, measured at ref_gpus) and
BW = TP · bandwidth · scale(TP):
    prefill  t_pre    = max((2·N·P + 2·L·d·P²) / F, W / BW)        compute-bound
    decode   t_dec(B) = max((W + B·kv·C̄) / BW, B·(2·N + 4·L·d·C̄) / F),  C̄ = P + O/2
                        memory-bandwidth-bound: every step streams the weights and the KV cache
Continuous batching (Orca, Yu et al. 2022) with prefills interleaved (Sarathi-Serve, Agrawal et
al. 2024): while B sequences decode, B/O new ones arrive per step and are prefilled, so
    TPOT(B) = t_dec(B) + (B/O) · t_pre        time per output token seen by a user
    TTFT(B) = t_pre + t_dec(B)                the prompt waits for the running step, then prefills
    μ(B)    = 1 / (t_pre + O · t_dec(B) / B)  requests/s one replica sustains
The batch is the largest B ≤ min(B_mem, 256) meeting both targets (256 = vLLM's default
max_num_seqs; TPOT and TTFT grow with B, so this is also the highest-throughput feasible batch).
Planning capacity is μ / (1 + buffer), the project's buffer turned into headroom.

The integer program (serving_model.py) then buys whole instances of options to carry the peak
of every bucket at least cost over the window: cost = instances × price per instance-hour
(owned: amortised capex + power, loader.hourly_cost_usd) × billed fleet hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog, hourly_cost_usd
from .candidates import allowed_offers
from .demand import Demand
from .errors import InputError
from .flops import ResolvedWorkload
from .job import Job
from .memory import BYTES_PER_VALUE, KV_CACHE_BYTES_PER_VALUE
from .performance import (
    MAX_EFFICIENCY,
    Assumptions,
    auto_buffer,
    auto_scenario,
    billed_hours,
    effective_peaks,
    lookup_attenuation,
    reference_scale,
)

USABLE_MEMORY_FRACTION = 0.9   # vLLM gpu_memory_utilization default: the rest is runtime + activations
MAX_BATCH = 256                # vLLM max_num_seqs default: sequences scheduled together
MAX_TENSOR_PARALLEL = 8        # one NVLink domain (an HGX node); TP across nodes is too slow to serve
# Prefill efficiency comes from attenuation.csv's inference rows (prefill is inference compute).
ATTENUATION_WORKLOAD = "transformer_inference"


# ---------------------------------------------------------------------------
# demand


# ---------------------------------------------------------------------------
# replica options


@dataclass(frozen=True)
class ModelShape:
    params: float           # all parameters (resident in memory, MoE experts included)
    active_params: float    # parameters touched per token
    layers: int
    d_model: int
    kv_width: float         # d · n_kv_heads / n_heads

    @property
    def kv_bytes_per_token(self) -> float:
        return 2.0 * self.layers * self.kv_width * KV_CACHE_BYTES_PER_VALUE


def model_shape(w: ResolvedWorkload, file: str) -> ModelShape:
    for name in ("params", "layers", "d_model"):
        if getattr(w, name) is None:
            raise InputError.at(file, f"workload.{name}", "required for kind transformer_serving: the KV cache "
                                "and attention need the model's shape (give workload.model from "
                                "catalogs/models.csv, or params, layers, d_model, n_heads, n_kv_heads)")
    kv_width = float(w.d_model or 0)
    if w.n_kv_heads and w.n_heads:
        kv_width *= float(w.n_kv_heads) / float(w.n_heads)
    return ModelShape(float(w.params or 0.0), float(w.compute_params or 0.0), int(w.layers or 0),
                      int(w.d_model or 0), kv_width)


def tensor_parallel_degrees(gpus_per_instance: int) -> list[int]:
    """1, 2, 4, 8 dividing the instance (and the instance itself when smaller and not a power of two)."""
    degrees = [tp for tp in (1, 2, 4, 8) if tp <= min(gpus_per_instance, MAX_TENSOR_PARALLEL)
               and gpus_per_instance % tp == 0]
    return degrees or [gpus_per_instance]


def replica_options(job: Job, catalog: Catalog, precisions: list[str] | None = None) -> tuple[pd.DataFrame,
                                                                                               dict[str, int]]:
    """One row per (offer, precision, TP) the allow-lists admit, priced for the job's window."""
    excluded: dict[str, int] = {}
    offers = allowed_offers(catalog.offers, job, excluded).reset_index(drop=True)
    offers = offers.assign(hourly_cost_usd=hourly_cost_usd(offers).to_numpy())
    gpus = catalog.gpus
    max_gpus = job.constraints.max_gpus
    parts = []
    for precision in precisions or list(job.precision):
        # effective peak: the reference precision's peak × the realised speed-up (performance.py)
        peaks = effective_peaks(gpus, catalog.precision, ATTENUATION_WORKLOAD, offers["gpu"].to_numpy(), precision)
        peak = peaks["peak_tflops"].to_numpy(float)
        supported = ~np.isnan(peak) & (np.nan_to_num(peak) > 0)
        if (~supported).any():
            key = f"gpu has no {precision} tensor throughput"
            excluded[key] = excluded.get(key, 0) + int((~supported).sum())
        parts.append(offers[supported].assign(precision=precision, peak_tflops=peak[supported]))
    base = pd.concat(parts, ignore_index=True) if parts else offers.iloc[0:0]
    per_instance = base["gpus_per_instance"].to_numpy(int)
    if max_gpus is not None and (per_instance > max_gpus).any():
        excluded[f"instance has more GPUs than max_gpus={max_gpus}"] = int((per_instance > max_gpus).sum())
        base, per_instance = base[per_instance <= max_gpus], per_instance[per_instance <= max_gpus]
    degrees = [tensor_parallel_degrees(int(g)) for g in per_instance]
    table = base.loc[base.index.repeat([len(d) for d in degrees])].reset_index(drop=True)
    if table.empty:
        return table, excluded
    table["tensor_parallel"] = np.concatenate(degrees).astype(int)
    table["replicas_per_instance"] = table["gpus_per_instance"].astype(int) // table["tensor_parallel"]
    table["option_id"] = (table["offer_id"] + "/" + table["precision"] + "/tp"
                          + table["tensor_parallel"].astype(str))
    table["memory_gb"] = table["gpu"].map(gpus["memory_gb"]).astype(float)
    table["mem_bandwidth_gbs"] = table["gpu"].map(gpus["mem_bandwidth_gbs"]).astype(float)
    # The realistic scenario and its attenuation row, looked up once (re-plans reuse them).
    if job.scenario == "auto":
        scenario = auto_scenario(table["kind"])
    else:
        scenario = np.full(len(table), job.scenario, dtype=object)
    table["scenario"] = scenario
    att = lookup_attenuation(catalog.attenuation, scenario, ATTENUATION_WORKLOAD, table["gpu"].to_numpy())
    for column in att.columns:
        table[column] = att[column].to_numpy()
    return table.reset_index(drop=True), excluded


def window_cost_usd(options: pd.DataFrame, demand: Demand) -> np.ndarray:
    """Cost of one instance over the window: always-on is one billed session; part-time service
    is one session per day (billing increments and minimum hours apply to each)."""
    increment = options["billing_increment_hours"].fillna(0.0).to_numpy(float)
    minimum = options["min_hours"].fillna(0.0).to_numpy(float)
    if demand.hours_per_day >= 24.0:
        billed = billed_hours(np.full(len(options), demand.window_hours), increment, minimum)
    else:
        days = demand.window_hours / 24.0
        billed = days * billed_hours(np.full(len(options), demand.hours_per_day), increment, minimum)
    return np.asarray(options["hourly_cost_usd"].to_numpy(float) * billed, dtype=float)


@dataclass(frozen=True)
class ReplicaTable:
    """The replica model's numbers: per option (rows of ``options``) and per bucket (columns)."""

    options: pd.DataFrame            # offer columns + precision, TP, scenario, attenuation, buffer, cost
    batch: np.ndarray                # (K, B) chosen batch, 0 = cannot serve the bucket
    ttft_seconds: np.ndarray         # (K, B) at the chosen batch (at batch 1 when it cannot serve)
    tpot_seconds: np.ndarray         # (K, B)
    rps_per_replica: np.ndarray      # (K, B) μ at the chosen batch, buffer excluded
    planning_rps: np.ndarray         # (K, B) μ / (1 + buffer): what the integer program counts on
    limited_by: np.ndarray           # (K, B) what stopped the batch growing
    weights_gb: np.ndarray           # (K,) per replica
    usable_memory_gb: np.ndarray     # (K,) per replica


def _attenuation(options: pd.DataFrame, job: Job, catalog: Catalog, assumptions: Assumptions) -> pd.DataFrame:
    """Scenario, attenuation point and buffer per option (performance.py's conventions)."""
    out = options.copy()
    if assumptions.attenuation_scenario:
        factor_scenario = np.full(len(out), assumptions.attenuation_scenario, dtype=object)
        att = lookup_attenuation(catalog.attenuation, factor_scenario, ATTENUATION_WORKLOAD, out["gpu"].to_numpy())
        for column in att.columns:
            out[column] = att[column].to_numpy()
    low, high = out["att_low"].to_numpy(float), out["att_high"].to_numpy(float)
    if assumptions.attenuation_override is not None:
        out["attenuation"] = assumptions.attenuation_override
    else:
        out["attenuation"] = {"low": low, "high": high, "mid": out["att_median"].to_numpy(float)}[
            assumptions.attenuation_point]
    out["buffer"] = (assumptions.buffer_override if assumptions.buffer_override is not None
                     else auto_buffer(out["uncertainty"].to_numpy(float)))
    # Tensor parallelism inside one instance loses eff(interconnect) per doubling; attenuation
    # figures are measured at ref_gpus GPUs, so compute efficiency is rescaled relative to that
    # layout and capped at 1, as performance.py does for training and batch inference.
    intra = out["interconnect"].map(assumptions.scale_efficiency).fillna(1.0).to_numpy(float)
    out["scale_efficiency"] = np.power(intra, np.log2(out["tensor_parallel"].to_numpy(float)))
    relative = out["scale_efficiency"].to_numpy(float) / reference_scale(out["ref_gpus"].to_numpy(float),
                                                                          assumptions.scale_efficiency)
    out["compute_efficiency"] = np.minimum(out["attenuation"].to_numpy(float) * relative, MAX_EFFICIENCY)
    return out


def replica_table(options: pd.DataFrame, shape: ModelShape, demand: Demand, job: Job, catalog: Catalog,
                  assumptions: Assumptions) -> ReplicaTable:
    """The replica model of the module docstring, vectorised over options × batch sizes."""
    k, n_buckets = len(options), len(demand.buckets)
    if k == 0:
        empty = np.zeros((0, n_buckets))
        return ReplicaTable(options, empty, empty, empty, empty, empty, empty.astype(object), np.zeros(0),
                            np.zeros(0))
    out = _attenuation(options, job, catalog, assumptions)
    out["cost_window_usd"] = window_cost_usd(out, demand)
    tp = out["tensor_parallel"].to_numpy(float)
    scale = out["scale_efficiency"].to_numpy(float)
    flops_rate = tp * out["peak_tflops"].to_numpy(float) * 1e12 * out["compute_efficiency"].to_numpy(float)
    bandwidth = tp * out["mem_bandwidth_gbs"].to_numpy(float) * 1e9 * scale
    weights = out["precision"].map(BYTES_PER_VALUE).to_numpy(float) * shape.params
    usable = tp * out["memory_gb"].to_numpy(float) * 1e9 * USABLE_MEMORY_FRACTION
    kv = shape.kv_bytes_per_token
    sizes = np.arange(1, MAX_BATCH + 1, dtype=float)[None, :]
    shapes = (k, n_buckets)
    batch, ttft, tpot, mu = (np.zeros(shapes) for _ in range(4))
    limited = np.full(shapes, "", dtype=object)
    ttft_target = demand.ttft_seconds or math.inf
    tpot_target = demand.tpot_seconds or math.inf
    for b, bucket in enumerate(demand.buckets):
        p, o = bucket.prompt_tokens, bucket.output_tokens
        mean_context = p + o / 2.0
        b_mem = np.floor(np.maximum(usable - weights, 0.0) / (kv * bucket.tokens))
        prefill_flops = 2.0 * shape.active_params * p + 2.0 * shape.layers * shape.d_model * p * p
        t_pre = np.maximum(prefill_flops / flops_rate, weights / bandwidth)[:, None]
        step_flops = 2.0 * shape.active_params + 4.0 * shape.layers * shape.d_model * mean_context
        t_dec = np.maximum((weights[:, None] + sizes * kv * mean_context) / bandwidth[:, None],
                           sizes * step_flops / flops_rate[:, None])
        step_tpot = t_dec + sizes / o * t_pre
        step_ttft = t_pre + t_dec
        fits = sizes <= np.minimum(b_mem, MAX_BATCH)[:, None]
        meets = (step_tpot <= tpot_target * (1 + 1e-12)) & (step_ttft <= ttft_target * (1 + 1e-12))
        ok = fits & meets
        best = np.where(ok.any(axis=1), MAX_BATCH - np.argmax(ok[:, ::-1], axis=1), 0)
        at = np.maximum(best, 1) - 1
        rows = np.arange(k)
        batch[:, b] = best
        ttft[:, b] = step_ttft[rows, at]
        tpot[:, b] = step_tpot[rows, at]
        mu[:, b] = np.where(best > 0, 1.0 / (t_pre[:, 0] + o * t_dec[rows, at] / np.maximum(best, 1)), 0.0)
        nxt = np.minimum(best, MAX_BATCH - 1)  # the batch one larger than chosen: why not that one?
        limited[:, b] = np.select(
            [b_mem < 1, best == 0, best >= MAX_BATCH, best >= b_mem,
             step_tpot[rows, nxt] > tpot_target, step_ttft[rows, nxt] > ttft_target],
            ["memory (weights do not fit)", "latency at batch 1", f"max batch {MAX_BATCH}", "memory (KV cache)",
             "tpot_seconds", "ttft_seconds"], default="")
    planning = mu / (1.0 + out["buffer"].to_numpy(float))[:, None]
    return ReplicaTable(out, batch, ttft, tpot, mu, planning, limited, weights / 1e9, usable / 1e9)
