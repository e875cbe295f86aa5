"""The refresh cache on disk: the offers file, its sidecar state, the lock, and the status line.

The cache is layer 2 of ``loader.load_catalog``: an offers.csv under the cache dir
(``paths.refreshed_offers_path()``) plus a JSON sidecar saying which feed owns which offer_id
and when it was fetched. Both are written atomically, CSV first, so a crash in between loses
only ownership hints (the sidecar records the CSV's hash and is ignored when it does not
match). Only csv and json are imported here, so ``cache_status()`` stays cheap for ``solve``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..optimizer import fileio
from . import paths
from .refresh_result import FeedOutcome, FeedStatus
from .sources.base import offer_columns

__all__ = [
    "STATE_VERSION",
    "bundled_rows",
    "cache_status",
    "csv_text",
    "known_gpu_ids",
    "lock_path",
    "read_csv_rows",
    "read_state",
    "state_path",
    "write_cache",
]

STATE_VERSION = 1


def state_path() -> Path:
    """Sidecar of the refresh cache: which feed owns which offer_id, and when it was fetched."""
    return paths.cache_dir() / "offers.refreshed.state.json"


def lock_path() -> Path:
    """The file lock that keeps two refreshes from merging into the cache at once."""
    return paths.cache_dir() / "refresh.lock"


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows as text cells; none when it is missing or unreadable (a cache is optional)."""
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


def read_state(cache_file: Path) -> dict[str, Any] | None:
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


def csv_text(rows: Iterable[Mapping[str, str]]) -> str:
    """``rows`` as the text of an offers.csv file, in schema column order."""
    from . import schema

    # Text cells that start a spreadsheet formula (=cmd|...) are neutralised (OWASP CSV injection).
    return fileio.csv_text(offer_columns(), rows, schema.text_columns("offers.csv"))


def bundled_rows() -> list[dict[str, str]]:
    """The bundled offers.csv (layer 1): what refreshed rows overlay and adopt ids from."""
    return read_csv_rows(paths.BUNDLED_DIR / "offers.csv")


def known_gpu_ids() -> set[str]:
    """GPU ids a refreshed row may name: bundled gpus.csv (the mapping tables target only these)."""
    return {r.get("gpu", "") for r in read_csv_rows(paths.BUNDLED_DIR / "gpus.csv")} - {""}


def write_cache(
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


def cache_status(today: dt.date | None = None) -> str:
    """One line saying which prices ``solve`` uses and how old they are.

    e.g. ``prices: refreshed 2026-11-20 (6 days ago) from azure, skypilot:aws; bundled
    catalog for the rest (as_of 2024-12-01 … 2026-06-01)``. Cheap (csv + json only) and
    never raises: it is a note, not a check — ``load_catalog`` does the validation.
    """
    today = today or dt.date.today()
    try:
        bundled_dates = sorted(d for d in (r.get("as_of", "") for r in bundled_rows()) if d)
        bundled = (
            f"bundled catalog (as_of {bundled_dates[0]} … {bundled_dates[-1]})"
            if bundled_dates
            else "bundled catalog"
        )
        cache_file = paths.refreshed_offers_path()
        if not cache_file.exists():
            return f"prices: {bundled}; run `flopopt catalog refresh` for current prices"
        state = read_state(cache_file)
        groups: dict[str, list[str]] = {}
        if state:
            for name, info in sorted(state["feeds"].items()):
                when = (info or {}).get("as_of")
                if when:
                    groups.setdefault(str(when), []).append(name)
        if not groups:
            cached = sorted({r.get("as_of", "") for r in read_csv_rows(cache_file)} - {""})
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
