"""Live prices: fetch public price sources and cache them as an offers.csv layer.

A bundled price list goes stale in weeks, so ``flopopt catalog refresh`` pulls current
prices over plain HTTP (no account, no API key) and stores them where the loader picks
them up (``paths.refreshed_offers_path()``, layer 2 of ``loader.load_catalog``).

The feeds and their formats are in ``sources`` (one module per source; a *source* is a
family of feeds, ``--source skypilot`` selects all its clouds; ``sources.registry`` lists
them); timeouts, retries and the settings' environment variables are in ``fetch``. This
module runs the pipeline, in the order data flows, each stage in its own module::

    settings ─► fetch (timeouts, retry/backoff on 429/5xx, page limit)      [fetch]
             ─► adapt (the source's format → offers.csv rows; skips counted
                by reason)                                                   [sources.*]
             ─► validate each feed's rows (schema.coerce, known GPUs, price > 0)
                and the price guards                                         [refresh_checks]
             ─► merge with the previous cache: a feed that failed keeps its previous
                rows; with ``--region`` only that region's rows of a feed are replaced
                                                                             [refresh_merge]
             ─► validate the merged file exactly as ``solve`` would (load_catalog)
                                                                             [refresh_checks]
             ─► write atomically (temp file + rename) under a file lock, then the
                sidecar state (which feed owns which offer, when it was fetched)
                                                                             [refresh_cache]
             ─► diff against what it replaced (added / removed / price moves, ages)
                                                                             [refresh_merge]

What it returns is typed in ``refresh_result``.

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
``requests`` and ``pandas`` are imported inside the functions that need them, so importing
the refresh modules stays cheap (``refresh_cache.cache_status()`` runs on every ``solve``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..optimizer import fileio
from . import paths
from .fetch import Fetcher, FetchError, RefreshError, RefreshSettings, short_url
from .guards import GuardSettings
from .refresh_cache import (
    bundled_rows,
    csv_text,
    known_gpu_ids,
    lock_path,
    read_csv_rows,
    read_state,
    write_cache,
)
from .refresh_checks import guard_feeds, valid_previous_rows, validate_cache_text
from .refresh_merge import adopt_bundled_ids, compute_diff, effective_prices, merge_rows
from .refresh_result import FeedOutcome, FeedStatus, RefreshProgress, RefreshResult, failed_outcome
from .sources.registry import Feed, feeds_for, select_feeds
from .sources.vast import VAST_REGION

__all__ = ["refresh"]


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

    state = read_state(cache_file) if cache_file.exists() else None
    state_feeds: dict[str, Any] = state["feeds"] if state else {}
    known_gpus = known_gpu_ids()
    bundled = bundled_rows()
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

    old_rows = read_csv_rows(cache_file) if cache_file.exists() else []
    kept_candidates = valid_previous_rows(old_rows, known_gpus, today)
    outcomes, held = guard_feeds(
        outcomes,
        known_gpus,
        today,
        reference=[*bundled, *kept_candidates],
        previous=effective_prices(bundled, kept_candidates),
        settings=guard.settings,
        accept_changes=guard.accept_changes,
    )
    merged, owners = merge_rows(kept_candidates, state_feeds, outcomes, region)
    new_rows = [merged[k] for k in sorted(merged)]
    user_ids = {
        r.get("offer_id", "") for r in read_csv_rows(paths.user_catalog_dir() / "offers.csv")
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
    text = csv_text(new_rows)
    validate_cache_text(text, known_gpus, today)
    write_cache(cache_file, text, owners, state_feeds, outcomes, today)
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
        adopt_bundled_ids(adapted.rows, bundled)
    except FetchError as exc:
        return failed_outcome(feed.name, feed.url, str(exc), previous)
    except Exception as exc:  # noqa: BLE001 - one feed's surprise must not sink the others
        reason = f"could not read the response ({type(exc).__name__}: {exc})"
        return failed_outcome(feed.name, feed.url, reason, previous)
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


def _skip_summary(skipped: Mapping[str, int]) -> str:
    return ", ".join(
        f"{count} {reason}" for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1])
    )
