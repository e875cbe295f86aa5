"""Live prices: fetch public price sources and cache them as an offers.csv layer.

A bundled price list goes stale in weeks, so ``flopopt catalog refresh`` pulls current
prices over plain HTTP (no account, no API key) and stores them where the loader picks
them up (``paths.refreshed_offers_path()``, layer 2 of ``loader.load_catalog``).

The feeds and their formats are in ``price_sources`` (a *source* is a family of feeds;
``--source skypilot`` selects all its clouds); timeouts, retries and the settings'
environment variables are in ``fetch``. This module runs the pipeline, in the order
data flows::

    settings ─► fetch (timeouts, retry/backoff on 429/5xx, page limit)      [fetch]
             ─► adapt (the source's format → offers.csv rows; skips counted
                by reason)                                                   [price_sources]
             ─► validate each feed's rows (schema.coerce, known GPUs, price > 0)
             ─► merge with the previous cache: a feed that failed keeps its previous
                rows; with ``--region`` only that region's rows of a feed are replaced
             ─► validate the merged file exactly as ``solve`` would (load_catalog)
             ─► write atomically (temp file + rename) under a file lock, then the
                sidecar state (which feed owns which offer, when it was fetched)
             ─► diff against what it replaced (added / removed / price moves, ages)

Failure rules: any failure leaves the previous cache byte-for-byte intact, except that
the feeds which *did* succeed replace their own rows. A feed that yields no usable row
is a failure (an empty or changed response must not wipe good prices), except under
``--region`` where "no offers in this region" is a legitimate answer (nothing replaced).

Precedence when two feeds produce the same offer_id (SkyPilot's Azure rows and the
Azure API describe the same VM): later feeds in ``feeds_for``'s order win — direct APIs
over the SkyPilot mirror — and fresh rows always win over rows kept from an earlier
refresh. A refreshed row that describes the same (provider, instance_type, region, kind)
as a bundled row takes the bundled row's offer_id, so the refreshed price *replaces* the
bundled one instead of sitting next to it.

Library only: nothing here prints. The CLI (``cli/refresh_cmd.py``) renders the result.
``requests`` and ``pandas`` are imported inside the functions that need them, so
``cache_status()`` stays cheap for ``solve``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..optimizer import fileio
from ..optimizer.vocabulary import Status
from . import paths
from .fetch import (
    DEFAULT_URLS,
    SOURCES,
    Fetcher,
    FetchError,
    RefreshError,
    RefreshSettings,
    short_url,
)
from .guards import GuardSettings, HeldRow, check_prices, price_rows
from .price_sources import (
    VAST_REGION,
    Adapted,
    fetch_azure,
    fetch_skypilot,
    fetch_vast,
    offer_columns,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from ..optimizer.errors import ProblemList

__all__ = [
    "FeedOutcome",
    "FeedStatus",
    "OfferChange",
    "RefreshDiff",
    "RefreshProgress",
    "RefreshResult",
    "cache_status",
    "feeds_for",
    "lock_path",
    "refresh",
    "state_path",
]


# ---------------------------------------------------------------------------
# feeds

FeedRunner = Callable[[Fetcher, str, "str | None", dt.date, Callable[[str], None]], Adapted]


@dataclass(frozen=True)
class Feed:
    """One URL to fetch and the adapter for its format."""

    name: str
    family: str
    url: str
    run: FeedRunner
    regional: bool = True  # False: the feed has no regions (vast's marketplace)


def feeds_for(settings: RefreshSettings) -> list[Feed]:
    """All feeds in precedence order (later wins an offer_id clash): mirror, then direct APIs."""
    feeds: list[Feed] = []
    base = settings.urls.get("skypilot", DEFAULT_URLS["skypilot"]).rstrip("/")
    for cloud in settings.skypilot_clouds:
        name = f"skypilot:{cloud}"
        url = settings.urls.get(name, f"{base}/{cloud}/vms.csv")

        def run(
            fetcher: Fetcher,
            url: str,
            region: str | None,
            as_of: dt.date,
            report: Callable[[str], None],
            cloud: str = cloud,
        ) -> Adapted:
            return fetch_skypilot(fetcher, url, cloud, region, as_of, report)

        feeds.append(Feed(name, "skypilot", url, run))
    feeds.append(
        Feed("azure", "azure", settings.urls.get("azure", DEFAULT_URLS["azure"]), fetch_azure)
    )
    feeds.append(
        Feed(
            "vast",
            "vast",
            settings.urls.get("vast", DEFAULT_URLS["vast"]),
            fetch_vast,
            regional=False,
        )
    )
    return feeds


def select_feeds(feeds: Sequence[Feed], sources: Sequence[str] | None) -> list[Feed]:
    """``--source`` values: a family (``skypilot``) or one feed (``skypilot:gcp``)."""
    if not sources:
        return list(feeds)
    wanted = [s.strip().lower() for s in sources if s.strip()]
    names = [f.name for f in feeds]
    for item in wanted:
        if item not in names and item not in {f.family for f in feeds}:
            import difflib

            close = difflib.get_close_matches(item, [*SOURCES, *names], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RefreshError(
                f"--source {item!r}: unknown source{hint} "
                f"(choose from {', '.join([*SOURCES, *names])})"
            )
    return [f for f in feeds if f.name in wanted or f.family in wanted]


# ---------------------------------------------------------------------------
# result types


class FeedStatus(str, Enum):
    ok = "ok"
    error = "error"
    skipped = "skipped"


@dataclass(frozen=True)
class FeedOutcome:
    """What one feed did: its rows (when ok) or a one-line reason (when not)."""

    name: str
    status: FeedStatus
    url: str
    offers: int = 0
    pages: int = 0
    skipped: tuple[tuple[str, int], ...] = ()
    message: str | None = None
    previous_refresh: str | None = None  # date this feed last refreshed, if known
    rows: tuple[dict[str, str], ...] = field(default=(), repr=False)
    held: int = 0  # rows the price guards held back


@dataclass(frozen=True)
class OfferChange:
    """One offer's price before and after (None = absent on that side)."""

    offer_id: str
    provider: str
    gpu: str
    old_price_per_hour_usd: float | None
    new_price_per_hour_usd: float | None
    old_as_of: str | None
    new_as_of: str | None
    region: str = ""

    @property
    def change_pct(self) -> float | None:
        old, new = self.old_price_per_hour_usd, self.new_price_per_hour_usd
        if old is None or new is None or old == 0:
            return None
        return (new - old) / old * 100.0


@dataclass(frozen=True)
class RefreshDiff:
    """Offers added / removed / re-priced between the old and new effective prices.

    Both sides are bundled offers overlaid with the refresh cache (the user's own
    imported rows are not part of it: a refresh never touches them). ``moves`` are
    sorted biggest relative change first. ``replaced_as_of`` is the (oldest, newest)
    as_of of the prices that were replaced or removed — the age of what changed.
    """

    added: tuple[OfferChange, ...] = ()
    removed: tuple[OfferChange, ...] = ()
    moves: tuple[OfferChange, ...] = ()
    unchanged: int = 0
    replaced_as_of: tuple[str, str] | None = None
    replaced_cache_written_at: str | None = None  # when the cache being replaced was written
    shadowed_by_user: tuple[str, ...] = ()  # refreshed ids that user-imported rows override


@dataclass(frozen=True)
class RefreshProgress:
    """A progress tick for the CLI's progress bar (the library itself never prints)."""

    feed: str
    feeds_done: int
    feeds_total: int
    detail: str


@dataclass(frozen=True)
class RefreshResult:
    outcomes: tuple[FeedOutcome, ...]
    diff: RefreshDiff
    cache_path: Path
    as_of: str
    dry_run: bool
    written: bool
    rows_total: int  # rows in the cache file after this refresh (or that would be)
    region: str | None = None
    held: tuple[HeldRow, ...] = ()  # rows held back by validation or the price guards

    @property
    def status(self) -> Status:
        """PARTIAL when a source failed or rows were held back (the command exits 1)."""
        return Status.PARTIAL if self.failed or self.held else Status.OK

    @property
    def failed(self) -> tuple[FeedOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is FeedStatus.error)

    @property
    def refreshed(self) -> tuple[FeedOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is FeedStatus.ok)


# ---------------------------------------------------------------------------
# cache files

STATE_VERSION = 1


def state_path() -> Path:
    """Sidecar of the refresh cache: which feed owns which offer_id, and when it was fetched."""
    return paths.cache_dir() / "offers.refreshed.state.json"


def lock_path() -> Path:
    return paths.cache_dir() / "refresh.lock"


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {k: (v or "") for k, v in row.items() if k is not None}
                for row in csv.DictReader(handle)
            ]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _read_state(cache_file: Path) -> dict[str, Any] | None:
    """The sidecar, only if it describes the cache file as it is now (hash match)."""
    try:
        state = json.loads(state_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    if state.get("csv_sha256") != _sha256(cache_file) or not isinstance(state.get("feeds"), dict):
        return None
    return state


def _guess_feed(row: Mapping[str, str]) -> str | None:
    """Owner of a cached row when the sidecar is missing (e.g. a crash between the two writes)."""
    source, provider = row.get("source", ""), row.get("provider", "")
    if "vms.csv" in source:
        return f"skypilot:{provider}"
    if provider == "vast" and "bundles" in source:
        return "vast"
    if provider == "azure" and "armSkuName" in source:
        return "azure"
    return None


def _csv_text(rows: Iterable[Mapping[str, str]]) -> str:
    from . import schema

    # Text cells that start a spreadsheet formula (=cmd|...) are neutralised (OWASP CSV injection).
    return fileio.csv_text(offer_columns(), rows, schema.text_columns("offers.csv"))


def _bundled_rows() -> list[dict[str, str]]:
    return _read_csv_rows(paths.BUNDLED_DIR / "offers.csv")


def _known_gpus() -> set[str]:
    """GPU ids a refreshed row may name: bundled gpus.csv (the mapping tables target only these)."""
    return {r.get("gpu", "") for r in _read_csv_rows(paths.BUNDLED_DIR / "gpus.csv")} - {""}


# ---------------------------------------------------------------------------
# validation, merge, diff


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


def _guard_feeds(
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
            out.append(_failed(o.name, o.url, whole_feed[o.name], o.previous_refresh))
        elif o.rows and not kept_by_feed.get(o.name):
            message = (f"all {len(o.rows)} converted offer(s) were held back by the price "
                       "guards (listed below); previous prices kept")
            out.append(dataclasses.replace(
                _failed(o.name, o.url, message, o.previous_refresh), held=held_by_feed[o.name]
            ))
        else:
            kept = tuple(kept_by_feed.get(o.name, []))
            out.append(dataclasses.replace(
                o, rows=kept, offers=len(kept), held=held_by_feed.get(o.name, 0)
            ))
    held = tuple(h for h in report.held if h.source not in whole_feed)
    return out, held


def _effective_prices(
    bundled: Sequence[Mapping[str, str]], cache: Sequence[Mapping[str, str]]
) -> dict[str, float]:
    """offer_id → the instance-hour price ``solve`` uses now (bundled overlaid with the cache)."""
    prices: dict[str, float] = {}
    for row in [*bundled, *cache]:
        price = _price(row)
        if row.get("offer_id") and price is not None:
            prices[row["offer_id"]] = price
    return prices


def _valid_previous_rows(
    rows: list[dict[str, str]], known_gpus: set[str], today: dt.date
) -> list[dict[str, str]]:
    """Cached rows worth keeping: one that no longer validates (hand-edited, or a GPU that
    left gpus.csv) would otherwise be carried forward and fail every later refresh."""
    problems = _row_problems(rows, known_gpus, today)
    if any(position is None for position, _ in problems):
        return []
    bad = {position for position, _ in problems}
    return [row for index, row in enumerate(rows) if index not in bad]


def _validate_cache_text(text: str, known_gpus: set[str], today: dt.date) -> None:
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


def _adopt_bundled_ids(rows: list[dict[str, str]], bundled: list[dict[str, str]]) -> None:
    """Give a refreshed row the bundled offer_id of the same VM/region/kind, so it replaces it."""
    by_key = {
        (
            b.get("provider", ""),
            b.get("instance_type", "").lower(),
            b.get("region", "").lower(),
            b.get("kind", ""),
        ): b["offer_id"]
        for b in bundled
        if b.get("kind") in ("on_demand", "spot") and b.get("offer_id")
    }
    for row in rows:
        key = (row["provider"], row["instance_type"].lower(), row["region"].lower(), row["kind"])
        if key in by_key:
            row["offer_id"] = by_key[key]


def _price(row: Mapping[str, str] | None) -> float | None:
    if row is None:
        return None
    try:
        return float(row.get("price_per_hour_usd", ""))
    except ValueError:
        return None


def compute_diff(
    bundled: list[dict[str, str]],
    old_cache: list[dict[str, str]],
    new_cache: list[dict[str, str]],
    user_ids: set[str],
    old_written_at: str | None,
) -> RefreshDiff:
    """Old vs new effective offers, each = bundled overlaid with the cache (loader layers 1–2)."""

    def effective(cache: list[dict[str, str]]) -> dict[str, dict[str, str]]:
        table = {r["offer_id"]: r for r in bundled if r.get("offer_id")}
        table.update({r["offer_id"]: r for r in cache if r.get("offer_id")})
        return table

    before, after = effective(old_cache), effective(new_cache)

    def change(offer_id: str) -> OfferChange:
        old, new = before.get(offer_id), after.get(offer_id)
        ref = new or old or {}
        return OfferChange(
            offer_id,
            ref.get("provider", ""),
            ref.get("gpu", ""),
            _price(old),
            _price(new),
            (old or {}).get("as_of") or None,
            (new or {}).get("as_of") or None,
            ref.get("region", ""),
        )

    added = tuple(change(i) for i in sorted(set(after) - set(before)))
    removed = tuple(change(i) for i in sorted(set(before) - set(after)))
    moves: list[OfferChange] = []
    unchanged = 0
    for offer_id in sorted(set(before) & set(after)):
        item = change(offer_id)
        old, new = item.old_price_per_hour_usd, item.new_price_per_hour_usd
        if (
            old is not None
            and new is not None
            and not math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-9)
        ):
            moves.append(item)
        else:
            unchanged += 1
    moves.sort(key=lambda m: (-abs(m.change_pct or 0.0), m.offer_id))
    old_dates = sorted(d for d in (m.old_as_of for m in [*moves, *removed]) if d)
    return RefreshDiff(
        added=added,
        removed=removed,
        moves=tuple(moves),
        unchanged=unchanged,
        replaced_as_of=(old_dates[0], old_dates[-1]) if old_dates else None,
        replaced_cache_written_at=old_written_at,
        shadowed_by_user=tuple(sorted({r["offer_id"] for r in new_cache} & user_ids)),
    )


# ---------------------------------------------------------------------------
# the refresh


def refresh(
    sources: Sequence[str] | None = None,
    *,
    region: str | None = None,
    dry_run: bool = False,
    url_overrides: Mapping[str, str] | None = None,
    settings: RefreshSettings | None = None,
    progress: Callable[[RefreshProgress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    today: dt.date | None = None,
    accept_changes: bool = False,
    guard_settings: GuardSettings | None = None,
) -> RefreshResult:
    """Fetch the selected feeds, merge them into the refresh cache, and say what changed.

    Every fresh row passes the price guards (``guards``); a row that fails is held back
    (``RefreshResult.held``, with every reason) and never cached. ``accept_changes``
    adopts prices that moved more than the change threshold.

    Raises RefreshError (nothing written) for a bad option, a refresh already running or
    a merged result that fails validation; fileio.WriteError for a cache that cannot be
    written (full disk, read-only, permission; the previous cache is kept). A feed
    that fails is *not* an exception: it is an outcome with status ``error`` and a
    one-line message, and its previously cached rows are kept.
    """
    if settings is None:
        settings = RefreshSettings.from_env(url_overrides)
    elif url_overrides:
        settings = dataclasses.replace(settings, urls={**settings.urls, **url_overrides})
    region = region.strip() if region and region.strip() else None
    feeds = select_feeds(feeds_for(settings), sources)
    today = today or dt.date.today()
    cache_file = paths.refreshed_offers_path()

    guard = _Guard(guard_settings or GuardSettings.from_env(), accept_changes)
    if dry_run:
        return _run(feeds, settings, region, True, progress, sleep, today, cache_file, guard)
    from filelock import FileLock, Timeout

    fileio.ensure_folder(paths.cache_dir())
    lock = FileLock(str(lock_path()), timeout=settings.lock_timeout_s)
    try:
        lock.acquire()
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
        raise RefreshError(
            f"another `flopopt catalog refresh` is running (lock {lock_path()}); "
            "wait for it to finish and try again"
        ) from None
    except OSError as exc:
        raise fileio.WriteError(str(lock_path()), fileio.describe_os_error(exc)) from None
    try:
        return _run(feeds, settings, region, False, progress, sleep, today, cache_file, guard)
    finally:
        lock.release()


@dataclass(frozen=True)
class _Guard:
    settings: GuardSettings
    accept_changes: bool


def _run(
    feeds: list[Feed],
    settings: RefreshSettings,
    region: str | None,
    dry_run: bool,
    progress: Callable[[RefreshProgress], None] | None,
    sleep: Callable[[float], None],
    today: dt.date,
    cache_file: Path,
    guard: _Guard,
) -> RefreshResult:
    import requests

    state = _read_state(cache_file) if cache_file.exists() else None
    state_feeds: dict[str, Any] = state["feeds"] if state else {}
    known_gpus = _known_gpus()
    bundled = _bundled_rows()
    outcomes: list[FeedOutcome] = []

    def tick(feed: str, done: int, detail: str) -> None:
        if progress is not None:
            progress(RefreshProgress(feed, done, len(feeds), detail))

    with requests.Session() as session:
        session.headers["User-Agent"] = (
            "flopopt-catalog-refresh (+https://pypi.org/project/flopopt/)"
        )
        fetcher = Fetcher(settings, session, sleep)
        for done, feed in enumerate(feeds):
            fetcher.start_source()
            previous = (state_feeds.get(feed.name) or {}).get("as_of")
            report = functools.partial(tick, feed.name, done)
            outcome = _run_feed(feed, fetcher, region, today, bundled, previous, report)
            outcomes.append(outcome)
            tick(feed.name, done + 1, _DONE_DETAIL.get(outcome.status, f"{outcome.offers} offers"))

    old_rows = _read_csv_rows(cache_file) if cache_file.exists() else []
    kept_candidates = _valid_previous_rows(old_rows, known_gpus, today)
    outcomes, held = _guard_feeds(
        outcomes,
        known_gpus,
        today,
        reference=[*bundled, *kept_candidates],
        previous=_effective_prices(bundled, kept_candidates),
        settings=guard.settings,
        accept_changes=guard.accept_changes,
    )
    merged, owners = _merge(kept_candidates, state_feeds, outcomes, region)
    new_rows = [merged[k] for k in sorted(merged)]
    user_ids = {
        r.get("offer_id", "") for r in _read_csv_rows(paths.user_catalog_dir() / "offers.csv")
    }
    diff = compute_diff(
        bundled, old_rows, new_rows, user_ids, state["written_at"] if state else None
    )
    result = RefreshResult(
        outcomes=tuple(outcomes),
        diff=diff,
        cache_path=cache_file,
        as_of=today.isoformat(),
        dry_run=dry_run,
        written=False,
        rows_total=len(new_rows),
        region=region,
        held=held,
    )
    if dry_run or not any(o.status is FeedStatus.ok and o.offers for o in outcomes):
        return result  # nothing fetched replaces anything: the cache stays byte-for-byte as it was
    text = _csv_text(new_rows)
    _validate_cache_text(text, known_gpus, today)
    _write_cache(cache_file, text, owners, state_feeds, outcomes, today)
    return dataclasses.replace(result, written=True)


# The progress detail once a feed is done; an ok feed says how many offers it brought.
_DONE_DETAIL = {FeedStatus.skipped: "skipped", FeedStatus.error: "failed"}


def _run_feed(
    feed: Feed,
    fetcher: Fetcher,
    region: str | None,
    today: dt.date,
    bundled: list[dict[str, str]],
    previous: str | None,
    report: Callable[[str], None],
) -> FeedOutcome:
    """Fetch and adapt one feed. A failure is an outcome with a one-line message, never an
    exception: one feed's trouble must not sink the others."""
    if region and not feed.regional and region.lower() != VAST_REGION:
        return FeedOutcome(
            feed.name,
            FeedStatus.skipped,
            feed.url,
            previous_refresh=previous,
            message=f"has no regions (its offers are region "
            f"'{VAST_REGION}'); not fetched for --region {region}",
        )
    report("starting")
    try:
        adapted = feed.run(fetcher, feed.url, region, today, report)
        if not adapted.rows and not region:
            raise FetchError(
                f"no GPU offers in the response from {short_url(feed.url)} "
                f"({_skip_summary(adapted.skipped) or 'empty'})"
            )
        _adopt_bundled_ids(adapted.rows, bundled)
    except FetchError as exc:
        return _failed(feed.name, feed.url, str(exc), previous)
    except Exception as exc:  # noqa: BLE001 - one feed's surprise must not sink the others
        reason = f"could not read the response ({type(exc).__name__}: {exc})"
        return _failed(feed.name, feed.url, reason, previous)
    return FeedOutcome(
        feed.name,
        FeedStatus.ok,
        feed.url,
        offers=len(adapted.rows),
        pages=adapted.pages,
        skipped=tuple(sorted(adapted.skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
        previous_refresh=previous,
        rows=tuple(adapted.rows),
    )


def _failed(name: str, url: str, message: str, previous_refresh: str | None) -> FeedOutcome:
    return FeedOutcome(
        name, FeedStatus.error, url, message=message, previous_refresh=previous_refresh
    )


def _merge(
    old_rows: list[dict[str, str]],
    state_feeds: Mapping[str, Any],
    outcomes: Sequence[FeedOutcome],
    region: str | None,
) -> tuple[dict[str, dict[str, str]], dict[str, str | None]]:
    """Previous rows minus the scopes that refreshed, plus the fresh rows (later feeds win)."""
    owner_of: dict[str, str] = {}
    for feed_name, info in state_feeds.items():
        for offer_id in (info or {}).get("offer_ids", []):
            owner_of[str(offer_id)] = feed_name
    replaced = {o.name for o in outcomes if o.status is FeedStatus.ok and o.offers}
    merged: dict[str, dict[str, str]] = {}
    owners: dict[str, str | None] = {}
    for row in old_rows:
        offer_id = row.get("offer_id", "")
        if not offer_id:
            continue
        owner = owner_of.get(offer_id) or _guess_feed(row)
        in_scope = region is None or row.get("region", "").lower() == region.lower()
        if owner in replaced and in_scope:
            continue
        merged[offer_id], owners[offer_id] = row, owner
    for outcome in outcomes:
        if outcome.status is FeedStatus.ok:
            for row in outcome.rows:
                merged[row["offer_id"]], owners[row["offer_id"]] = row, outcome.name
    return merged, owners


def _write_cache(
    cache_file: Path,
    text: str,
    owners: Mapping[str, str | None],
    state_feeds: Mapping[str, Any],
    outcomes: Sequence[FeedOutcome],
    today: dt.date,
) -> None:
    """CSV, then the sidecar, each atomic: a crash in between loses only ownership hints."""
    feeds: dict[str, Any] = {}
    for name, info in state_feeds.items():
        if isinstance(info, dict):
            feeds[name] = {**info, "offer_ids": []}
    for outcome in outcomes:
        if outcome.status is FeedStatus.ok and outcome.offers:
            feeds[outcome.name] = {"as_of": today.isoformat(), "url": outcome.url, "offer_ids": []}
    for offer_id, owner in sorted(owners.items()):
        if owner is not None:
            feeds.setdefault(owner, {"as_of": None, "url": None, "offer_ids": []})[
                "offer_ids"
            ].append(offer_id)
    feeds = {name: info for name, info in feeds.items() if info["offer_ids"]}
    data = text.encode("utf-8")
    state = {
        "version": STATE_VERSION,
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "csv_sha256": hashlib.sha256(data).hexdigest(),
        "feeds": feeds,
    }
    # A disk fault is a fileio.WriteError naming the file: the CLI exits 1, the old cache stays.
    fileio.write_bytes(cache_file, data)
    fileio.write_text(state_path(), json.dumps(state, indent=1, sort_keys=True) + "\n")


def _skip_summary(skipped: Mapping[str, int]) -> str:
    return ", ".join(
        f"{count} {reason}" for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1])
    )


# ---------------------------------------------------------------------------
# status line for solve


def cache_status(today: dt.date | None = None) -> str:
    """One line saying which prices ``solve`` uses and how old they are.

    e.g. ``prices: refreshed 2026-11-20 (6 days ago) from azure, skypilot:aws; bundled
    catalog for the rest (as_of 2024-12-01 … 2026-06-01)``. Cheap (csv + json only) and
    never raises: it is a note, not a check — ``load_catalog`` does the validation.
    """
    today = today or dt.date.today()
    try:
        bundled_dates = sorted(d for d in (r.get("as_of", "") for r in _bundled_rows()) if d)
        bundled = (
            f"bundled catalog (as_of {bundled_dates[0]} … {bundled_dates[-1]})"
            if bundled_dates
            else "bundled catalog"
        )
        cache_file = paths.refreshed_offers_path()
        if not cache_file.exists():
            return f"prices: {bundled}; run `flopopt catalog refresh` for current prices"
        state = _read_state(cache_file)
        groups: dict[str, list[str]] = {}
        if state:
            for name, info in sorted(state["feeds"].items()):
                when = (info or {}).get("as_of")
                if when:
                    groups.setdefault(str(when), []).append(name)
        if not groups:
            cached = sorted({r.get("as_of", "") for r in _read_csv_rows(cache_file)} - {""})
            if not cached:
                return f"prices: {bundled}"
            return (
                f"prices: refreshed cache (as_of {cached[0]} … {cached[-1]}); "
                f"{bundled} for the rest"
            )
        parts = []
        for when in sorted(groups, reverse=True):
            age = (today - dt.date.fromisoformat(when)).days
            age_text = "today" if age == 0 else ("1 day ago" if age == 1 else f"{age} days ago")
            parts.append(f"{when} ({age_text}) from {', '.join(groups[when])}")
        return f"prices: refreshed {'; '.join(parts)}; {bundled} for the rest"
    except Exception:  # noqa: BLE001 - a status note must never break solve
        return "prices: bundled catalog (refresh cache unreadable)"
