"""What a refresh reports: per-feed outcomes, the price diff, progress ticks, the result.

Typed records only, so the library computes and the CLI formats (``cli/refresh_cmd.py``
renders them; ``RefreshResult`` is public in ``flopopt.__all__``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..optimizer.vocabulary import Status
from .guards import HeldRow

__all__ = [
    "FeedOutcome",
    "FeedStatus",
    "OfferChange",
    "RefreshDiff",
    "RefreshProgress",
    "RefreshResult",
    "failed_outcome",
]


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


def failed_outcome(name: str, url: str, message: str, previous_refresh: str | None) -> FeedOutcome:
    """A feed that failed: no rows, a one-line reason; its previous rows are kept."""
    return FeedOutcome(
        name, FeedStatus.error, url, message=message, previous_refresh=previous_refresh
    )
