"""``flopopt estimate``: the envelope calculation per GPU type, before any prices.

For every GPU in the catalog that supports one of the job's precisions: hours on 1
GPU, on one 8-GPU NVLink node and on the smallest power-of-two count whose GPUs hold
the job in memory (same memory model as the solver), under the job's scenario (or all
four when ``auto``), with the attenuation and buffer that produced each number.
``EstimateReport.smallest_fit`` is one row per GPU type — the answer to "how long on
this GPU, at the fewest GPUs that can run it" — which the command shows by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .flops import FlopEstimate, estimate_flops
from .job import SCENARIOS, Job
from .limits import fits_memory
from .memory import need_gb_per_gpu
from .performance import (
    auto_buffer,
    base_seconds_for,
    effective_peaks,
    lookup_attenuation,
    realistic_assumptions,
    relative_scale,
)
from .result import Status

ENVELOPE_GPU_COUNTS = (1, 8)
ENVELOPE_INTERCONNECT = "nvlink"      # an 8-GPU server: the common single-node case
GPUS_PER_NODE = 8
MAX_ENVELOPE_GPUS = 1024              # largest count tried for "fits in memory" without max_gpus


@dataclass(frozen=True)
class GpuEstimate:
    gpu: str
    precision: str
    scenario: str
    attenuation: float
    attenuation_low: float
    attenuation_high: float
    buffer: float
    gpu_count: int
    peak_tflops: float
    hours: float
    need_gb_per_gpu: float
    memory_gb: float
    fits_memory: bool


@dataclass(frozen=True)
class EstimateReport:
    job: Job
    estimate: FlopEstimate
    per_gpu: tuple[GpuEstimate, ...]
    # One row per GPU type at its smallest count that fits in memory (the representative
    # scenario for that count, the fastest precision); GPUs that cannot hold the job at
    # any count up to ``max_gpus`` are listed in ``no_fit``.
    smallest_fit: tuple[GpuEstimate, ...] = ()
    no_fit: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        """OK: estimate optimises nothing (an empty per_gpu means no GPU runs the precision)."""
        return Status.OK


def _power_of_two_counts(limit: int) -> list[int]:
    counts, n = [], 1
    while n <= limit:
        counts.append(n)
        n *= 2
    return counts


def _smallest_fitting_count(job: Job, estimate: FlopEstimate, memory_gb: float, precision: str) -> int | None:
    limit = int(job.constraints.max_gpus or MAX_ENVELOPE_GPUS)
    counts = np.array(_power_of_two_counts(limit), dtype=int)
    need = need_gb_per_gpu(estimate.workload, np.array([precision] * len(counts)), counts)
    fitting = counts[fits_memory(need, memory_gb)]
    return int(fitting[0]) if len(fitting) else None


def _representative_scenario(job: Job, gpu_count: int) -> str:
    """The scenario of the one-row-per-GPU summary: the job's own, or with ``auto`` the one a
    rented machine gets (cloud) — the environment, never the count, as solve does."""
    return job.scenario if job.scenario != "auto" else "cloud"


def estimate_job(job: Job, catalog: Catalog) -> EstimateReport:
    estimate = estimate_flops(job.workload, catalog.model_table(), job.source_file)
    assumptions = realistic_assumptions(job, catalog.efficiency)
    scenarios = list(SCENARIOS) if job.scenario == "auto" else [job.scenario]
    gpus = catalog.gpus
    names = np.asarray(gpus.index, dtype=object)
    rows = []
    for precision in job.precision:
        # solve's effective peak: reference precision × measured speed-up, fp16 standing in for bf16
        peaks = effective_peaks(gpus, catalog.precision, job.workload.kind, names, precision)
        for gpu, peak, run in zip(names, peaks["peak_tflops"], peaks["run_precision"]):
            if not (peak == peak and peak > 0):  # NaN-safe: unsupported precision
                continue
            memory_gb = float(gpus.at[gpu, "memory_gb"])
            smallest = _smallest_fitting_count(job, estimate, memory_gb, precision)
            counts = sorted(set(ENVELOPE_GPU_COUNTS) | ({smallest} if smallest else set()))
            for scenario in scenarios:
                for count in counts:
                    rows.append({"gpu": gpu, "precision": precision, "run_precision": run, "scenario": scenario,
                                 "gpu_count": count, "instances": max(count / GPUS_PER_NODE, 1.0),
                                 "gpus_per_instance": min(count, GPUS_PER_NODE), "interconnect": ENVELOPE_INTERCONNECT,
                                 "peak_tflops": float(peak), "memory_gb": memory_gb, "smallest": count == smallest,
                                 "architecture": str(gpus.at[gpu, "architecture"]) if "architecture" in gpus.columns
                                 else "", "mem_bandwidth_gbs": float(gpus.at[gpu, "mem_bandwidth_gbs"])})
    table = pd.DataFrame(rows)
    if table.empty:
        return EstimateReport(job, estimate, ())
    att = lookup_attenuation(catalog.attenuation, table["scenario"].to_numpy(), job.workload.kind,
                             table["gpu"].to_numpy())
    for column in att.columns:
        table[column] = att[column].to_numpy()
    if assumptions.efficiency_fit is not None:
        assumptions.efficiency_fit.apply(table, estimate)
    low, high = table["att_low"].to_numpy(float), table["att_high"].to_numpy(float)
    if assumptions.attenuation_override is not None:   # a single-GPU figure, as in solve
        point = np.full(len(table), assumptions.attenuation_override)
        table["ref_gpus"] = 1.0
    else:
        point = table["att_median"].to_numpy(float)
    buffer = (np.full(len(table), assumptions.buffer_override)
              if assumptions.buffer_override is not None else auto_buffer(table["uncertainty"].to_numpy(float)))
    # 8-GPU NVLink nodes on InfiniBand, relative to where the attenuation figure was measured
    scale = relative_scale(table, assumptions.scale_efficiency)
    seconds, _ = base_seconds_for(table, estimate, point, scale)
    hours = seconds * (1.0 + buffer) / 3600.0
    need_gb = need_gb_per_gpu(estimate.workload, table["precision"].to_numpy(), table["gpu_count"].to_numpy())
    per_gpu = tuple(
        GpuEstimate(gpu=str(r.gpu), precision=str(r.precision), scenario=str(r.scenario),
                    attenuation=float(point[i]), attenuation_low=float(low[i]), attenuation_high=float(high[i]),
                    buffer=float(buffer[i]), gpu_count=int(r.gpu_count), peak_tflops=float(r.peak_tflops),
                    hours=float(hours[i]), need_gb_per_gpu=float(need_gb[i]), memory_gb=float(r.memory_gb),
                    fits_memory=bool(fits_memory(need_gb[i], r.memory_gb)))
        for i, r in enumerate(table.itertuples(index=False))
    )
    smallest_rows = [g for g, flag in zip(per_gpu, table["smallest"]) if flag
                     and g.scenario == _representative_scenario(job, g.gpu_count)]
    best: dict[str, GpuEstimate] = {}
    for g in smallest_rows:  # per GPU: fewest GPUs first, then the fastest precision
        current = best.get(g.gpu)
        if current is None or (g.gpu_count, g.hours) < (current.gpu_count, current.hours):
            best[g.gpu] = g
    smallest_fit = tuple(sorted(best.values(), key=lambda g: (g.hours, g.gpu)))
    no_fit = tuple(sorted(set(table["gpu"].astype(str)) - set(best)))
    return EstimateReport(job, estimate, per_gpu, smallest_fit, no_fit)
