"""performance.py and memory.py against hand-worked numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import gpu_row, offer_row
from flopopt.optimizer.flops import ResolvedWorkload
from flopopt.optimizer.job import parse_job
from flopopt.optimizer.memory import activation_bytes_per_gpu, bytes_per_gpu, kv_cache_bytes
from flopopt.optimizer.performance import (
    auto_buffer,
    auto_scenario,
    billed_hours,
    lookup_attenuation,
)
from flopopt.optimizer.solve import solve


@pytest.mark.parametrize("uncertainty, buffer", [
    (0.10, 0.20), (0.30, 0.50), (0.20, 0.35), (0.25, 0.425), (0.05, 0.20), (0.60, 0.50)])
def test_auto_buffer_maps_uncertainty_linearly_and_clamps(uncertainty: float, buffer: float) -> None:
    # DESIGN.md §3: ±10% → 20%, ±30% → 50%, linear between, clamped to [0.2, 0.5].
    assert float(auto_buffer(uncertainty)) == pytest.approx(buffer)


def test_billing_rounds_up_to_increment_then_applies_minimum() -> None:
    hours = np.array([2.0000000001, 2.1, 0.2, 3.3, 0.5])
    increment = np.array([1.0, 1.0, 1.0, 0.0, 1 / 60])
    minimum = np.array([0.0, 0.0, 5.0, 0.0, 0.0])
    assert billed_hours(hours, increment, minimum) == pytest.approx([2.0, 3.0, 5.0, 3.3, 0.5])


def test_auto_scenario_rule() -> None:
    """The environment decides, never the count: a rented 3-node plan is still "cloud"."""
    kinds = pd.Series(["edge", "cluster_quote", "on_demand", "owned", "spot", "reserved"])
    assert list(auto_scenario(kinds)) == ["edge", "cluster", "cloud", "lab", "cloud", "cloud"]


def test_most_specific_attenuation_row_wins() -> None:
    table = pd.DataFrame([
        {"scenario": "cloud", "workload": "any", "gpu": "", "low": 0.3, "high": 0.5, "uncertainty": 0.2,
         "bottleneck": "a"},
        {"scenario": "cloud", "workload": "any", "gpu": "H1", "low": 0.35, "high": 0.55, "uncertainty": 0.2,
         "bottleneck": "b"},
        {"scenario": "cloud", "workload": "cnn_training", "gpu": "", "low": 0.5, "high": 0.7, "uncertainty": 0.1,
         "bottleneck": "c"},
        {"scenario": "cloud", "workload": "cnn_training", "gpu": "H1", "low": 0.6, "high": 0.8, "uncertainty": 0.1,
         "bottleneck": "d"},
    ])
    got = lookup_attenuation(table, np.array(["cloud"] * 3), "cnn_training", np.array(["H1", "H2", "H1"]))
    assert list(got["bottleneck"]) == ["d", "c", "d"]
    other = lookup_attenuation(table, np.array(["cloud", "cloud"]), "custom", np.array(["H1", "H2"]))
    assert list(other["bottleneck"]) == ["b", "a"]
    assert list(other["att_source"]) == ["cloud/any/H1", "cloud/any"]


def test_spot_interruptions_add_hours(make_catalog: Any) -> None:
    # 1e18 FLOPs on 20 TFLOP/s, cloud: 46.875 h; 15% interruption overhead → 53.906 h.
    catalog = make_catalog([gpu_row("G", peak_tflops_fp32=20.0)],
                           [offer_row("s", "G", 0.5, kind="spot", interruption_overhead=0.15, max_instances=1)])
    job = parse_job({"workload": {"kind": "custom", "total_flops": 1e18}, "precision": ["fp32"],
                     "scenario": "cloud"})
    plan = solve(job, catalog, sensitivity=False).plan
    assert plan is not None and plan.hours == pytest.approx(46.875 * 1.15)


def test_decode_is_capped_by_memory_bandwidth(make_catalog: Any) -> None:
    # 7B model at bf16: 14 GB of weights read per decode step. 1,000 requests × 100 output tokens,
    # batch 1 → 100,000 steps × 14e9 B / 1,000 GB/s = 1,400 s of decode, far above the compute time
    # (2 × 7e9 × 1e5 tokens / (100e12 × 0.4) = 35 s). Prompt: 1,000 × 100 tokens of compute:
    # 2 × 7e9 × 1e5 / 40e12 = 35 s. Hours = (35 + 1400) × 1.35 / 3600 = 0.538125 h.
    catalog = make_catalog([gpu_row("G", mem_bandwidth_gbs=1000, peak_tflops_bf16=100.0)],
                           [offer_row("o", "G", 1.0, max_instances=1)])
    job = parse_job({"workload": {"kind": "transformer_inference", "params": "7B", "requests": 1000,
                                  "prompt_tokens": 100, "output_tokens": 100, "batch_size": 1},
                     "precision": ["bf16"], "scenario": "cloud"})
    plan = solve(job, catalog, sensitivity=False).plan
    assert plan is not None and plan.roofline_bound
    assert plan.hours == pytest.approx((35 + 1400) * 1.35 / 3600)


def test_training_memory_per_gpu() -> None:
    # ZeRO-3: 16 bytes/param sharded: 7e9 × 16 / 8 = 14 GB. Activations (Korthikanti 2022, no
    # attention-score term with FlashAttention): 34 · s · b · h · L = 34 × 4096 × 1 × 4096 × 32 = 18.25 GB.
    w = ResolvedWorkload(kind="transformer_training", params=7e9, layers=32, d_model=4096, seq_len=4096)
    assert activation_bytes_per_gpu(w) == pytest.approx(34 * 4096 * 4096 * 32)
    need = bytes_per_gpu(w, np.array(["bf16"]), np.array([8]))
    assert need[0] == pytest.approx(14e9 + 34 * 4096 * 4096 * 32)
    recompute = ResolvedWorkload(kind="transformer_training", params=7e9, layers=32, d_model=4096,
                                 seq_len=4096, recompute=True)
    assert activation_bytes_per_gpu(recompute) == pytest.approx(2 * 4096 * 4096 * 32)


def test_inference_memory_per_gpu() -> None:
    # 70B at fp8 = 70 GB + KV cache 2·L·d·C·B·2 bytes = 2 × 80 × 8192 × 1250 × 32 × 2 = 104.9 GB, over 4 GPUs.
    w = ResolvedWorkload(kind="transformer_inference", params=70e9, layers=80, d_model=8192,
                         prompt_tokens=1000, output_tokens=250, batch_size=32)
    kv = 2 * 80 * 8192 * 1250 * 32 * 2
    assert kv_cache_bytes(w) == pytest.approx(kv)
    need = bytes_per_gpu(w, np.array(["fp8", "bf16"]), np.array([4, 4]))
    assert need == pytest.approx([(70e9 + kv) / 4, (140e9 + kv) / 4])
    # Grouped-query attention: Llama-3-70B keeps K/V for 8 of its 64 heads → an 8× smaller cache (13.1 GB).
    gqa = ResolvedWorkload(kind="transformer_inference", params=70e9, layers=80, d_model=8192, n_heads=64,
                           n_kv_heads=8, prompt_tokens=1000, output_tokens=250, batch_size=32)
    assert kv_cache_bytes(gqa) == pytest.approx(kv / 8)


# ---------------------------------------------------------------------------
# The revised model: ref_gpus rescaling, precision as data, fp16 fallback (hand-worked)

REF_ROWS = [
    {"scenario": s, "workload": "any", "low": 0.3, "high": 0.5, "uncertainty": 0.2, "ref_gpus": 1}
    for s in ("lab", "cloud", "edge", "cluster")
] + [{"scenario": "cloud", "workload": "custom", "low": 0.3, "high": 0.4, "median": 0.32, "uncertainty": 0.1,
      "ref_gpus": 64}]


def _custom_job(**kw: Any) -> Any:
    return parse_job({"workload": {"kind": "custom", "total_flops": 3.6e20}, "risk": {"buffer": 0},
                      "scenario": "cloud", **kw})


def test_ref_gpus_rescaling_by_hand(make_catalog: Any) -> None:
    """A figure measured at 64 GPUs is not charged the loss of 64 GPUs twice.

    Row cloud/custom: median 0.32 at ref_gpus 64 (8 nodes of 8 on NVLink + InfiniBand):
      scale(64) = 0.98^3 · 0.97^3 = 0.941192 · 0.912673 = 0.858999
    Planned on one 8-GPU NVLink instance: scale(8) = 0.98^3 = 0.941192, so the per-GPU
    efficiency is 0.32 · 0.941192 / 0.858999 = 0.350619 and
      hours = 3.6e20 / (8 · 100e12 · 0.350619) / 3600 = 356.51 h     (bf16 peak 100 TFLOP/s)
    On 8 such instances (64 GPUs, the reference layout): efficiency = 0.32 exactly,
      hours = 3.6e20 / (64 · 100e12 · 0.32) / 3600 = 48.83 h."""
    catalog = make_catalog([gpu_row("G")], [offer_row("n", "G", 8.0, gpus_per_instance=8, max_instances=8)],
                           REF_ROWS)
    one = solve(_custom_job(constraints={"gpu_count": 8}), catalog, sensitivity=False).plan
    full = solve(_custom_job(constraints={"gpu_count": 64}), catalog, sensitivity=False).plan
    assert one is not None and full is not None
    assert (one.attenuation, one.attenuation_source) == (pytest.approx(0.32), "cloud/custom")
    assert one.scale_efficiency == pytest.approx(0.941192 / 0.858999, rel=1e-5)
    assert one.hours == pytest.approx(3.6e20 / (8 * 100e12 * 0.32 * 0.941192 / 0.858999) / 3600, rel=1e-5)
    assert one.hours == pytest.approx(356.51, abs=0.01)
    assert full.scale_efficiency == pytest.approx(1.0) and full.hours == pytest.approx(48.83, abs=0.01)


def test_fp8_uses_the_measured_speedup_not_the_datasheet(make_catalog: Any) -> None:
    """fp8 peak 200 (2× bf16 100) on the datasheet; precision.csv says 1.25× measured:
    hours = 3.6e20 / (1 · 100e12 · 1.25 · 0.4) / 3600 = 2,000 h (not 1,250 h at 2×)."""
    from dataclasses import replace

    catalog = make_catalog([gpu_row("G", peak_tflops_fp8=200)], [offer_row("g", "G", 1.0, max_instances=1)])
    without = solve(_custom_job(precision=["fp8"]), catalog, sensitivity=False).plan
    speedups = pd.DataFrame([{"workload": "custom", "gpu": "", "precision": "fp8", "speedup": 1.25,
                              "source": "test: a measured A/B run", "as_of": "2026-01-01"}])
    measured = solve(_custom_job(precision=["fp8"]), replace(catalog, precision=speedups), sensitivity=False).plan
    assert without is not None and measured is not None
    # no measured row: an unmeasured gain counts as none, so fp8 plans like bf16
    assert without.hours == pytest.approx(3.6e20 / (100e12 * 0.4) / 3600)
    assert measured.hours == pytest.approx(2000.0)


def test_bf16_falls_back_to_fp16_where_a_gpu_has_no_bf16(make_catalog: Any) -> None:
    """V100-like: no bf16 unit, fp16 125 TFLOP/s. A bf16 job runs in fp16 instead of being excluded:
    hours = 3.6e20 / (125e12 · 0.4) / 3600 = 2,000 h."""
    volta = gpu_row("V", peak_tflops_bf16="", peak_tflops_fp16=125)
    catalog = make_catalog([volta], [offer_row("v", "V", 1.0, max_instances=1)])
    plan = solve(_custom_job(precision=["bf16"]), catalog, sensitivity=False).plan
    assert plan is not None and plan.gpu == "V"
    assert plan.hours == pytest.approx(2000.0)
