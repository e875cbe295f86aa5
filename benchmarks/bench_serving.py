"""Time ``flopopt solve`` on the serving examples against the import floor (issue 13's target:
with sensitivity in ≤ 2.5 × the wall time of importing pandas, pulp, pydantic and typer).

    python benchmarks/bench_serving.py            # best of 5 runs each
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench_solve import best_of, cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("chat-service-llama3-70b.yaml", "mixed-requests-service.yaml")


def import_floor() -> None:
    subprocess.run([sys.executable, "-c", "import pandas, pulp, pydantic, typer"], check=True)


def main() -> None:
    floor, floor_median = best_of(5, import_floor)
    print(f"import pandas, pulp, pydantic, typer (wall):         best {floor:.2f} s, median {floor_median:.2f} s")
    for name in EXAMPLES:
        job = str(ROOT / "examples" / name)
        for extra in ((), ("--no-sensitivity",)):
            best, med = best_of(5, cli("solve", job, "--format", "json", *extra))
            label = f"flopopt solve {name} {' '.join(extra) or '(with sensitivity)'}"
            print(f"{label:<72} best {best:.2f} s, median {med:.2f} s, {best / floor:.2f} × the floor")


if __name__ == "__main__":
    main()
