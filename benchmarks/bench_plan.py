"""Time ``flopopt plan`` on a synthetic 200 jobs × 500 offers × 12 periods portfolio.

    python benchmarks/bench_plan.py                  # in-process plan() with HiGHS, then the CLI
    python benchmarks/bench_plan.py --jobs 1000      # the 1,000-job target
    python benchmarks/bench_plan.py --solver cbc     # the same with CBC
    python benchmarks/bench_plan.py --keep DIR       # also leave the generated files in DIR

Targets (issue 15): 200 jobs × 500 offers × 12 periods ≤ 10 s; 1,000 jobs ≤ 60 s. Prints the time
split into candidate pricing and the integer program, and the model size before and
after pruning. Timings are reported, never asserted (tests do not time anything).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_solve import best_of, generated_catalog  # noqa: E402

TARGET_SECONDS = {200: 10.0, 1000: 60.0}   # issue 15: 200 jobs × 500 offers × 12 periods; 1,000 jobs


def generated_offers(folder: Path, offers: int, seed: int) -> None:
    """A self-contained catalog folder: the bundled GPUs, attenuation and models, plus
    ``offers`` synthetic rentals priced around each GPU's bundled median $/GPU-h (×0.8–2.5).
    Nine in ten carry a small quota (1–8 instances), so jobs of one period compete for the
    cheap ones and buying hardware has something to beat."""
    from flopopt.catalogs.paths import BUNDLED_DIR

    for name in ("gpus.csv", "attenuation.csv", "models.csv"):
        shutil.copy(BUNDLED_DIR / name, folder / name)
    generated_catalog(folder, offers, seed, price_span=(0.8, 2.5), quotas=(1, 2, 4, 8), quota_share=0.9,
                      source="benchmarks/bench_plan.py synthetic")


def generated_portfolio(jobs: int, periods: int, seed: int) -> dict[str, Any]:
    """``jobs`` jobs of mixed kinds and sizes spread over ``periods`` months, two purchase
    options and one reserved option (prices as in examples/portfolio/research-lab.yaml)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    entries: list[dict[str, Any]] = []
    for i in range(jobs):
        kind = rng.choice(["pretrain", "finetune", "serve", "cnn", "custom"], p=[0.2, 0.35, 0.2, 0.1, 0.15])
        job: dict[str, Any] = {"name": f"job-{i:03d}-{kind}", "period": int(rng.integers(1, periods + 1))}
        if kind == "pretrain":
            job["workload"] = {"kind": "transformer_training", "params": float(rng.choice([1.3e9, 3e9, 7e9, 13e9])),
                               "tokens": float(rng.uniform(100e9, 1e12)), "seq_len": 4096}
            job["precision"] = ["bf16", "fp8"]
            job["constraints"] = {"deadline_hours": float(rng.choice([720, 1460, 2190])), "max_gpus": 512}
        elif kind == "finetune":
            job["workload"] = {"kind": "transformer_training", "model": str(rng.choice(["llama3-8b", "llama2-7b"])),
                               "tokens": float(rng.uniform(1e9, 20e9)), "seq_len": 8192, "recompute": True}
            job["precision"] = ["bf16"]
            job["constraints"] = {"deadline_hours": float(rng.choice([24, 48, 168])), "max_gpus": 64}
        elif kind == "serve":
            job["workload"] = {"kind": "transformer_inference", "model": str(rng.choice(["llama3-8b", "llama3-70b"])),
                               "requests": float(rng.uniform(1e6, 3e7)), "prompt_tokens": 1000,
                               "output_tokens": 250, "batch_size": 32}
            job["precision"] = ["fp8", "bf16"]
            job["constraints"] = {"deadline_hours": float(rng.choice([168, 720]))}
        elif kind == "cnn":
            job["workload"] = {"kind": "cnn_training", "model": "resnet50", "samples": 1.28e6,
                               "epochs": int(rng.integers(10, 90))}
            job["precision"] = ["bf16"]
            job["constraints"] = {"deadline_hours": 72}
        else:
            job["workload"] = {"kind": "custom", "total_flops": float(10 ** rng.uniform(18, 21))}
            job["precision"] = ["bf16"]
        entries.append(job)
    return {
        "name": f"synthetic-{jobs}-jobs",
        "horizon": {"periods": periods, "period_hours": 730},
        "jobs": entries,
        "purchase_options": [
            {"option": "dgx-h100", "gpu": "H100-SXM", "gpus": 8, "capex_usd": 270000, "power_kw": 10.2,
             "electricity_usd_per_kwh": 0.127, "resale_fraction": 0.5, "lead_time_periods": 1, "max_count": 16},
            {"option": "dgx-a100", "gpu": "A100-80GB", "gpus": 8, "capex_usd": 199000, "power_kw": 6.5,
             "electricity_usd_per_kwh": 0.127, "resale_fraction": 0.3, "lead_time_periods": 0, "max_count": 16},
        ],
        "reserved": [
            {"option": "h100-reserved-3m", "gpu": "H100-SXM", "gpus": 8, "provider": "gen0",
             "price_per_hour_usd": 16.0, "term_periods": 3, "max_count": 8},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--offers", type=int, default=500)
    parser.add_argument("--periods", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solver", choices=["highs", "cbc"], default="highs")
    parser.add_argument("--keep", type=Path, default=None, help="write the catalog and portfolio here")
    parser.add_argument("--no-cli", action="store_true", help="skip the wall-clock CLI run")
    parser.add_argument("--runs", type=int, default=3, help="in-process runs (the median is printed)")
    args = parser.parse_args()

    from flopopt.catalogs.loader import load_catalog
    from flopopt.optimizer.portfolio import load_portfolio
    from flopopt.optimizer.procurement import plan

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        catalog_dir = folder / "catalog"
        catalog_dir.mkdir(exist_ok=True)
        generated_offers(catalog_dir, args.offers, args.seed)
        portfolio_file = folder / "portfolio.yaml"
        portfolio_file.write_text(yaml.safe_dump(generated_portfolio(args.jobs, args.periods, args.seed),
                                                 sort_keys=False), encoding="utf-8")
        catalog = load_catalog(catalog_dir, use_bundled=False, use_user_dir=False, use_cache=False)
        portfolio = load_portfolio(portfolio_file)
        print(f"portfolio: {len(portfolio.jobs)} jobs × {len(catalog.offers)} offers × "
              f"{portfolio.horizon.periods} periods, {len(portfolio.purchase_options)} purchase and "
              f"{len(portfolio.reserved)} reserved option(s); solver {args.solver}")
        target = TARGET_SECONDS.get(len(portfolio.jobs))
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        walls, cpus = [], []
        for _ in range(args.runs):
            started, cpu = time.perf_counter(), time.process_time()
            result = plan(portfolio, catalog, solver=args.solver)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        s = result.stats
        print(f"plan() in process, median of {args.runs}: wall {median(walls):.2f} s, CPU {median(cpus):.2f} s "
              f"(target {'≤ ' + format(target, 'g') + ' s' if target else 'none at this size'}) = candidates "
              f"{s.candidate_seconds:.2f} s + integer program {s.solve_seconds:.2f} s (last run); "
              f"status {result.status.value}")
        print(f"model size: {s.enumerated:,} candidates priced → {s.feasible:,} feasible → {s.kept:,} kept "
              f"(binaries) + {s.integer_variables} integer purchase/commitment variables; "
              f"{s.variables:,} variables, {s.constraints:,} constraints")
        print(f"  without portfolio pruning the program would have {s.feasible:,} binaries")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
        print(f"peak memory of this process (catalog, portfolio and {args.runs} plan(s)): {peak_mb:,.0f} MB")
        if result.cost is not None:
            c = result.cost
            print(f"plan: {len(result.purchases)} purchase line(s), {len(result.commitments)} commitment(s), "
                  f"{len(result.rentals)} of {len(result.assignments)} jobs rented; total ${c.total_usd:,.0f} "
                  f"(rental ${c.rental_usd:,.0f}, capex ${c.capex_usd:,.0f}, power ${c.power_usd:,.0f}, "
                  f"reserved ${c.reserved_usd:,.0f}, resale −${c.resale_usd:,.0f})")
        else:
            print(f"infeasible: {result.binding}: {result.explanation}")
        if args.no_cli:
            return
        exe = shutil.which("flopopt") or str(Path(sys.executable).with_name("flopopt"))
        command = [exe, "plan", str(portfolio_file), "--catalog", str(catalog_dir), "--format", "json",
                   "--solver", args.solver]

        def run() -> None:
            subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        best, med = best_of(1, run)
        print(f"flopopt plan --format json (wall, start-up and catalog load included; --catalog layers the "
              f"folder over the bundled catalog, so this program also has the bundled offers): {best:.2f} s")


if __name__ == "__main__":
    main()
