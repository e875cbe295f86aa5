"""Edge cases a reviewer found: each must exit 2/3 with a message, never a traceback or damage."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from flopopt.cli.main import app
from typer.testing import CliRunner

JOB = "examples/seed-worked-example.yaml"
runner = CliRunner()


def test_negative_seed_is_rejected_cleanly() -> None:
    result = runner.invoke(app, ["solve", JOB, "--seed", "-1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--seed" in result.output


def test_quotes_directory_is_an_input_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", "examples/llama2-7b-pretrain.yaml", "--quotes", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is a directory" in result.stderr


def test_unknown_familiar_gpu_is_an_input_error(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("workload: {kind: custom, total_flops: 1e18}\nfamiliar: {gpu: A100-80G}\n")
    result = runner.invoke(app, ["solve", str(job)])
    assert result.exit_code == 2
    assert "familiar.gpu: unknown gpu 'A100-80G'; did you mean 'A100-80GB'?" in result.stderr


def test_output_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    result = runner.invoke(app, ["estimate", JOB, "--format", "json", "-o", str(link)])
    assert result.exit_code == 0
    assert link.is_symlink() and json.loads(real.read_text())["estimate"]["total_flops"] == 1e16


@pytest.mark.skipif(not os.access("/dev/null", os.W_OK), reason="needs a writable /dev/null")
def test_output_to_a_device_does_not_replace_it() -> None:
    result = runner.invoke(app, ["estimate", JOB, "-o", "/dev/null"])
    assert result.exit_code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_catalog_folder_without_csvs_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", JOB, "--catalog", str(tmp_path)])
    assert result.exit_code == 2 and "holds none of gpus.csv" in result.stderr


def test_dominated_candidates_say_so() -> None:
    result = runner.invoke(app, ["solve", "examples/llama2-7b-pretrain.yaml", "--format", "json",
                                 "--no-sensitivity"])
    data = json.loads(result.stdout)
    feasible = [c for c in data["candidates"] if c["feasible"]]
    dominated = [c for c in feasible if c["reason"]]
    assert dominated and all(c["reason"].startswith("dominated") for c in dominated)
    assert len(feasible) - len(dominated) == data["model"]["after_pruning"]


@pytest.mark.slow
def test_markdown_report_opens_with_a_recommendation_from_the_numbers() -> None:
    md = runner.invoke(app, ["solve", "examples/llama2-7b-pretrain.yaml", "--format", "markdown",
                             "--samples", "500"])
    data = json.loads(runner.invoke(app, ["solve", "examples/llama2-7b-pretrain.yaml", "--format", "json",
                                          "--samples", "500"]).stdout)
    assert md.exit_code == 0
    line = next(x for x in md.stdout.splitlines() if x.startswith("**Recommendation.**"))
    assert data["plan"]["offer_id"] in line
    assert f"probability {data['risk']['p_deadline']:.0%}" in line
    assert "### What could go wrong" in md.stdout and "| over_optimism |" in md.stdout


@pytest.mark.slow
def test_python_dash_m_runs_every_subcommand() -> None:
    import subprocess
    import sys

    for module in ("flopopt", "flopopt.cli.main"):
        done = subprocess.run([sys.executable, "-m", module, "catalog", "list", "--gpu", "H100-SXM",
                               "--format", "json"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, (module, done.stderr)
        assert all(o["gpu"] == "H100-SXM" for o in json.loads(done.stdout)["offers"])
