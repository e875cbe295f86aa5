"""FLOP estimators (optimizer/flops.py) against hand-worked numbers, each with its source.

Every expected value below is written out by hand (not computed with the formula under
test), so a wrong factor in flops.py cannot cancel out in the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import FIXTURES, REPO
from flopopt.optimizer.errors import InputError
from flopopt.optimizer.flops import FlopEstimate, estimate_flops
from flopopt.optimizer.job import Workload
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    from flopopt.catalogs.loader import load_catalog

    return load_catalog(use_user_dir=False, use_cache=False).model_table()


def est(models: dict[str, dict[str, Any]] | None = None, **fields: Any) -> FlopEstimate:
    return estimate_flops(Workload(**fields), models, "job.yaml")


# ---------------------------------------------------------------------------
# Transformer training: 6·N·D (+ 12·L·d·S·D)


def test_gpt3_175b_on_300b_tokens() -> None:
    # Brown et al. 2020 (GPT-3), Table D.1: 175B params, 300B tokens, ≈ 3.14e23 FLOPs;
    # Kaplan et al. 2020 §2.1: C ≈ 6·N·D.  6 × 175e9 × 300e9 = 3.15e23.
    e = est(kind="transformer_training", params="175B", tokens="300B")
    assert e.total_flops == pytest.approx(3.15e23, rel=1e-12)
    assert e.terms["dense_flops"] == pytest.approx(3.15e23, rel=1e-12)
    assert e.terms["params_active"] == 175e9
    assert e.terms["tokens"] == 300e9
    assert "attention_flops" not in e.terms  # no layers/d_model/seq_len given
    assert e.formula == "6·N·D"


def test_chinchilla_70b_on_1_4t_tokens() -> None:
    # Hoffmann et al. 2022 (Chinchilla): 70B params trained on 1.4T tokens; with Kaplan's
    # C ≈ 6·N·D: 6 × 70e9 × 1.4e12 = 5.88e23 (≈ 5.9e23, the figure the issue quotes).
    e = est(kind="transformer_training", params="70B", tokens="1.4T")
    assert e.total_flops == pytest.approx(5.88e23, rel=1e-12)


def test_attention_term_small_config() -> None:
    # Chowdhery et al. 2022 (PaLM), Appendix B: 6·N + 12·L·H·Q·T FLOPs per token (H·Q = d).
    # N = 1000, D = 1000 tokens, L = 2, d = 8, S = 16:
    #   dense     6 × 1000 × 1000          = 6,000,000
    #   attention 12 × 2 × 8 × 16 × 1000   = 3,072,000
    e = est(kind="transformer_training", params=1000, tokens=1000, layers=2, d_model=8, seq_len=16)
    assert e.terms["dense_flops"] == 6_000_000
    assert e.terms["attention_flops"] == 3_072_000
    assert e.total_flops == 9_072_000
    assert e.formula == "6·N·D + 12·L·d·S·D"


def test_attention_needs_all_three_shape_fields() -> None:
    # Without seq_len the attention term cannot be computed: dense term only.
    e = est(kind="transformer_training", params=1000, tokens=1000, layers=2, d_model=8)
    assert e.total_flops == 6_000_000
    assert "attention_flops" not in e.terms


def test_recompute_adds_one_forward_pass() -> None:
    # Activation recomputation re-runs the forward pass (Korthikanti et al. 2022; PaLM
    # HFU vs MFU): 2N + 4N + 2N = 8·N per token, attention 4 + 8 + 4 = 16·L·d·S.
    #   dense     8 × 1000 × 1000          = 8,000,000
    #   attention 16 × 2 × 8 × 16 × 1000   = 4,096,000
    e = est(kind="transformer_training", params=1000, tokens=1000, layers=2, d_model=8, seq_len=16,
            recompute=True)
    assert e.terms["dense_flops"] == 8_000_000
    assert e.terms["attention_flops"] == 4_096_000
    assert e.total_flops == 12_096_000
    assert e.formula.startswith("8·N·D + 16·L·d·S·D")
    assert "recomputation" in e.formula


def test_moe_uses_active_params() -> None:
    # Jiang et al. 2024 (Mixtral of Experts): ~47B total, ~13B active per token (46.7B /
    # 12.9B in catalogs/models.csv).  Only active experts compute, so N = active params.
    # 6 × 12.9e9 × 1e12 = 7.74e22 (not 6 × 46.7e9 × 1e12 = 2.802e23).
    e = est(kind="transformer_training", params="46.7B", active_params="12.9B", tokens="1T")
    assert e.total_flops == pytest.approx(7.74e22, rel=1e-12)
    assert e.terms["params_active"] == 12.9e9
    assert "MoE" in e.formula


def test_gpt3_from_model_catalog_adds_attention(models: dict[str, dict[str, Any]]) -> None:
    # catalogs/models.csv gpt3-175b: L = 96, d = 12288, S = 2048 (Brown et al. 2020, Table 2.1).
    # attention 12 × 96 × 12288 × 2048 × 300e9 = 8.6973087744e21; + 3.15e23 dense.
    e = est(models, kind="transformer_training", model="gpt3-175b", tokens="300B")
    assert e.terms["dense_flops"] == pytest.approx(3.15e23, rel=1e-12)
    assert e.terms["attention_flops"] == pytest.approx(8.6973087744e21, rel=1e-12)
    assert e.total_flops == pytest.approx(3.15e23 + 8.6973087744e21, rel=1e-12)


def test_mixtral_from_model_catalog_uses_active_params(models: dict[str, dict[str, Any]]) -> None:
    # models.csv mixtral-8x7b: params 46.7B, active 12.9B, L = 32, d = 4096; the job's seq_len
    # (4096) wins over the catalog's 32768.  dense 6 × 12.9e9 × 1e12 = 7.74e22;
    # attention 12 × 32 × 4096 × 4096 × 1e12 = 6.442450944e21.
    e = est(models, kind="transformer_training", model="Mixtral-8x7B", tokens="1T", seq_len=4096)
    assert e.workload.params == 46.7e9
    assert e.workload.active_params == 12.9e9
    assert e.workload.seq_len == 4096
    assert e.terms["dense_flops"] == pytest.approx(7.74e22, rel=1e-12)
    assert e.terms["attention_flops"] == pytest.approx(6.442450944e21, rel=1e-12)


# ---------------------------------------------------------------------------
# Transformer inference: 2·N·T (+ 4·L·d·C·T)


def test_inference_dense_term() -> None:
    # Kaplan et al. 2020 §2.1: a forward pass costs 2·N FLOPs per token.
    # T = 1000 requests × (1000 prompt + 200 output) = 1.2e6 tokens; 2 × 7e9 × 1.2e6 = 1.68e16.
    e = est(kind="transformer_inference", params="7B", requests=1000, prompt_tokens=1000,
            output_tokens=200)
    assert e.terms["processed_tokens"] == 1.2e6
    assert e.terms["tokens_per_request"] == 1200
    assert e.total_flops == pytest.approx(1.68e16, rel=1e-12)
    assert e.decode_tokens == 200_000  # 1000 requests × 200 generated tokens
    assert "attention_flops" not in e.terms


def test_inference_attention_term() -> None:
    # PaLM Appendix B's 12·L·d·S per training token is 3 × the forward 4·L·d·S (QKᵀ and A·V,
    # 2 FLOPs per multiply-add each).  Context C defaults to prompt + output = 1200:
    # 4 × 32 × 4096 × 1200 × 1.2e6 = 7.5497472e14.
    e = est(kind="transformer_inference", params="7B", requests=1000, prompt_tokens=1000,
            output_tokens=200, layers=32, d_model=4096)
    assert e.terms["context_tokens"] == 1200
    assert e.terms["attention_flops"] == pytest.approx(7.5497472e14, rel=1e-12)
    assert e.total_flops == pytest.approx(1.68e16 + 7.5497472e14, rel=1e-12)


def test_inference_explicit_context() -> None:
    # 4 × 2 × 8 × 100 × (10 × 5) = 320,000; dense 2 × 1000 × 50 = 100,000.
    e = est(kind="transformer_inference", params=1000, requests=10, prompt_tokens=3, output_tokens=2,
            layers=2, d_model=8, context=100)
    assert e.terms["attention_flops"] == 320_000
    assert e.total_flops == 420_000


def test_inference_tokens_per_request_counts_as_prompt() -> None:
    # tokens = tokens per request when prompt/output are not split: 2 × 1000 × (10 × 50) = 1e6.
    e = est(kind="transformer_inference", params=1000, requests=10, tokens=50)
    assert e.total_flops == 1_000_000
    assert e.decode_tokens == 0


def test_inference_moe_uses_active_params() -> None:
    # 2 × 12.9e9 × (100 × 10) = 2.58e13.
    e = est(kind="transformer_inference", params="46.7B", active_params="12.9B", requests=100,
            prompt_tokens=8, output_tokens=2)
    assert e.total_flops == pytest.approx(2.58e13, rel=1e-12)


# ---------------------------------------------------------------------------
# CNN and custom: flops_per_sample × samples × epochs (× 3 for training)


def test_cnn_training_resnet50_imagenet() -> None:
    # ResNet-50 forward ≈ 4.09 GMACs = 8.18 GFLOPs per 224×224 image (torchvision model card;
    # He et al. 2016); backward ≈ 2 × forward → × 3 (the envelope method's template).
    # 8.18e9 × 1.281e6 images × 90 epochs × 3 = 2.8292166e18.
    e = est(kind="cnn_training", flops_per_sample=8.18e9, samples="1.281M", epochs=90)
    assert e.total_flops == pytest.approx(2.8292166e18, rel=1e-12)
    assert e.terms["backward_multiplier"] == 3.0


def test_cnn_training_resnet50_from_model_catalog(models: dict[str, dict[str, Any]]) -> None:
    e = est(models, kind="cnn_training", model="resnet50", samples="1.281M", epochs=90)
    assert e.terms["flops_per_sample"] == 8.18e9
    assert e.total_flops == pytest.approx(2.8292166e18, rel=1e-12)


def test_cnn_inference_is_forward_only(models: dict[str, dict[str, Any]]) -> None:
    # 30 frames/s × 8 h = 864,000 frames; 8.18e9 × 864e3 × 1 = 7.06752e15.
    e = est(models, kind="cnn_inference", model="resnet50", samples="864k")
    assert e.total_flops == pytest.approx(7.06752e15, rel=1e-12)
    assert "backward_multiplier" not in e.terms
    assert e.terms["epochs"] == 1.0  # epochs default to one pass


def test_custom_total_flops_taken_as_given() -> None:
    e = est(kind="custom", total_flops="3.2e19")
    assert e.total_flops == 3.2e19
    assert e.formula == "total_flops (given)"
    assert e.terms == {"total_flops": 3.2e19}


def test_custom_seed_example() -> None:
    # The seed's worked example: 1 GFLOP/sample × 1M samples × 10 epochs = 1e16 FLOPs,
    # taken as given (no × 3: the seed's per-sample figure already counts the whole step).
    e = est(kind="custom", flops_per_sample=1e9, samples="1M", epochs=10)
    assert e.total_flops == 1e16
    assert e.terms == {"flops_per_sample": 1e9, "samples": 1e6, "epochs": 10.0}


# ---------------------------------------------------------------------------
# model: NAME look-ups


def test_model_lookup_fills_catalog_values(models: dict[str, dict[str, Any]]) -> None:
    # models.csv llama2-7b: 6,738,415,616 params, 32 layers, d_model 4096, seq_len 4096.
    e = est(models, kind="transformer_training", model="LLaMA2-7B", tokens="2T")
    w = e.workload
    assert (w.params, w.layers, w.d_model, w.seq_len) == (6738415616, 32, 4096, 4096)
    assert isinstance(w.layers, int) and isinstance(w.seq_len, int)
    # 6 × 6,738,415,616 × 2e12 = 8.0860987392e22; 12 × 32 × 4096 × 4096 × 2e12 = 1.2884901888e22.
    assert e.terms["dense_flops"] == pytest.approx(8.0860987392e22, rel=1e-12)
    assert e.terms["attention_flops"] == pytest.approx(1.2884901888e22, rel=1e-12)


def test_job_values_win_over_model_catalog(models: dict[str, dict[str, Any]]) -> None:
    e = est(models, kind="transformer_training", model="llama2-7b", params="7B", tokens=1000,
            seq_len=2048)
    assert e.workload.params == 7e9
    assert e.workload.seq_len == 2048
    assert e.workload.layers == 32  # not given in the job: from the catalog


@pytest.mark.parametrize("name", ["resnet50", "vit-b16", "bert-base", "gpt2", "llama2-7b", "llama2-13b",
                                  "llama2-70b", "llama3-8b", "llama3-70b", "mistral-7b", "mixtral-8x7b"])
def test_required_models_present(models: dict[str, dict[str, Any]], name: str) -> None:
    row = models[name]
    assert str(row["source"]).strip(), f"{name} has no source"


def test_unknown_model_names_field_and_suggests(models: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(InputError) as info:
        est(models, kind="transformer_training", model="llama2-7", tokens="2T")
    problem = info.value.problems[0]
    assert problem.field == "workload.model"
    assert problem.file == "job.yaml"
    assert "did you mean" in problem.message and "'llama2-7b'" in problem.message
    assert str(info.value).startswith("job.yaml: workload.model: unknown model 'llama2-7'")


def test_unknown_model_without_close_match_lists_models(models: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(InputError) as info:
        est(models, kind="cnn_training", model="zzzzzz", samples=10)
    assert "did you mean" not in str(info.value)
    assert "resnet50" in str(info.value)  # the known models are listed


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"kind": "transformer_training", "tokens": "2T"}, "workload.params"),
        ({"kind": "transformer_training", "params": "7B"}, "workload.tokens"),
        ({"kind": "transformer_inference", "prompt_tokens": 10, "requests": 5}, "workload.params"),
        ({"kind": "transformer_inference", "params": "7B", "prompt_tokens": 10}, "workload.requests"),
        ({"kind": "transformer_inference", "params": "7B", "requests": 5}, "workload.prompt_tokens"),
        ({"kind": "cnn_training", "samples": 100}, "workload.flops_per_sample"),
        ({"kind": "cnn_training", "flops_per_sample": 1e9}, "workload.samples"),
        ({"kind": "cnn_inference", "samples": 100}, "workload.flops_per_sample"),
        ({"kind": "custom", "epochs": 3}, "workload.total_flops"),
        ({"kind": "custom", "flops_per_sample": 1e9}, "workload.total_flops"),
    ],
)
def test_missing_required_field_is_named(fields: dict[str, Any], missing: str) -> None:
    with pytest.raises(InputError) as info:
        est(None, **fields)
    assert info.value.problems[0].field == missing
    assert f"job.yaml: {missing}: " in str(info.value)


# ---------------------------------------------------------------------------
# The seed's worked example, end to end through `flopopt estimate`


def test_seed_worked_example_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1e16 FLOPs / (20e12 FLOP/s × 0.4) = 1,250 s; × (1 + 0.3) buffer = 1,625 s = 0.451388… h.
    from flopopt.cli.main import app

    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, [
        "estimate", str(REPO / "examples" / "seed-worked-example.yaml"),
        "--catalog", str(FIXTURES / "seed_catalog"), "--format", "json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["estimate"]["total_flops"] == 1e16
    rows = [r for r in data["per_gpu"] if r["gpu"] == "SEED-20TF" and r["gpu_count"] == 1]
    assert len(rows) == 1, data["per_gpu"]
    row = rows[0]
    assert row["precision"] == "fp32"
    assert row["scenario"] == "cloud"
    assert row["peak_tflops"] == 20.0
    assert row["attenuation"] == 0.4
    assert row["buffer"] == 0.3
    # JSON floats carry 6 significant digits (docs/output-contract.md): 0.451389 h = 1625.0 s.
    assert row["hours"] * 3600 == pytest.approx(1625.0, rel=1e-5)
    assert row["hours"] == round(1625.0 / 3600, 6)
    # Without the buffer the same row is the seed's 1,250 s.
    assert row["hours"] * 3600 / (1 + row["buffer"]) == pytest.approx(1250.0, rel=1e-5)
