"""``flopopt estimate``: the envelope calculation per GPU type, before any prices.

For every GPU in the catalog that supports one of the job's precisions: hours on 1
GPU and on one 8-GPU NVLink node, under the job's scenario (or all four when
``auto``), with the attenuation and buffer that produced each number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalogs.loader import Catalog
from .flops import FlopEstimate, estimate_flops
from .job import SCENARIOS, Job
from .performance import auto_buffer, base_seconds_for, lookup_attenuation, realistic_assumptions
from .result import Status

ENVELOPE_GPU_COUNTS = (1, 8)
ENVELOPE_INTERCONNECT = "nvlink"  # an 8-GPU server: the common single-node case


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


@dataclass(frozen=True)
class EstimateReport:
    job: Job
    estimate: FlopEstimate
    per_gpu: tuple[GpuEstimate, ...]

    @property
    def status(self) -> Status:
        """OK: estimate optimises nothing (an empty per_gpu means no GPU runs the precision)."""
        return Status.OK


def estimate_job(job: Job, catalog: Catalog) -> EstimateReport:
    estimate = estimate_flops(job.workload, catalog.model_table(), job.source_file)
    assumptions = realistic_assumptions(job, catalog.efficiency)
    scenarios = list(SCENARIOS) if job.scenario == "auto" else [job.scenario]
    gpus = catalog.gpus
    rows = []
    for gpu in gpus.index:
        for precision in job.precision:
            peak = gpus.at[gpu, f"peak_tflops_{precision}"]
            if not (peak == peak and peak > 0):  # NaN-safe: unsupported precision
                continue
            for scenario in scenarios:
                for count in ENVELOPE_GPU_COUNTS:
                    rows.append({"gpu": gpu, "precision": precision, "scenario": scenario,
                                 "gpu_count": count, "peak_tflops": float(peak),
                                 "mem_bandwidth_gbs": float(gpus.at[gpu, "mem_bandwidth_gbs"])})
    table = pd.DataFrame(rows)
    if table.empty:
        return EstimateReport(job, estimate, ())
    att = lookup_attenuation(catalog.attenuation, table["scenario"].to_numpy(), job.workload.kind,
                             table["gpu"].to_numpy())
    low, high = att["att_low"].to_numpy(float), att["att_high"].to_numpy(float)
    point = (np.full(len(table), assumptions.attenuation_override)
             if assumptions.attenuation_override is not None else (low + high) / 2.0)
    buffer = (np.full(len(table), assumptions.buffer_override)
              if assumptions.buffer_override is not None else auto_buffer(att["uncertainty"].to_numpy(float)))
    efficiency = assumptions.scale_efficiency.get(ENVELOPE_INTERCONNECT, 1.0)
    scale = np.power(efficiency, np.log2(table["gpu_count"].to_numpy(float)))
    seconds, _ = base_seconds_for(table, estimate, point, scale)
    hours = seconds * (1.0 + buffer) / 3600.0
    per_gpu = tuple(
        GpuEstimate(gpu=str(r.gpu), precision=str(r.precision), scenario=str(r.scenario),
                    attenuation=float(point[i]), attenuation_low=float(low[i]), attenuation_high=float(high[i]),
                    buffer=float(buffer[i]), gpu_count=int(r.gpu_count), peak_tflops=float(r.peak_tflops),
                    hours=float(hours[i]))
        for i, r in enumerate(table.itertuples(index=False))
    )
    return EstimateReport(job, estimate, per_gpu)
