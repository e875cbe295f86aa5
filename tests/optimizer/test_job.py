"""Job files (optimizer/job.py): strict models, unit normalisation, and error messages.

The corpus in tests/fixtures/bad_jobs/ holds one defect per file. Each must make the
CLI exit 2 with ``error: <file>: <field>: <message>`` on stderr and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import FIXTURES, REPO
from flopopt.cli.main import app
from flopopt.optimizer.errors import FlopoptError, InputError
from flopopt.optimizer.fileio import size_cap_bytes
from flopopt.optimizer.job import Job, load_job, parse_job
from typer.testing import CliRunner

BAD_JOBS = FIXTURES / "bad_jobs"

# file → the text that must follow "error: <path>: " (field path first, then the message).
EXPECTED: dict[str, str] = {
    "unknown_top_level_key.yaml": "colour: unknown key; allowed keys: name, workload,",
    "misspelt_nested_key.yaml": "constraints.deadline_hour: unknown key; did you mean 'deadline_hours'?",
    "misspelt_workload_key.yaml": "workload.param: unknown key; did you mean 'params'?",
    "wrong_kind.yaml": "workload.kind: must be one of 'transformer_training',",
    "negative_deadline.yaml": "constraints.deadline_hours: must be > 0 (got -5)",
    "zero_budget.yaml": "constraints.budget_usd: must be > 0 (got 0)",
    "nan_tokens.yaml": "workload.tokens: must be a finite number (got nan)",
    "inf_deadline.yaml": "constraints.deadline_hours: must be a finite number (got inf)",
    "buffer_three.yaml": "risk.buffer: must be 'auto' or a fraction in [0, 2]",
    "buffer_lots.yaml": "risk.buffer: must be 'auto' or a fraction in [0, 2], e.g. 0.3 or 30% (got 'lots')",
    "precision_bf17.yaml": "precision[0]: must be one of 'fp64', 'fp32', 'tf32', 'bf16',",
    "precision_mapping.yaml": "precision: must be a list (got {'bf16': True})",
    "precision_empty_list.yaml": "precision: List should have at least 1 item",
    "constraints_is_list.yaml": "constraints: must be a mapping of keys to values (got [48, 1000])",
    "empty.yaml": "file is empty; a job needs at least 'workload:'",
    "whitespace_only.yaml": "file is empty; a job needs at least 'workload:'",
    "invalid_yaml_tab.yaml": "invalid YAML at line 2, column 1:",
    "invalid_yaml_bad_indent.yaml": "invalid YAML at line 3,",
    "invalid_yaml_unclosed_bracket.yaml": "invalid YAML at line 2,",
    "top_level_list.yaml": "must be a YAML mapping of keys (got list)",
    "top_level_scalar.yaml": "must be a YAML mapping of keys (got str)",
    "params_7X.yaml": "workload.params: must be a number like 7B, 175M, 2T or 1.5e12 (got '7X')",
    "tokens_negative.yaml": "workload.tokens: must be > 0 (got -1)",
    "max_gpus_zero.yaml": "constraints.max_gpus: must be > 0 (got 0)",
    "max_gpus_fractional.yaml": "constraints.max_gpus: Input should be a valid integer",
    "scenario_moon.yaml": "scenario: must be one of 'auto', 'lab', 'cloud', 'edge' or 'cluster' (got 'moon')",
    "objective_speed.yaml": "objective: must be one of 'cost' or 'time' (got 'speed')",
    "offer_kinds_bogus.yaml": "constraints.offer_kinds[0]: must be one of 'on_demand',",
    "missing_workload.yaml": "workload: required field is missing",
    "workload_missing_kind.yaml": "workload.kind: required field is missing",
    "training_without_tokens.yaml": "workload.tokens: required for kind transformer_training",
    "inference_without_requests.yaml": "workload.requests: required for kind transformer_inference",
    "cnn_without_samples.yaml": "workload.samples: required for kind cnn_training",
    "custom_without_flops.yaml": "workload.total_flops: custom workloads need total_flops",
    "unknown_model.yaml": "workload.model: unknown model 'llama2-7'; did you mean 'llama2-7b'",
    "familiar_string.yaml": "familiar: must be a mapping of keys to values (got 'V100')",
    "history_scenario_auto.yaml": "history_scenario: must be one of 'lab', 'cloud', 'edge' or 'cluster'",
    "deadline_with_words.yaml": "constraints.deadline_hours: must be a duration like 720, 720h, 30d",
    "non_text_key.yaml": "42: keys must be text",
    "seq_len_float.yaml": "workload.seq_len: Input should be a valid integer",
    "recompute_string.yaml": "workload.recompute: Input should be a valid boolean",
    "attenuation_above_one.yaml": "performance.attenuation: Input should be less than or equal to 1",
    "providers_is_string_mapping.yaml": "constraints.providers: must be a list",
    "non_utf8.yaml": "cannot read as UTF-8 text",
    "binary_png.yaml": "cannot read as UTF-8 text",
    "alias_bomb.yaml": "precision[0]: must be one of 'fp64',",
}


def test_corpus_matches_expectations() -> None:
    """Every committed bad job has an expectation, and every expectation a file."""
    files = {p.name for p in BAD_JOBS.iterdir()}
    assert files == set(EXPECTED)
    assert len(files) >= 25


def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_input_error(code: int, stdout: str, stderr: str, path: Path | str, expected: str) -> None:
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert stdout == ""  # nothing rendered for an invalid job
    assert stderr.startswith("error: ")
    assert Path(path).name in stderr
    assert f"error: {path}: {expected}" in stderr, stderr
    # Every line of a multi-problem report is its own "error:" line.
    assert all(line.startswith("error: ") for line in stderr.splitlines()), stderr


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("command", ["solve", "estimate"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_job_exits_2(runner: CliRunner, command: str, name: str) -> None:
    path = BAD_JOBS / name
    code, out, err = run(runner, command, str(path))
    assert_input_error(code, out, err, path, EXPECTED[name])


def test_exact_message_negative_deadline(runner: CliRunner) -> None:
    path = BAD_JOBS / "negative_deadline.yaml"
    code, out, err = run(runner, "solve", str(path))
    assert code == 2
    assert err == f"error: {path}: constraints.deadline_hours: must be > 0 (got -5)\n"


def test_too_large_file(runner: CliRunner, tmp_path: Path) -> None:
    # Generated here, not committed: a valid start followed by more comment than the cap allows.
    path = tmp_path / "huge.yaml"
    cap = size_cap_bytes("job")
    path.write_text("workload: {kind: custom, total_flops: 1e16}\n" + "#" * cap)
    size = path.stat().st_size
    for command in ("solve", "estimate"):
        code, out, err = run(runner, command, str(path))
        assert_input_error(code, out, err, path, f"file is {size:,} bytes, over the {cap:,}-byte cap for "
                           "a job YAML file; set FLOPOPT_MAX_JOB_BYTES=<bytes> to raise the cap")


def test_directory(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.mkdir()
    for command in ("solve", "estimate"):
        code, out, err = run(runner, command, str(path))
        assert_input_error(code, out, err, path, "is a directory; give a job YAML file")


def test_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "no-such-job.yaml"
    for command in ("solve", "estimate"):
        code, out, err = run(runner, command, str(path))
        assert_input_error(code, out, err, path, "job file not found")


def test_several_problems_reported_at_once(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("workload: {kind: custom, total_flops: 1e16}\n"
                    "constraints: {deadline_hours: -5, budget_usd: 0}\n")
    code, out, err = run(runner, "solve", str(path))
    assert code == 2
    assert err.splitlines() == [
        f"error: {path}: constraints.deadline_hours: must be > 0 (got -5)",
        f"error: {path}: constraints.budget_usd: must be > 0 (got 0)",
    ]


@pytest.mark.slow
def test_real_process_stderr_has_no_traceback(tmp_path: Path) -> None:
    """The same boundary holds in a real process (not only under CliRunner)."""
    env = dict(os.environ, FLOPOPT_USER_DIR=str(tmp_path / "u"), FLOPOPT_CACHE_DIR=str(tmp_path / "c"))
    code = "from flopopt.cli.main import main; main()"
    for name in ("invalid_yaml_tab.yaml", "unknown_model.yaml"):
        proc = subprocess.run([sys.executable, "-c", code, "solve", str(BAD_JOBS / name)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith(f"error: {BAD_JOBS / name}: ")


# ---------------------------------------------------------------------------
# The library: load_job / parse_job


def test_load_job_raises_input_error_with_problem_fields() -> None:
    with pytest.raises(InputError) as info:
        load_job(BAD_JOBS / "misspelt_nested_key.yaml")
    assert isinstance(info.value, FlopoptError)
    (problem,) = info.value.problems
    assert problem.file == str(BAD_JOBS / "misspelt_nested_key.yaml")
    assert problem.field == "constraints.deadline_hour"
    assert "did you mean 'deadline_hours'?" in problem.message


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_load(example: Path) -> None:
    job = load_job(example)
    assert isinstance(job, Job)
    assert job.source_file == str(example)


def test_units_are_normalised() -> None:
    job = load_job(REPO / "examples" / "llama2-7b-pretrain.yaml")
    assert job.workload.tokens == 2e12
    assert job.constraints.deadline_hours == 720.0  # 30d
    assert job.constraints.budget_usd == 2e6  # $2M
    assert job.constraints.max_gpus == 1024
    assert job.precision == ["bf16", "fp8"]
    dumped = job.model_dump(mode="json")
    assert "source_file" not in dumped  # internal, never echoed back as a job key


def test_defaults_and_shorthands() -> None:
    job = parse_job({"workload": {"kind": "custom", "total_flops": "1e16"}, "precision": "fp32",
                     "risk": {"buffer": "30%"}, "constraints": {"deadline_hours": "90min"}})
    assert job.precision == ["fp32"]  # a single precision is a one-item list
    assert job.risk.buffer == pytest.approx(0.3)
    assert job.constraints.deadline_hours == 1.5
    assert job.scenario == "auto" and job.objective == "cost"
    assert parse_job({"workload": {"kind": "custom", "total_flops": 1}}).risk.buffer == "auto"


@pytest.mark.parametrize("buffer", ["auto", 0, 0.3, 2, "0.3", "25%"])
def test_buffer_accepted(buffer: object) -> None:
    parse_job({"workload": {"kind": "custom", "total_flops": 1}, "risk": {"buffer": buffer}})


@pytest.mark.parametrize("buffer", [True, False, -0.1, 2.5, "lots", "lots%", float("nan"), float("inf"),
                                    [0.3], {"x": 1}, None])
def test_buffer_rejected_with_one_clean_problem(buffer: object) -> None:
    with pytest.raises(InputError) as info:
        parse_job({"workload": {"kind": "custom", "total_flops": 1}, "risk": {"buffer": buffer}},
                  "job.yaml")
    fields = [p.field for p in info.value.problems]
    assert fields == ["risk.buffer"]  # not also "risk.buffer.float" from the union member
    assert "must be 'auto' or a fraction in [0, 2]" in str(info.value)


def test_source_file_is_not_a_user_key() -> None:
    with pytest.raises(InputError, match="source_file: unknown key"):
        parse_job({"workload": {"kind": "custom", "total_flops": 1}, "source_file": "x"}, "job.yaml")


def test_prefix_for_portfolio_jobs() -> None:
    with pytest.raises(InputError) as info:
        parse_job({"workload": {"kind": "custom", "total_flops": -1}}, "p.yaml", prefix="jobs[2].")
    assert info.value.problems[0].field == "jobs[2].workload.total_flops"


def test_alias_bomb_message_is_bounded() -> None:
    with pytest.raises(InputError) as info:
        load_job(BAD_JOBS / "alias_bomb.yaml")
    assert max(len(line) for line in str(info.value).splitlines()) < 400


def test_huge_values_give_bounded_messages() -> None:
    bomb: list[object] = ["x"] * 10
    for _ in range(7):
        bomb = [bomb] * 10  # 10^8 items, as YAML aliases can build from a tiny file
    for data in ({"workload": {"kind": "custom", "total_flops": bomb}},
                 {"workload": {"kind": "custom", "total_flops": 1}, "risk": {"buffer": bomb}},
                 {"workload": {"kind": "custom", "total_flops": 1}, "scenario": bomb},
                 {"workload": {"kind": "custom", "total_flops": 1}, "name": bomb}):
        with pytest.raises(InputError) as info:
            parse_job(data, "job.yaml")
        assert len(str(info.value)) < 500, str(info.value)[:200]
