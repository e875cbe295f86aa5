"""Where catalogs live: bundled with the package, the user's data dir, the refresh cache.

``FLOPOPT_USER_DIR`` and ``FLOPOPT_CACHE_DIR`` override the platformdirs locations so
tests, CI and shared machines can point flopopt elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file.

    A symlink is followed (its target is replaced, the link kept); a device or FIFO such as
    /dev/null is written to directly — renaming over it would replace the device node.
    """
    import stat
    import tempfile

    path = Path(os.path.realpath(path))
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        with open(path, "wb") as special:
            special.write(data)
        return

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (or keep the old one's)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
