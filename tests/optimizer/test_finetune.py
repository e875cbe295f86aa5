"""Fine-tuning methods: LoRA and QLoRA FLOPs and memory against the formulas of Hu et al. 2021
(arXiv 2106.09685) and Dettmers et al. 2023 (arXiv 2305.14314), worked by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from builders import REPO
from flopopt.catalogs.loader import load_catalog
from flopopt.optimizer.errors import InputError
from flopopt.optimizer.flops import estimate_flops, resolve_workload
from flopopt.optimizer.job import Workload, load_job, parse_job
from flopopt.optimizer.memory import bytes_per_gpu
from flopopt.optimizer.solve import solve

SHAPE = {"params": 8e9, "layers": 32, "d_model": 4096}


def workload(**kw: Any) -> Workload:
    return Workload.model_validate({"kind": "transformer_training", "tokens": 1e9, **SHAPE, **kw})


def test_lora_flops_are_forward_plus_activation_gradients_plus_adapters() -> None:
    # N_t = 18 · L · d · r = 18 × 32 × 4096 × 16 = 37,748,736 (all linear layers of a block)
    trainable = 18 * 32 * 4096 * 16
    est = estimate_flops(workload(method="lora", lora_rank=16))
    assert est.terms["trainable_params"] == trainable
    # 4·N·D + 6·N_t·D = 4 × 8e9 × 1e9 + 6 × 37.7e6 × 1e9 = 3.2e19 + 2.265e17
    assert est.terms["dense_flops"] == pytest.approx(4 * 8e9 * 1e9 + 6 * trainable * 1e9)
    full = estimate_flops(workload())
    assert est.terms["dense_flops"] < full.terms["dense_flops"] * 0.7  # ~ 2/3 of 6·N·D


def test_trainable_params_override_rank_and_recompute_adds_a_forward() -> None:
    est = estimate_flops(workload(method="qlora", trainable_params="42M", recompute=True))
    assert est.terms["trainable_params"] == 42e6
    assert est.terms["dense_flops"] == pytest.approx(6 * 8e9 * 1e9 + 6 * 42e6 * 1e9)  # 2N fwd + 2N again + 2N


def test_lora_memory_is_frozen_weights_plus_adapter_adam_state() -> None:
    w = resolve_workload(workload(method="lora", trainable_params=40e6), None)
    need = bytes_per_gpu(w, np.array(["bf16"]), np.array([1]))[0]
    # 2 B × 8e9 frozen + 16 B × 40e6 adapters (no activations: seq_len not given)
    assert need == pytest.approx(2 * 8e9 + 16 * 40e6)
    full = bytes_per_gpu(resolve_workload(workload(), None), np.array(["bf16"]), np.array([1]))[0]
    assert full == pytest.approx(16 * 8e9)


def test_qlora_stores_frozen_weights_in_4_bits() -> None:
    w = resolve_workload(workload(method="qlora", trainable_params=40e6), None)
    need = bytes_per_gpu(w, np.array(["bf16"]), np.array([2]))[0]
    # (4.127/8 B × 8e9 + 16 B × 40e6) / 2 GPUs
    assert need == pytest.approx((4.127 / 8 * 8e9 + 16 * 40e6) / 2)


def test_qlora_fits_a_70b_model_on_one_80gb_gpu_where_lora_does_not() -> None:
    """QLoRA's headline (Dettmers et al. 2023: a 65B model fine-tuned on one 48 GB GPU)."""
    catalog = load_catalog(use_user_dir=False, use_cache=False)
    base = {"workload": {"kind": "transformer_training", "model": "llama3-70b", "tokens": "10M", "seq_len": 2048,
                         "recompute": True, "lora_rank": 16},
            "constraints": {"max_gpus": 1, "gpus": ["H100-SXM"]}}
    for method, fits in (("qlora", True), ("lora", False)):
        data = {**base, "workload": {**base["workload"], "method": method}}
        result = solve(parse_job(data), catalog, sensitivity=False)
        assert (result.plan is not None) is fits, (method, result.explanation)


def test_lora_example_is_cheaper_than_the_full_fine_tune() -> None:
    catalog = load_catalog(use_user_dir=False, use_cache=False)
    lora = solve(load_job(REPO / "examples" / "llama3-8b-lora.yaml"), catalog, sensitivity=False)
    full = solve(load_job(REPO / "examples" / "llama3-8b-finetune.yaml"), catalog, sensitivity=False)
    assert lora.plan is not None and full.plan is not None
    assert lora.estimate.total_flops < full.estimate.total_flops
    assert lora.plan.cost_usd <= full.plan.cost_usd


@pytest.mark.parametrize("data, field, text", [
    ({"kind": "transformer_training", "params": 8e9, "tokens": 1e9, "method": "lora"},
     "workload.lora_rank", "lora_rank"),
    ({"kind": "transformer_training", "params": 8e9, "tokens": 1e9, "lora_rank": 8},
     "workload", "need method: lora or qlora"),
    ({"kind": "transformer_inference", "params": 8e9, "requests": 5, "prompt_tokens": 5, "method": "lora"},
     "workload", "only apply to kind transformer_training"),
    ({"kind": "transformer_training", "params": 8e9, "tokens": 1e9, "method": "lora", "lora_rank": 8},
     "workload.trainable_params", "layers and d_model"),
])
def test_bad_fine_tune_input_names_the_field(data: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(InputError) as info:
        estimate_flops(parse_job({"workload": data}).workload)
    assert info.value.problems[0].field == field
    assert text in str(info.value)
