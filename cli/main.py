"""The ``flopopt`` command: each command parses, calls one library function, renders.

Heavy modules (pandas, PuLP, matplotlib) are imported inside the commands so that
``flopopt --help`` stays fast. One error boundary: a FlopoptError prints
``error: …`` and exits 2; an infeasible plan exits 3.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, TypeVar

import typer

EXIT_INPUT = 2
EXIT_INFEASIBLE = 3

app = typer.Typer(
    name="flopopt",
    help=(
        "Turn an ML job's FLOPs into a GPU decision: which GPUs, how many, where, how long, "
        "what cost — and how wrong it could be.\n\n"
        "Example:  flopopt solve examples/llama2-7b-pretrain.yaml"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
catalog_app = typer.Typer(
    help="Inspect, validate and extend the hardware/price catalog.\n\n"
         "Example:  flopopt catalog list --gpu H100-SXM --sort price_per_gpu_hour",
    no_args_is_help=True,
)
app.add_typer(catalog_app, name="catalog")


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class Solver(str, Enum):
    highs = "highs"
    cbc = "cbc"


# Shared options, defined once (STYLE.md §8).
FORMAT_OPTION = typer.Option(Format.table, "--format", "-f", help="Output format: table, json or markdown.")
OUTPUT_OPTION = typer.Option(None, "--output", "-o", help="Write the report to FILE (atomically) instead of stdout.")
SOLVER_OPTION = typer.Option(Solver.highs, "--solver", help="MILP solver: highs (default) or cbc.")
CATALOG_OPTION = typer.Option(None, "--catalog", help="Folder of CSVs overriding the bundled catalog "
                              "(gpus.csv, offers.csv, attenuation.csv, models.csv; any subset).")

T = TypeVar("T")


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    typer.echo(message if message.startswith("error:") else f"error: {message}", err=True)
    raise typer.Exit(code)


def guarded(call: Callable[[], T]) -> T:
    """The one error boundary: library errors become a message and exit code 2."""
    from ..optimizer.errors import FlopoptError

    try:
        return call()
    except FlopoptError as exc:
        fail(str(exc).replace("\n", "\nerror: "))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def emit(text: str, output: Optional[Path], fmt: str | None = None) -> None:
    """The report to stdout or, durably, to ``output`` — never over one of the command's inputs."""
    if fmt == "markdown":
        from .render import markdown_safe

        text = markdown_safe(text)
    if output is None:
        sys.stdout.write(text)
        return
    from ..optimizer.fileio import write_text

    guarded(lambda: write_text(output, text, report=True))
    typer.echo(f"wrote {output}", err=True)


def load_inputs(job_file: Path, catalog_dir: Optional[Path]) -> tuple[Any, Any]:
    """Job and catalog, the inputs of every planning command."""
    from ..catalogs.loader import load_catalog
    from ..optimizer.job import load_job

    job = load_job(job_file)
    return job, load_catalog(catalog_dir)


@app.command()
def solve(
    job_file: Path = typer.Argument(..., help="Job YAML file (see examples/)."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    solver: Solver = SOLVER_OPTION,
    no_sensitivity: bool = typer.Option(False, "--no-sensitivity", help="Skip pitfalls, stress tests and Monte Carlo."),
    samples: int = typer.Option(2000, "--samples", min=10, max=1_000_000, help="Monte Carlo samples."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1,
                             help="Monte Carlo random seed (results are reproducible)."),
    confidence: Optional[float] = typer.Option(
        None, "--confidence", min=0.5, max=0.999,
        help="Choose the cheapest plan whose sampled hours meet the deadline with this probability, e.g. 0.9."),
) -> None:
    """Cheapest plan (GPU, count, precision, offer) that meets the job's deadline and budget.

    Example:  flopopt solve examples/llama2-7b-pretrain.yaml --format json

    Exit codes: 0 plan found, 2 invalid input, 3 infeasible (the binding limit is named).
    """
    from ..optimizer.solve import solve as run_solve

    def call() -> Any:
        job, cat = load_inputs(job_file, catalog)
        return run_solve(job, cat, solver=solver.value, sensitivity=not no_sensitivity,
                         samples=samples, seed=seed, confidence=confidence)

    result = guarded(call)
    from ..catalogs.refresh import cache_status
    from .render import render_solve

    emit(render_solve(result, format.value, price_note=cache_status()), output, format.value)
    if result.plan is None:
        typer.echo(f"infeasible: {result.binding}: {result.explanation}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command()
def estimate(
    job_file: Path = typer.Argument(..., help="Job YAML file."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """FLOPs of the job and hours on 1 and 8 GPUs of every type — no prices, no optimisation.

    Example:  flopopt estimate examples/seed-worked-example.yaml
    """
    from ..optimizer.estimate import estimate_job

    report = guarded(lambda: estimate_job(*load_inputs(job_file, catalog)))
    from .render import render_estimate

    emit(render_estimate(report, format.value), output, format.value)


def main() -> None:
    """Console-script entry point."""
    app()


# Sub-command modules register themselves on ``app`` / ``catalog_app``.
from . import catalog_cmd, compare_cmd, refresh_cmd  # noqa: E402,F401,I001
from . import calibrate_cmd  # noqa: E402,F401
from . import plan_cmd  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    # Run through the canonical module: sub-commands registered themselves on
    # ``flopopt.cli.main.app``, not on this ``__main__`` copy of it.
    from flopopt.cli.main import main as canonical_main

    canonical_main()
