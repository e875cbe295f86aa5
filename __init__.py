"""flopopt: from an ML job's FLOPs to a hardware decision.

The public surface is re-exported lazily so that ``flopopt --help`` does not pay
for importing pandas and PuLP.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name → module that defines it. Everything public is here; internals may move between modules.
_LAZY = {
    # errors
    "FlopoptError": "flopopt.optimizer.errors",
    "InputError": "flopopt.optimizer.errors",
    "CatalogError": "flopopt.optimizer.errors",
    "SolverError": "flopopt.optimizer.errors",
    # loaders
    "Job": "flopopt.optimizer.job",
    "load_job": "flopopt.optimizer.job",
    "parse_job": "flopopt.optimizer.job",
    "Catalog": "flopopt.catalogs.loader",
    "load_catalog": "flopopt.catalogs.loader",
    "Portfolio": "flopopt.optimizer.portfolio",
    "load_portfolio": "flopopt.optimizer.portfolio",
    "read_history": "flopopt.optimizer.history",
    "load_quotes": "flopopt.optimizer.compare",
    # the commands, as functions
    "estimate_flops": "flopopt.optimizer.flops",
    "estimate_job": "flopopt.optimizer.estimate",
    "solve": "flopopt.optimizer.solve",
    "compare": "flopopt.optimizer.compare",
    "plan": "flopopt.optimizer.procurement",
    "calibrate": "flopopt.optimizer.calibration",
    "write_calibration": "flopopt.optimizer.calibration_writer",
    "backtest": "flopopt.optimizer.backtest",
    "refresh": "flopopt.catalogs.refresh",
    # result types
    "Status": "flopopt.optimizer.result",
    "Result": "flopopt.optimizer.result",
    "Plan": "flopopt.optimizer.result",
    "FlopEstimate": "flopopt.optimizer.flops",
    "EstimateReport": "flopopt.optimizer.estimate",
    "Comparison": "flopopt.optimizer.compare",
    "ServingResult": "flopopt.optimizer.serving_solve",
    "PlanResult": "flopopt.optimizer.procurement_result",
    "Calibration": "flopopt.optimizer.calibration",
    "Backtest": "flopopt.optimizer.backtest",
    "RefreshResult": "flopopt.catalogs.refresh_result",
    "SolverOutcome": "flopopt.optimizer.outcome",
    "TerminationCondition": "flopopt.optimizer.outcome",
}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flopopt' has no attribute {name!r}")
