"""The typer app, the options every command shares, and the error boundary.

Kept apart from ``main.py`` (which holds ``solve``/``estimate`` and the entry point) so
the sub-command modules import this, not ``main``: no import cycle. One error boundary:
a FlopoptError prints ``error: …`` and exits 2; an infeasible plan exits 3, a solver stopped
before finding any plan 4 (a plan found but not proven optimal exits 0, with a warning). With
``--format json`` the error is also a JSON document on stdout (docs/output-contract.md),
usage errors included.
"""

from __future__ import annotations

import difflib
import re
import sys
from contextvars import ContextVar
from enum import Enum
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence, TypeVar, cast

import typer
from typer.core import TyperGroup

from .contract import asks_for_json

EXIT_INPUT = 2
EXIT_INFEASIBLE = 3
EXIT_STOPPED = 4      # the solver stopped (a time limit or another stop) before finding any plan: not a proof

# typer ≥ 0.25 vendors click; BadParameter's base is click's UsageError either way.
UsageError: type[Exception] = typer.BadParameter.__mro__[1]

# Set for the duration of one command: does it answer in JSON (errors included)?
_JSON_ERRORS: ContextVar[tuple[bool, str]] = ContextVar("json_errors", default=(False, "flopopt"))


def _command_path(group: Any, args: Sequence[str]) -> str:
    """``flopopt catalog list`` from the raw arguments (the words that name commands)."""
    path, command = ["flopopt"], group
    for word in args:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        path.append(word)
    return " ".join(path)


def suggestion(value: str, choices: Sequence[str]) -> str:
    """"did you mean …?" for a mistyped choice: the choices it is a prefix of, else close ones."""
    lowered = value.lower()
    near = [c for c in choices if c.lower().startswith(lowered)] or \
        difflib.get_close_matches(value, list(choices), n=3, cutoff=0.5)
    return f"did you mean {' or '.join(repr(c) for c in near)}?" if near else ""


_NOT_ONE_OF = re.compile(r"(?:Value error, )?'(?P<value>[^']*)' is not one of (?P<choices>.*?)\.?$")


def _with_suggestion(error: Exception) -> None:
    """Append "did you mean" to typer's "'price' is not one of …" (``catalog list --sort price``)."""
    message = str(getattr(error, "message", ""))
    match = _NOT_ONE_OF.search(message)
    if match:
        choices = re.findall(r"'([^']*)'", match.group("choices"))
        hint = suggestion(match.group("value"), choices)
        cleaned = message.replace("Value error, ", "")
        cast(Any, error).message = f"{cleaned} {hint[:1].upper()}{hint[1:]}".rstrip()


class ContractGroup(TyperGroup):
    """The root command group: knows before parsing whether errors must be JSON documents."""

    def invoke(self, ctx: Any) -> Any:
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        token = _JSON_ERRORS.set((asks_for_json(args), _command_path(self, args)))
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _with_suggestion(exc)
            param = getattr(exc, "param", None)
            opts = getattr(param, "opts", None) or []
            field = opts[0] if opts else getattr(param, "name", None)
            _json_error(int(getattr(exc, "exit_code", EXIT_INPUT)), str(getattr(exc, "message", exc)),
                        field=field)
            raise
        finally:
            _JSON_ERRORS.reset(token)


def _json_error(code: int, message: str, problems: Sequence[Any] = (), file: str | None = None,
                field: str | None = None) -> None:
    """Print the error document on stdout when the command was asked for JSON."""
    wanted, command = _JSON_ERRORS.get()
    if not wanted:
        return
    from .contract import error_document, to_json

    sys.stdout.write(to_json(error_document(command, code, message, problems, file=file, field=field)))


app = typer.Typer(
    cls=ContractGroup,
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


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"flopopt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the package version and exit."),
) -> None:
    """Options that come before the command name."""


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
NO_SENSITIVITY_OPTION = typer.Option(False, "--no-sensitivity", help="Skip pitfalls, stress tests and Monte Carlo.")
SAMPLES_OPTION = typer.Option(2000, "--samples", min=10, max=1_000_000, help="Monte Carlo samples.")
SEED_OPTION = typer.Option(0, "--seed", min=0, max=2**32 - 1,
                           help="Monte Carlo random seed (results are reproducible).")
CONFIDENCE_OPTION = typer.Option(
    None, "--confidence", min=0.5, max=0.999,
    help="Choose the cheapest plan whose sampled hours meet the deadline with this probability, e.g. 0.9.")
TIME_LIMIT_OPTION = typer.Option(
    None, "--time-limit", min=0.001, metavar="SECONDS",
    help="Stop the MILP solver after SECONDS; the best plan found by then is reported as time_limit "
         "(not proven optimal, with its MIP gap).")
CATALOG_OPTION = typer.Option(None, "--catalog", help="Folder of CSVs overriding the bundled catalog "
                              "(gpus.csv, offers.csv, attenuation.csv, models.csv; any subset).")

T = TypeVar("T")


def fail(message: str, code: int = EXIT_INPUT, *, problems: Sequence[Any] = (), file: str | None = None,
         field: str | None = None) -> NoReturn:
    """``error: …`` on stderr (and the error document on stdout under ``--format json``), then exit."""
    _json_error(code, message, problems, file=file, field=field)
    text = message.replace("\n", "\nerror: ")
    typer.echo(text if text.startswith("error:") else f"error: {text}", err=True)
    raise typer.Exit(code)


def guarded(call: Callable[[], T]) -> T:
    """The one error boundary: library errors become a message and exit code 2."""
    from ..optimizer.errors import FlopoptError

    try:
        return call()
    except FlopoptError as exc:
        fail(str(exc), problems=getattr(exc, "problems", ()))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def emit(text: str, output: Optional[Path], fmt: str | None = None) -> None:
    """The report to stdout or, durably, to ``output`` — never over one of the command's inputs."""
    if fmt == "markdown":
        from .render import markdown_safe

        text = markdown_safe(text)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()   # before any warning on stderr, so a combined log keeps the order
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
