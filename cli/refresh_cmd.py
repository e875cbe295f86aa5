"""``flopopt catalog refresh``: fetch live prices into the refresh cache and show what changed.

Thin by design: ``catalogs.refresh.refresh`` does the work and returns a typed result;
this module parses options, drives a progress bar, and renders. JSON goes through
``render.to_json`` like every command's; the table and markdown renderings live here
rather than in ``cli/render.py`` because nothing else shows a refresh result.

Exit codes (documented in the command's help):
  0  every selected source refreshed (or was skipped for --region), nothing held back
  1  at least one source failed (one ``error:`` line each on stderr; its previously
     cached prices are kept, the sources that worked were refreshed), or the price
     guards held rows back (listed with every reason; they are not cached)
  2  the refresh could not run or be saved (bad --source/--url, another refresh
     running, merged prices invalid, cache not writable): the cache is unchanged
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from .app import FORMAT_OPTION, Format, catalog_app, fail, guarded

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..catalogs.refresh_result import FeedOutcome, OfferChange, RefreshProgress, RefreshResult

EXIT_SOURCE_FAILED = 1
MOVES_SHOWN = 10
IDS_SHOWN = 5


@catalog_app.command()
def refresh(
    source: list[str] | None = typer.Option(
        None,
        "--source",
        "-s",
        metavar="SOURCE",
        help="Refresh only this source (repeatable): azure, skypilot, skypilot:<cloud> "
        "(e.g. skypilot:aws), vast. Default: all.",
    ),
    region: str | None = typer.Option(
        None,
        "--region",
        metavar="REGION",
        help="Only this region, e.g. eastus or us-east-1; cached prices of other regions are kept.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Fetch and show what would change; write nothing."
    ),
    url: list[str] | None = typer.Option(
        None,
        "--url",
        metavar="SOURCE=URL",
        help="Fetch a source from another base URL, SOURCE=URL (repeatable), e.g. "
        "azure=http://mirror/api/retail/prices, skypilot=http://mirror/catalogs/v7, "
        "skypilot:gcp=http://mirror/gcp/vms.csv. Environment: FLOPOPT_AZURE_PRICES_URL, "
        "FLOPOPT_SKYPILOT_CATALOG_URL, FLOPOPT_VAST_BUNDLES_URL.",
    ),
    clouds: str | None = typer.Option(
        None,
        "--clouds",
        metavar="CLOUD,...",
        help="SkyPilot v7 clouds to read, comma-separated, e.g. aws,gcp,lambda,nebius "
        "(default aws,gcp,azure,lambda,runpod; environment FLOPOPT_SKYPILOT_CLOUDS).",
    ),
    accept_changes: bool = typer.Option(
        False,
        "--accept-changes",
        help="Adopt prices that moved more than the change threshold "
        "(FLOPOPT_GUARD_MAX_CHANGE_PCT, default 30%) since the price in use; other guards still apply.",
    ),
    format: Format = FORMAT_OPTION,
) -> None:
    """Fetch current GPU prices from public sources (no account needed) into the local price cache.

    Sources: the Azure Retail Prices API, SkyPilot's public catalog CSVs (aws, gcp, azure,
    lambda, runpod; FLOPOPT_SKYPILOT_CLOUDS changes the list) and the vast.ai marketplace
    search. Refreshed prices override bundled ones; your imported rows (`catalog import`)
    always win. Offline, `solve` keeps using the last good refresh, else the bundled catalog.

    Example:  flopopt catalog refresh --source azure --region eastus --dry-run

    Every fetched price passes the price guards (plausible band per GPU, spot below
    on-demand and not a placeholder fraction, a move above 30% needs --accept-changes);
    rows that fail are held back, listed with every reason, and not cached.

    Exit codes: 0 all sources refreshed; 1 some source failed (one error line each; its
    previous prices are kept, the others were refreshed) or rows were held back; 2
    nothing could be done (bad option, another refresh running, invalid result) and the
    cache is unchanged.
    """
    import dataclasses

    from ..catalogs.fetch import RefreshSettings, parse_clouds, parse_url_overrides
    from ..catalogs.refresh import refresh as run_refresh
    from ..optimizer.fileio import WriteError
    from .render import STATUS_OK, document, to_json

    overrides = guarded(lambda: parse_url_overrides(url or []))
    settings = guarded(lambda: RefreshSettings.from_env(overrides))
    if clouds is not None:
        chosen = guarded(lambda: parse_clouds(clouds))
        settings = dataclasses.replace(settings, skypilot_clouds=chosen)

    def call(on_progress: Callable[[RefreshProgress], None] | None) -> RefreshResult:
        try:
            return run_refresh(source or None, region=region, dry_run=dry_run, settings=settings,
                               progress=on_progress, accept_changes=accept_changes)
        except WriteError as exc:  # a full or read-only disk: the refresh failed, the old cache stays
            fail(str(exc), EXIT_SOURCE_FAILED)

    with _ProgressBar() as on_progress:
        result = guarded(lambda: call(on_progress))
    for outcome in result.failed:
        typer.echo(f"error: {outcome.name}: {outcome.message}", err=True)
    if result.held:
        typer.echo(f"warning: {len(result.held)} row(s) held back by the price guards "
                   "(not cached); see the held-back table", err=True)
    if format is Format.json:
        status = "partial" if result.failed else STATUS_OK
        typer.echo(to_json(document(status, result_dict(result))), nl=False)
    elif format is Format.markdown:
        from .render import markdown_safe

        typer.echo(markdown_safe(render_markdown(result)), nl=False)
    else:
        render_table(result)
    if result.failed or result.held:
        raise typer.Exit(EXIT_SOURCE_FAILED)


class _ProgressBar:
    """A rich progress bar on stderr, only when stderr is a terminal (never in pipes or CI logs)."""

    def __enter__(self) -> Callable[[RefreshProgress], None] | None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        if not console.is_terminal:
            self._progress = None
            return None
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} sources"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._progress.start()
        task = self._progress.add_task("refreshing prices", total=None)
        progress = self._progress

        def update(event: RefreshProgress) -> None:
            progress.update(
                task,
                total=event.feeds_total,
                completed=event.feeds_done,
                description=f"{event.feed}: {event.detail}",
            )

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# ---------------------------------------------------------------------------
# rendering


# Not render.usd / render.pct: those round a plan's total cost to cents or dollars, but a
# per-hour price move needs the cents' fractions (0.8107 → 0.7950 is a 1.9% move).
def _usd(value: float | None) -> str:
    """Up to 4 decimals (cloud prices have them: 0.8107, 6.8021), never fewer than 2."""
    if value is None:
        return "—"
    text = f"{value:,.4f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.split(".")[1])))


def _pct(change: OfferChange) -> str:
    pct = change.change_pct
    if pct is None:
        return "—"
    return f"{pct:+.1f}%" if abs(pct) >= 1 else f"{pct:+.2f}%"


def _ids(changes: tuple[OfferChange, ...]) -> str:
    shown = ", ".join(c.offer_id for c in changes[:IDS_SHOWN])
    more = f" … (+{len(changes) - IDS_SHOWN} more)" if len(changes) > IDS_SHOWN else ""
    return shown + more


def _outcome_note(outcome: FeedOutcome) -> str:
    if outcome.message:
        return outcome.message
    skipped = ", ".join(f"{n} {reason}" for reason, n in outcome.skipped[:3])
    more = f" (+{len(outcome.skipped) - 3} more reasons)" if len(outcome.skipped) > 3 else ""
    return f"skipped: {skipped}{more}" if skipped else ""


# The two tables of a refresh, shared by the table and markdown renderings.
SOURCE_COLUMNS = ("source", "status", "offers", "last refresh", "note")
MOVE_COLUMNS = ("offer", "region", "gpu", "old", "new", "change", "old as_of")
RIGHT_ALIGNED = frozenset({"offers", "old", "new", "change"})


def _source_rows(result: RefreshResult, no_offers: str) -> list[tuple[str, ...]]:
    return [
        (
            outcome.name,
            outcome.status.value,
            str(outcome.offers) if outcome.offers else no_offers,
            outcome.previous_refresh or "never",
            _outcome_note(outcome),
        )
        for outcome in result.outcomes
    ]


def _move_rows(result: RefreshResult) -> list[tuple[str, ...]]:
    return [
        (
            move.offer_id,
            move.region or "—",
            move.gpu,
            _usd(move.old_price_per_hour_usd),
            _usd(move.new_price_per_hour_usd),
            _pct(move),
            move.old_as_of or "—",
        )
        for move in result.diff.moves[:MOVES_SHOWN]
    ]


HELD_SHOWN = 50


def _held_rows(result: RefreshResult) -> list[tuple[str, ...]]:
    from .render import held_rows

    return held_rows(result.held[:HELD_SHOWN])


def _summary_lines(result: RefreshResult) -> list[str]:
    if not result.written and not result.dry_run:
        return [f"no source refreshed: {result.cache_path} not changed"]
    diff = result.diff
    lines = [
        f"{len(diff.added)} offer(s) added" + (f": {_ids(diff.added)}" if diff.added else ""),
        f"{len(diff.removed)} offer(s) removed"
        + (f": {_ids(diff.removed)}" if diff.removed else ""),
        f"{len(diff.moves)} price(s) changed, {diff.unchanged} unchanged",
    ]
    if diff.replaced_as_of:
        import datetime as dt

        oldest, newest = diff.replaced_as_of
        today = dt.date.fromisoformat(result.as_of)
        ages = [(today - dt.date.fromisoformat(d)).days for d in (newest, oldest)]
        span = oldest if oldest == newest else f"{oldest} … {newest}"
        age = f"{ages[0]} days" if ages[0] == ages[1] else f"{ages[0]}–{ages[1]} days"
        lines.append(f"replaced prices as of {span} ({age} old)")
    if diff.replaced_cache_written_at:
        lines.append(f"previous refresh written {diff.replaced_cache_written_at}")
    if diff.shadowed_by_user:
        lines.append(
            f"{len(diff.shadowed_by_user)} refreshed offer(s) stay overridden by your imported "
            "rows: " + ", ".join(diff.shadowed_by_user[:IDS_SHOWN])
        )
    if result.dry_run:
        lines.append(
            f"dry run: {result.cache_path} not changed ({result.rows_total} offers would be cached)"
        )
    else:
        lines.append(f"wrote {result.rows_total} offers to {result.cache_path}")
    return lines


def render_table(result: RefreshResult) -> None:
    """Rich tables on stdout: one row per source, then the biggest price moves, then a summary."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    sources = Table(
        title="Sources" + (f" (region {result.region})" if result.region else ""),
        title_justify="left",
    )
    for column in SOURCE_COLUMNS:
        sources.add_column(column, justify="right" if column in RIGHT_ALIGNED else "left")
    for cells in _source_rows(result, no_offers="—"):
        sources.add_row(*cells)
    console.print(sources)
    if result.diff.moves:
        moves = Table(
            title=f"Biggest price moves (per instance-hour; top {MOVES_SHOWN})",
            title_justify="left",
        )
        for column in MOVE_COLUMNS:
            # Offer ids are what the user types next (`catalog show ID`): on a narrow
            # terminal they fold onto a second line rather than losing characters.
            moves.add_column(
                column,
                justify="right" if column in RIGHT_ALIGNED else "left",
                overflow="fold" if column == "offer" else "ellipsis",
                no_wrap=column != "offer",
            )
        for cells in _move_rows(result):
            moves.add_row(*cells)
        console.print(moves)
    if result.held:
        held = Table(
            title=f"Held back by the price guards (not cached; {len(result.held)} row(s))",
            title_justify="left",
        )
        from .render import HELD_HEADERS

        for column in HELD_HEADERS:
            held.add_column(column, overflow="fold")
        for cells in _held_rows(result):
            held.add_row(*cells)
        console.print(held)
    for line in _summary_lines(result):
        console.print(line)


def _markdown_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Header, alignment row (numbers right-aligned) and rows; cells are used as given."""
    align = "".join("---:|" if column in RIGHT_ALIGNED else "---|" for column in columns)
    return [f"| {' | '.join(columns)} |", f"|{align}", *(f"| {' | '.join(r)} |" for r in rows)]


def render_markdown(result: RefreshResult) -> str:
    # Only the note is free text (error messages, skip reasons) that may hold a "|".
    sources = [(*r[:-1], r[-1].replace("|", "\\|")) for r in _source_rows(result, no_offers="0")]
    out = _markdown_table(SOURCE_COLUMNS, sources)
    if result.diff.moves:
        out += ["", *_markdown_table(MOVE_COLUMNS, _move_rows(result))]
    if result.held:
        rows = [(*r[:-1], r[-1].replace("|", "\\|")) for r in _held_rows(result)]
        from .render import HELD_HEADERS

        out += ["", *_markdown_table(HELD_HEADERS, rows)]
    out += [""] + [f"- {line}" for line in _summary_lines(result)]
    return "\n".join(out) + "\n"


def _change_dict(change: OfferChange) -> dict[str, Any]:
    return {
        "offer_id": change.offer_id,
        "provider": change.provider,
        "region": change.region,
        "gpu": change.gpu,
        "old_price_per_hour_usd": change.old_price_per_hour_usd,
        "new_price_per_hour_usd": change.new_price_per_hour_usd,
        "change_pct": change.change_pct,
        "old_as_of": change.old_as_of,
        "new_as_of": change.new_as_of,
    }


def result_dict(result: RefreshResult) -> dict[str, Any]:
    """The JSON shape of a refresh (rows themselves are in the cache file, not repeated here)."""
    from .render import held_dict

    diff = result.diff
    return {
        "as_of": result.as_of,
        "region": result.region,
        "dry_run": result.dry_run,
        "written": result.written,
        "cache_path": str(result.cache_path),
        "rows_total": result.rows_total,
        "sources": [
            {
                "name": o.name,
                "status": o.status.value,
                "url": o.url,
                "offers": o.offers,
                "pages": o.pages,
                "skipped": dict(o.skipped),
                "message": o.message,
                "previous_refresh": o.previous_refresh,
                "held_back": o.held,
            }
            for o in result.outcomes
        ],
        "held_back": [held_dict(h) for h in result.held],
        "diff": {
            "added": [_change_dict(c) for c in diff.added],
            "removed": [_change_dict(c) for c in diff.removed],
            "moves": [_change_dict(c) for c in diff.moves],
            "unchanged": diff.unchanged,
            "replaced_as_of": list(diff.replaced_as_of) if diff.replaced_as_of else None,
            "replaced_cache_written_at": diff.replaced_cache_written_at,
            "shadowed_by_user": list(diff.shadowed_by_user),
        },
    }
