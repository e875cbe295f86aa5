"""Bytes needed per GPU, so candidates that cannot hold the job are dropped with a reason.

Sources:
- Mixed-precision Adam ≈ 16 bytes/parameter (2 weights + 2 gradients + 12 fp32 master
  weights, momentum and variance), fully sharded over the data-parallel GPUs as in
  ZeRO-3 / FSDP — Rajbhandari et al. 2020, "ZeRO", §3.
- Activations per layer s·b·h·(34 + 5·a·s/h) bytes without recomputation and 2·s·b·h
  with full recomputation — Korthikanti et al. 2022, "Reducing Activation Recomputation
  in Large Transformer Models", §4.1 (no tensor parallelism; each GPU holds its micro-batch).
  The 5·a·s/h term is the stored attention-score matrix; FlashAttention (Dao et al. 2022)
  never materialises it, and every current training stack uses it, so it is dropped.
- Inference: weights at the serving precision plus the KV cache, 2·L·d_kv·C·B values
  (K and V per layer, context C, batch B; d_kv = d·n_kv_heads/n_heads with grouped-query
  attention), both split across the GPUs (tensor parallel).
- LoRA / QLoRA fine-tuning: the frozen weights at the job's precision (QLoRA: 4-bit NF4 plus
  double-quantised constants, 4.127 bits/param — Dettmers et al. 2023, arXiv 2305.14314 §3),
  mixed-precision Adam state (16 B/param) for the N_t trainable adapter params only — no
  gradients or optimizer state for frozen weights (Hu et al. 2021, arXiv 2106.09685 §4.2:
  "we do not need to calculate the gradients or maintain the optimizer states for most
  parameters") — plus activations, which LoRA does not shrink. Sharded over the GPUs as above.
"""

from __future__ import annotations

import numpy as np

from .flops import ResolvedWorkload, trainable_params

BYTES_PER_VALUE = {"fp64": 8.0, "fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
ADAM_MIXED_PRECISION_BYTES_PER_PARAM = 16.0
KV_CACHE_BYTES_PER_VALUE = 2.0   # KV caches are kept in 16-bit unless quantised
DEFAULT_SERVING_BATCH = 16       # continuous batching keeps a few sequences in flight
QLORA_BYTES_PER_PARAM = 4.127 / 8.0  # NF4 (4 bits) + double-quantised constants (0.127 bits), QLoRA §3


def activation_bytes_per_gpu(w: ResolvedWorkload) -> float:
    """Activation memory of one micro-batch; 0 when the architecture is not given."""
    if not (w.layers and w.d_model and w.seq_len):
        return 0.0
    s, b, h = float(w.seq_len), float(w.micro_batch_size), float(w.d_model)
    per_value = 2.0 if w.recompute else 34.0
    return float(w.layers) * s * b * h * per_value


def kv_cache_bytes(w: ResolvedWorkload) -> float:
    """KV cache of one full batch at the full context.

    With grouped-query attention (Ainslie et al. 2023; Llama-2-70B, Llama-3, Mistral) only
    n_kv_heads of the n_heads keep keys and values, so the cache is d·n_kv/n_heads wide.
    """
    if not (w.layers and w.d_model):
        return 0.0
    context = float(w.context or (w.prompt_tokens or 0.0) + (w.output_tokens or 0.0) or w.tokens or 0.0)
    batch = float(w.batch_size or DEFAULT_SERVING_BATCH)
    kv_width = float(w.d_model)
    if w.n_kv_heads and w.n_heads:
        kv_width *= float(w.n_kv_heads) / float(w.n_heads)
    return 2.0 * float(w.layers) * kv_width * context * batch * KV_CACHE_BYTES_PER_VALUE


def bytes_per_gpu(w: ResolvedWorkload, precision: np.ndarray, gpu_count: np.ndarray) -> np.ndarray:
    """Bytes each GPU must hold, per candidate (vectorised over precision and count)."""
    count = gpu_count.astype(float)
    params = float(w.params or 0.0)
    if w.is_training:
        activations = activation_bytes_per_gpu(w)
        if w.method != "full":
            return np.asarray(fine_tune_state_bytes(w, precision) / count + activations, dtype=float)
        return np.asarray(ADAM_MIXED_PRECISION_BYTES_PER_PARAM * params / count + activations, dtype=float)
    value_bytes = np.array([BYTES_PER_VALUE[p] for p in precision], dtype=float)
    kv = kv_cache_bytes(w) if w.kind == "transformer_inference" else 0.0
    return np.asarray((value_bytes * params + kv) / count, dtype=float)


def need_gb_per_gpu(w: ResolvedWorkload, precision: np.ndarray, gpu_count: np.ndarray) -> np.ndarray:
    """``bytes_per_gpu`` in GB: the ``need_gb_per_gpu`` column the memory check compares with the GPU's."""
    return np.asarray(bytes_per_gpu(w, precision, gpu_count), dtype=float) / 1e9


def fine_tune_state_bytes(w: ResolvedWorkload, precision: np.ndarray) -> np.ndarray:
    """LoRA/QLoRA: frozen weights at their precision (4-bit for QLoRA) + Adam state of the adapters."""
    params = float(w.params or 0.0)
    if w.method == "qlora":
        frozen = np.full(len(precision), QLORA_BYTES_PER_PARAM)
    else:
        frozen = np.array([BYTES_PER_VALUE[p] for p in precision], dtype=float)
    adapters = ADAM_MIXED_PRECISION_BYTES_PER_PARAM * trainable_params(w, "<job>")
    return np.asarray(frozen * params + adapters, dtype=float)
