"""The performance model run backwards: from a run's measured time to the attenuation it implies.

Calibrating and planning must agree, so nothing here has its own formula: the run is put in
the one-row candidate table ``performance.base_seconds_for`` expects, on the hardware layout
of nearly every published run, and the attenuation is whatever makes that function give the
measured seconds.

    scale(n)            performance.scale_out_efficiency with the documented defaults,
                        assuming 8-GPU NVLink nodes joined by InfiniBand — the HGX/DGX
                        layout of nearly every published run: 0.98^log2(min(n, 8)) ×
                        0.97^log2(n / 8) for n > 8.
    attenuation         FLOPs / (n · peak(precision) · scale(n) · measured seconds)
                        (for inference the decode roofline is inverted too: the value is
                        the attenuation at which ``base_seconds_for`` gives the measured time)
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from .flops import FlopEstimate
from .performance import (
    DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING,
    base_seconds_for,
    reference_scale,
    scale_out_efficiency,
)

__all__ = [
    "GPUS_PER_NODE",
    "INTRA_NODE_FABRIC",
    "assumed_scale_efficiency",
    "attenuation_for_seconds",
    "hardware_frame",
    "relative_scale",
    "scale_for",
    "seconds_at",
]

# A node of the published runs' hardware: 8 GPUs on NVLink (HGX/DGX), nodes on InfiniBand.
GPUS_PER_NODE = 8
INTRA_NODE_FABRIC = "nvlink"


@functools.lru_cache(maxsize=256)
def scale_for(gpu_count: int) -> float:
    """scale(n) of ``assumed_scale_efficiency`` for one count (cached: histories repeat counts)."""
    return float(assumed_scale_efficiency([gpu_count])[0])


def assumed_scale_efficiency(gpu_counts: np.ndarray | list[int]) -> np.ndarray:
    """Scale-out efficiency ``solve`` would apply to n GPUs in 8-GPU NVLink nodes on InfiniBand."""
    frame = _fabric_frame(np.asarray(gpu_counts, dtype=float))
    return scale_out_efficiency(frame, dict(DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING))


def _fabric_frame(gpu_counts: np.ndarray) -> pd.DataFrame:
    per_node = np.minimum(gpu_counts, GPUS_PER_NODE)
    return pd.DataFrame({
        "gpu_count": gpu_counts,
        "gpus_per_instance": per_node,
        "instances": gpu_counts / per_node,   # 12 GPUs = 1.5 nodes: scale is continuous in n
        "interconnect": [INTRA_NODE_FABRIC] * len(gpu_counts),
    })


def hardware_frame(gpu_count: int, peak_tflops: float, precision: str, bandwidth_gbs: float) -> pd.DataFrame:
    """The one-row candidate table ``performance.base_seconds_for`` expects."""
    frame = _fabric_frame(np.array([float(gpu_count)]))
    frame["peak_tflops"] = [peak_tflops]
    frame["precision"] = [precision]
    frame["mem_bandwidth_gbs"] = [bandwidth_gbs]
    return frame


def seconds_at(frame: pd.DataFrame, estimate: FlopEstimate, attenuation: float, scale: float) -> float:
    """Seconds ``solve``'s model gives the one-row ``frame`` at this attenuation and scale (no buffer)."""
    seconds, _ = base_seconds_for(frame, estimate, np.array([attenuation]), np.array([scale]))
    return float(seconds[0])


def attenuation_for_seconds(frame: pd.DataFrame, estimate: FlopEstimate, scale: float,
                            measured_seconds: float) -> float:
    """The attenuation at which ``base_seconds_for`` predicts the measured time (before buffer).

    Compute-bound time is ∝ 1/attenuation, so one evaluation gives it exactly; when the
    inference decode roofline binds, the time is only monotone in attenuation, so narrow a
    bracket on a grid (one vectorised call per round instead of a hundred scalar bisections).
    Returns a value > 1 when even full peak would be slower than measured.
    """
    at_peak = seconds_at(frame, estimate, 1.0, scale)
    guess = at_peak / measured_seconds
    if guess > 1.0 or math.isclose(seconds_at(frame, estimate, guess, scale), measured_seconds,
                                   rel_tol=1e-9):
        return guess
    points = 65
    grid = frame.loc[frame.index.repeat(points)].reset_index(drop=True)
    low, high = 1e-12, 1.0  # not 0: seconds there would divide by zero; at 1.0 the run is fast enough
    for _ in range(8):      # each round shrinks the bracket 64×: 64^-8 ≈ 4e-15
        candidates = np.linspace(low, high, points)
        seconds, _ = base_seconds_for(grid, estimate, candidates, np.full(points, scale))
        first_fast = int(np.argmax(seconds <= measured_seconds))  # seconds fall as attenuation rises
        low, high = float(candidates[max(first_fast - 1, 0)]), float(candidates[first_fast])
    return (low + high) / 2.0


@functools.lru_cache(maxsize=4096)
def relative_scale(gpu_count: float, ref_gpus: float) -> float:
    """scale(n) / scale(ref) on the HGX layout (8-GPU NVLink nodes on InfiniBand) of published runs."""
    pair = reference_scale(np.array([gpu_count, ref_gpus], dtype=float), DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING)
    return float(pair[0] / pair[1])
