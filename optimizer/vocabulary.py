"""The words every layer shares: precisions, workload kinds, scenarios, offer kinds, fabrics.

Bottom layer (with errors.py, units.py and fileio.py): it imports nothing of flopopt, so the
catalogs can validate their columns without importing the job model above them.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, get_args

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
WorkloadKind = Literal[
    "transformer_training", "transformer_inference", "transformer_serving", "cnn_training", "cnn_inference",
    "custom"
]
WORKLOAD_KINDS: tuple[str, ...] = get_args(WorkloadKind)
FineTuneMethod = Literal["full", "lora", "qlora"]
Scenario = Literal["lab", "cloud", "edge", "cluster"]
SCENARIOS: tuple[str, ...] = get_args(Scenario)
OfferKind = Literal["on_demand", "spot", "reserved", "owned", "cluster_quote", "edge"]
OFFER_KINDS: tuple[str, ...] = get_args(OfferKind)
Interconnect = Literal["nvlink", "pcie", "infiniband", "ethernet"]
INTERCONNECTS: tuple[str, ...] = get_args(Interconnect)


class Status(str, Enum):
    """Every result's status. Only INFEASIBLE says no plan exists; TIME_LIMIT and NOT_SOLVED say
    the solver stopped before deciding (optimizer/outcome.py), so no relaxation is suggested.
    OK is a command that does not optimise (estimate, calibrate, backtest); PARTIAL a refresh or
    import that kept some rows back or lost a source."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    NOT_SOLVED = "not_solved"
    OK = "ok"
    PARTIAL = "partial"
