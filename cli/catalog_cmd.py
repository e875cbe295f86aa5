"""``flopopt catalog list|show|validate|import``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .app import CATALOG_OPTION, FORMAT_OPTION, OUTPUT_OPTION, Format, catalog_app, emit, guarded


class SortKey(str, Enum):
    price_per_gpu_hour = "price_per_gpu_hour"
    price_per_hour = "price_per_hour"
    gpu = "gpu"
    provider = "provider"
    as_of = "as_of"


class OfferKind(str, Enum):
    """The ``kind`` values of offers.csv (optimizer.job.OFFER_KINDS); a typo is an error, not 0 offers."""

    on_demand = "on_demand"
    spot = "spot"
    reserved = "reserved"
    owned = "owned"
    cluster_quote = "cluster_quote"
    edge = "edge"


@catalog_app.command("list")
def list_(
    gpu: Optional[str] = typer.Option(None, "--gpu", help="GPU name or prefix, e.g. H100 or A100-80GB."),
    provider: Optional[str] = typer.Option(None, "--provider", help="e.g. aws, gcp, lambda, owned."),
    kind: Optional[OfferKind] = typer.Option(None, "--kind", help="Offer kind, e.g. spot."),
    sort: SortKey = typer.Option(SortKey.price_per_gpu_hour, "--sort", help="Sort key."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """Offers with price per instance-hour and per GPU-hour (owned: amortised capex + power).

    Example:  flopopt catalog list --gpu H100 --sort price_per_gpu_hour
    """
    from ..catalogs.loader import load_catalog
    from ..catalogs.manage import list_offers
    from .render import render_offer_list

    cat = guarded(lambda: load_catalog(catalog))
    table = guarded(lambda: list_offers(cat, gpu=gpu, provider=provider,
                                         kind=kind.value if kind else None, sort=sort.value))
    emit(render_offer_list(table, format.value), output, format.value)
    warning = cat.staleness_warning()
    if warning:
        typer.echo(warning, err=True)


@catalog_app.command()
def show(
    offer_id: str = typer.Argument(..., help="An offer_id from `flopopt catalog list`."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """Every field of one offer, with its GPU's specs and the offer's source.

    Example:  flopopt catalog show aws-p5.48xlarge-ondemand
    """
    from ..catalogs.loader import load_catalog
    from .render import render_offer

    cat = guarded(lambda: load_catalog(catalog))
    offer = guarded(lambda: cat.offer(offer_id))
    emit(render_offer(offer, cat.gpu(str(offer["gpu"])), format.value), output, format.value)


@catalog_app.command()
def validate(
    directory: Optional[Path] = typer.Argument(None, help="Catalog folder to check (default: what solve would load)."),
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """Check catalog CSVs; list every problem with file, row and column (exit 2 if any).

    Example:  flopopt catalog validate ./my-catalog --format json
    """
    from ..catalogs.loader import load_catalog
    from .render import render_validation

    cat = guarded(lambda: load_catalog(directory))
    warning = cat.staleness_warning()
    emit(render_validation(cat, warning, format.value), output, format.value)
    if warning:
        typer.echo(warning, err=True)


@catalog_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="A CSV with the columns of offers.csv (or gpus/attenuation/models), "
                                "or a short-form quote: provider,gpu,gpus,price_per_hour_usd,kind."),
    accept_changes: bool = typer.Option(
        False, "--accept-changes",
        help="Import prices that moved more than the change threshold (FLOPOPT_GUARD_MAX_CHANGE_PCT) "
             "against the price in use; the other price guards still apply."),
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """Validate FILE, then merge it into your user catalog folder (atomically; a bad file changes nothing).

    Offers pass the price guards first (see the README's "Price guards"): a row they hold
    back is listed with every reason and not imported; the command then exits 1.
    Short-form quotes (the form `compare --quotes` accepts) are filled in as compare does:
    offer_id = file stem + CSV line, per-second billing, as_of = the file's modification date.

    Example:  flopopt catalog import examples/owned-machines.csv
    """
    from ..optimizer.compare import import_quotes_file
    from .render import render_import

    report = guarded(lambda: import_quotes_file(file, accept_changes=accept_changes))
    emit(render_import(report, format.value), output, format.value)
    if report.held:
        typer.echo(f"warning: {len(report.held)} row(s) held back by the price guards; "
                   "fix them or rerun with --accept-changes if only the change guard objects", err=True)
        raise typer.Exit(1)
