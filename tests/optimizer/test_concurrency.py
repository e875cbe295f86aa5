"""Concurrent writers of the user catalog lose nothing (issue 14, "Done when").

Four worker processes run 20 rounds in lock-step — two `catalog import`s and two
`calibrate`s per round: the test releases round r, all workers start their command at once
(within a few ms; each takes a few hundred), and the test checks the user catalog before
releasing the next round. Before the lock, 11 of 12 such
trials of `catalog import` kept only one file's rows.

Each worker is one process running the CLI in-process per round (``CliRunner``): the lock
is between processes, and 40 interpreter start-ups would cost a minute on a loaded laptop.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from builders import REPO, offer_row, write_csv
from flopopt.catalogs import paths

ROUNDS = 20
ROUND_TIMEOUT_S = 60.0

WORKER = r"""
import sys, time
from pathlib import Path
from typer.testing import CliRunner
from flopopt.cli.main import app

me, rounds, sync = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
runner = CliRunner()
for r in range(rounds):
    go = sync / f"go-{r}"
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit(f"worker {me}: no go for round {r}")
        time.sleep(0.002)
    args = (sync / f"args-{r}-{me}").read_text().split("\n")
    result = runner.invoke(app, args)
    (sync / f"out-{r}-{me}").write_text(result.output)
    (sync / f"code-{r}-{me}").write_text(str(result.exit_code))
    (sync / f"code-{r}-{me}").rename(sync / f"done-{r}-{me}")  # the test sees it whole or not at all
"""


def run_rounds(tmp_path: Path, args_for: Callable[[int, int], list[str]], workers: int,
               check: Callable[[int], None]) -> None:
    """Start the workers, then release ROUNDS rounds one at a time, checking after each."""
    sync = tmp_path / "sync"
    sync.mkdir()
    for r in range(ROUNDS):
        for w in range(workers):
            (sync / f"args-{r}-{w}").write_text("\n".join(args_for(r, w)))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(w), str(ROUNDS), str(sync)],
                              stderr=subprocess.PIPE, text=True) for w in range(workers)]
    finished = False
    try:
        for r in range(ROUNDS):
            (sync / f"go-{r}").touch()
            deadline = time.monotonic() + ROUND_TIMEOUT_S
            while waiting := [w for w in range(workers) if not (sync / f"done-{r}-{w}").exists()]:
                assert all(procs[w].poll() is None for w in waiting), f"a worker died in round {r}"
                assert time.monotonic() < deadline, f"round {r} did not finish"
                time.sleep(0.005)
            for w in range(workers):
                code = (sync / f"done-{r}-{w}").read_text()
                assert code == "0", (sync / f"out-{r}-{w}").read_text()
            check(r)
        finished = True
    finally:
        for p in procs:
            if not finished:
                p.kill()
            _, errors = p.communicate(timeout=ROUND_TIMEOUT_S)
            assert not finished or p.returncode == 0, errors


def user_rows(name: str) -> list[dict[str, str]]:
    # The workers inherit FLOPOPT_USER_DIR from the autouse fixture in conftest.py.
    with (paths.user_catalog_dir() / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


WORKLOADS = ("transformer_training", "cnn_training")  # calibrate worker 2 fits the first, worker 3 the second
CNN_RUNS = """name,workload,model,samples,epochs,gpu,gpu_count,precision,hours
r50-a,cnn_training,resnet50,1.28M,90,A100-80GB,8,bf16,0.5
r50-b,cnn_training,resnet50,1.28M,90,A100-80GB,8,bf16,0.6
"""


def write_history(path: Path, workload: str) -> Path:
    """Two runs of ``workload``: one calibrated (any, workload, any-gpu) attenuation row."""
    if workload == "cnn_training":
        path.write_text(CNN_RUNS, encoding="utf-8")
        return path
    with (REPO / "examples" / "history.csv").open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["workload"] == workload][:2]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.slow
def test_two_imports_and_two_calibrates_at_once_lose_nothing_in_20_rounds(tmp_path: Path) -> None:
    # Workers 0 and 1 import three new offers each; workers 2 and 3 calibrate one workload
    # each from a fresh history file. All four merge into the user catalog under one lock.
    inputs = tmp_path / "in"
    inputs.mkdir()

    def ids(r: int, w: int) -> list[str]:
        return [f"myco-r{r}-w{w}-{i}" for i in range(3)]

    def args_for(r: int, w: int) -> list[str]:
        if w >= 2:
            return ["calibrate", str(write_history(inputs / f"history-r{r}-w{w}.csv", WORKLOADS[w - 2]))]
        path = inputs / f"r{r}-w{w}.csv"
        write_csv(path, "offers.csv", [offer_row(i, "H100-SXM", 2.0 + r, provider="myco") for i in ids(r, w)])
        return ["catalog", "import", str(path)]

    def check(r: int) -> None:
        have = {row["offer_id"] for row in user_rows("offers.csv")}
        wanted = {i for q in range(r + 1) for w in (0, 1) for i in ids(q, w)}
        assert wanted - have == set(), f"round {r}: imported rows lost"
        fitted = user_rows("attenuation.csv")
        for w, workload in enumerate(WORKLOADS, start=2):
            mine = [row for row in fitted if (row["scenario"], row["workload"], row["gpu"]) == ("any", workload, "")]
            assert len(mine) == 1, f"round {r}: the calibrated {workload} row was lost"
            assert f"calibrated from history-r{r}-w{w}.csv," in mine[0]["source"], f"round {r}: update lost"

    run_rounds(tmp_path, args_for, 4, check)
    assert {row["offer_id"] for row in user_rows("offers.csv")} == {
        i for r in range(ROUNDS) for w in (0, 1) for i in ids(r, w)}
