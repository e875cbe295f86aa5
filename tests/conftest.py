"""Shared fixtures: an isolated user/cache dir for every test, and a tiny-catalog builder."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import pytest
from flopopt.catalogs.schema import SCHEMAS

SEED_ATTENUATION = [
    # The envelope method's scenario table (shared/seed): low, high, uncertainty.
    {"scenario": "lab", "workload": "any", "gpu": "", "low": 0.7, "high": 0.8, "uncertainty": 0.10},
    {"scenario": "cloud", "workload": "any", "gpu": "", "low": 0.3, "high": 0.5, "uncertainty": 0.20},
    {"scenario": "edge", "workload": "any", "gpu": "", "low": 0.1, "high": 0.3, "uncertainty": 0.30},
    {"scenario": "cluster", "workload": "any", "gpu": "", "low": 0.2, "high": 0.4, "uncertainty": 0.25},
]


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real user catalog or price cache from a test."""
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "_user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "_cache"))


def gpu_row(name: str, **kw: Any) -> dict[str, Any]:
    row = {"gpu": name, "vendor": "test", "memory_gb": 80, "mem_bandwidth_gbs": 2000, "tdp_w": 400,
           "peak_tflops_fp32": 20, "peak_tflops_bf16": 100, "source": "test fixture", "as_of": "2026-01-01"}
    row.update(kw)
    return row


def offer_row(offer_id: str, gpu: str, price: float, **kw: Any) -> dict[str, Any]:
    row = {"offer_id": offer_id, "provider": "testcloud", "kind": "on_demand", "region": "r1",
           "instance_type": offer_id, "gpu": gpu, "gpus_per_instance": 1, "price_per_hour_usd": price,
           "billing_increment_hours": 0, "min_hours": 0, "max_instances": "", "interconnect": "nvlink",
           "source": "test fixture", "as_of": "2026-01-01"}
    row.update(kw)
    return row


def write_csv(path: Path, name: str, rows: list[dict[str, Any]]) -> None:
    columns = [c.name for c in SCHEMAS[name]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


CatalogFactory = Callable[..., Any]


@pytest.fixture
def make_catalog(tmp_path: Path) -> CatalogFactory:
    """Build a self-contained catalog (no bundled rows) from gpu and offer rows."""
    counter = {"n": 0}

    def build(gpus: list[dict[str, Any]], offers: list[dict[str, Any]],
              attenuation: list[dict[str, Any]] | None = None) -> Any:
        from flopopt.catalogs.loader import load_catalog

        counter["n"] += 1
        folder = tmp_path / f"catalog{counter['n']}"
        folder.mkdir()
        write_csv(folder / "gpus.csv", "gpus.csv", gpus)
        write_csv(folder / "offers.csv", "offers.csv", offers)
        att = [dict(r, bottleneck="test", source="seed") for r in (attenuation or SEED_ATTENUATION)]
        write_csv(folder / "attenuation.csv", "attenuation.csv", att)
        write_csv(folder / "models.csv", "models.csv", [])
        return load_catalog(folder, use_bundled=False, use_user_dir=False, use_cache=False)

    return build


@pytest.fixture
def stop_at_time_limit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make every plan's solve end as a time limit does, deterministically: with its incumbent (the
    real solve's choice) and a MIP gap, or (``incumbent=False``) with none. A single-job program is
    solved in presolve, so a real time limit cannot be made to stop it half-way (tests/test_model.py
    stops a real multi-job search instead)."""
    from dataclasses import replace

    from flopopt.optimizer import planner
    from flopopt.optimizer.outcome import SolverOutcome, SolverStatus, TerminationCondition

    def stop(incumbent: bool = True, gap: float | None = 0.05) -> None:
        real = planner.solve_model

        def stopped(spec: Any, solver: Any = "highs") -> Any:
            solution = real(spec, solver)
            outcome = SolverOutcome(SolverStatus.WARNING, TerminationCondition.TIME_LIMIT,
                                    gap if incumbent else None, incumbent, 1e-4)
            return replace(solution, status="time_limit", choice=solution.choice if incumbent else (),
                           objective_value=solution.objective_value if incumbent else None, outcome=outcome)

        monkeypatch.setattr(planner, "solve_model", stopped)

    return stop


# What a deterministic early stop (``stop_early``) is reported as: HiGHS's callback interrupt,
# CBC's node limit.
STOPPED_AS = {"highs": "interrupted", "cbc": "terminated_by_limit"}


@pytest.fixture
def stop_early(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make every integer program's solver stop early, as a time limit would, but deterministically:
    a real solver stop, reported as what it is (``STOPPED_AS``). With ``incumbent=True`` HiGHS
    interrupts at its first incumbent (a MIP-interrupt callback) and CBC after its root node
    (maxNodes 0); with ``incumbent=False`` HiGHS interrupts at its first callback, before any
    incumbent, and CBC stops after its root node with its heuristics off. For programs the root
    relaxation does not close (a single-job program is solved in presolve: see stop_at_time_limit)."""
    import math

    from flopopt.optimizer import model, procurement_model, serving_model

    real = model.make_solver   # the unpatched one, however often stop() is called

    def stop(incumbent: bool = True) -> None:
        import highspy
        import pulp

        def interrupt(_kind: Any, _message: Any, out: Any, data_in: Any, _user: Any) -> None:
            if out.mip_primal_bound < math.inf or not incumbent:
                data_in.user_interrupt = True

        def stopping(name: Any, time_limit_seconds: float | None = None) -> object:
            engine: Any = real(name, time_limit_seconds)
            if isinstance(engine, pulp.HiGHS):
                engine.callbackTuple = (interrupt, None)
                engine.callbacksToActivate = [highspy.cb.HighsCallbackType.kCallbackMipInterrupt]
            else:
                engine.optionsDict["maxNodes"] = 0
                if not incumbent:
                    engine.options = [*(engine.options or []), "heuristicsOnOff off"]
            return engine

        for module in (model, serving_model, procurement_model):   # each binds make_solver by name
            monkeypatch.setattr(module, "make_solver", stopping)

    return stop
