"""optimizer/calibration.py and ``flopopt calibrate|backtest``.

Expected numbers are worked by hand (the arithmetic is in the comments) or come from
histories generated with a known attenuation that the fit must recover — never from the
code under test.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import REPO, gpu_row, write_csv
from flopopt.catalogs.loader import Catalog, load_catalog
from flopopt.catalogs.schema import ATTENUATION
from flopopt.cli.main import app
from flopopt.optimizer.backtest import backtest
from flopopt.optimizer.calibration import calibrate, implied_at
from flopopt.optimizer.calibration_writer import write_calibration
from flopopt.optimizer.errors import CatalogError, InputError
from flopopt.optimizer.history import read_history
from typer.testing import CliRunner, Result

FIXTURES = REPO / "tests" / "fixtures" / "history"
EXAMPLE_HISTORY = REPO / "examples" / "history.csv"
H100_BF16_TFLOPS = 989.5   # catalogs/gpus.csv, H100-SXM dense bf16
FLOPS_7B_1T = 6 * 7e9 * 1e12   # 6·N·D with N = 7e9, D = 1e12 (no layers given: no attention term)

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def scale_by_hand(gpus: int) -> float:
    """8-GPU NVLink nodes (0.98 per doubling) joined by InfiniBand (0.97 per doubling)."""
    within = 0.98 ** math.log2(min(gpus, 8))
    across = 0.97 ** math.log2(gpus / 8) if gpus > 8 else 1.0
    return within * across


def write_history(path: Path, runs: list[dict[str, Any]]) -> Path:
    """A history CSV of 7B-parameter, 1T-token training runs on H100-SXM at bf16."""
    columns = ["name", "workload", "params", "tokens", "gpu", "gpu_count", "precision", "scenario", "hours"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for i, run in enumerate(runs):
            writer.writerow({"name": f"run-{i}", "workload": "transformer_training", "params": "7e9",
                             "tokens": "1e12", "gpu": "H100-SXM", "precision": "bf16", **run})
    return path


def synthetic_run(attenuation: float, gpus: int, scenario: str = "cluster", gpu: str = "H100-SXM",
                  peak_tflops: float = H100_BF16_TFLOPS, ref: int = 1) -> dict[str, Any]:
    """A run whose measured hours are exactly what ``attenuation`` at ``ref`` GPUs predicts (no
    buffer): per-GPU efficiency = attenuation · scale(n) / scale(ref)."""
    per_gpu = attenuation * scale_by_hand(gpus) / scale_by_hand(ref)
    seconds = FLOPS_7B_1T / (gpus * peak_tflops * 1e12 * per_gpu)
    return {"gpu_count": gpus, "scenario": scenario, "gpu": gpu, "hours": repr(seconds / 3600.0)}


# ---------------------------------------------------------------------------
# implied attenuation of one run


def test_llama2_7b_implied_attenuation_by_hand(bundled: Catalog) -> None:
    # Touvron et al. 2023, Table 2: Llama-2-7B, 2T tokens, 184,320 A100-80GB GPU-hours.
    #   FLOPs = 6 · 6.74e9 · 2e12                       = 8.088e22
    #   GPU-seconds = 184,320 h · 3600 s/h              = 6.63552e8
    #   peak work   = 6.63552e8 s · 312e12 FLOP/s       = 2.0702822e23
    #   MFU         = 8.088e22 / 2.0702822e23           ≈ 0.39067   (before scale-out)
    # On 2048 GPUs = 256 nodes of 8: scale = 0.98^3 · 0.97^8 = 0.941192 · 0.783743 = 0.737654
    #   efficiency at its own count (ref_gpus = 2048)  ≈ 0.39067 — what a row with ref_gpus 2048 holds
    #   the same run stated at 1 GPU (ref_gpus = 1)     = 0.39067 / 0.737654 ≈ 0.52962
    history = read_history(FIXTURES / "llama2-7b.csv", bundled)
    (run,) = history.runs
    assert run.total_flops == pytest.approx(8.088e22, rel=1e-12)
    assert run.measured_hours == pytest.approx(90.0)            # 184,320 GPU-hours / 2048 GPUs
    assert run.mfu == pytest.approx(8.088e22 / 2.0702822e23, rel=1e-6)
    assert run.mfu == pytest.approx(0.39067, abs=1e-5)
    assert run.scale_efficiency == pytest.approx(0.941192 * 0.783743, rel=1e-6)
    assert run.implied_attenuation == pytest.approx(0.39067, rel=1e-4)
    assert implied_at(run, 2048) == pytest.approx(0.39067, rel=1e-4)
    assert implied_at(run, 1) == pytest.approx(0.39067 / 0.737654, rel=1e-4)
    assert run.scenario == "cluster" and run.scenario_given


def test_scenario_from_gpu_count_when_not_given(tmp_path: Path, bundled: Catalog) -> None:
    one = {**synthetic_run(0.5, 1), "scenario": ""}
    many = {**synthetic_run(0.5, 16), "scenario": ""}
    history = read_history(write_history(tmp_path / "h.csv", [one, many]), bundled)
    assert [(r.scenario, r.scenario_given) for r in history.runs] == [("lab", False), ("cluster", False)]
    assert history.runs[0].scale_efficiency == 1.0
    assert history.runs[1].scale_efficiency == pytest.approx(0.98 ** 3 * 0.97)   # 2 nodes: one IB doubling


def test_hours_and_gpu_hours_must_agree(tmp_path: Path, bundled: Catalog) -> None:
    path = tmp_path / "both.csv"
    path.write_text("name,workload,params,tokens,gpu,gpu_count,precision,hours,gpu_hours\n"
                    "ok,transformer_training,7B,1T,H100-SXM,8,bf16,4000,32000\n"
                    "off,transformer_training,7B,1T,H100-SXM,8,bf16,4000,10000\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_history(path, bundled)
    (problem,) = caught.value.problems
    assert (problem.row, problem.field) == (3, "gpu_hours")


# ---------------------------------------------------------------------------
# fitting


def test_fit_recovers_percentiles_of_known_attenuations(tmp_path: Path, bundled: Catalog) -> None:
    # Ten runs at 0.30, 0.32, …, 0.48 on assorted fleet sizes (12 GPUs = 1.5 nodes included).
    # Linear-interpolated percentiles of the sorted values a_k = 0.30 + 0.02·k:
    #   P10 at index 0.9 → 0.30 + 0.9·0.02 = 0.318;  P90 at index 8.1 → 0.46 + 0.1·0.02 = 0.462
    #   median = (0.38 + 0.40) / 2 = 0.39;  uncertainty = (0.462 − 0.318) / (0.462 + 0.318) = 0.144 / 0.78
    # Rows are stated at the runs' typical count: 2^round(median log2 n) = 2^round(7.0) = 128 GPUs.
    counts = [1, 8, 12, 64, 256, 512, 1024, 2048, 4096, 16]
    runs = [synthetic_run(0.30 + 0.02 * k, n, ref=128) for k, n in enumerate(counts)]
    cal = calibrate(write_history(tmp_path / "synthetic.csv", runs), bundled)
    for k, run in enumerate(cal.runs):
        assert implied_at(run, 128) == pytest.approx(0.30 + 0.02 * k, abs=1e-9)
    (group,) = cal.groups
    assert (group.scenario, group.workload, group.gpu, group.n) == ("any", "transformer_training", "", 10)
    assert group.ref_gpus == 128
    assert abs(group.low - 0.318) < 1e-6
    assert abs(group.high - 0.462) < 1e-6
    assert abs(group.median - 0.39) < 1e-6
    assert abs(group.uncertainty - 0.144 / 0.78) < 1e-6
    assert group.method == "p10–p90"
    # next to the catalog row it replaces (the bundled cluster/transformer_training row)
    att = bundled.attenuation
    row = att[(att["scenario"] == "cluster") & (att["workload"] == "transformer_training") & (att["gpu"] == "")]
    assert (group.current_low, group.current_high, group.current_uncertainty) == (
        float(row["low"].iloc[0]), float(row["high"].iloc[0]), float(row["uncertainty"].iloc[0]))
    assert group.current_source == "cluster/transformer_training"


def test_constant_attenuation_is_recovered_exactly(tmp_path: Path, bundled: Catalog) -> None:
    # 2^round(median log2 (2, 12, 100, 4096)) = 2^round(5.1) = 32 GPUs
    runs = [synthetic_run(0.45, n, ref=32) for n in (2, 12, 100, 4096)]
    (group,) = calibrate(write_history(tmp_path / "flat.csv", runs), bundled).groups
    assert group.ref_gpus == 32 and abs(group.median - 0.45) < 1e-9
    # Four runs say nothing about the spread: the range keeps the prior's ± (bundled
    # cluster/transformer_training uncertainty u) around the median, never a false [0.45, 0.45].
    u = group.current_uncertainty
    assert abs(group.low - 0.45 * (1 - u)) < 1e-6 and abs(group.high - 0.45 * (1 + u)) < 1e-6


def test_fewer_than_three_runs_use_mean_and_catalog_uncertainty(tmp_path: Path, bundled: Catalog) -> None:
    # median(0.40, 0.50) = 0.45 at 2^round(6.5) = 64 GPUs (round half to even); the bundled
    # cluster/transformer_training uncertainty u: low = 0.45 · (1 − u), high = 0.45 · (1 + u)
    runs = [synthetic_run(0.40, 64, ref=64), synthetic_run(0.50, 128, ref=64)]
    (group,) = calibrate(write_history(tmp_path / "two.csv", runs), bundled).groups
    u = group.current_uncertainty
    assert abs(group.low - 0.45 * (1 - u)) < 1e-6 and abs(group.high - 0.45 * (1 + u)) < 1e-6
    assert abs(group.uncertainty - u) < 1e-6
    assert group.method == "median ± catalog uncertainty"


def test_gpu_rows_need_three_runs_in_a_mixed_group(tmp_path: Path, bundled: Catalog) -> None:
    a100 = dict(gpu="A100-80GB", peak_tflops=312.0)
    mixed = [synthetic_run(0.5, 64), synthetic_run(0.5, 128), synthetic_run(0.5, 256),
             synthetic_run(0.4, 64, **a100), synthetic_run(0.4, 128, **a100)]  # type: ignore[arg-type]
    keys = [g.key for g in calibrate(write_history(tmp_path / "mixed.csv", mixed), bundled).groups]
    assert keys == ["any/transformer_training", "any/transformer_training/H100-SXM"]
    # all on one GPU: a GPU row would only repeat the workload row
    same = mixed[:3]
    keys = [g.key for g in calibrate(write_history(tmp_path / "same.csv", same), bundled).groups]
    assert keys == ["any/transformer_training"]


# ---------------------------------------------------------------------------
# writing, layering, and solve picking the calibrated rows


def test_output_file_is_an_attenuation_csv(tmp_path: Path, bundled: Catalog) -> None:
    import datetime as dt

    runs = [synthetic_run(0.45, n, ref=32) for n in (16, 32, 64)]
    cal = calibrate(write_history(tmp_path / "synthetic.csv", runs), bundled, today=dt.date(2026, 1, 2))
    folder = tmp_path / "calibrated"
    written = write_calibration(cal, folder / "attenuation.csv")
    assert written == folder / "attenuation.csv"
    with written.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
        assert list(rows[0]) == [c.name for c in ATTENUATION]
    (row,) = rows
    assert {k: row[k] for k in ("scenario", "workload", "gpu", "median", "ref_gpus", "source")} == {
        "scenario": "any", "workload": "transformer_training", "gpu": "", "median": "0.45", "ref_gpus": "32",
        "source": "calibrated from synthetic.csv, 3 runs, 2026-01-02"}
    catalog = load_catalog(folder)   # --catalog DIR layers it above the bundled rows
    att = catalog.attenuation
    row = att[(att["scenario"] == "any") & (att["workload"] == "transformer_training")]
    assert len(row) == 1 and row["source"].iloc[0].startswith("calibrated from synthetic.csv")


def test_default_write_merges_into_the_user_catalog(tmp_path: Path, bundled: Catalog) -> None:
    user = tmp_path / "_user"   # FLOPOPT_USER_DIR (tests/conftest.py)
    user.mkdir()
    write_csv(user / "attenuation.csv", "attenuation.csv", [
        {"scenario": "edge", "workload": "cnn_inference", "low": 0.2, "high": 0.3, "uncertainty": 0.3,
         "source": "our Jetson measurements"},
        {"scenario": "cluster", "workload": "transformer_training", "low": 0.1, "high": 0.2, "uncertainty": 0.3,
         "source": "an old guess"},
    ])
    runs = [synthetic_run(0.45, n, ref=32) for n in (16, 32, 64)]
    written = write_calibration(calibrate(write_history(tmp_path / "h.csv", runs), bundled))
    assert written == user / "attenuation.csv"
    with written.open(encoding="utf-8", newline="") as handle:
        sources = {(r["scenario"], r["workload"]): r["source"] for r in csv.DictReader(handle)}
    assert sources[("edge", "cnn_inference")] == "our Jetson measurements"      # kept
    assert sources[("cluster", "transformer_training")] == "an old guess"        # kept, but outranked:
    assert sources[("any", "transformer_training")].startswith("calibrated from h.csv")
    from flopopt.optimizer.performance import lookup_attenuation
    found = lookup_attenuation(load_catalog().attenuation, np.array(["cluster", "cloud", "lab"], dtype=object),
                               "transformer_training", np.array(["H100-SXM"] * 3, dtype=object))
    # the calibrated row applies whatever scenario the optimiser picks
    assert list(found["att_source"]) == ["any/transformer_training"] * 3
    assert list(found["att_median"]) == pytest.approx([0.45] * 3)


def test_solve_uses_the_calibrated_rows(tmp_path: Path) -> None:
    # Nine runs (enough for the covariate fit) at a constant 0.45 at 16 GPUs, from several scenarios:
    # the fit applies to the workload whatever scenario the optimiser picks, so the plan gets 0.45
    # (one GPU type, one size: every covariate but the intercept stays at 0).
    runs = [synthetic_run(0.45, n, scenario=s, ref=16) for s in ("lab", "cloud", "cluster") for n in (8, 16, 32)]
    history = write_history(tmp_path / "team.csv", runs)
    # Wide enough that the path is not folded, however long the temp folder's name is.
    result = runner.invoke(app, ["calibrate", str(history)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    target = tmp_path / "_user" / "attenuation.csv"
    assert f"Written to {target}" in result.stdout
    solved = invoke("solve", str(REPO / "examples" / "llama2-7b-pretrain.yaml"), "--format", "json",
                    "--no-sensitivity")
    assert solved.exit_code == 0, solved.output
    data = json.loads(solved.stdout)
    plan = data["plan"]
    assert plan["attenuation_source"].startswith("calibrated fit (transformer_training, 9 runs)")
    assert plan["attenuation"] == pytest.approx(0.45, abs=1e-3)
    assert any(layer.startswith("user ") for layer in data["catalog"]["layers"])


def test_calibrate_then_backtest_round_trips(tmp_path: Path) -> None:
    """A group fitted from one run predicts that run exactly before the buffer — for training
    and for inference, where the decode roofline has to be inverted too."""
    path = tmp_path / "two-kinds.csv"
    path.write_text(
        "name,workload,model,tokens,seq_len,requests,prompt_tokens,output_tokens,gpu,gpu_count,precision,hours\n"
        "train,transformer_training,llama2-7b,20B,4096,,,,H100-SXM,64,bf16,9.5\n"
        "serve,transformer_inference,llama3-8b,,,200k,400,150,A10G,1,fp16,30\n", encoding="utf-8")
    assert invoke("calibrate", str(path)).exit_code == 0
    catalog = load_catalog()
    serve = read_history(path, catalog).runs[1]
    # decode is bandwidth-bound here: the implied attenuation is not the plain FLOP ratio
    assert serve.implied_attenuation > serve.mfu * 1.2
    result = backtest(path, catalog)
    for run in result.runs:
        assert run.error_pct_no_buffer == pytest.approx(0.0, abs=1e-4)
        assert run.attenuation_source in ("any/transformer_training", "any/transformer_inference")


def test_dry_run_writes_nothing_and_output_goes_where_asked(tmp_path: Path) -> None:
    history = write_history(tmp_path / "h.csv", [synthetic_run(0.45, n) for n in (16, 32, 64)])
    dry = invoke("calibrate", str(history), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing written" in dry.stdout
    assert not (tmp_path / "_user").exists()
    out = tmp_path / "mine" / "att.csv"
    result = invoke("calibrate", str(history), "--rows-to", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["written"] == str(out) and out.is_file()
    assert not (tmp_path / "_user").exists()
    (group,) = data["groups"]
    assert group["n"] == 3 and group["current"]["row"] == "cluster/transformer_training"
    assert f"wrote 1 calibrated row(s) to {out}" in result.stderr


# ---------------------------------------------------------------------------
# backtest


@pytest.fixture
def tiny_catalog_dir(tmp_path: Path) -> Path:
    """One extra GPU with a round peak; attenuation comes from the bundled lab/any row
    (0.7–0.8 ±10%) because the runs below are ``custom`` workloads."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    write_csv(folder / "gpus.csv", "gpus.csv", [gpu_row("TEST-GPU", peak_tflops_bf16=100)])
    return folder


BACKTEST_CSV = (
    "name,workload,total_flops,gpu,gpu_count,precision,scenario,hours,cost_usd,budget_usd\n"
    "on-time,custom,2.7e17,TEST-GPU,1,bf16,lab,1.0,95,100\n"
    "late,custom,2.7e17,TEST-GPU,1,bf16,lab,2.0,150,100\n"
    "no-budget,custom,2.7e17,TEST-GPU,1,bf16,lab,1.5,,\n"
)


def test_backtest_by_hand(tmp_path: Path, tiny_catalog_dir: Path) -> None:
    # attenuation = median of 0.7–0.8 (no median given: the middle) = 0.75; buffer auto at ±10% = 20%
    # P50 = 2.7e17 FLOPs / (1 · 100e12 FLOP/s · 0.75 · 1) = 3600 s = 1.0 h (the point estimate is scored,
    # without the buffer); planned with the buffer 1.2 h; P10 at 0.8 = 0.9375 h, P90 at 0.7 = 1.0714 h
    #   on-time:   measured 1.0 → error 0%;     1.0/1.0 in 80–120%; inside [P10, P90]
    #   late:      measured 2.0 → error −50%;   out;                outside
    #   no-budget: measured 1.5 → error −33.3%; out;                outside
    # within ±20%: on-time → 1/3; median |error| = median(0, 50, 33.3) = 33.3
    # cost/budget: 0.95 in, 1.5 out, (no-budget not counted) → 1/2
    path = tmp_path / "runs.csv"
    path.write_text(BACKTEST_CSV, encoding="utf-8")
    result = backtest(path, load_catalog(tiny_catalog_dir))
    on_time, late, no_budget = result.runs
    assert on_time.predicted_hours_no_buffer == pytest.approx(1.0)
    assert on_time.predicted_hours == pytest.approx(1.0)
    assert on_time.planned_hours_with_buffer == pytest.approx(1.2)
    assert (on_time.predicted_hours_p10, on_time.predicted_hours_p90) == (pytest.approx(0.9375),
                                                                          pytest.approx(1 / 0.7 * 0.75))
    assert (on_time.attenuation, on_time.buffer, on_time.attenuation_source) == (
        pytest.approx(0.75), pytest.approx(0.2), "lab/any")
    assert [r.error_pct for r in result.runs] == pytest.approx([0.0, -50.0, -100 / 3])
    assert [r.error_pct_no_buffer for r in result.runs] == pytest.approx([0.0, -50.0, -100 / 3])
    assert late.measured_hours == 2.0 and no_budget.cost_ratio is None
    s = result.summary
    assert (s.n, s.cost_runs) == (3, 2)
    assert s.within_20pct == pytest.approx(1 / 3)
    assert s.median_abs_error_pct == pytest.approx(100 / 3)
    assert s.coverage_p10_p90 == pytest.approx(1 / 3)
    assert s.time_within_80_120pct == pytest.approx(1 / 3)
    assert s.cost_within_90_110pct == pytest.approx(0.5)


def test_backtest_json_contract(tmp_path: Path, tiny_catalog_dir: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(BACKTEST_CSV, encoding="utf-8")
    result = invoke("backtest", str(path), "--catalog", str(tiny_catalog_dir), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"schema_version", "status", "runs", "summary"}
    assert set(data["summary"]) == {"n", "within_20pct", "median_abs_error_pct", "time_within_80_120pct",
                                    "cost_within_90_110pct", "coverage_p10_p90"}
    assert data["summary"]["n"] == 3 and data["summary"]["cost_within_90_110pct"] == pytest.approx(0.5)
    first = data["runs"][0]
    assert {"name", "predicted_hours", "measured_hours", "error_pct"} <= set(first)
    assert (first["name"], first["predicted_hours"], first["measured_hours"]) == (
        "on-time", pytest.approx(1.0), 1.0)
    assert first["error_pct"] == pytest.approx(0.0) and first["error_pct_no_buffer"] == pytest.approx(0.0)


def test_backtest_cost_metric_is_null_without_budgets(tmp_path: Path, tiny_catalog_dir: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("name,workload,total_flops,gpu,gpu_count,precision,hours\n"
                    "a,custom,2.7e17,TEST-GPU,1,bf16,1.0\n", encoding="utf-8")
    result = invoke("backtest", str(path), "--catalog", str(tiny_catalog_dir), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["cost_within_90_110pct"] is None
    table = invoke("backtest", str(path), "--catalog", str(tiny_catalog_dir))
    assert "cost within 90–110% of budget: — (no run gives both cost_usd and budget_usd)" in table.stdout


# ---------------------------------------------------------------------------
# bad history files: exit 2, file/row/column named, no traceback


@pytest.mark.parametrize("command", ["calibrate", "backtest"])
@pytest.mark.parametrize(("fixture", "expected"), [
    ("bad-cells.csv", [
        "bad-cells.csv: row 2: gpu: unknown gpu 'A100-80G' (not in gpus.csv); did you mean 'A100-80GB'?",
        "bad-cells.csv: row 3: params: must be a number like 7B",
        "bad-cells.csv: row 4: precision: A100-80GB has no fp8 peak in gpus.csv",
        "bad-cells.csv: row 5: hours: empty; give wall-clock `hours` or total `gpu_hours`",
        "bad-cells.csv: row 6: gpu_count: 'eight' is not a number",
        "bad-cells.csv: row 7: tokens: required for kind transformer_training",
        "bad-cells.csv: row 8: cost_usd: must be an amount in USD",
    ]),
    ("bad-header.csv", [
        "bad-header.csv: row 1: hourz: unknown column; did you mean 'hours'?",
        "bad-header.csv: row 1: hours: required column is missing",
    ]),
    ("faster-than-peak.csv", [
        "faster-than-peak.csv: row 2: hours: 2 h on 1024 × H100-SXM at bf16 implies 576% of peak",
    ]),
])
def test_bad_history_exits_2_naming_row_and_column(command: str, fixture: str, expected: list[str]) -> None:
    result = invoke(command, str(FIXTURES / fixture))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected)
    for line, text in zip(lines, expected):
        assert line.startswith("error: ") and text in line, (line, text)
    assert not (Path(os.environ["FLOPOPT_USER_DIR"]) / "attenuation.csv").exists()


@pytest.mark.parametrize(("content", "message"), [
    (None, "file not found"),
    ("name,workload,gpu,gpu_count,precision,hours\n", "no runs"),
    ("", "not a readable CSV file"),
])
def test_unusable_history_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "history.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke("calibrate", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}") and message in result.stderr
    assert "Traceback" not in result.output
    directory = invoke("backtest", str(tmp_path))
    assert directory.exit_code == 2 and "is a directory" in directory.stderr


def test_calibrated_gpu_rows_need_the_gpu_in_the_user_catalog(tmp_path: Path, tiny_catalog_dir: Path) -> None:
    """A GPU defined only in a --catalog folder cannot be referred to from the user folder,
    which loads without it: the merge is refused with the way out, and nothing is written."""
    path = tmp_path / "runs.csv"
    path.write_text("name,workload,total_flops,gpu,gpu_count,precision,scenario,hours\n"
                    + "".join(f"r{i},custom,2.7e17,{g},1,bf16,lab,1.0\n" for i, g in enumerate(
                        ["TEST-GPU"] * 3 + ["H100-SXM"])), encoding="utf-8")
    cal = calibrate(path, load_catalog(tiny_catalog_dir))
    assert [g.key for g in cal.groups] == ["any/custom", "any/custom/TEST-GPU"]
    with pytest.raises(CatalogError, match="--output FILE.csv and pass --catalog"):
        write_calibration(cal)
    assert not (tmp_path / "_user" / "attenuation.csv").exists()


# ---------------------------------------------------------------------------
# the example history


@pytest.mark.slow
def test_example_history_is_sourced_and_runs(bundled: Catalog) -> None:
    with EXAMPLE_HISTORY.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 12
    for row in rows:
        source = row["source"]
        assert source.startswith(("published: ", "illustrative: ")), row["name"]
        if source.startswith("published: "):
            assert "https://" in source, row["name"]
    history = read_history(EXAMPLE_HISTORY, bundled)
    assert len(history.runs) == len(rows)
    assert all(0.05 < r.implied_attenuation <= 1.0 for r in history.runs)
    result = invoke("backtest", str(EXAMPLE_HISTORY), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "| llama2-7b |" in result.stdout


def test_a_run_far_below_any_real_utilisation_is_rejected(tmp_path: Path) -> None:
    # 9.37e22 FLOPs over 1e308 GPU-hours is ~1e-301 of peak: a unit slip, not a measurement.
    source = EXAMPLE_HISTORY.read_text(encoding="utf-8").splitlines()
    header, first = source[0], source[1].replace(",184320,", ",1e308,")
    bad = tmp_path / "huge.csv"
    bad.write_text(header + "\n" + first + "\n", encoding="utf-8")
    result = invoke("calibrate", str(bad), "--output", str(tmp_path / "att.csv"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "row 2: gpu_hours:" in result.stderr and "below 0.1% is not a real run" in result.stderr
    assert not (tmp_path / "att.csv").exists()


def test_calibrate_inverts_solve_exactly(make_catalog: Any, tmp_path: Path) -> None:
    """Round trip: runs whose hours ``solve`` itself predicts (pinned counts, no buffer, an
    8-GPU NVLink offer = the layout of published runs) calibrate back to the row's factor at
    its ref_gpus — the implied efficiency is the exact inverse of solve's model."""
    from builders import offer_row as offer
    from flopopt.optimizer.job import parse_job
    from flopopt.optimizer.solve import solve

    rows = [{"scenario": s, "workload": "any", "low": 0.3, "high": 0.5, "uncertainty": 0.2, "ref_gpus": 8}
            for s in ("lab", "cloud", "edge", "cluster")]
    rows.append({"scenario": "cloud", "workload": "transformer_training", "low": 0.2, "high": 0.4, "median": 0.3,
                 "uncertainty": 0.3, "ref_gpus": 2048})
    catalog = make_catalog([gpu_row("H100-SXM", peak_tflops_bf16=989.5)],
                           [offer("h", "H100-SXM", 98.0, gpus_per_instance=8, interconnect="nvlink")], rows)
    runs = []
    for n in (8, 64, 512):
        job = parse_job({"workload": {"kind": "transformer_training", "params": "7B", "tokens": "1T"},
                         "scenario": "cloud", "risk": {"buffer": 0}, "constraints": {"gpu_count": n}})
        plan = solve(job, catalog, sensitivity=False).plan
        assert plan is not None and plan.gpu_count == n
        runs.append({"gpu_count": n, "scenario": "cloud", "gpu": "H100-SXM", "hours": repr(plan.hours)})
    history = read_history(write_history(tmp_path / "from-solve.csv", runs), catalog)
    for run in history.runs:
        assert implied_at(run, 2048) == pytest.approx(0.3, rel=1e-9)
    (group,) = calibrate(history, catalog).groups
    assert group.ref_gpus == 64 and group.median == pytest.approx(implied_at(history.runs[1], 64), rel=1e-12)
