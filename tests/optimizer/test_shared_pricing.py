"""``shared_pricing.SharedPricing``: a portfolio's jobs of one shape expand and evaluate once, the
others are re-priced from the first. Every job's candidates — and what the portfolio keeps of
them — must be exactly what pricing that job alone gives: the same rows, the same numbers to
the last bit."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flopopt.catalogs.loader import Catalog
from flopopt.optimizer.candidate_schema import PORTFOLIO_COLUMNS
from flopopt.optimizer.candidates import assess
from flopopt.optimizer.performance import realistic_assumptions
from flopopt.optimizer.planner import Planner, checked_estimate
from flopopt.optimizer.portfolio import parse_portfolio
from flopopt.optimizer.portfolio_candidates import (
    PortfolioCandidates,
    build_candidates,
    prune_for_portfolio,
)
from flopopt.optimizer.shared_pricing import SharedPricing

# Jobs that share shapes in pairs or more (same kind, precisions, allow-lists, count limits) and
# differ in FLOPs, model size, memory need and limits; plus shapes of their own.
JOBS: list[dict[str, Any]] = [
    {"name": "pre-7b", "workload": {"kind": "transformer_training", "model": "llama2-7b", "tokens": "300B",
                                    "seq_len": 4096}, "precision": ["bf16", "fp8"],
     "constraints": {"deadline_hours": 1460, "max_gpus": 256}},
    {"name": "pre-13b", "period": 3, "workload": {"kind": "transformer_training", "params": 13e9,
                                                  "tokens": "200B", "seq_len": 4096},
     "precision": ["bf16", "fp8"], "constraints": {"deadline_hours": 720, "max_gpus": 256}},
    {"name": "pre-7b-more", "period": 2, "workload": {"kind": "transformer_training", "model": "llama2-7b",
                                                      "tokens": "900B", "seq_len": 4096},
     "precision": ["bf16", "fp8"], "constraints": {"deadline_hours": 2190, "max_gpus": 256, "budget_usd": 3e5}},
    {"name": "ft-a", "workload": {"kind": "transformer_training", "model": "llama3-8b", "tokens": "5B",
                                  "seq_len": 8192, "recompute": True},
     "precision": ["bf16"], "constraints": {"deadline_hours": 48, "max_gpus": 64, "offer_kinds": ["on_demand"]}},
    {"name": "ft-b", "period": 6, "workload": {"kind": "transformer_training", "model": "llama3-8b",
                                               "tokens": "15B", "seq_len": 8192},
     "precision": ["bf16"], "constraints": {"deadline_hours": 168, "max_gpus": 64, "offer_kinds": ["on_demand"]}},
    {"name": "serve-8b", "workload": {"kind": "transformer_inference", "model": "llama3-8b", "requests": 2e6,
                                      "prompt_tokens": 1000, "output_tokens": 250, "batch_size": 32},
     "precision": ["fp8", "bf16"], "constraints": {"deadline_hours": 168}},
    {"name": "serve-70b", "period": 4, "workload": {"kind": "transformer_inference", "model": "llama3-70b",
                                                    "requests": 2e7, "prompt_tokens": 1000, "output_tokens": 250,
                                                    "batch_size": 32},
     "precision": ["fp8", "bf16"], "constraints": {"deadline_hours": 720}},
    {"name": "custom-1", "workload": {"kind": "custom", "total_flops": 3e19}, "precision": ["bf16"]},
    {"name": "custom-2", "period": 5, "workload": {"kind": "custom", "total_flops": 8e20}, "precision": ["bf16"],
     "scenario": "cluster"},
    {"name": "custom-3", "period": 5, "workload": {"kind": "custom", "total_flops": 8e20}, "precision": ["bf16"],
     "constraints": {"gpus": ["H100"]}},
    # the shape of custom-1, with assumptions of their own: each needs its own template
    {"name": "custom-buffer", "workload": {"kind": "custom", "total_flops": 3e19}, "precision": ["bf16"],
     "risk": {"buffer": 0.45}},
    {"name": "custom-attenuation", "workload": {"kind": "custom", "total_flops": 3e19}, "precision": ["bf16"],
     "performance": {"attenuation": 0.6}},
    {"name": "custom-scale", "workload": {"kind": "custom", "total_flops": 3e19}, "precision": ["bf16"],
     "performance": {"scale_efficiency_per_doubling": {"ethernet": 0.7}}},
    # shapes of their own: spot only under a budget, a pinned count, a floor on the count
    {"name": "spot-only", "period": 2, "workload": {"kind": "custom", "total_flops": 2e20}, "precision": ["bf16"],
     "constraints": {"offer_kinds": ["spot"], "budget_usd": 5e4, "deadline_hours": 500}},
    {"name": "pinned", "workload": {"kind": "transformer_training", "model": "llama3-8b", "tokens": "10B",
                                    "seq_len": 8192}, "precision": ["bf16"], "constraints": {"gpu_count": 16}},
    {"name": "at-least-32", "period": 3, "workload": {"kind": "transformer_training", "model": "llama2-7b",
                                                      "tokens": "100B", "seq_len": 4096},
     "precision": ["bf16", "fp8"], "constraints": {"min_gpus": 32, "max_gpus": 256}},
]


# a server to buy: its candidates are capacity-source rows, kept and pruned like the others
PURCHASE = {"option": "dgx-h100", "gpu": "H100-SXM", "gpus": 8, "capex_usd": 270000, "power_kw": 10.2,
            "electricity_usd_per_kwh": 0.127, "resale_fraction": 0.5, "max_count": 2, "source": "test"}


def _portfolio() -> Any:
    return parse_portfolio({"name": "shapes", "horizon": {"periods": 6, "period_hours": 730}, "jobs": JOBS,
                            "purchase_options": [PURCHASE]})


def _fit(count_slope: float = 0.0) -> pd.DataFrame:
    """A calibrated fit for transformer training with a size slope, so a 7B and a 13B job may not
    share their evaluation, and optionally a count slope, so the attenuation follows the count."""
    terms = [("intercept", math.log(0.35)), ("log10_params_over_1e10", 0.2), ("ref_gpus", 8.0),
             ("resid_p10", -0.2), ("resid_p90", 0.2), ("runs", 20.0)]
    if count_slope:
        terms.append(("log2_gpus_over_ref", count_slope))
    return pd.DataFrame([{"workload": "transformer_training", "term": t, "value": v, "source": "test",
                          "as_of": "2026-01-01"} for t, v in terms])


FITS = {"catalog-attenuation": None, "calibrated-size-fit": _fit(), "calibrated-size-and-count-fit": _fit(-0.1)}


def _alone(job: Any, catalog: Catalog, deadline_hours: float) -> pd.DataFrame:
    """The job priced on its own, as a single-job solve would (nothing shared)."""
    planner = Planner.build(job, catalog, identical="keep")
    return assess(planner.expansion, planner.estimate, job, catalog, realistic_assumptions(job, catalog.efficiency),
                  deadline_hours=deadline_hours, budget_usd=job.constraints.budget_usd).table


def _assert_same_table(shared: pd.DataFrame, alone: pd.DataFrame, job: str) -> None:
    assert sorted(shared.columns) == sorted(alone.columns), job
    assert len(shared) == len(alone), job
    for column in alone.columns:
        a, b = shared[column].to_numpy(), alone[column].to_numpy()
        if a.dtype.kind in "fc":
            assert np.array_equal(a, b, equal_nan=True), f"{job}: {column}"
        else:
            assert list(pd.Series(a).fillna("∅")) == list(pd.Series(b).fillna("∅")), f"{job}: {column}"


def _reference(cands: PortfolioCandidates) -> list[tuple[pd.DataFrame, int, int, tuple[int, int], float | None]]:
    """Per job, from pricing it alone: kept rows, candidates priced, feasible, window, cheapest rental."""
    horizon = cands.portfolio.horizon
    source_of = {s.offer_id: s.name for s in cands.sources}
    alone = [_alone(jc.pjob.job, cands.catalog, jc.deadline_hours) for jc in cands.jobs]
    feasible = [t[t["feasible"]] for t in alone]
    windows = []
    for jc, f in zip(cands.jobs, feasible):
        spans = math.ceil(float(f["hours"].max()) / horizon.period_hours - 1e-9) if len(f) else 1
        windows.append((jc.pjob.period, min(horizon.periods, jc.pjob.period + max(spans, 1) - 1)))
    out = []
    for k, (jc, t, f) in enumerate(zip(cands.jobs, alone, feasible)):
        rivals = sum(1 for i, w in enumerate(windows) if i != k and w[0] <= windows[k][1] and windows[k][0] <= w[1])
        kept = prune_for_portfolio(f, source_of, cands.quotas, rivals, jc.pjob.period, horizon)
        rentals = f[~f["offer_id"].isin(list(source_of))]
        out.append((kept, len(t), len(f), windows[k], float(rentals["cost_usd"].min()) if len(rentals) else None))
    return out


@pytest.mark.parametrize("fit", list(FITS))
def test_shared_pricing_gives_each_job_its_own_numbers(bundled: Catalog, fit: str) -> None:
    """Each job's candidates from the shared pass — on frames (``assess``) and on arrays
    (``feasible``) — equal its own pricing, column for column and bit for bit."""
    catalog = bundled if FITS[fit] is None else replace(bundled, efficiency=FITS[fit])
    cands = build_candidates(_portfolio(), catalog)
    on_frames, on_arrays = SharedPricing(cands.catalog), SharedPricing(cands.catalog)
    for jc in cands.jobs:
        job = jc.pjob.job
        estimate, realistic = checked_estimate(job, cands.catalog), realistic_assumptions(job, cands.catalog.efficiency)
        limits = {"deadline_hours": jc.deadline_hours, "budget_usd": job.constraints.budget_usd}
        alone = _alone(job, cands.catalog, jc.deadline_hours)
        shared = on_frames.assess(on_frames.expansion(job, "keep"), estimate, job, realistic, **limits).table
        _assert_same_table(shared, alone[list(shared.columns)], jc.name)
        feasible = on_arrays.feasible(on_arrays.expansion(job, "keep"), estimate, job, realistic, **limits)
        assert feasible.enumerated == len(alone), jc.name
        assert sorted(feasible.columns) == sorted(PORTFOLIO_COLUMNS)
        _assert_same_table(pd.DataFrame(feasible.columns), alone[alone["feasible"]][list(PORTFOLIO_COLUMNS)], jc.name)
    assert len(on_frames.templates) < len(JOBS)   # some jobs did share


@pytest.mark.parametrize("fit", list(FITS))
def test_the_portfolio_keeps_what_pricing_each_job_alone_keeps(bundled: Catalog, fit: str) -> None:
    catalog = bundled if FITS[fit] is None else replace(bundled, efficiency=FITS[fit])
    cands = build_candidates(_portfolio(), catalog)
    assert len(cands.jobs) == len(JOBS)
    assert any((jc.kept["resource"] == "source").any() for jc in cands.jobs)   # the purchase option competes
    for jc, (kept, enumerated, feasible, window, rental) in zip(cands.jobs, _reference(cands)):
        _assert_same_table(jc.kept, kept, jc.name)
        assert (jc.enumerated, jc.feasible_count, jc.window, jc.cheapest_rental_usd) == \
            (enumerated, feasible, window, rental), jc.name


def test_jobs_of_one_shape_differ_where_their_flops_and_memory_differ(bundled: Catalog) -> None:
    """The sharing is real, not a copy of the first job: jobs of one shape (pre-7b, pre-7b-more and
    pre-13b) get the same first-rung offer rows but their own hours and memory need."""
    catalog = build_candidates(_portfolio(), bundled).catalog
    shared = SharedPricing(catalog)
    by_name = {}
    for spec in JOBS[:3]:
        job = _portfolio().jobs[[j["name"] for j in JOBS].index(spec["name"])].job
        by_name[spec["name"]] = shared.assess(shared.expansion(job, "keep"), checked_estimate(job, catalog), job,
                                              realistic_assumptions(job, catalog.efficiency),
                                              deadline_hours=2000.0, budget_usd=None).table
    assert len(shared.shapes) == 1

    def first_rungs(name: str) -> pd.DataFrame:
        t = by_name[name]
        return t[t["instances"] == t["count_lo"]].sort_values("base_row")

    small, large, wide = first_rungs("pre-7b"), first_rungs("pre-7b-more"), first_rungs("pre-13b")
    assert len(small) > 100
    assert list(small["offer_id"]) == list(large["offer_id"]) == list(wide["offer_id"])
    # three times the tokens of the same model: three times the hours before the buffer
    np.testing.assert_allclose(large["base_hours"].to_numpy(), 3 * small["base_hours"].to_numpy(), rtol=1e-12)
    assert not np.array_equal(wide["need_gb_per_gpu"].to_numpy(), small["need_gb_per_gpu"].to_numpy())
    assert not np.array_equal(wide["hours"].to_numpy(), small["hours"].to_numpy())
