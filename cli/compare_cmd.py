"""``flopopt compare``: one job, cloud vs local vs cluster quotes side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .main import (
    CATALOG_OPTION,
    EXIT_INFEASIBLE,
    FORMAT_OPTION,
    OUTPUT_OPTION,
    Format,
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
) -> None:
    """Best plan per offer class (cloud on-demand, spot, owned, cluster quote, edge) and per quotes file,
    the cost/time Pareto front, and what owning costs against renting.

    Example:  flopopt compare examples/llama2-7b-pretrain.yaml --quotes quote.csv --plot compare.png

    Exit codes: 0 a plan meets the limits, 2 invalid input, 3 nothing is feasible.
    """
    from ..optimizer.compare import compare as run_compare

    def call() -> Any:
        job, cat = load_inputs(job_file, catalog)
        return run_compare(job, cat, list(quotes or []))

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
