"""Hostile input files never crash flopopt (issue 14, deliverable 6).

Hypothesis mutates a valid job, portfolio, catalog, quotes and history file — inserting
NUL, escape sequences, formula prefixes, YAML tags and anchors, unbalanced quotes and
brackets, huge and non-finite numbers; deleting and duplicating pieces; or replacing the
file with random bytes — and runs the command that reads it. Every case must end with
exit 0 (valid), 2 (invalid input) or 3 (infeasible), print no traceback and take under
5 s. Derandomised, so a failure reproduces; ~60 cases in all, bounded well under a minute.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest
from builders import REPO
from flopopt.cli.main import app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

SEED_JOB = REPO / "examples" / "seed-worked-example.yaml"
pytestmark = pytest.mark.slow   # about 60 CLI runs on generated files
CASE_LIMIT_S = 5.0

runner = CliRunner()

HOSTILE = [
    "\x00", "\x1b[31m", "\x07", "\r", "\t", "\u202e", "\ufeff", "é", "𝕏", "\n", " ", "",
    "=cmd|' /C calc'!A0", "@SUM(A1)", "+1", "-1", "1e999", "-inf", "nan", "0x10", "1_000", "1e-400",
    "99999999999999999999999", "$1", "1T", "30%", "720h", "-5d",
    '"', "'", ",", ":", ": ", "- ", "? ", "{", "}", "[", "]", "&a ", "*a", "<<: *a", "!!python/object:os.system",
    "!!binary", "%YAML 1.1", "---", "...", "#", "|", ">", "~", "null", "true", "<script>", "&amp;",
]
TOKEN = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6))
EDIT = st.tuples(st.sampled_from(["insert", "delete", "replace", "duplicate"]),
                 st.floats(0, 1), st.integers(0, 12), TOKEN)


def mutate(text: str, edits: list[tuple[str, float, int, str]]) -> str:
    for op, where, length, token in edits:
        at = int(where * len(text))
        if op == "insert":
            text = text[:at] + token + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + length:]
        elif op == "replace":
            text = text[:at] + token + text[at + max(length, 1):]
        else:  # duplicate the line at ``at`` (a duplicate key or a duplicate id)
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            line = text[start:end + 1] if end >= 0 else text[start:] + "\n"
            text = text[:start] + line + text[start:]
    return text


def hostile_files(base: str) -> st.SearchStrategy[bytes]:
    edited = st.lists(EDIT, min_size=1, max_size=4).map(lambda edits: mutate(base, edits).encode("utf-8"))
    return st.one_of(edited, edited, edited, st.binary(max_size=200))


def check(args: list[str]) -> None:
    start = time.perf_counter()
    result = runner.invoke(app, args)
    elapsed = time.perf_counter() - start
    assert result.exit_code in (0, 2, 3), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert elapsed < CASE_LIMIT_S, f"{elapsed:.1f} s"


def fuzz(base: str, examples: int) -> Callable[[Callable[[bytes], None]], Callable[[], None]]:
    """``@given`` a hostile version of ``base``, bounded and reproducible."""
    def decorate(test: Callable[[bytes], None]) -> Callable[[], None]:
        configured = settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        return configured(given(hostile_files(base))(test))  # type: ignore[no-any-return]
    return decorate


def in_scratch(name: str, data: bytes, args: Callable[[Path], list[str]]) -> None:
    with tempfile.TemporaryDirectory(prefix="flopopt-fuzz-") as scratch:
        path = Path(scratch) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        check(args(path))


JOB = SEED_JOB.read_text(encoding="utf-8")
PORTFOLIO = """name: p
horizon: {periods: 2, period_hours: 730}
budget_usd: $50k
jobs:
  - name: j1
    period: 1
    workload: {kind: custom, total_flops: 1e20}
    constraints: {deadline_hours: 500, gpus: [H100-SXM]}
  - name: j2
    period: 2
    workload: {kind: transformer_training, model: llama2-7b, tokens: 1B}
"""
OFFERS = """offer_id,provider,kind,region,instance_type,gpu,gpus_per_instance,price_per_hour_usd,interconnect,\
source,as_of
fz-h100,fuzzcloud,on_demand,r1,h100x8,H100-SXM,8,20.0,nvlink,fuzz fixture,2026-01-01
fz-a100,fuzzcloud,spot,r1,a100x1,A100-80GB,1,1.5,pcie,fuzz fixture,2026-01-01
"""
QUOTES = (REPO / "examples" / "quotes" / "example-colo-quote-short.csv").read_text(encoding="utf-8")
HISTORY = "\n".join((REPO / "examples" / "history.csv").read_text(encoding="utf-8").splitlines()[:4]) + "\n"


@fuzz(JOB, 15)
def test_hostile_job_files(data: bytes) -> None:
    in_scratch("job.yaml", data, lambda p: ["solve", str(p), "--no-sensitivity"])


@fuzz(PORTFOLIO, 12)
def test_hostile_portfolio_files(data: bytes) -> None:
    in_scratch("portfolio.yaml", data, lambda p: ["plan", str(p)])


@fuzz(OFFERS, 15)
def test_hostile_catalog_files(data: bytes) -> None:
    in_scratch("cat/offers.csv", data, lambda p: ["catalog", "validate", str(p.parent)])


@fuzz(QUOTES, 10)
def test_hostile_quote_files(data: bytes) -> None:
    in_scratch("quote.csv", data, lambda p: ["compare", str(SEED_JOB), "--quotes", str(p)])


@fuzz(HISTORY, 10)
def test_hostile_history_files(data: bytes) -> None:
    in_scratch("history.csv", data, lambda p: ["backtest", str(p)])
