"""Load, validate and merge the catalogs into one ``Catalog``.

Layers, later ones overriding earlier rows with the same id (offer_id, gpu, model
name, or scenario/workload/gpu for attenuation):

1. the CSVs bundled with flopopt,
2. the last good ``flopopt catalog refresh`` (offers only, from the cache dir),
3. the user's catalog folder (``flopopt catalog import`` writes there),
4. ``--catalog DIR``.

A refresh therefore never overwrites what the user imported or passed explicitly.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..optimizer.economics import HOURS_PER_YEAR
from ..optimizer.errors import CatalogError, Problem, ProblemList
from ..optimizer.vocabulary import SCENARIOS
from . import schema
from .paths import BUNDLED_DIR, CATALOG_FILES, refreshed_offers_path, user_catalog_dir

STALE_AFTER_DAYS = 180


@dataclass(frozen=True)
class Catalog:
    """The merged catalogs as DataFrames; ``origin_file``/``origin_row`` say where each row came from."""

    gpus: pd.DataFrame
    offers: pd.DataFrame
    attenuation: pd.DataFrame
    models: pd.DataFrame
    layers: tuple[str, ...] = field(default_factory=tuple)
    precision: pd.DataFrame = field(default_factory=pd.DataFrame)    # precision.csv: realised speed-ups
    efficiency: pd.DataFrame = field(default_factory=pd.DataFrame)   # efficiency.csv: a calibrated fit

    def gpu(self, name: str) -> dict[str, Any]:
        return dict(self.gpus.loc[name])

    def model_table(self) -> dict[str, dict[str, Any]]:
        """Models keyed by lower-case name, for ``workload.model`` look-ups (built once per
        catalog: a portfolio looks models up for every job)."""
        return dict(self._models_by_name)

    @cached_property
    def _models_by_name(self) -> dict[str, dict[str, Any]]:
        return {str(r["name"]).lower(): r for r in self.models.to_dict("records")}

    def offer(self, offer_id: str) -> dict[str, Any]:
        match = self.offers[self.offers["offer_id"] == offer_id]
        if match.empty:
            import difflib

            close = difflib.get_close_matches(offer_id, self.offers["offer_id"].tolist(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CatalogError.at("offers.csv", "offer_id", f"no offer {offer_id!r}{hint}")
        return dict(match.iloc[0])

    def oldest_price_date(self) -> str | None:
        dates = self.offers["as_of"][self.offers["as_of"] != ""]
        return str(dates.min()) if not dates.empty else None

    def staleness_warning(self, today: dt.date | None = None) -> str | None:
        """One line when prices are older than 180 days: stale prices mislead decisions."""
        oldest = self.oldest_price_date()
        if oldest is None:
            return None
        today = today or dt.date.today()
        age = (today - dt.date.fromisoformat(oldest)).days
        if age <= STALE_AFTER_DAYS:
            return None
        count = int((pd.to_datetime(self.offers["as_of"]).dt.date
                     < today - dt.timedelta(days=STALE_AFTER_DAYS)).sum())
        return (f"warning: {count} offer price(s) are older than {STALE_AFTER_DAYS} days "
                f"(oldest as_of {oldest}, {age} days); run `flopopt catalog refresh`")


QUOTAS_FILE = BUNDLED_DIR / "quotas.csv"
CAPACITY_KINDS = ("on_demand", "spot")


def apply_capacity(offers: pd.DataFrame) -> pd.DataFrame:
    """Give every on-demand and spot offer a capacity, and say where it comes from.

    No rental is unlimited (a plan once rented 512 eight-GPU nodes on demand). An offer's
    own ``max_instances`` wins (``capacity_source`` "offer row"); else ``quotas.csv``
    gives a GPU cap per (provider, kind) — ``*`` for any provider — turned into whole
    instances, with its basis (each marked an assumption where it is one).
    ``typical_quota_gpus`` is the default quota a new account typically has: a plan
    above it works only after a quota increase, which the plan line says.
    """
    quotas = pd.read_csv(QUOTAS_FILE, dtype=str, keep_default_na=False)
    table = {(r["provider"], r["kind"]): r for r in quotas.to_dict("records")}
    out = offers.copy()
    sources, typical, caps = [], [], []
    for provider, kind, per_instance, cap in zip(out["provider"], out["kind"], out["gpus_per_instance"],
                                                 out["max_instances"]):
        row = table.get((str(provider), str(kind))) or table.get(("*", str(kind)))
        if kind not in CAPACITY_KINDS or row is None:
            sources.append("offer row" if cap == cap else "")
            typical.append(float("nan"))
            caps.append(cap)
            continue
        typical.append(float(row["typical_quota_gpus"]) if row["typical_quota_gpus"] else float("nan"))
        if cap == cap:  # not NaN: the row's own number
            sources.append("offer row")
            caps.append(cap)
        else:
            per = max(int(per_instance), 1) if per_instance == per_instance else 1
            caps.append(float(max(1, int(float(row["max_gpus"]) // per))))
            sources.append(f"quotas.csv ({row['provider']} {kind}: {row['max_gpus']} GPUs; {row['basis']})")
    out["max_instances"] = caps
    out["capacity_source"] = sources
    out["typical_quota_gpus"] = typical
    return out


def hourly_cost_usd(offers: pd.DataFrame) -> pd.Series:
    """Cost of one instance-hour for every offer kind.

    Rentals cost their price. Owned and edge hardware cost the hourly fee plus
    capex / (amortisation years × 8,760 h × utilisation) — the machine is paid for
    over the hours it is actually busy — plus power × electricity. Capex marked
    ``sunk`` is already spent, so its marginal cost is zero.
    """
    price = offers["price_per_hour_usd"].fillna(0.0)
    capex_kind = offers["kind"].isin(schema.CAPEX_KINDS)
    utilization = offers["utilization"].fillna(1.0)
    amortized = offers["capex_usd"].fillna(0.0) / (
        offers["amortization_years"].fillna(1.0) * HOURS_PER_YEAR * utilization
    )
    amortized = amortized.where(capex_kind & ~offers["sunk"].astype(bool), 0.0)
    power = (offers["power_kw"].fillna(0.0) * offers["electricity_usd_per_kwh"].fillna(0.0)).where(
        capex_kind, 0.0
    )
    return price + amortized + power


def price_per_gpu_hour_usd(offers: pd.DataFrame) -> pd.Series:
    return hourly_cost_usd(offers) / offers["gpus_per_instance"]


def _load_layer(directory: Path, problems: ProblemList, only: tuple[str, ...] = CATALOG_FILES,
                today: dt.date | None = None) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    for name in only:
        path = directory / name
        if not path.exists():
            continue
        if directory == _PACKAGE_DIR:
            table, found = _bundled_table(name, today or dt.date.today())
            tables[name] = table.copy()
            problems.items.extend(found)
        else:
            tables[name] = read_table(path, name, problems, today)
    return tables


_PACKAGE_DIR = BUNDLED_DIR  # (tests may point BUNDLED_DIR elsewhere; only the real one is cached)


@functools.lru_cache(maxsize=None)
def _bundled_table(name: str, today: dt.date) -> tuple[pd.DataFrame, tuple[Problem, ...]]:
    """A bundled CSV, parsed once per process: it ships with flopopt and never changes under
    it, and `catalog import` and `calibrate` load the catalog twice (once to validate the merge)."""
    problems = ProblemList()
    table = read_table(_PACKAGE_DIR / name, name, problems, today)
    return table, tuple(problems.items)


def read_table(path: Path, name: str, problems: ProblemList,
               today: dt.date | None = None, kind: str | None = None) -> pd.DataFrame:
    """Read and type one catalog CSV, recording every defect in ``problems``.

    ``kind`` names the size cap when the file is not the catalog file itself (e.g. "quotes").
    """
    raw = schema.read_raw(str(path), problems, kind or name)
    columns = schema.SCHEMAS[name]
    if raw is None:
        raw = pd.DataFrame(columns=[c.name for c in columns])
    table = schema.coerce(raw, columns, str(path), problems, today)
    schema.check_unique(table, schema.KEYS[name], str(path), problems)
    table["origin_file"] = str(path)
    table["origin_row"] = table.index + 2
    return table


def _merge(base: pd.DataFrame | None, layer: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    if base is None or base.empty:
        return layer.reset_index(drop=True)
    combined = pd.concat([base, layer], ignore_index=True)
    return combined.drop_duplicates(subset=list(key), keep="last").reset_index(drop=True)


def cross_check(cat: dict[str, pd.DataFrame], problems: ProblemList) -> None:
    """Rules that span columns or files."""
    gpus, offers, att = cat["gpus.csv"], cat["offers.csv"], cat["attenuation.csv"]
    known = set(gpus["gpu"])

    def add(table: pd.DataFrame, idx: Any, column: str, message: str) -> None:
        problems.add(str(table.at[idx, "origin_file"]), column, message,
                     row=int(table.at[idx, "origin_row"]))

    import difflib

    for idx in offers.index[~offers["gpu"].isin(known) & (offers["gpu"] != "")]:
        name = str(offers.at[idx, "gpu"])
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        add(offers, idx, "gpu", f"unknown gpu {name!r} (not in gpus.csv){hint}")
    for idx in att.index[(att["gpu"] != "") & ~att["gpu"].isin(known)]:
        add(att, idx, "gpu", f"unknown gpu {att.at[idx, 'gpu']!r} (not in gpus.csv)")
    for idx in att.index[att["low"] > att["high"]]:
        add(att, idx, "low", f"low {att.at[idx, 'low']:g} is above high {att.at[idx, 'high']:g}")
    rental = offers["kind"].isin(schema.RENTAL_KINDS)
    # Only an exact zero: negative and non-numeric prices were already reported cell by cell.
    for idx in offers.index[rental & (offers["price_per_hour_usd"] == 0)]:
        add(offers, idx, "price_per_hour_usd",
            f"must be > 0 for a {offers.at[idx, 'kind']} offer (got {offers.at[idx, 'price_per_hour_usd']:g})")
    capex = offers["kind"].isin(schema.CAPEX_KINDS)
    for column in ("capex_usd", "amortization_years", "power_kw", "electricity_usd_per_kwh"):
        for idx in offers.index[capex & offers[column].isna()]:
            add(offers, idx, column, f"required for {offers.at[idx, 'kind']} hardware "
                                     "(amortised capex + power is its hourly cost)")
    peaks = gpus[list(schema.PEAK_COLUMNS)]
    for idx in gpus.index[peaks.isna().all(axis=1)]:
        add(gpus, idx, "peak_tflops_fp32", "a GPU needs at least one peak_tflops_* value")
    scenarios_any = set(att.loc[att["workload"] == "any", "scenario"])
    missing = [s for s in SCENARIOS if s not in scenarios_any]
    if missing and not att.empty:
        problems.add(str(att["origin_file"].iloc[-1]), "scenario",
                     f"no (scenario, any) row for {', '.join(missing)}; every scenario needs a default")


def load_catalog(
    catalog_dir: str | Path | None = None,
    *,
    use_user_dir: bool = True,
    use_cache: bool = True,
    use_bundled: bool = True,
    today: dt.date | None = None,
) -> Catalog:
    """Load bundled + refreshed + user + ``catalog_dir`` layers; raise CatalogError listing every defect.

    ``use_bundled=False`` (with ``catalog_dir``) loads a self-contained catalog, e.g. a test fixture.
    """
    problems = ProblemList()
    layers: list[tuple[str, Path, tuple[str, ...]]] = []
    if use_bundled:
        layers.append(("bundled", BUNDLED_DIR, CATALOG_FILES))
    if use_cache:
        refreshed = refreshed_offers_path()
        if refreshed.exists():
            layers.append((f"refreshed {refreshed}", refreshed.parent, (refreshed.name,)))
    if use_user_dir:
        user = user_catalog_dir()
        if user.is_dir():
            layers.append((f"user {user}", user, CATALOG_FILES))
    if catalog_dir is not None:
        directory = Path(catalog_dir)
        if not directory.is_dir():
            raise CatalogError.at(str(directory), "", "catalog folder not found (give a folder holding "
                                  "gpus.csv / offers.csv / attenuation.csv / models.csv)")
        if not any((directory / name).exists() for name in CATALOG_FILES):
            raise CatalogError.at(str(directory), "", "holds none of gpus.csv, offers.csv, attenuation.csv, "
                                  "models.csv — nothing to load (a typo in the folder name?)")
        layers.append((str(directory), directory, CATALOG_FILES))

    merged: dict[str, pd.DataFrame | None] = {name: None for name in CATALOG_FILES}
    used: list[str] = []
    for label, directory, files in layers:
        if files == CATALOG_FILES:
            tables = _load_layer(directory, problems, files, today)
        else:  # the refresh cache: a single offers file under its own name
            tables = {"offers.csv": read_table(directory / files[0], "offers.csv", problems, today)}
        if tables:
            used.append(label)
        for name, table in tables.items():
            merged[name] = _merge(merged[name], table, schema.KEYS[name])
    final = {name: (t if t is not None else pd.DataFrame()) for name, t in merged.items()}
    cross_check(final, problems)
    problems.raise_if_any(CatalogError)
    gpus = final["gpus.csv"].set_index("gpu", drop=False)
    offers = apply_capacity(final["offers.csv"]) if use_bundled else final["offers.csv"]
    return Catalog(gpus=gpus, offers=offers, attenuation=final["attenuation.csv"],
                   models=final["models.csv"], layers=tuple(used), precision=final["precision.csv"],
                   efficiency=final["efficiency.csv"])
