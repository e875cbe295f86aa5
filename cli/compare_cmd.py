"""``flopopt compare``: one job, cloud vs local vs cluster quotes side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .app import (
    CATALOG_OPTION,
    CONFIDENCE_OPTION,
    EXIT_INFEASIBLE,
    FORMAT_OPTION,
    NO_SENSITIVITY_OPTION,
    OUTPUT_OPTION,
    SAMPLES_OPTION,
    SEED_OPTION,
    SOLVER_OPTION,
    Format,
    Solver,
    app,
    emit,
    guarded,
    load_inputs,
)


@app.command()
def compare(
    job_file: Path = typer.Argument(..., help="Job YAML file (see examples/)."),
    quotes: Optional[list[Path]] = typer.Option(
        None, "--quotes", "-q",
        help="Quotes CSV: offers.csv columns, or the short form provider,gpu,gpus,price_per_hour_usd,kind. "
             "Repeat for several files."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Also write a PNG of cost vs time (Pareto front, deadline, budget, the choice)."),
    solver: Solver = SOLVER_OPTION,
    no_sensitivity: bool = NO_SENSITIVITY_OPTION,
    samples: int = SAMPLES_OPTION,
    seed: int = SEED_OPTION,
    confidence: Optional[float] = CONFIDENCE_OPTION,
) -> None:
    """Best plan per offer class (cloud on-demand, spot, owned, cluster quote, edge) and per quotes file,
    the cost/time Pareto front, and what owning costs against renting.

    Example:  flopopt compare examples/llama2-7b-pretrain.yaml --quotes quote.csv --plot compare.png

    The solve options mean the same here: --solver and --confidence (with --samples and
    --seed) choose the optimum as `solve` would; compare runs no sensitivity analysis, so
    --no-sensitivity is accepted and changes nothing (scripts can pass solve's options).

    Exit codes: 0 a plan meets the limits, 2 invalid input, 3 nothing is feasible.
    """
    from ..optimizer.compare import compare as run_compare

    def call() -> Any:
        job, cat = load_inputs(job_file, catalog)
        return run_compare(job, cat, list(quotes or []), solver=solver.value, confidence=confidence,
                           samples=samples, seed=seed)

    comparison = guarded(call)
    from .render_compare import render_compare

    emit(render_compare(comparison, format.value), output, format.value)
    if plot is not None:
        from .plot import plot_comparison

        guarded(lambda: plot_comparison(comparison, plot))  # a disk fault is a WriteError: exit 2
        typer.echo(f"wrote {plot}", err=True)
    if comparison.optimum is None:
        typer.echo(f"infeasible: {comparison.binding}: {comparison.explanation}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)
