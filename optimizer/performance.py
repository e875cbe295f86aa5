"""From (offer, GPU count, precision) to hours and cost — where attenuation is applied.

    throughput = n · peak(precision) · attenuation · scale(n)            [FLOP/s]
    hours      = FLOPs · (1 + buffer) / throughput / 3600                 (DESIGN.md §3)

Inference decode is additionally capped by memory bandwidth (roofline): each decode
step streams the weights and the KV cache once, so
    decode_seconds ≥ steps · (weight_bytes + kv_bytes) / (n · bandwidth · scale(n)).

Every assumption used (scenario, attenuation and its range, buffer, scale-out
efficiency, whether the roofline bound) is returned next to the number it produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from .flops import FlopEstimate
from .job import Job
from .memory import BYTES_PER_VALUE, DEFAULT_SERVING_BATCH, kv_cache_bytes

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

# Buffer from uncertainty: ±10% → 20%, ±30% → 50%, linear between, clamped (DESIGN.md §3).
BUFFER_AT_LOW_UNCERTAINTY = (0.10, 0.20)
BUFFER_AT_HIGH_UNCERTAINTY = (0.30, 0.50)


def auto_buffer(uncertainty: np.ndarray | float) -> np.ndarray:
    (u0, b0), (u1, b1) = BUFFER_AT_LOW_UNCERTAINTY, BUFFER_AT_HIGH_UNCERTAINTY
    raw = b0 + (np.asarray(uncertainty, dtype=float) - u0) * (b1 - b0) / (u1 - u0)
    return np.clip(raw, b0, b1)


def auto_scenario(kind: pd.Series, instances: np.ndarray) -> np.ndarray:
    """DESIGN.md §3: edge offers → edge; several nodes (or a cluster quote) → cluster;
    an owned single node → lab; a rented single node → cloud."""
    kinds = kind.to_numpy()
    return np.select(
        [kinds == "edge", (instances > 1) | (kinds == "cluster_quote"), kinds == "owned"],
        ["edge", "cluster", "lab"],
        default="cloud",
    )


@dataclass(frozen=True)
class Assumptions:
    """What the planner believes. The realistic model is the default; the pitfalls of
    sensitivity.py are other instances of this (e.g. attenuation_override=1.0)."""

    attenuation_override: float | None = None
    attenuation_point: Literal["mid", "low", "high"] = "mid"
    buffer_override: float | None = None
    attenuation_scenario: str | None = None   # use this scenario's factors for every candidate
    scale_efficiency: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING)
    )


def realistic_assumptions(job: Job) -> Assumptions:
    scale = dict(DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING)
    scale.update({str(k): float(v) for k, v in job.performance.scale_efficiency_per_doubling.items()})
    buffer = None if job.risk.buffer == "auto" else float(job.risk.buffer)
    return Assumptions(
        attenuation_override=job.performance.attenuation, buffer_override=buffer, scale_efficiency=scale
    )


ATTENUATION_COLUMNS = ("att_low", "att_high", "uncertainty", "bottleneck", "att_source")


def lookup_attenuation(
    attenuation: pd.DataFrame, scenario: np.ndarray, workload: str, gpu: np.ndarray
) -> pd.DataFrame:
    """Most specific row wins: (scenario, workload, gpu) > (scenario, workload) >
    (scenario, any, gpu) > (scenario, any). Returns low/high/uncertainty/bottleneck/source."""
    index = {
        (str(r["scenario"]), str(r["workload"]), str(r["gpu"])): r
        for r in attenuation.to_dict("records")
    }  # later rows (calibration, user layers) overwrite earlier ones with the same key
    keys = pd.MultiIndex.from_arrays([np.asarray(scenario, dtype=object).astype(str),
                                      np.asarray(gpu, dtype=object).astype(str)])
    codes, uniques = keys.factorize()
    found = [_most_specific(index, str(sc), str(g), workload=workload) for sc, g in uniques]
    columns = {name: np.array([f[i] for f in found], dtype=object)[codes] if found else np.array([], dtype=object)
               for i, name in enumerate(ATTENUATION_COLUMNS)}
    return pd.DataFrame(columns).astype({"att_low": float, "att_high": float, "uncertainty": float})


def _most_specific(index: dict[tuple[str, str, str], dict[str, object]], scenario: str, gpu: str, *,
                   workload: str) -> tuple[object, ...]:
    for wl, g in ((workload, gpu), (workload, ""), ("any", gpu), ("any", "")):
        row = index.get((scenario, wl, g))
        if row is not None:
            source = f"{scenario}/{wl}" + (f"/{g}" if g else "")
            return (float(row["low"]), float(row["high"]), float(row["uncertainty"]),  # type: ignore[arg-type]
                    str(row["bottleneck"]), source)
    raise KeyError(f"no attenuation row for scenario {scenario!r}")


def evaluate(
    table: pd.DataFrame,
    estimate: FlopEstimate,
    job: Job,
    attenuation: pd.DataFrame,
    assumptions: Assumptions,
) -> pd.DataFrame:
    """Add scenario, attenuation, buffer, scale, hours, billed hours and cost columns.

    ``table`` holds one row per candidate with the offer columns plus ``instances``,
    ``gpu_count``, ``precision``, ``peak_tflops``, ``mem_bandwidth_gbs`` and
    ``hourly_cost_usd`` (per instance).
    """
    out = table.copy()
    instances = out["instances"].to_numpy(dtype=float)
    if job.scenario == "auto":
        scenario = auto_scenario(out["kind"], instances)
    else:
        scenario = np.full(len(out), job.scenario, dtype=object)
    out["scenario"] = scenario
    factor_scenario = (
        np.full(len(out), assumptions.attenuation_scenario, dtype=object)
        if assumptions.attenuation_scenario
        else scenario
    )
    att = lookup_attenuation(attenuation, factor_scenario, job.workload.kind, out["gpu"].to_numpy())
    for column in att.columns:
        out[column] = att[column].to_numpy()
    low, high = out["att_low"].to_numpy(float), out["att_high"].to_numpy(float)
    if assumptions.attenuation_override is not None:
        point = np.full(len(out), assumptions.attenuation_override)
    elif assumptions.attenuation_point == "low":
        point = low
    elif assumptions.attenuation_point == "high":
        point = high
    else:
        point = (low + high) / 2.0
    out["attenuation"] = point
    if assumptions.buffer_override is not None:
        buffer = np.full(len(out), assumptions.buffer_override)
    else:
        buffer = auto_buffer(out["uncertainty"].to_numpy(float))
    out["buffer"] = buffer
    scale = scale_out_efficiency(out, assumptions.scale_efficiency)
    out["scale_efficiency"] = scale
    base_seconds, roofline = base_seconds_for(out, estimate, point, scale)
    out["roofline_bound"] = roofline
    out["base_hours"] = base_seconds / 3600.0
    finish_and_price(out, base_seconds * (1.0 + buffer) / 3600.0)
    return out


def inter_node_fabric(interconnect: pd.Series, gpus_per_instance: pd.Series) -> np.ndarray:
    """The fabric between instances: InfiniBand-class for IB offers and for 8-GPU NVLink
    servers (HGX nodes ship with IB or EFA/RoCE at 400 Gb/s per GPU), Ethernet otherwise."""
    ib_class = (interconnect == "infiniband") | ((interconnect == "nvlink") & (gpus_per_instance >= 8))
    return np.where(ib_class.to_numpy(), "infiniband", "ethernet")


def scale_out_efficiency(out: pd.DataFrame, per_doubling: dict[str, float]) -> np.ndarray:
    """efficiency(intra)^log2(GPUs per instance) × efficiency(inter)^log2(instances)."""
    per_instance = out["gpus_per_instance"].to_numpy(float)
    instances = out["instances"].to_numpy(float)
    intra = out["interconnect"].map(per_doubling).fillna(1.0).to_numpy(float)
    inter_fabric = inter_node_fabric(out["interconnect"], out["gpus_per_instance"])
    inter = np.array([per_doubling.get(f, 1.0) for f in inter_fabric], dtype=float)
    return np.asarray(np.power(intra, np.log2(np.maximum(per_instance, 1.0))) * np.power(
        inter, np.log2(np.maximum(instances, 1.0))), dtype=float)


def base_seconds_for(
    out: pd.DataFrame, estimate: FlopEstimate, attenuation: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds before the buffer, for given attenuation values (vectorised; also used by
    the Monte Carlo with one attenuation per sample). Returns (seconds, roofline-bound?)."""
    n = out["gpu_count"].to_numpy(dtype=float)
    peak = out["peak_tflops"].to_numpy(dtype=float) * 1e12
    throughput = n * peak * attenuation * scale
    total = estimate.total_flops
    w = estimate.workload
    if w.kind != "transformer_inference" or estimate.decode_tokens <= 0:
        return total / throughput, np.zeros(len(out), dtype=bool)
    processed = estimate.terms.get("processed_tokens", 0.0) or 1.0
    decode_share = estimate.decode_tokens / processed
    compute_prefill = total * (1.0 - decode_share) / throughput
    compute_decode = total * decode_share / throughput
    value_bytes = out["precision"].map(BYTES_PER_VALUE).to_numpy(float)
    weight_bytes = value_bytes * float(w.params or 0.0)
    steps = estimate.decode_tokens / float(w.batch_size or DEFAULT_SERVING_BATCH)
    bandwidth = n * out["mem_bandwidth_gbs"].to_numpy(float) * 1e9 * scale
    memory_decode = steps * (weight_bytes + kv_cache_bytes(w) / 2.0) / bandwidth  # KV: half-full on average
    return compute_prefill + np.maximum(compute_decode, memory_decode), memory_decode > compute_decode


def finish_and_price(out: pd.DataFrame, hours: np.ndarray) -> None:
    """Spot interruptions, billing increments, minimum hours and cost (in place)."""
    overhead = out["interruption_overhead"].fillna(0.0).to_numpy(float)
    overhead = np.where(out["kind"].to_numpy() == "spot", overhead, 0.0)
    hours = hours * (1.0 + overhead)
    out["hours"] = hours
    out["billed_hours"] = billed_hours(
        hours, out["billing_increment_hours"].fillna(0.0).to_numpy(float),
        out["min_hours"].fillna(0.0).to_numpy(float),
    )
    out["cost_usd"] = out["instances"].to_numpy(float) * out["hourly_cost_usd"].to_numpy(float) * out[
        "billed_hours"
    ].to_numpy(float)


def billed_hours(hours: np.ndarray, increment: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """Round up to the billing increment (0 = continuous), then apply the minimum."""
    safe = np.where(increment > 0, increment, 1.0)
    # subtract a hair so 2.0000000001 increments of float noise do not bill a third one
    rounded = np.where(increment > 0, np.ceil(hours / safe - 1e-9) * safe, hours)
    return np.asarray(np.maximum(rounded, minimum), dtype=float)
