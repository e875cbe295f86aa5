"""``flopopt solve`` on every bundled example against the import floor.

Targets (as ratios, so they mean the same on a fast or a slow machine): solve with sensitivity
≤ 2 × the time of ``python -c "import pandas, pulp, pydantic, typer"`` for the bundled training
examples, ≤ 2.5 × for the serving examples.

    python benchmarks/bench_floor.py            # median of 5 runs each
    python benchmarks/bench_floor.py --runs 9

Wall time swings with other processes on a shared machine, so the CPU time of the child
(user + sys) is reported too, with the load average at the start; the CPU ratio is the steadier
figure. Medians, not best runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
FLOOR = [sys.executable, "-c", "import pandas, pulp, pydantic, typer"]
SERVING = {"chat-service-llama3-70b.yaml", "mixed-requests-service.yaml", "llama3-70b-serving.yaml"}


def median_times(command: list[str], runs: int) -> tuple[float, float]:
    """(median wall, median CPU) seconds over ``runs`` runs of ``command``."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return median(walls), median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("flopopt") or str(Path(sys.executable).with_name("flopopt"))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores; "
          f"median of {args.runs} runs")
    floor_wall, floor_cpu = median_times(FLOOR, args.runs)
    print(f"{'import pandas, pulp, pydantic, typer':<52} wall {floor_wall:5.2f} s   CPU {floor_cpu:5.2f} s")
    for job in sorted((ROOT / "examples").glob("*.yaml")):
        target = 2.5 if job.name in SERVING else 2.0
        wall, cpu = median_times([exe, "solve", str(job), "--format", "json"], args.runs)
        print(f"solve {job.name:<46} wall {wall:5.2f} s ({wall / floor_wall:4.2f}×)   CPU {cpu:5.2f} s "
              f"({cpu / floor_cpu:4.2f}×; target ≤ {target}×)")


if __name__ == "__main__":
    main()
