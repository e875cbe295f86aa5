"""``flopopt solve`` on every bundled example against the import floor.

Targets (as ratios, so they mean the same on a fast or a slow machine): solve with sensitivity
≤ 2 × the time of ``python -c "import pandas, pulp, pydantic, typer"`` for the bundled training
examples, ≤ 2.5 × for the serving examples.

    python benchmarks/bench_floor.py            # median of 5 runs each
    python benchmarks/bench_floor.py --runs 9

Wall time swings with other processes on a shared machine, and drifts over minutes: each
solve run is paired with a floor run just before it, and the ratio printed is the median of the
per-pair ratios (wall and CPU of the child, user + sys). The load average at the start is
printed too. Medians, not best runs.
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


def timed(command: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command``; CPU is the child's user + sys."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=None, help="only the examples whose file name contains this")
    args = parser.parse_args()
    exe = shutil.which("flopopt") or str(Path(sys.executable).with_name("flopopt"))
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores; "
          f"median of {args.runs} (floor, solve) pairs per example")
    for job in sorted((ROOT / "examples").glob("*.yaml")):
        if args.only and args.only not in job.name:
            continue
        target = 2.5 if job.name in SERVING else 2.0
        pairs = [(timed(FLOOR), timed([exe, "solve", str(job), "--format", "json"])) for _ in range(args.runs)]
        floor_wall, floor_cpu = median(f[0] for f, _ in pairs), median(f[1] for f, _ in pairs)
        wall, cpu = median(s[0] for _, s in pairs), median(s[1] for _, s in pairs)
        wall_ratio = median(s[0] / f[0] for f, s in pairs)
        cpu_ratio = median(s[1] / f[1] for f, s in pairs)
        print(f"solve {job.name:<36} wall {wall:5.2f} s (floor {floor_wall:4.2f} s; {wall_ratio:4.2f}×)   CPU "
              f"{cpu:5.2f} s (floor {floor_cpu:4.2f} s; {cpu_ratio:4.2f}×)   target ≤ {target}×: "
              f"{'met' if wall_ratio <= target else 'NOT met'}")


if __name__ == "__main__":
    main()
