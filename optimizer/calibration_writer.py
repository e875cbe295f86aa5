"""Writing a calibration: attenuation.csv (and efficiency.csv) rows, by default into the user catalog.

``write_calibration`` writes attenuation.csv rows (source "calibrated from HISTORY.csv,
N runs, DATE"), by default merged into the user catalog folder, which layers above the
bundled catalog: a calibrated (scenario, workload[, gpu]) row replaces the bundled row
with the same key for every later ``solve`` ("a calibration file's rows come first").

Writing is its own step so that ``calibrate`` stays a pure fit with no side effects: the CLI
skips it under ``--dry-run`` and passes ``--rows-to FILE`` as ``path``.
"""

from __future__ import annotations

from pathlib import Path

from . import fileio
from .calibration import Calibration
from .errors import CatalogError, InputError, Problem

__all__ = ["calibration_csv", "default_calibration_path", "write_calibration"]


def calibration_csv(cal: Calibration, table: str = "attenuation.csv") -> str:
    """The calibrated rows as attenuation.csv (or efficiency.csv) text (six significant digits)."""
    from ..catalogs.schema import SCHEMAS, text_columns

    rows = cal.rows() if table == "attenuation.csv" else cal.efficiency_rows()
    cells = [{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
    return fileio.csv_text([c.name for c in SCHEMAS[table]], cells, text_columns(table))


def default_calibration_path() -> Path:
    from ..catalogs.paths import user_catalog_dir

    return user_catalog_dir() / "attenuation.csv"


def write_calibration(cal: Calibration, path: str | Path | None = None) -> Path:
    """Write the calibrated rows; returns where.

    Without ``path``: merged into the user catalog folder's attenuation.csv (existing user
    rows kept, rows with the same scenario/workload/gpu replaced), validated together with
    the rest of the catalog first, then written atomically — so every later ``solve`` uses
    them above the bundled rows. With ``path``: exactly the calibrated rows, atomically, for
    ``--catalog DIR`` or ``flopopt catalog import``.
    """
    if not cal.groups:
        raise InputError.at(cal.history_file, "", "nothing to write: no run could be fitted")
    text = calibration_csv(cal)
    if path is not None:
        target = Path(path)
        if target.is_dir():
            raise InputError.at(str(target), "", "is a directory; give a file name such as attenuation.csv")
        fileio.write_text(target, text, report=True)  # never over the history file it came from
        if cal.models:  # the covariate fit, beside the rows, for `--catalog DIR`
            fileio.write_text(target.with_name("efficiency.csv"), calibration_csv(cal, "efficiency.csv"),
                              report=True)
        return target
    from ..catalogs.manage import import_file

    with fileio.scratch_folder() as scratch:
        staged = scratch / "attenuation.csv"
        staged.write_text(text, encoding="utf-8")
        try:
            if cal.models:  # the covariate fit travels next to the rows, in efficiency.csv
                fitted = scratch / "efficiency.csv"
                fitted.write_text(calibration_csv(cal, "efficiency.csv"), encoding="utf-8")
                import_file(fitted)
            report = import_file(staged)
        except CatalogError as exc:
            # e.g. a GPU defined only in a --catalog folder: the user folder cannot refer to it.
            raise CatalogError([Problem(
                file=str(default_calibration_path()), field="",
                message=("cannot merge the calibrated rows into the user catalog: "
                         + "; ".join(p.message for p in exc.problems)
                         + " — write them elsewhere with --output FILE.csv and pass --catalog"))]) from None
    return report.target
