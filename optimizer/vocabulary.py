"""The words every layer shares: precisions, workload kinds, scenarios, offer kinds, fabrics.

Bottom layer (with errors.py, units.py and fileio.py): it imports nothing of flopopt, so the
catalogs can validate their columns without importing the job model above them.
"""

from __future__ import annotations

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
