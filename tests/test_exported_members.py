"""The public surface is ``flopopt.__all__``: every name resolves, nothing public is missing
(in the manner of httpx's tests/test_exported_members.py). Internals may move between modules."""

from __future__ import annotations

import inspect

import flopopt


def test_all_matches_the_exported_members() -> None:
    exported = {name for name in dir(flopopt) if not name.startswith("_")}
    assert exported == {n for n in flopopt.__all__ if not n.startswith("_")}
    for name in flopopt.__all__:
        assert getattr(flopopt, name) is not None, name


def test_every_command_has_a_library_function() -> None:
    for name in ("solve", "estimate_job", "compare", "plan", "calibrate", "backtest", "refresh"):
        assert inspect.isfunction(getattr(flopopt, name)), name
    for name in ("load_job", "load_catalog", "load_portfolio", "read_history", "load_quotes"):
        assert callable(getattr(flopopt, name)), name


def test_every_result_type_carries_a_status() -> None:
    """Callers branch on ``status``, never on ``plan is None``."""
    import dataclasses

    for name in ("Result", "ServingResult", "PlanResult", "Comparison", "EstimateReport", "Calibration",
                 "Backtest", "RefreshResult"):
        cls = getattr(flopopt, name)
        fields = {f.name for f in dataclasses.fields(cls)} | {n for n, v in vars(cls).items()
                                                             if isinstance(v, property)}
        assert "status" in fields, name


def test_the_python_api_in_the_readme_runs() -> None:
    job = flopopt.parse_job({"workload": {"kind": "custom", "total_flops": 1e18}, "constraints": {"deadline_hours": 48}})
    result = flopopt.solve(job, flopopt.load_catalog(), sensitivity=False)
    assert result.status is flopopt.Status.OPTIMAL and result.plan is not None
