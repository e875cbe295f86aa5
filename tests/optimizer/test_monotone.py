"""Monotone by construction: more GPUs of the same offer never make each GPU faster.

For any offer and precision, per-GPU throughput never rises with the count, so GPU-hours
before billing (hours × GPUs) never fall — whatever the offer kind, layout or scenario rule.
The old model switched `auto` from cloud to cluster at two instances and made 16 GPUs 37%
faster per GPU than 8; these properties would have caught it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import REPO, gpu_row, offer_row
from flopopt.optimizer.job import parse_job
from flopopt.optimizer.solve import Planner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Rows with the bundled catalog's shape: scenario priors at different reference counts and a
# workload row measured at 2,048 GPUs (the case where rescaling from ref_gpus matters most).
ATTENUATION = [
    {"scenario": "lab", "workload": "any", "low": 0.7, "high": 0.8, "uncertainty": 0.1, "ref_gpus": 1},
    {"scenario": "cloud", "workload": "any", "low": 0.3, "high": 0.5, "uncertainty": 0.2, "ref_gpus": 8},
    {"scenario": "edge", "workload": "any", "low": 0.1, "high": 0.3, "uncertainty": 0.3, "ref_gpus": 1},
    {"scenario": "cluster", "workload": "any", "low": 0.2, "high": 0.4, "uncertainty": 0.25, "ref_gpus": 1024},
    {"scenario": "cloud", "workload": "transformer_training", "low": 0.19, "high": 0.5, "median": 0.35,
     "uncertainty": 0.45, "ref_gpus": 2048},
]

offer = st.fixed_dictionaries({
    "kind": st.sampled_from(["on_demand", "spot", "reserved", "owned", "cluster_quote", "edge"]),
    "per_instance": st.sampled_from([1, 2, 4, 8, 16]),
    "interconnect": st.sampled_from(["nvlink", "pcie", "infiniband", "ethernet"]),
    "max_instances": st.integers(1, 64),
})


def _catalog(make_catalog: Any, offers: list[dict[str, Any]]) -> Any:
    rows = []
    for i, o in enumerate(offers):
        extra: dict[str, Any] = {}
        if o["kind"] in ("owned", "edge"):
            extra = dict(capex_usd=100000, amortization_years=4, utilization=0.5, power_kw=2.0,
                         electricity_usd_per_kwh=0.1, sunk="false", price_per_hour_usd=0)
        rows.append(offer_row(f"o{i}", "G", 3.0, kind=o["kind"], gpus_per_instance=o["per_instance"],
                              interconnect=o["interconnect"], max_instances=o["max_instances"], **extra))
    return make_catalog([gpu_row("G", peak_tflops_fp8=400)], rows, ATTENUATION)


def _gpu_hours_never_fall(table: pd.DataFrame) -> None:
    for _, group in table.groupby(["offer_id", "precision"]):
        g = group.sort_values("gpu_count")
        gpu_hours = (g["hours"] * g["gpu_count"]).to_numpy(float)
        assert np.all(np.diff(gpu_hours) >= -1e-9 * gpu_hours[1:]), g[["gpu_count", "hours", "scenario"]]
        per_gpu = (g["attenuation"] * g["scale_efficiency"]).to_numpy(float)
        assert np.all(np.diff(per_gpu) <= 1e-12)
        assert g["scenario"].nunique() == 1   # the environment decides, never the count


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offers=st.lists(offer, min_size=1, max_size=4), kind=st.sampled_from(["transformer_training", "custom"]),
       precision=st.sampled_from(["bf16", "fp8"]))
def test_solve_candidates_never_get_faster_per_gpu(make_catalog: Any, offers: list[dict[str, Any]], kind: str,
                                                    precision: str) -> None:
    workload = ({"kind": kind, "params": "7B", "tokens": "100B"} if kind == "transformer_training"
                else {"kind": "custom", "total_flops": 1e21})
    job = parse_job({"workload": workload, "precision": [precision], "constraints": {"max_gpus": 512}})
    planner = Planner.build(job, _catalog(make_catalog, offers))
    _gpu_hours_never_fall(planner.assess().table)


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offers=st.lists(offer, min_size=1, max_size=3))
def test_compare_and_estimate_follow_the_same_model(make_catalog: Any, offers: list[dict[str, Any]]) -> None:
    from flopopt.optimizer.compare import compare
    from flopopt.optimizer.estimate import estimate_job

    catalog = _catalog(make_catalog, offers)
    job = parse_job({"workload": {"kind": "custom", "total_flops": 1e21}, "precision": ["bf16"]})
    result = compare(job, catalog, [])
    by_offer: dict[str, list[Any]] = {}
    for point in result.pareto:   # the front holds several counts of one offer when it pays
        by_offer.setdefault(point.plan.offer_id, []).append(point.plan)
    for plans in by_offer.values():
        plans.sort(key=lambda p: p.gpu_count)
        gpu_hours = [p.hours * p.gpu_count for p in plans]
        assert all(b >= a * (1 - 1e-9) for a, b in zip(gpu_hours, gpu_hours[1:]))
    report = estimate_job(job, catalog)
    by_key: dict[tuple[str, str, str], list[Any]] = {}
    for e in report.per_gpu:
        by_key.setdefault((e.gpu, e.precision, e.scenario), []).append(e)
    for rows in by_key.values():
        rows.sort(key=lambda e: e.gpu_count)
        gpu_hours = [e.hours * e.gpu_count for e in rows]
        assert all(b >= a * (1 - 1e-9) for a, b in zip(gpu_hours, gpu_hours[1:]))


def test_pinned_count_and_minimum(make_catalog: Any) -> None:
    """gpu_count pins the fleet exactly; min_gpus floors it; an offer that cannot make up the
    pinned count from whole instances is excluded with that reason."""
    catalog = _catalog(make_catalog, [
        {"kind": "on_demand", "per_instance": 8, "interconnect": "nvlink", "max_instances": 64},
        {"kind": "on_demand", "per_instance": 3, "interconnect": "pcie", "max_instances": 64}])
    pinned = parse_job({"workload": {"kind": "custom", "total_flops": 1e21}, "constraints": {"gpu_count": 64}})
    table = Planner.build(pinned, catalog).assess().table
    assert set(table["gpu_count"]) == {64} and set(table["offer_id"]) == {"o0"}
    excluded = Planner.build(pinned, catalog).assess().excluded
    assert any("gpu_count=64 is not a whole number of instances" in k for k in excluded)
    floor = parse_job({"workload": {"kind": "custom", "total_flops": 1e21}, "constraints": {"min_gpus": 20}})
    table = Planner.build(floor, catalog).assess().table
    assert table.groupby("offer_id")["gpu_count"].min().to_dict() == {"o0": 24, "o1": 21}


@pytest.mark.slow
def test_plan_prices_every_job_with_the_same_monotone_model() -> None:
    """`flopopt plan` prices each job of a portfolio through the same planner: per-GPU throughput
    never rises with the count there either (the bundled catalog and the example portfolio)."""
    from flopopt.catalogs.loader import load_catalog
    from flopopt.optimizer.portfolio import load_portfolio
    from flopopt.optimizer.portfolio_candidates import build_candidates

    repo = REPO
    cands = build_candidates(load_portfolio(repo / "examples" / "portfolio" / "research-lab.yaml"), load_catalog())
    assert cands.jobs
    for job in cands.jobs:
        table = job.evaluated.table
        rented = table[table["kind"] != "owned"]
        _gpu_hours_never_fall(rented)
