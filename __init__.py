"""flopopt: from an ML job's FLOPs to a hardware decision.

The public surface is re-exported lazily so that ``flopopt --help`` does not pay
for importing pandas and PuLP.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "FlopoptError",
    "InputError",
    "CatalogError",
    "SolverError",
    "Job",
    "load_job",
    "Catalog",
    "load_catalog",
    "estimate_flops",
    "solve",
    "Result",
    "Status",
]

_LAZY = {
    "FlopoptError": "flopopt.optimizer.errors",
    "InputError": "flopopt.optimizer.errors",
    "CatalogError": "flopopt.optimizer.errors",
    "SolverError": "flopopt.optimizer.errors",
    "Job": "flopopt.optimizer.job",
    "load_job": "flopopt.optimizer.job",
    "Catalog": "flopopt.catalogs.loader",
    "load_catalog": "flopopt.catalogs.loader",
    "estimate_flops": "flopopt.optimizer.flops",
    "solve": "flopopt.optimizer.solve",
    "Result": "flopopt.optimizer.solve",
    "Status": "flopopt.optimizer.solve",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flopopt' has no attribute {name!r}")
