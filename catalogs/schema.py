"""Column schemas of the catalog CSVs, and the one validator that checks any of them.

Every catalog number is a purchase-decision input, so each cell is checked and
each defect is reported with file, row (the CSV line number, header = 1), column,
value and the rule it breaks — all of them at once, not the first one only.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..optimizer import fileio
from ..optimizer.errors import InputError, ProblemList
from ..optimizer.vocabulary import INTERCONNECTS, OFFER_KINDS, PRECISIONS, SCENARIOS

WORKLOADS = ("any", "transformer_training", "transformer_inference", "cnn_training",
             "cnn_inference", "custom")
RENTAL_KINDS = ("on_demand", "spot", "reserved", "cluster_quote")
CAPEX_KINDS = ("owned", "edge")
PRICE_QUALITIES = ("primary", "estimate")


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["str", "float", "int", "bool", "date"] = "str"
    required: bool = True
    choices: tuple[str, ...] | None = None
    low: float | None = None        # inclusive lower bound
    above: float | None = None      # exclusive lower bound
    high: float | None = None       # inclusive upper bound
    ident: bool = False             # an id or name: checked against fileio.ID_PATTERN


PEAK_COLUMNS = tuple(f"peak_tflops_{p}" for p in PRECISIONS)

GPUS = (
    Column("gpu", ident=True),
    Column("vendor"),
    # Chip generation (volta, ampere, hopper, tpu-v4, …): a covariate of the calibrated
    # efficiency fit, since published runs on one generation share a software stack.
    Column("architecture", required=False),
    Column("memory_gb", "float", above=0),
    Column("mem_bandwidth_gbs", "float", above=0),
    Column("tdp_w", "float", required=False, above=0),
    *(Column(c, "float", required=False, above=0) for c in PEAK_COLUMNS),
    Column("source"),
    Column("as_of", "date"),
)

OFFERS = (
    Column("offer_id", ident=True),
    Column("provider", ident=True),
    Column("kind", choices=OFFER_KINDS),
    Column("region", required=False),
    Column("instance_type", required=False),
    Column("gpu", ident=True),
    Column("gpus_per_instance", "int", low=1),
    Column("price_per_hour_usd", "float", low=0),
    Column("billing_increment_hours", "float", required=False, low=0),
    Column("min_hours", "float", required=False, low=0),
    Column("max_instances", "int", required=False, low=1),
    Column("interconnect", choices=INTERCONNECTS),
    Column("interruption_overhead", "float", required=False, low=0, high=1),
    Column("capex_usd", "float", required=False, above=0),
    Column("amortization_years", "float", required=False, above=0),
    Column("utilization", "float", required=False, above=0, high=1),
    Column("power_kw", "float", required=False, low=0),
    Column("electricity_usd_per_kwh", "float", required=False, low=0),
    Column("sunk", "bool", required=False),
    Column("source"),
    Column("as_of", "date"),          # the source's own date for the price
    # primary: the provider's own price page or API, or SkyPilot's catalog at a named
    # commit; estimate: anything else, with its basis in ``source``. Empty = primary.
    Column("price_quality", required=False, choices=PRICE_QUALITIES),
    Column("fetched_at", "date", required=False),  # when flopopt read it (refreshed rows)
)

ATTENUATION = (
    # "any": a row for every scenario — what `flopopt calibrate` writes, since measured runs
    # describe the workload on that GPU whatever environment the optimiser later picks.
    Column("scenario", choices=(*SCENARIOS, "any")),
    Column("workload", choices=WORKLOADS),
    Column("gpu", required=False, ident=True),
    Column("low", "float", above=0, high=1),
    Column("high", "float", above=0, high=1),
    Column("uncertainty", "float", low=0, high=1),
    # Where the figure was measured: throughput at n GPUs is rescaled by scale(n) / scale(ref_gpus),
    # so a number that already contains the loss of 2,048 GPUs is not charged it twice.
    # Empty = 1 (a single-GPU benchmark: every multi-GPU loss is applied on top).
    Column("ref_gpus", "int", required=False, low=1),
    # The point value (the median); empty = the middle of low–high.
    Column("median", "float", required=False, above=0, high=1),
    Column("bottleneck", required=False),
    Column("source"),
)

# Realised speed-up of a precision over the GPU's reference precision (bf16, else fp16, else
# fp32) for a workload — measured, never the datasheet ratio (fp8 is not 2× bf16 end to end).
PRECISION = (
    Column("workload", choices=WORKLOADS),
    Column("gpu", required=False),
    Column("precision", choices=PRECISIONS),
    Column("speedup", "float", above=0, high=4),
    Column("source"),
    Column("as_of", "date"),
)

# A calibrated efficiency model (written by `flopopt calibrate`): log efficiency at ref_gpus as a
# linear function of a few covariates. One row per (workload, term); see optimizer/efficiency_fit.py.
EFFICIENCY = (
    Column("workload", choices=WORKLOADS),
    Column("term"),
    Column("value", "float"),
    Column("source"),
    Column("as_of", "date"),
)

MODELS = (
    Column("name", ident=True),
    Column("kind", choices=("transformer", "cnn")),
    Column("params", "float", required=False, above=0),
    Column("active_params", "float", required=False, above=0),
    Column("layers", "int", required=False, low=1),
    Column("d_model", "int", required=False, low=1),
    Column("n_heads", "int", required=False, low=1),
    Column("n_kv_heads", "int", required=False, low=1),
    Column("seq_len", "int", required=False, low=1),
    Column("flops_per_sample", "float", required=False, above=0),
    Column("source"),
)

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "gpus.csv": GPUS,
    "offers.csv": OFFERS,
    "attenuation.csv": ATTENUATION,
    "models.csv": MODELS,
    "precision.csv": PRECISION,
    "efficiency.csv": EFFICIENCY,
}
KEYS: dict[str, tuple[str, ...]] = {
    "gpus.csv": ("gpu",),
    "offers.csv": ("offer_id",),
    "attenuation.csv": ("scenario", "workload", "gpu"),
    "models.csv": ("name",),
    "precision.csv": ("workload", "gpu", "precision"),
    "efficiency.csv": ("workload", "term"),
}

_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


HEADER_ROW = 1  # the header is line 1 of the file; problems with columns themselves point there


def _row(index: int) -> int:
    return index + 2  # header is line 1 of the file


def _record_lines(text: str) -> list[int]:
    """The CSV line on which each data record starts.

    pandas skips blank lines and lets a quoted cell span lines, so its row index
    alone would point at the wrong line of the file.
    """
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    end = 0
    for record in reader:
        start, end = end + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # a blank line, which pandas skips too
        lines.append(start)
    return lines[1:]  # the first record is the header


def read_raw(path: str, problems: ProblemList, kind: str | None = None) -> pd.DataFrame | None:
    """Read a CSV as text cells; an unreadable file is one problem, not a traceback.

    ``kind`` picks the size cap (``fileio.SIZE_CAPS``: a catalog file name, "quotes" or
    "history"); by default the file's own name if it is a catalog file, else offers.csv's.
    The file is read once, bounded, and parsed from memory.
    The index is set so that ``index + 2`` is the record's line in the file (see ``_row``).
    """
    name = Path(path).name
    try:
        data = fileio.read_bytes(path, kind or (name if name in SCHEMAS else "offers.csv"))
    except InputError as exc:
        problems.items.extend(exc.problems)
        return None
    try:
        text = data.decode("utf-8")
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
                            comment=None)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as exc:
        problems.add(path, "", f"not a readable CSV file ({str(exc).splitlines()[0][:120]})")
        return None
    try:
        lines = _record_lines(text)
    except csv.Error:
        lines = []
    if len(lines) == len(frame):  # else keep pandas' numbering rather than guess
        frame.index = pd.Index([line - 2 for line in lines])
    return frame


def coerce(raw: pd.DataFrame, columns: tuple[Column, ...], file: str, problems: ProblemList,
           today: dt.date | None = None) -> pd.DataFrame:
    """Check every cell against the schema and return typed columns.

    Optional columns may be absent from the file (they default to empty); unknown
    columns are reported so that a misspelt header does not silently vanish.
    """
    known = {c.name for c in columns}
    for name in raw.columns:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.add(file, str(name), f"unknown column{hint} allowed: {', '.join(c.name for c in columns)}",
                         row=HEADER_ROW)
    today = today or dt.date.today()
    index = raw.index
    out: dict[str, pd.Series] = {}
    for col in columns:
        missing = col.name not in raw.columns
        if missing:
            if col.required:
                # One problem for the header, not one more per row for the same cause.
                problems.add(file, col.name, "required column is missing", row=HEADER_ROW)
            cells = np.full(len(raw), "", dtype=object)
        else:
            cells = _stripped(raw[col.name].to_numpy(dtype=object))
        # The checks run on numpy arrays, one frame at the end: pandas' per-call overhead on a
        # column of a hundred cells made parsing the bundled catalog most of a `solve`.
        empty = np.array([c == "" for c in cells], dtype=bool)

        cell = _Cells(problems, file, col.name, cells, index)
        if col.required and not missing:
            cell.report(empty, "empty; a value is required")
        if col.kind == "str":
            _check_text(cells, empty, col, file, problems, index)
            if col.choices is not None:
                allowed = set(col.choices)
                cell.report(~empty & np.array([c not in allowed for c in cells], dtype=bool),
                       "{c!r} is not one of " + ", ".join(col.choices).replace("{", "{{").replace("}", "}}"))
            out[col.name] = pd.Series(cells, index=index, dtype=str)
        elif col.kind in ("float", "int"):
            numbers = np.asarray(pd.to_numeric(np.where(empty, np.nan, cells), errors="coerce"), dtype=float)
            numbers[~np.isfinite(numbers)] = np.nan   # "inf" is not a price
            finite = ~np.isnan(numbers)
            cell.report(~empty & ~finite, "{c!r} is not a number")
            with np.errstate(invalid="ignore"):
                checks: list[tuple[np.ndarray, str]] = []
                if col.kind == "int":
                    checks.append((finite & (numbers != np.round(numbers)), "must be a whole number"))
                if col.low is not None:
                    checks.append((finite & (numbers < col.low), f"must be ≥ {col.low:g}"))
                if col.above is not None:
                    checks.append((finite & (numbers <= col.above), f"must be > {col.above:g}"))
                if col.high is not None:
                    checks.append((finite & (numbers > col.high), f"must be ≤ {col.high:g}"))
            for mask, rule in checks:
                cell.report(mask, rule + " (got {c})")
            out[col.name] = pd.Series(numbers, index=index)
        elif col.kind == "bool":
            lowered = [str(c).lower() for c in cells]
            cell.report(np.array([v not in _TRUE and v not in _FALSE for v in lowered], dtype=bool),
                   "{c!r} is not true/false")
            out[col.name] = pd.Series([v in _TRUE for v in lowered], index=index, dtype=bool)
        else:  # date
            dates = pd.to_datetime(np.where(empty, np.nan, cells), errors="coerce", format="%Y-%m-%d")
            unparsed = np.asarray(dates.isna(), dtype=bool)
            cell.report(~empty & unparsed, "{c!r} is not a date YYYY-MM-DD")
            # Compare as timestamps: ``.dt.date`` of an all-empty column stays datetime64,
            # which cannot be compared with a date (a missing as_of column crashed here).
            future = ~unparsed & np.asarray(dates > pd.Timestamp(today), dtype=bool)
            cell.report(future, "{c} is in the future (today is " + str(today) + ")")
            out[col.name] = pd.Series(cells, index=index, dtype=str)
    return pd.DataFrame(out, index=index)


def _stripped(values: np.ndarray) -> np.ndarray:
    """Each cell as stripped text (``astype(str).str.strip()``: numbers written as ``str`` does,
    missing cells stay missing), as an object array."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = np.nan if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v).strip()
    return out


@dataclass(frozen=True)
class _Cells:
    """One column's cells as ``coerce`` checks them, and where their problems go."""

    problems: ProblemList
    file: str
    column: str
    cells: np.ndarray
    index: pd.Index

    def report(self, mask: np.ndarray, template: str) -> None:
        """One problem per marked cell; ``{c}`` in ``template`` is the cell's text."""
        for i in np.flatnonzero(mask):
            self.problems.add(self.file, self.column, template.format(c=self.cells[i]), row=_row(int(self.index[i])))


def text_columns(name: str) -> tuple[str, ...]:
    """The free-text columns of a catalog file: those a CSV writer must guard against formulas."""
    return tuple(c.name for c in SCHEMAS[name] if c.kind == "str")


# Control characters other than tab/newline/CR in a free-text cell (the CSV reader
# keeps quoted newlines; ids allow none at all, see ``fileio.ID_PATTERN``).
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _check_text(cells: np.ndarray, empty: np.ndarray, col: Column, file: str, problems: ProblemList,
                index: pd.Index) -> None:
    """Ids must match the documented character set; other text may hold no control characters."""
    if col.ident:
        bad = [not e and (not isinstance(c, str) or fileio.ID_PATTERN.fullmatch(c) is None)
               for c, e in zip(cells, empty)]
        rule = f"is not {fileio.ID_RULE}"
    else:
        bad = [not e and _BAD_TEXT.search(str(c)) is not None for c, e in zip(cells, empty)]
        rule = "contains a control character; only printable text is allowed"
    for i in np.flatnonzero(np.array(bad, dtype=bool)):
        problems.add(file, col.name, f"{fileio.describe_value(str(cells[i]))} {rule}", row=_row(int(index[i])))


def check_unique(table: pd.DataFrame, key: tuple[str, ...], file: str, problems: ProblemList) -> None:
    dup = table.duplicated(subset=list(key), keep="first")
    for idx in table.index[dup]:
        value = ", ".join(str(table.at[idx, k]) for k in key)
        problems.add(file, "/".join(key), f"duplicate id {value!r}", row=_row(int(idx)))
