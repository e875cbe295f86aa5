"""Builders for tests: repository paths, catalog rows and tiny self-contained catalogs.

Plain constants and functions, imported as a normal module from any test folder::

    from builders import REPO, gpu_row, offer_row

``pythonpath = ["tests"]`` in pyproject.toml's ``[tool.pytest.ini_options]`` puts this folder on
``sys.path``, so the import works whichever test folder a module sits in and however pytest is
started (``python -m pytest`` from the repository root, as ``.ci/run`` does, or a single file).
Fixtures and hooks stay in ``conftest.py``; a fixture that needs a builder wraps it there
(``make_catalog`` wraps :func:`catalog_factory`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from flopopt.catalogs.schema import SCHEMAS

if TYPE_CHECKING:
    from flopopt.catalogs.loader import Catalog

REPO = Path(__file__).resolve().parents[1]
"""The repository root (= the ``flopopt`` package folder): examples/, docs/, catalogs/, README.md."""
EXAMPLES = REPO / "examples"
FIXTURES = REPO / "tests" / "fixtures"
"""Checked-in input files of the tests: bad_jobs/, history/, real-samples/, refresh/, seed_catalog/."""

SEED_ATTENUATION = [
    # The envelope method's scenario table (shared/seed): low, high, uncertainty.
    {"scenario": "lab", "workload": "any", "gpu": "", "low": 0.7, "high": 0.8, "uncertainty": 0.10},
    {"scenario": "cloud", "workload": "any", "gpu": "", "low": 0.3, "high": 0.5, "uncertainty": 0.20},
    {"scenario": "edge", "workload": "any", "gpu": "", "low": 0.1, "high": 0.3, "uncertainty": 0.30},
    {"scenario": "cluster", "workload": "any", "gpu": "", "low": 0.2, "high": 0.4, "uncertainty": 0.25},
]

STOPPED_AS = {"highs": "interrupted", "cbc": "terminated_by_limit"}
"""What a deterministic early stop (conftest's ``stop_early`` fixture) is reported as: HiGHS's
callback interrupt, CBC's node limit."""


def gpu_row(name: str, **kw: Any) -> dict[str, Any]:
    """A valid ``gpus.csv`` row for GPU ``name`` (80 GB, 100 bf16 TFLOP/s); ``kw`` overrides columns."""
    row = {"gpu": name, "vendor": "test", "memory_gb": 80, "mem_bandwidth_gbs": 2000, "tdp_w": 400,
           "peak_tflops_fp32": 20, "peak_tflops_bf16": 100, "source": "test fixture", "as_of": "2026-01-01"}
    row.update(kw)
    return row


def offer_row(offer_id: str, gpu: str, price: float, **kw: Any) -> dict[str, Any]:
    """A valid ``offers.csv`` row: one on-demand ``gpu`` per instance at ``price`` $/h, no billing
    increment or minimum; ``kw`` overrides columns."""
    row = {"offer_id": offer_id, "provider": "testcloud", "kind": "on_demand", "region": "r1",
           "instance_type": offer_id, "gpu": gpu, "gpus_per_instance": 1, "price_per_hour_usd": price,
           "billing_increment_hours": 0, "min_hours": 0, "max_instances": "", "interconnect": "nvlink",
           "source": "test fixture", "as_of": "2026-01-01"}
    row.update(kw)
    return row


def write_csv(path: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as catalog file ``name`` (e.g. ``"offers.csv"``): that schema's columns in
    order, missing cells empty."""
    columns = [c.name for c in SCHEMAS[name]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def build_catalog(folder: Path, gpus: list[dict[str, Any]], offers: list[dict[str, Any]],
                  attenuation: list[dict[str, Any]] | None = None) -> Catalog:
    """Write a catalog folder (gpus, offers, attenuation — :data:`SEED_ATTENUATION` unless given —
    and an empty models.csv) into ``folder``, which must not exist, and load it alone: no bundled
    rows, no user dir, no price cache."""
    from flopopt.catalogs.loader import load_catalog

    folder.mkdir()
    write_csv(folder / "gpus.csv", "gpus.csv", gpus)
    write_csv(folder / "offers.csv", "offers.csv", offers)
    att = [dict(r, bottleneck="test", source="seed") for r in (attenuation or SEED_ATTENUATION)]
    write_csv(folder / "attenuation.csv", "attenuation.csv", att)
    write_csv(folder / "models.csv", "models.csv", [])
    return load_catalog(folder, use_bundled=False, use_user_dir=False, use_cache=False)


CatalogFactory = Callable[..., Any]


def catalog_factory(root: Path) -> CatalogFactory:
    """``build(gpus, offers, attenuation=None)``: :func:`build_catalog` into a fresh
    ``root/catalogN`` on each call (hypothesis examples share one ``tmp_path``)."""
    counter = {"n": 0}

    def build(gpus: list[dict[str, Any]], offers: list[dict[str, Any]],
              attenuation: list[dict[str, Any]] | None = None) -> Any:
        counter["n"] += 1
        return build_catalog(root / f"catalog{counter['n']}", gpus, offers, attenuation)

    return build


class Sleeps(list[float]):
    """Stands in for time.sleep: records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
