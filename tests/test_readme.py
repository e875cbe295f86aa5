"""The README shows real output and true set-up commands (docs are checked like code)."""

from __future__ import annotations

import re

import pytest
from builders import REPO
from flopopt.cli.main import app
from typer.testing import CliRunner

ROOT = REPO
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_readme_example_output_is_what_solve_prints() -> None:
    result = CliRunner().invoke(app, ["solve", "examples/llama2-7b-pretrain.yaml"])
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    for marker in ("PLAN  ", "  FLOPs: ", " !! over_optimism", " !! tech_bias", "  P(deadline met)"):
        line = next(line for line in printed if line.startswith(marker))
        assert line in README, f"README is stale; now prints:\n{line}"


def test_readme_setup_commands_match_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install . && .venv/bin/flopopt solve examples/llama2-7b-pretrain.yaml" in README
    assert '.venv/bin/pip install ".[test]" && .venv/bin/python -m pytest' in README
    assert "pip install --quiet ." in ci and "flopopt solve examples/llama2-7b-pretrain.yaml" in ci
    assert 'pip install --quiet ".[test]"' in ci and "python -m pytest" in ci


def test_readme_mentions_every_command() -> None:
    import typer.main

    group = typer.main.get_command(app)
    commands = group.commands  # typer vendors click; duck-type the group
    assert {"solve", "estimate", "compare", "catalog"} <= set(commands)
    for name in commands:
        assert re.search(rf"flopopt {name}\b", README), name


@pytest.mark.slow
def test_readme_python_api_block_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python API example in the README is code that runs, not a sketch."""
    section = README[README.index("## Python API"):]
    block = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    monkeypatch.chdir(ROOT)
    exec(compile(block, "README.md", "exec"), {})   # the README's own example
    printed = capsys.readouterr().out.split()
    assert printed and float(printed[-1]) >= 0
