"""Time ``flopopt solve`` on the serving examples against the import floor (issue 13's target:
with sensitivity in ≤ 2.5 × the time of importing pandas, pulp, pydantic and typer).

    python benchmarks/bench_serving.py            # best of 5 runs each

Wall time swings with the other processes on a shared machine, so the CPU time (user + sys of
the child process) is reported too; the ratio of CPU times is the steadier figure.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("chat-service-llama3-70b.yaml", "mixed-requests-service.yaml")
RUNS = 5


def best_times(command: list[str]) -> tuple[float, float]:
    """(best wall, best CPU) seconds over RUNS runs of ``command``."""
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    exe = shutil.which("flopopt") or str(Path(sys.executable).with_name("flopopt"))
    floor_wall, floor_cpu = best_times([sys.executable, "-c", "import pandas, pulp, pydantic, typer"])
    print(f"{'import pandas, pulp, pydantic, typer':<66} wall {floor_wall:.2f} s, CPU {floor_cpu:.2f} s")
    for name in EXAMPLES:
        for extra in ((), ("--no-sensitivity",)):
            wall, cpu = best_times([exe, "solve", str(ROOT / "examples" / name), "--format", "json", *extra])
            label = f"solve {name} {' '.join(extra) or '(sensitivity)'}"
            print(f"{label:<66} wall {wall:.2f} s ({wall / floor_wall:.2f}×), CPU {cpu:.2f} s "
                  f"({cpu / floor_cpu:.2f}× the floor)")


if __name__ == "__main__":
    main()
