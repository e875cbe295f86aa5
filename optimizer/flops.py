"""FLOP estimators, one per workload kind; each reports its formula and every term.

Sources:
- Training 6·N·D: Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1
  (forward 2N, backward 4N FLOPs per token).
- Attention term 12·L·d·S per token: Chowdhery et al. 2022, "PaLM", Appendix B
  (6N + 12·L·H·Q·T, with H·Q = d_model and T = sequence length).
- Activation recomputation re-runs the forward pass: +2N per token (and +1/3 of the
  attention term), i.e. 8·N·D — Korthikanti et al. 2022 / Chowdhery et al. 2022 (HFU vs MFU).
- Inference 2·N per processed token (forward only, Kaplan et al. 2020); attention
  4·L·d·C per token for a context of C tokens (QKᵀ and A·V, 2 FLOPs per MAC each).
- CNN training = 3 × forward (backward ≈ 2 × forward), the envelope template of the seed.
- LoRA / QLoRA fine-tuning (``method: lora | qlora``): the frozen weights still run forward
  (2·N·D) and the backward pass still propagates activation gradients through them (2·N·D), but
  no weight gradients are formed for them; only the adapters' N_t parameters are trained
  (≈ 6·N_t·D). So 4·N·D + 6·N_t·D instead of 6·N·D — Hu et al. 2021, "LoRA", arXiv 2106.09685
  §4 (frozen W0, trainable BA); Dettmers et al. 2023, "QLoRA", arXiv 2305.14314 §3 (same
  computation, the frozen weights stored in 4-bit NF4 and de-quantised to bf16 for each matmul).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .demand import serving_demand
from .errors import InputError
from .job import SERVING_FIELDS, Workload

TRAINING_KINDS = ("transformer_training", "cnn_training")
INFERENCE_KINDS = ("transformer_inference", "cnn_inference")


@dataclass(frozen=True)
class ResolvedWorkload:
    """The workload with a catalog model's numbers filled in (the job's own values win)."""

    kind: str
    model: str | None = None
    params: float | None = None
    active_params: float | None = None
    tokens: float | None = None
    seq_len: int | None = None
    layers: int | None = None
    d_model: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    recompute: bool = False
    micro_batch_size: int = 1
    requests: float | None = None
    prompt_tokens: float | None = None
    output_tokens: float | None = None
    batch_size: int | None = None
    context: int | None = None
    flops_per_sample: float | None = None
    samples: float | None = None
    epochs: float | None = None
    total_flops: float | None = None
    method: str = "full"
    lora_rank: int | None = None
    trainable_params: float | None = None

    @property
    def compute_params(self) -> float | None:
        """Parameters touched per token: MoE models only run their active experts."""
        return self.active_params or self.params

    @property
    def is_training(self) -> bool:
        return self.kind in TRAINING_KINDS


@dataclass(frozen=True)
class FlopEstimate:
    total_flops: float
    formula: str
    terms: dict[str, float] = field(default_factory=dict)
    workload: ResolvedWorkload = field(default_factory=lambda: ResolvedWorkload(kind="custom"))
    # Inference only: tokens generated one step at a time (memory-bandwidth bound).
    decode_tokens: float = 0.0


_MODEL_NUMERIC = ("params", "active_params", "layers", "d_model", "n_heads", "n_kv_heads", "seq_len",
                  "flops_per_sample")
_INT_FIELDS = ("layers", "d_model", "n_heads", "n_kv_heads", "seq_len")


def resolve_workload(
    workload: Workload, models: dict[str, dict[str, Any]] | None, file: str = "<job>"
) -> ResolvedWorkload:
    """Fill ``model: NAME`` from the models catalog; values in the job file take priority."""
    values: dict[str, Any] = workload.model_dump(exclude=set(SERVING_FIELDS))  # serving.py reads those
    if workload.model is not None:
        table = models or {}
        key = workload.model.strip().lower()
        if key not in table:
            import difflib

            close = difflib.get_close_matches(key, list(table), n=3)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise InputError.at(
                file,
                "workload.model",
                f"unknown model {workload.model!r}; {hint}"
                f"known models: {', '.join(sorted(table))} (or give workload.params)",
            )
        row = table[key]
        for name in _MODEL_NUMERIC:
            cell = row.get(name)
            if values.get(name) is None and cell is not None and not _is_nan(cell):
                values[name] = int(cell) if name in _INT_FIELDS else float(cell)
    return ResolvedWorkload(**values)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _require(w: ResolvedWorkload, file: str, *names: str) -> None:
    for name in names:
        if getattr(w, name) is None:
            alt = " (or give workload.model: NAME from catalogs/models.csv)" if name in (
                "params", "flops_per_sample") else ""
            raise InputError.at(file, f"workload.{name}", f"required for kind {w.kind}{alt}")


def _transformer_training(w: ResolvedWorkload, file: str) -> FlopEstimate:
    _require(w, file, "params", "tokens")
    n = float(w.compute_params or 0.0)
    d_tokens = float(w.tokens or 0.0)
    dense_factor = 8.0 if w.recompute else 6.0
    terms = {"params_active": n, "tokens": d_tokens, "dense_flops": dense_factor * n * d_tokens}
    formula = f"{dense_factor:g}·N·D"
    if w.method != "full":
        # forward 2N + activation gradients 2N (no weight gradients for frozen weights), +2N recompute
        frozen_factor = dense_factor - 2.0
        trainable = trainable_params(w, file)
        terms["trainable_params"] = trainable
        terms["dense_flops"] = frozen_factor * n * d_tokens + 6.0 * trainable * d_tokens
        formula = f"{frozen_factor:g}·N·D + 6·N_t·D  ({w.method}: frozen weights, N_t trainable adapter params)"
    if w.layers and w.d_model and w.seq_len:
        attn_factor = 16.0 if w.recompute else 12.0
        terms["attention_flops"] = attn_factor * w.layers * w.d_model * w.seq_len * d_tokens
        formula += f" + {attn_factor:g}·L·d·S·D"
    if w.recompute:
        formula += "  (activation recomputation: one extra forward pass)"
    if w.active_params and w.params and w.active_params != w.params:
        formula += "  (MoE: N = active params)"
    total = terms["dense_flops"] + terms.get("attention_flops", 0.0)
    return FlopEstimate(total_flops=total, formula=formula, terms=terms, workload=w)


# LoRA adapters on every linear layer of a block (QLoRA §4: "LoRA on all linear transformer block
# layers" is needed to match full fine-tuning). A rank-r adapter on a d_in×d_out matrix has
# r·(d_in + d_out) parameters; a standard block has 4 attention projections d→d (Σ 8d) and two
# MLP projections d↔4d (Σ 10d): 18·d·r per layer. An approximation: Llama-3-8B's real all-linear
# r=16 count is 41.9M (GQA k/v, SwiGLU 3.5d), this gives 37.7M; give trainable_params to be exact.
LORA_WIDTHS_PER_LAYER = 18.0


def trainable_params(w: ResolvedWorkload, file: str) -> float:
    """N_t of a LoRA/QLoRA fine-tune: given, or from lora_rank and the model's shape."""
    if w.trainable_params is not None:
        return float(w.trainable_params)
    if w.lora_rank is None:
        raise InputError.at(file, "workload.lora_rank",
                            f"method {w.method} needs lora_rank (e.g. 16) or trainable_params")
    if not (w.layers and w.d_model):
        raise InputError.at(file, "workload.trainable_params",
                            "lora_rank needs the model's layers and d_model (workload.model or explicit); "
                            "or give trainable_params")
    return LORA_WIDTHS_PER_LAYER * float(w.layers) * float(w.d_model) * float(w.lora_rank)


def _transformer_inference(w: ResolvedWorkload, file: str) -> FlopEstimate:
    _require(w, file, "params", "requests")
    if w.prompt_tokens is None and w.output_tokens is None and w.tokens is None:
        raise InputError.at(
            file, "workload.prompt_tokens",
            "inference needs prompt_tokens and output_tokens per request (or tokens per request)",
        )
    n = float(w.compute_params or 0.0)
    requests = float(w.requests or 0.0)
    if w.prompt_tokens is not None or w.output_tokens is not None:
        prompt = float(w.prompt_tokens or 0.0)
        output = float(w.output_tokens or 0.0)
    else:
        prompt, output = float(w.tokens or 0.0), 0.0
    per_request = prompt + output
    processed = requests * per_request
    terms = {
        "params_active": n,
        "requests": requests,
        "tokens_per_request": per_request,
        "processed_tokens": processed,
        "dense_flops": 2.0 * n * processed,
    }
    formula = "2·N·T  (T = requests × (prompt + output tokens))"
    if w.layers and w.d_model:
        context = float(w.context or per_request)
        terms["context_tokens"] = context
        terms["attention_flops"] = 4.0 * w.layers * w.d_model * context * processed
        formula += " + 4·L·d·C·T  (C = full context, an upper bound)"
    total = terms["dense_flops"] + terms.get("attention_flops", 0.0)
    return FlopEstimate(
        total_flops=total, formula=formula, terms=terms, workload=w, decode_tokens=requests * output
    )


def _per_sample(w: ResolvedWorkload, file: str, multiplier: float, label: str) -> FlopEstimate:
    _require(w, file, "flops_per_sample", "samples")
    epochs = float(w.epochs or 1.0)
    fps = float(w.flops_per_sample or 0.0)
    samples = float(w.samples or 0.0)
    terms = {"flops_per_sample": fps, "samples": samples, "epochs": epochs}
    if multiplier != 1.0:
        terms["backward_multiplier"] = multiplier
    total = fps * samples * epochs * multiplier
    return FlopEstimate(total_flops=total, formula=label, terms=terms, workload=w)


def estimate_flops(
    workload: Workload, models: dict[str, dict[str, Any]] | None = None, file: str = "<job>"
) -> FlopEstimate:
    """Total FLOPs of the job, with the formula and its terms (README: How the numbers are made)."""
    w = resolve_workload(workload, models, file)
    if w.kind == "transformer_training":
        return _transformer_training(w, file)
    if w.kind == "transformer_inference":
        return _transformer_inference(w, file)
    if w.kind == "transformer_serving":
        return serving_flops(workload, w, file)
    if w.kind == "cnn_training":
        return _per_sample(w, file, 3.0, "flops_per_sample × samples × epochs × 3 (forward + backward)")
    if w.kind == "cnn_inference":
        return _per_sample(w, file, 1.0, "flops_per_sample × samples × epochs (forward only)")
    if w.total_flops is not None:
        return FlopEstimate(
            total_flops=float(w.total_flops), formula="total_flops (given)",
            terms={"total_flops": float(w.total_flops)}, workload=w,
        )
    try:
        return _per_sample(w, file, 1.0, "flops_per_sample × samples × epochs (taken as given)")
    except InputError:
        raise InputError.at(
            file, "workload.total_flops",
            "custom workloads need total_flops, or flops_per_sample and samples (epochs optional)",
        ) from None


def serving_flops(workload: Workload, w: ResolvedWorkload, file: str) -> FlopEstimate:
    """FLOPs of the window's requests at average load (what ``estimate`` converts into hours;
    the fleet itself is sized by the replica model, at the peak)."""
    demand = serving_demand(workload, file)
    if w.params is None:
        raise InputError.at(file, "workload.params", "required for kind transformer_serving "
                            "(or give workload.model: NAME from catalogs/models.csv)")
    n = float(w.compute_params or 0.0)
    requests = demand.requests_in_window
    processed = requests * demand.tokens_per_request
    decode = requests * demand.output_tokens_per_request
    terms = {"params_active": n, "requests_in_window": requests, "average_requests_per_s": demand.average_rps,
             "peak_requests_per_s": demand.peak_rps, "fleet_hours": demand.fleet_hours,
             "processed_tokens": processed, "dense_flops": 2.0 * n * processed}
    return FlopEstimate(total_flops=terms["dense_flops"], formula="2·N·T  (T = the window's tokens at average load)",
                        terms=terms, workload=w, decode_tokens=decode)
