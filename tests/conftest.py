"""Fixtures and hooks only: an isolated user/cache dir for every test, a bare environment, the bundled
catalog, a catalog builder, deterministic solver stops (``stop_at_time_limit``, ``stop_early``).

Helpers that are not fixtures live in ``builders.py`` (``from builders import gpu_row``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest
from builders import CatalogFactory, catalog_factory
from flopopt.catalogs.loader import Catalog, load_catalog


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real user catalog or price cache from a test, and never take
    the text width from the caller's terminal: without ``COLUMNS`` the CLI prints 100 columns
    to a pipe (cli/render.py ``DEFAULT_WIDTH``). pytest-xdist workers run with ``COLUMNS=80``;
    a test that wants a width passes it (``runner.invoke(..., env={"COLUMNS": "80"})``)."""
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "_user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "_cache"))
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``FLOPOPT_*`` setting from the caller's shell (refresh URLs, retries, caps, timeouts):
    only the user and cache dirs, at ``tmp_path/user`` and ``tmp_path/cache``."""
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    for name in list(os.environ):
        if name.startswith("FLOPOPT_") and name not in ("FLOPOPT_CACHE_DIR", "FLOPOPT_USER_DIR"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    """The bundled catalog alone. Module-scoped: the autouse ``_isolated_dirs`` isolates the user
    dir per test, so a catalog shared by a module's tests must read no user layer or cache."""
    return load_catalog(use_user_dir=False, use_cache=False)


@pytest.fixture
def make_catalog(tmp_path: Path) -> CatalogFactory:
    """Build a self-contained catalog (no bundled rows) from gpu and offer rows."""
    return catalog_factory(tmp_path)


@pytest.fixture
def stop_at_time_limit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make every plan's solve end as a time limit does, deterministically: with its incumbent (the
    real solve's choice) and a MIP gap, or (``incumbent=False``) with none. A single-job program is
    solved in presolve, so a real time limit cannot be made to stop it half-way (tests/optimizer/test_model.py
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


@pytest.fixture
def stop_early(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make every integer program's solver stop early, as a time limit would, but deterministically:
    a real solver stop, reported as what it is (``builders.STOPPED_AS``). With ``incumbent=True`` HiGHS
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
