"""The ``flopopt`` command: each command parses, calls one library function, renders.

Heavy modules (pandas, PuLP, matplotlib) are imported inside the commands so that
``flopopt --help`` stays fast. The app, the shared options and the error boundary live
in ``app.py``; this module holds ``solve`` and ``estimate``, imports the sub-command
modules (they register themselves on ``app``) and is the console-script entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .app import (  # noqa: F401  (re-exported: ``flopopt.cli.main.app`` is the documented entry)
    CATALOG_OPTION,
    CONFIDENCE_OPTION,
    EXIT_INFEASIBLE,
    EXIT_INPUT,
    EXIT_STOPPED,
    FORMAT_OPTION,
    NO_SENSITIVITY_OPTION,
    OUTPUT_OPTION,
    SAMPLES_OPTION,
    SEED_OPTION,
    SOLVER_OPTION,
    TIME_LIMIT_OPTION,
    Format,
    Solver,
    app,
    catalog_app,
    emit,
    fail,
    guarded,
    load_inputs,
    suggestion,
)


@app.command()
def solve(
    job_file: Path = typer.Argument(..., help="Job YAML file (see examples/)."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    solver: Solver = SOLVER_OPTION,
    no_sensitivity: bool = NO_SENSITIVITY_OPTION,
    samples: int = SAMPLES_OPTION,
    seed: int = SEED_OPTION,
    confidence: Optional[float] = CONFIDENCE_OPTION,
    all_candidates: bool = typer.Option(
        False, "--all-candidates", help="JSON: list every enumerated candidate, not only the feasible ones."),
    time_limit: Optional[float] = TIME_LIMIT_OPTION,
) -> None:
    """Cheapest plan (GPU, count, precision, offer) that meets the job's deadline and budget.

    Example:  flopopt solve examples/llama2-7b-pretrain.yaml --format json

    Exit codes: 0 plan found (a time-limited plan, not proven optimal, too: status time_limit and a
    warning), 2 invalid input, 3 infeasible (the binding limit is named), 4 the solver stopped at
    --time-limit (or another limit) before finding any plan (not a proof that none exists).
    """
    from ..optimizer.solve import solve as run_solve
    from ..optimizer.vocabulary import Status

    def call() -> Any:
        job, cat = load_inputs(job_file, catalog)
        return run_solve(job, cat, solver=solver.value, sensitivity=not no_sensitivity,
                         samples=samples, seed=seed, confidence=confidence, time_limit_seconds=time_limit)

    result = guarded(call)
    from ..catalogs.refresh_cache import cache_status
    from .render import render_solve

    emit(render_solve(result, format.value, price_note=cache_status(), all_candidates=all_candidates), output,
         format.value)
    if result.status is Status.INFEASIBLE:
        typer.echo(f"infeasible: {result.binding}: {result.explanation}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)
    if result.plan is None:   # time_limit / not_solved without an incumbent: nothing is proven
        typer.echo(f"stopped: {result.explanation}", err=True)
        raise typer.Exit(EXIT_STOPPED)
    if result.status is not Status.OPTIMAL:
        typer.echo(f"warning: {result.explanation}", err=True)


@app.command()
def estimate(
    job_file: Path = typer.Argument(..., help="Job YAML file."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    all_rows: bool = typer.Option(False, "--all", help="Every row: 1 and 8 GPUs and the smallest count that "
                                  "fits, for every precision and scenario."),
) -> None:
    """FLOPs of the job and hours per GPU type at the fewest GPUs that hold it in memory —
    no prices, no optimisation.

    Example:  flopopt estimate examples/seed-worked-example.yaml
    """
    from ..optimizer.estimate import estimate_job

    report = guarded(lambda: estimate_job(*load_inputs(job_file, catalog)))
    from .render import render_estimate

    emit(render_estimate(report, format.value, all_rows), output, format.value)


def main() -> None:
    """Console-script entry point."""
    app()


# Sub-command modules register themselves on ``app`` / ``catalog_app`` when imported; after
# solve and estimate, so ``flopopt --help`` lists the commands in the order people need them.
from . import catalog_cmd, compare_cmd, refresh_cmd  # noqa: E402,F401,I001
from . import calibrate_cmd  # noqa: E402,F401
from . import plan_cmd  # noqa: E402,F401


if __name__ == "__main__":  # pragma: no cover
    # Run through the canonical module: sub-commands registered themselves on
    # ``flopopt.cli.app.app``; the canonical entry point is the one the tests and scripts use.
    from flopopt.cli.main import main as canonical_main

    canonical_main()
