"""The feeds a refresh can fetch, in precedence order, and ``--source`` selection.

A *source* is a family of feeds (``skypilot`` has one feed per cloud); each feed is one URL
and the runner of its source module. The order here is the precedence rule of ``refresh``:
when two feeds produce the same offer_id, the later one wins — direct APIs over the SkyPilot
mirror.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..fetch import DEFAULT_URLS, SOURCES, Fetcher, RefreshError, RefreshSettings
from .azure import fetch_azure
from .base import Adapted, FeedRunner
from .skypilot import fetch_skypilot
from .vast import fetch_vast

__all__ = ["Feed", "feeds_for", "select_feeds"]


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

