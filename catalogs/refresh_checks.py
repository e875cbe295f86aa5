"""Checking fresh rows before they are cached: offers.csv's rules, then the price guards.

A refreshed row must pass everything a bundled row passes (``schema.coerce``, known GPUs,
price > 0, unique ids) and the price guards (``guards``). A row with a defect is held back
with every reason; a feed whose every row is held back fails alone. The merged file is
validated once more exactly as the loader will read it, before anything replaces the cache.
``pandas`` is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..optimizer import fileio
from . import paths
from .fetch import RefreshError
from .guards import GuardSettings, HeldRow, check_prices, price_rows
from .refresh_result import FeedOutcome, FeedStatus, failed_outcome
from .sources.base import offer_columns

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from ..optimizer.errors import ProblemList

__all__ = ["guard_feeds", "valid_previous_rows", "validate_cache_text"]


def _offer_problems(
    table: pd.DataFrame, label: str, known_gpus: set[str], problems: ProblemList
) -> None:
    """The rules ``load_catalog`` adds on top of the column schema for a rented offer."""
    from . import schema

    schema.check_unique(table, schema.KEYS["offers.csv"], label, problems)
    for idx in table.index[~table["gpu"].isin(known_gpus)]:
        problems.add(
            label,
            "gpu",
            f"unknown gpu {table.at[idx, 'gpu']!r} (not in gpus.csv)",
            row=int(idx) + 2,
        )
    rental = table["kind"].isin(schema.RENTAL_KINDS)
    for idx in table.index[rental & ~(table["price_per_hour_usd"] > 0)]:
        problems.add(
            label, "price_per_hour_usd", "must be > 0 for a rental offer", row=int(idx) + 2
        )


def _row_problems(
    rows: Sequence[Mapping[str, str]], known_gpus: set[str], today: dt.date
) -> list[tuple[int | None, str]]:
    """Every offers.csv defect in ``rows`` as (row position or None, "field: message").

    One schema pass for all rows, because pandas, not the network, is the slow part here.
    """
    import pandas as pd

    from ..optimizer.errors import ProblemList
    from . import schema

    if not rows:
        return []
    columns = offer_columns()
    frame = pd.DataFrame([{c: row.get(c, "") for c in columns} for row in rows], dtype=str)
    problems = ProblemList()
    table = schema.coerce(frame, schema.OFFERS, "refreshed offers", problems, today)
    _offer_problems(table, "refreshed offers", known_gpus, problems)
    found: list[tuple[int | None, str]] = []
    for problem in problems.items:
        position = problem.row - 2 if problem.row is not None else None
        found.append((position, f"{problem.field}: {problem.message}"))
    return found


def guard_feeds(
    outcomes: Sequence[FeedOutcome],
    known_gpus: set[str],
    today: dt.date,
    *,
    reference: Sequence[Mapping[str, str]],
    previous: Mapping[str, float],
    settings: GuardSettings,
    accept_changes: bool,
) -> tuple[list[FeedOutcome], tuple[HeldRow, ...]]:
    """Check every fresh row against offers.csv's rules and the price guards, in one pass.

    A row with any defect is held back with all of them (schema and guards together);
    the feed keeps its other rows. A feed whose every row is held back, or whose
    response is wrong as a whole, fails alone and keeps its previous rows.
    """
    owners: list[str] = []
    rows: list[dict[str, str]] = []
    for outcome in outcomes:
        if outcome.status is FeedStatus.ok:
            rows.extend(outcome.rows)
            owners.extend([outcome.name] * len(outcome.rows))
    schema_reasons: dict[int, list[str]] = {}
    whole_feed: dict[str, str] = {}
    for position, text in _row_problems(rows, known_gpus, today):
        if position is None:
            for feed in sorted(set(owners)):
                whole_feed.setdefault(feed, f"the converted offers are invalid: {text}")
        else:
            schema_reasons.setdefault(position, []).append(text)
    report = check_prices(
        price_rows(rows),
        reference=[r for r in price_rows(reference) if r is not None],
        previous=previous,
        settings=settings,
        accept_changes=accept_changes,
        extra_reasons=schema_reasons,
        sources=owners,
    )
    kept_by_feed: dict[str, list[dict[str, str]]] = {}
    for position in report.kept:
        kept_by_feed.setdefault(owners[position], []).append(rows[position])
    held_by_feed: dict[str, int] = {}
    for item in report.held:
        held_by_feed[item.source] = held_by_feed.get(item.source, 0) + 1
    out: list[FeedOutcome] = []
    for o in outcomes:
        if o.status is not FeedStatus.ok:
            out.append(o)
        elif o.name in whole_feed:
            out.append(failed_outcome(o.name, o.url, whole_feed[o.name], o.previous_refresh))
        elif o.rows and not kept_by_feed.get(o.name):
            message = (f"all {len(o.rows)} converted offer(s) were held back by the price "
                       "guards (listed below); previous prices kept")
            out.append(dataclasses.replace(
                failed_outcome(o.name, o.url, message, o.previous_refresh), held=held_by_feed[o.name]
            ))
        else:
            kept = tuple(kept_by_feed.get(o.name, []))
            out.append(dataclasses.replace(
                o, rows=kept, offers=len(kept), held=held_by_feed.get(o.name, 0)
            ))
    held = tuple(h for h in report.held if h.source not in whole_feed)
    return out, held


def valid_previous_rows(
    rows: list[dict[str, str]], known_gpus: set[str], today: dt.date
) -> list[dict[str, str]]:
    """Cached rows worth keeping: one that no longer validates (hand-edited, or a GPU that
    left gpus.csv) would otherwise be carried forward and fail every later refresh."""
    problems = _row_problems(rows, known_gpus, today)
    if any(position is None for position, _ in problems):
        return []
    bad = {position for position, _ in problems}
    return [row for index, row in enumerate(rows) if index not in bad]


def validate_cache_text(text: str, known_gpus: set[str], today: dt.date) -> None:
    """Read the would-be cache file back exactly as the loader will (``loader.read_table``)
    and apply the loader's cross-file rules; raise before anything replaces the cache."""
    from ..optimizer.errors import ProblemList
    from .loader import read_table

    problems = ProblemList()
    with fileio.scratch_folder(prefix="flopopt-refresh-") as scratch:
        trial = scratch / paths.refreshed_offers_path().name
        trial.write_text(text, encoding="utf-8")
        table = read_table(trial, "offers.csv", problems, today)
        _offer_problems(table, str(trial), known_gpus, problems)
    if problems.items:
        raise RefreshError(
            f"the refreshed offers failed validation, cache not changed: {problems.items[0]}"
        )


