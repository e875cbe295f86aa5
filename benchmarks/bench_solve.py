"""Time flopopt's solve path; print one line per measurement (see benchmarks/README.md).

    python benchmarks/bench_solve.py            # all measurements
    python benchmarks/bench_solve.py --quick    # skip the 50,000-offer catalog
    python benchmarks/bench_solve.py --offers 5000

Targets (DESIGN.md §6, issue 15): `flopopt --help` ≤ 0.3 s; `flopopt solve` on the bundled catalog
with sensitivity ≤ 1.5 s wall; one job on 50,000 offers ≤ 3 s and ≤ 600 MB (in process, no
sensitivity); Monte Carlo of 2,000 samples ≤ 0.3 s. Each line prints its target.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
MAIN_JOB = ROOT / "examples" / "llama2-7b-pretrain.yaml"


def best_of(runs: int, fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
    """(best, median) seconds of ``clock`` (default: wall) over ``runs`` calls."""
    times = []
    for _ in range(runs):
        started = clock()
        fn()
        times.append(clock() - started)
    return min(times), median(times)


def cli(*args: str) -> Callable[[], None]:
    exe = shutil.which("flopopt") or str(Path(sys.executable).with_name("flopopt"))

    def run() -> None:
        subprocess.run([exe, *args], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return run


def generated_catalog(folder: Path, offers: int, seed: int = 0, *, price_span: tuple[float, float] = (0.5, 2.0),
                      quotas: tuple[int, ...] = (4, 16, 64, 256), quota_share: float = 1.0,
                      source: str = "benchmarks synthetic") -> Path:
    """``offers`` synthetic rentals over the bundled GPUs: random providers, sizes and prices
    around each GPU's bundled median $/GPU-h (× ``price_span``), so pruning has real work to do.
    A ``quota_share`` of the offers get a quota drawn from ``quotas`` (the rest none)."""
    import numpy as np
    from flopopt.catalogs.loader import load_catalog, price_per_gpu_hour_usd

    bundled = load_catalog(use_user_dir=False, use_cache=False)
    rentals = bundled.offers[bundled.offers["kind"].isin(["on_demand", "spot"])]
    per_gpu = price_per_gpu_hour_usd(rentals).groupby(rentals["gpu"]).median()
    rng = np.random.default_rng(seed)
    gpus = per_gpu.index.to_numpy()
    from flopopt.catalogs.schema import OFFERS

    header = [column.name for column in OFFERS]
    with (folder / "offers.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for i in range(offers):
            gpu = str(rng.choice(gpus))
            size = int(rng.choice([1, 2, 4, 8]))
            kind = str(rng.choice(["on_demand", "spot"]))
            price = float(per_gpu[gpu]) * size * float(rng.uniform(*price_span))
            if quota_share >= 1.0:
                quota = str(int(rng.choice(quotas)))
            else:
                quota = str(int(rng.choice(quotas))) if rng.uniform() < quota_share else ""
            writer.writerow({
                "offer_id": f"gen-{i}", "provider": f"gen{i % 40}", "kind": kind, "region": f"r{i % 7}",
                "instance_type": f"{size}x{gpu}", "gpu": gpu, "gpus_per_instance": size,
                "price_per_hour_usd": f"{price:.4f}", "billing_increment_hours": "0.000277778",
                "min_hours": "0", "max_instances": quota,
                "interconnect": "nvlink" if size == 8 else "pcie",
                "interruption_overhead": "0.15" if kind == "spot" else "",
                "source": source, "as_of": "2026-01-01",
            })
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--offers", type=int, default=50_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

    best, med = best_of(5, cli("--help"))
    print(f"flopopt --help (wall, incl. start-up):                 best {best:.2f} s, median {med:.2f} s")
    best, med = best_of(5, cli("solve", str(MAIN_JOB), "--format", "json"))
    print(f"flopopt solve main job, sensitivity (wall):          best {best:.2f} s, median {med:.2f} s")
    best, med = best_of(5, cli("solve", str(MAIN_JOB), "--no-sensitivity"))
    print(f"flopopt solve main job, --no-sensitivity (wall):     best {best:.2f} s, median {med:.2f} s")
    quotes = sorted(str(p) for p in (ROOT / "examples" / "quotes").glob("*.csv"))
    with tempfile.TemporaryDirectory() as scratch:
        args_compare = ["compare", str(MAIN_JOB), *[a for q in quotes for a in ("--quotes", q)],
                        "--plot", str(Path(scratch) / "plot.png")]
        best, med = best_of(3, cli(*args_compare))
    print(f"flopopt compare main job, 2 quote files + plot:      best {best:.2f} s, median {med:.2f} s")

    from flopopt.catalogs.loader import load_catalog
    from flopopt.optimizer.candidates import IDENTICAL_REASON
    from flopopt.optimizer.job import load_job
    from flopopt.optimizer.planner import Planner
    from flopopt.optimizer.sensitivity import monte_carlo
    from flopopt.optimizer.solve import solve

    job = load_job(MAIN_JOB)
    catalog = load_catalog(use_user_dir=False, use_cache=False)
    best, _ = best_of(20, lambda: load_catalog(use_user_dir=False, use_cache=False))
    print(f"load bundled catalog (in process):                   {best * 1000:.0f} ms")
    for solver in ("highs", "cbc"):
        best, _ = best_of(5, lambda s=solver: solve(job, catalog, solver=s, sensitivity=False))  # type: ignore[misc]
        print(f"solve in process, {solver:5}, no sensitivity:              {best * 1000:.0f} ms")
    best, _ = best_of(5, lambda: solve(job, catalog))
    print(f"solve in process, highs, with sensitivity:           {best * 1000:.0f} ms")
    planner = Planner.build(job, catalog)
    chosen = planner.plan().chosen
    best, _ = best_of(20, lambda: monte_carlo(planner, chosen, 2000, 0))
    print(f"Monte Carlo, 2,000 samples:                          {best * 1000:.1f} ms")
    s = solve(job, catalog, sensitivity=False).stats
    print(f"model size, bundled: {s.enumerated} candidates → {s.feasible} feasible → "
          f"{s.after_pruning} after pruning = {s.variables} binaries, {s.constraints} constraints")

    if args.quick:
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = generated_catalog(Path(scratch), args.offers)
        started = time.perf_counter()
        big = load_catalog(folder, use_user_dir=False, use_cache=False)
        print(f"generated catalog: {len(big.offers):,} offers, loaded in {time.perf_counter() - started:.2f} s")
        for solver in ("highs", "cbc"):
            best, med = cpu_of(3, lambda s=solver: solve(job, big, solver=s, sensitivity=False))  # type: ignore[misc]
            print(f"solve {len(big.offers):,} offers in process, {solver:5}, no sensitivity: CPU median {med:.2f} s "
                  f"(best {best:.2f} s; target ≤ 3 s)")
        s = solve(job, big, sensitivity=False).stats
        print(f"model size, {len(big.offers):,} offers: {s.enumerated:,} candidates → {s.feasible:,} feasible → "
              f"{s.after_pruning} after pruning = {s.variables} binaries (look-alike offers merged: "
              f"{solve(job, big, sensitivity=False).excluded.get(IDENTICAL_REASON, 0):,})")
        best, med = cpu_of(3, lambda: Planner.build(job, big, identical="keep").plan())
        print(f"  worst case, no offer merged (identical='keep'): CPU median {med:.2f} s (best {best:.2f} s)")
        best, med = cpu_of(3, lambda: solve(job, big))
        print(f"  with sensitivity: CPU median {med:.2f} s (best {best:.2f} s)")
        rss = child_max_rss_mb([sys.executable, __file__, "--child", str(folder)])
        print(f"  peak memory of a process that loads it and solves: {rss:,.0f} MB (target ≤ 600 MB)")
        best, med = best_of(3, cli("solve", str(MAIN_JOB), "--catalog", str(folder), "--no-sensitivity",
                                   "--format", "json"))
        print(f"flopopt solve --catalog {args.offers:,} offers --no-sensitivity (wall, start-up and load "
              f"included): median {med:.2f} s (best {best:.2f} s)")
        best, med = best_of(3, cli("solve", str(MAIN_JOB), "--catalog", str(folder), "--format", "json"))
        print(f"  … with sensitivity (wall): median {med:.2f} s (best {best:.2f} s)")


def cpu_of(runs: int, fn: Callable[[], Any]) -> tuple[float, float]:
    """(best, median) CPU seconds of this process (steadier than wall time on a shared machine)."""
    return best_of(runs, fn, time.process_time)


def child_max_rss_mb(command: list[str]) -> float:
    """Peak resident memory of ``command``, as the child reports it itself: ``--child`` prints its
    VmHWM (KiB). RUSAGE_CHILDREN would give the largest child so far."""
    # Started from a small shell that forks it: a process exec'd straight from this one would
    # inherit this process's high-water mark (Linux keeps it across fork and exec).
    done = subprocess.run(["/bin/sh", "-c", '"$@"; true', "sh", *command], check=True, capture_output=True, text=True)
    return float(done.stdout.split()[-1]) / 1024


def child(folder: str) -> None:
    """What ``child_max_rss_mb`` measures: load a catalog folder and solve the main job once."""
    import resource

    from flopopt.catalogs.loader import load_catalog
    from flopopt.optimizer.job import load_job
    from flopopt.optimizer.solve import solve

    solve(load_job(MAIN_JOB), load_catalog(Path(folder), use_user_dir=False, use_cache=False), sensitivity=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
