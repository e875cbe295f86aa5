"""Where catalogs live: bundled with the package, the user's data dir, the refresh cache.

``FLOPOPT_USER_DIR`` and ``FLOPOPT_CACHE_DIR`` override the platformdirs locations so
tests, CI and shared machines can point flopopt elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..optimizer import fileio

BUNDLED_DIR = Path(__file__).resolve().parent
CATALOG_FILES = ("gpus.csv", "offers.csv", "attenuation.csv", "models.csv", "precision.csv", "efficiency.csv")


def user_catalog_dir() -> Path:
    env = os.environ.get("FLOPOPT_USER_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("flopopt", appauthor=False)) / "catalogs"


def cache_dir() -> Path:
    env = os.environ.get("FLOPOPT_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("flopopt", appauthor=False))


def refreshed_offers_path() -> Path:
    """The last good ``catalog refresh`` result (an offers.csv), if any."""
    return cache_dir() / "offers.refreshed.csv"


# Kept for callers elsewhere; every write goes through optimizer/fileio.py (temp file,
# fsync, rename, folder fsync, WriteError on a disk fault).
atomic_write_text = fileio.write_text
atomic_write_bytes = fileio.write_bytes
