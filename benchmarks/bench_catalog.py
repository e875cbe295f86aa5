"""Time loading the bundled catalog (issue 4: ≤ 150 ms).

    python benchmarks/bench_catalog.py

Best of 20 after pandas and flopopt are imported, so the number is the loader's
own work (reading, validating and merging the four CSVs), not interpreter start-up.
The user folder and the refresh cache are left out: only the bundled files count.
"""

from __future__ import annotations

import time

import pandas  # noqa: F401  (imported before timing on purpose)
from flopopt.catalogs.loader import load_catalog

RUNS = 20


def main() -> None:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        load_catalog(use_user_dir=False, use_cache=False)
        best = min(best, time.perf_counter() - start)
    print(f"load_catalog (bundled): {best * 1000:.1f} ms (best of {RUNS})")


if __name__ == "__main__":
    main()
