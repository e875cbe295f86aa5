"""Fixtures and hooks only: an isolated user/cache dir for every test, a bare environment, a catalog builder.

Helpers that are not fixtures live in ``builders.py`` (``from builders import gpu_row``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builders import CatalogFactory, catalog_factory


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real user catalog or price cache from a test, and never take
    the text width from the caller's terminal: without ``COLUMNS`` the CLI prints 100 columns
    to a pipe (cli/render.py ``DEFAULT_WIDTH``). pytest-xdist workers run with ``COLUMNS=80``;
    a test that wants a width passes it (``runner.invoke(..., env={"COLUMNS": "80"})``)."""
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "_user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "_cache"))
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``FLOPOPT_*`` setting from the caller's shell (refresh URLs, retries, caps, timeouts):
    only the user and cache dirs, at ``tmp_path/user`` and ``tmp_path/cache``."""
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    for name in list(os.environ):
        if name.startswith("FLOPOPT_") and name not in ("FLOPOPT_CACHE_DIR", "FLOPOPT_USER_DIR"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_catalog(tmp_path: Path) -> CatalogFactory:
    """Build a self-contained catalog (no bundled rows) from gpu and offer rows."""
    return catalog_factory(tmp_path)
