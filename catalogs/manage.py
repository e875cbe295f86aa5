"""Catalog queries and imports behind ``flopopt catalog list|show|validate|import``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..optimizer import fileio
from ..optimizer.errors import CatalogError, Problem, ProblemList
from . import schema
from .guards import GuardReport, GuardSettings, HeldRow, check_prices, price_rows
from .loader import Catalog, cross_check, hourly_cost_usd, load_catalog, price_per_gpu_hour_usd, read_table
from .names import resolve
from .paths import CATALOG_FILES, user_catalog_dir

SORT_KEYS = {
    "price_per_gpu_hour": ["effective_cost_per_gpu_hour_usd", "offer_id"],
    "price_per_hour": ["effective_cost_per_instance_hour_usd", "offer_id"],
    "gpu": ["gpu", "effective_cost_per_gpu_hour_usd"],
    "provider": ["provider", "gpu", "effective_cost_per_gpu_hour_usd"],
    "as_of": ["as_of", "offer_id"],
}
# effective_cost_*: what an hour costs (owned: amortised capex + power); list_price_*: offers.csv's price_per_hour_usd
LIST_COLUMNS = ["offer_id", "provider", "kind", "region", "instance_type", "gpu", "gpus_per_instance",
                "effective_cost_per_instance_hour_usd", "effective_cost_per_gpu_hour_usd",
                "list_price_per_instance_hour_usd", "as_of", "fetched_at", "price_quality", "max_instances"]


def list_offers(catalog: Catalog, *, gpu: str | None = None, provider: str | None = None,
                kind: str | None = None, sort: str = "price_per_gpu_hour") -> pd.DataFrame:
    """Offers with their effective hourly cost (owned: amortised capex + power), filtered.

    ``gpu`` and ``provider`` match as in job files: exact (any case), else by prefix, so
    ``H100`` finds H100-SXM, -PCIe and -NVL; a name that matches nothing raises InputError.
    """
    offers = catalog.offers.copy()
    # Typed as float by the schema (so optional int columns can be empty); this one is required.
    offers["gpus_per_instance"] = offers["gpus_per_instance"].astype(int)
    offers["effective_cost_per_instance_hour_usd"] = hourly_cost_usd(offers)
    offers["effective_cost_per_gpu_hour_usd"] = price_per_gpu_hour_usd(offers)
    offers["list_price_per_instance_hour_usd"] = offers["price_per_hour_usd"]
    # Same rule as a job's constraints.gpus / providers (catalogs/names.py): exact, else prefix.
    if gpu:
        wanted = resolve([gpu], [str(g) for g in catalog.gpus.index], file="command line", field="--gpu", what="gpu")
        offers = offers[offers["gpu"].isin(wanted)]
    if provider:
        wanted = resolve([provider], list(offers["provider"].astype(str)), file="command line", field="--provider",
                         what="provider")
        offers = offers[offers["provider"].isin(wanted)]
    if kind:
        offers = offers[offers["kind"] == kind]
    return offers.sort_values(SORT_KEYS[sort], kind="mergesort")[LIST_COLUMNS].reset_index(drop=True)


def detect_catalog_file(path: Path) -> str:
    """Which catalog a CSV is, from its name or else its header."""
    if path.name in CATALOG_FILES:
        return path.name
    problems = ProblemList()
    raw = schema.read_raw(str(path), problems)
    problems.raise_if_any(CatalogError)
    assert raw is not None
    header = set(raw.columns)
    # Most specific first: offers and attenuation files have a gpu column too.
    signatures = (("offers.csv", ("offer_id",)), ("attenuation.csv", ("scenario", "low")),
                  ("gpus.csv", ("gpu", "memory_gb")), ("models.csv", ("name",)))
    for name, needed in signatures:
        if all(column in header for column in needed):
            return name
    raise CatalogError.at(str(path), "", "cannot tell which catalog this is: the header has none of "
                          "offer_id (offers), gpu+memory_gb (gpus), scenario+low (attenuation), name (models)")


def _read_with_origin(path: Path, name: str) -> pd.DataFrame:
    """Raw cells plus an ``_origin`` column: (file, CSV line) of every row."""
    problems = ProblemList()
    raw = schema.read_raw(str(path), problems, name)
    problems.raise_if_any(CatalogError)
    assert raw is not None
    raw["_origin"] = [(str(path), int(index) + 2) for index in raw.index]
    return raw


def _relocate(problem: Problem, trial: str, origins: list[tuple[str, int]], incoming: str) -> Problem:
    """Map a problem found in the merged scratch file back to the row's own file and line."""
    if problem.file != trial:
        return problem
    if problem.row is not None and 2 <= problem.row < len(origins) + 2:
        file, row = origins[problem.row - 2]
        return dataclasses.replace(problem, file=file, row=row)
    return dataclasses.replace(problem, file=incoming)


@dataclass(frozen=True)
class ImportReport:
    target: Path
    catalog_file: str
    rows_imported: int
    rows_total: int
    held: tuple[HeldRow, ...] = ()  # offers the price guards kept out (nothing else was refused)
    form: str = "full"     # "short": a short-form quote filled in to offers rows


def guard_offers(incoming: pd.DataFrame, current: Catalog, *, label: str, accept_changes: bool = False,
                 settings: GuardSettings | None = None) -> GuardReport:
    """Run the price guards on offers entering from a file, against the catalog they join:
    its rented offers give the plausible bands, its prices per offer_id the previous price."""
    records = incoming.to_dict("records")
    reference = [r for r in price_rows(current.offers.to_dict("records")) if r is not None]
    previous = {str(o): float(p) for o, p in zip(current.offers["offer_id"], current.offers["price_per_hour_usd"])
                if p == p}
    return check_prices(price_rows(records), reference=reference, previous=previous,
                        settings=settings or GuardSettings.from_env(), accept_changes=accept_changes,
                        sources=[label] * len(records))


def _add_cross_file_problems(incoming: pd.DataFrame, name: str, path: Path, problems: ProblemList) -> None:
    """The rules that span files (a known GPU, capex for owned rows), so that a row with a
    negative price *and* an unknown GPU names both, not only the cell the schema saw first."""
    try:
        current = load_catalog()
    except CatalogError:
        return  # the catalog itself is broken: its own errors come with the trial load below
    tables = {"gpus.csv": current.gpus, "offers.csv": current.offers, "attenuation.csv": current.attenuation}
    if name not in tables:
        return
    tables[name] = incoming
    cross = ProblemList()
    cross_check(tables, cross)
    problems.items.extend(p for p in cross.items if p.file == str(path))


def import_file(path: Path, *, accept_changes: bool = False) -> ImportReport:
    """Validate ``path`` against the catalog it joins, then merge it into the user folder atomically.

    A bad file changes nothing: validation runs on the merged result before the rename.
    Offers also pass the price guards (``guards``): a row they hold back is not imported
    and is listed in the report with every reason; the other rows are imported.
    The read-merge-write of the user file holds the user folder's lock, so two imports at
    once (or an import and a ``calibrate``) both keep their rows.
    """
    name = detect_catalog_file(path)
    problems = ProblemList()
    incoming = read_table(path, name, problems)
    if problems.items:
        _add_cross_file_problems(incoming, name, path, problems)
    problems.raise_if_any(CatalogError)
    raw_new = _read_with_origin(path, name)
    user_dir = user_catalog_dir()
    target = user_dir / name
    held: tuple[HeldRow, ...] = ()
    if name == "offers.csv":
        report = guard_offers(incoming, load_catalog(), label=str(path), accept_changes=accept_changes)
        held = report.held
        raw_new = raw_new.iloc[list(report.kept)]
        incoming = incoming.iloc[list(report.kept)]
    with fileio.locked(user_dir, "the user catalog"):
        if raw_new.empty:
            return ImportReport(target=target, catalog_file=name, rows_imported=0,
                                rows_total=len(_read_with_origin(target, name)) if target.exists() else 0,
                                held=held)
        if target.exists():
            raw_old = _read_with_origin(target, name)
            merged = pd.concat([raw_old, raw_new], ignore_index=True)
            merged = merged.drop_duplicates(subset=list(schema.KEYS[name]), keep="last")
        else:
            merged = raw_new
        columns = [c.name for c in schema.SCHEMAS[name] if c.name in merged.columns]
        text = fileio.csv_text(columns, merged[columns].to_dict("records"), schema.text_columns(name))
        origins: list[tuple[str, int]] = list(merged["_origin"])
        # Validate the would-be catalog (bundled + this user file) in a scratch folder first.
        with fileio.scratch_folder() as scratch:
            trial = scratch / name
            trial.write_text(text, encoding="utf-8")
            try:
                load_catalog(scratch)  # user layer too: its gpus.csv may define the GPUs used here
            except CatalogError as exc:
                # Point at the file the user can fix, not at the scratch copy that is gone.
                raise CatalogError([_relocate(p, str(trial), origins, str(path)) for p in exc.problems]) from None
        fileio.write_text(target, text)
    return ImportReport(target=target, catalog_file=name, rows_imported=len(incoming), rows_total=len(merged),
                        held=held)


def import_offer_rows(path: Path, offers: pd.DataFrame, *, accept_changes: bool = False) -> ImportReport:
    """Import offers rows made from ``path`` (a short-form quote filled in by
    ``optimizer.compare.import_quotes_file``); problems point at ``path``, same line numbers."""
    columns = [c.name for c in schema.OFFERS if c.name in offers.columns]   # optional columns may be absent
    with fileio.scratch_folder() as scratch:
        full = scratch / "offers.csv"
        full.write_text(offers[columns].to_csv(index=False), encoding="utf-8")
        try:
            report = import_file(full, accept_changes=accept_changes)
        except CatalogError as exc:
            raise CatalogError([dataclasses.replace(p, file=str(path)) if p.file == str(full) else p
                                for p in exc.problems]) from None
    return dataclasses.replace(report, form="short")
