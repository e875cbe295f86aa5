"""Reading and validating a history file: one finished run per row → ``Run`` records.

Calibration and backtest both start from past runs, and one typo can move a percentile, so
every run is checked here, once, before either uses it. Each valid run gets its FLOPs,
scale-out and implied attenuation (``implied_efficiency``) here too, for both consumers.

History file (README: Commands, `calibrate`), one run per row:

    name, workload (the kind), any workload field of a job file (model, params,
    active_params, tokens, seq_len, layers, d_model, n_heads, n_kv_heads, recompute,
    requests, prompt_tokens, output_tokens, batch_size, context, flops_per_sample,
    samples, epochs, total_flops, …), gpu, gpu_count, precision, scenario (optional),
    then wall-clock ``hours`` or total ``gpu_hours`` (= hours × gpu_count),
    optional cost_usd, budget_usd, date (YYYY-MM-DD), source.

Workload numbers accept the job-file notation (``6.7B``, ``2T``); ``hours`` also ``30d``;
``gpu_hours`` ``184k``; money ``$1.2M``. Every defect is reported at once with file, row
(the CSV line, header = 1) and column; unknown GPUs get a "did you mean".

Per run (the inverse of ``performance.py``, so calibrating and planning agree):

    FLOPs               estimate_flops(workload)          — exactly what ``solve`` would count
    scenario            the row's ``scenario``; else 1 GPU → lab, several → cluster.
                        (The history does not say which offer ran the job, so the owned/
                        rented distinction ``solve`` makes cannot be recovered; a team
                        that rented a single node writes ``scenario: cloud``.)
    scale(n)            on 8-GPU NVLink nodes joined by InfiniBand (``implied_efficiency``)
    attenuation         what ``performance.base_seconds_for`` needs to reproduce the measured
                        time at the run's own count (``implied_efficiency``)
    mfu                 FLOPs / (n · peak · seconds) — before scale-out, as papers report it

A run implying an attenuation above 1 is rejected: it ran faster than the GPUs' peak, which
means hours were given as gpu_hours (or vice versa), or gpu_count / precision is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args

import numpy as np

from .errors import InputError, Problem, ProblemList
from .flops import FlopEstimate, estimate_flops
from .implied_efficiency import attenuation_for_seconds, hardware_frame, scale_for
from .job import PRECISIONS, SCENARIOS, Workload, WorkloadKind, translate_validation_error
from .performance import effective_peaks
from .units import UnitError, parse_count, parse_hours, parse_money

if TYPE_CHECKING:
    from ..catalogs.loader import Catalog

__all__ = ["HISTORY_COLUMNS", "History", "HistoryInput", "Run", "as_history", "read_history"]

MIN_PLAUSIBLE_ATTENUATION = 1e-3  # a run at 0.1% of peak is a unit mistake, not a measurement

WORKLOAD_KINDS: tuple[str, ...] = get_args(WorkloadKind)
# Every workload field of a job file may be a column, except the kind (the ``workload`` column).
WORKLOAD_COLUMNS: tuple[str, ...] = tuple(n for n in Workload.model_fields if n != "kind")
RUN_COLUMNS = ("name", "workload", "gpu", "gpu_count", "precision", "scenario", "hours", "gpu_hours",
               "cost_usd", "budget_usd", "date", "source")
HISTORY_COLUMNS: tuple[str, ...] = (*RUN_COLUMNS[:2], *WORKLOAD_COLUMNS, *RUN_COLUMNS[2:])


@dataclass(frozen=True)
class Run:
    """One finished run of the history, with what the model makes of it."""

    name: str
    row: int                       # CSV line (header = 1)
    kind: str
    gpu: str
    gpu_count: int
    precision: str
    scenario: str
    scenario_given: bool           # False: derived from gpu_count
    estimate: FlopEstimate
    measured_hours: float          # wall clock
    peak_tflops: float             # per GPU at ``precision``
    mem_bandwidth_gbs: float
    scale_efficiency: float
    mfu: float                     # FLOPs / (n · peak · seconds): before scale-out
    implied_attenuation: float     # what the catalog's attenuation would have to be
    cost_usd: float | None = None
    budget_usd: float | None = None
    date: str = ""
    source: str = ""

    @property
    def total_flops(self) -> float:
        return self.estimate.total_flops

    @property
    def gpu_hours(self) -> float:
        return self.measured_hours * self.gpu_count


@dataclass(frozen=True)
class History:
    file: str
    runs: tuple[Run, ...]


def _history_schema() -> tuple[Any, ...]:
    """Columns for ``catalogs.schema.coerce``. Numbers with units are read as text here and
    parsed below (coerce only knows plain numbers); kinds, choices and dates are its job."""
    from ..catalogs.schema import Column

    choices: dict[str, tuple[str, ...]] = {"workload": WORKLOAD_KINDS, "precision": PRECISIONS,
                                           "scenario": SCENARIOS}
    required = {"name", "workload", "gpu", "gpu_count", "precision"}
    columns = []
    for name in HISTORY_COLUMNS:
        kind: Literal["str", "int", "date"] = "str"
        if name == "gpu_count":
            kind = "int"
        elif name == "date":
            kind = "date"
        columns.append(Column(name, kind, required=name in required, choices=choices.get(name),
                              low=1 if name == "gpu_count" else None))
    return tuple(columns)


def _parse_cell(text: str, column: str) -> float:
    if column == "hours":
        value = parse_hours(text)
    elif column in ("cost_usd", "budget_usd"):
        value = parse_money(text)
    else:
        value = parse_count(text)
    if value <= 0:
        raise UnitError(f"must be > 0 (got {text})")
    return value


def _resolve_gpu(name: str, catalog: Catalog) -> str | None:
    """Exact name, else a case-insensitive match (``a100-80gb``); None when unknown."""
    if name in catalog.gpus.index:
        return name
    lowered = {str(g).lower(): str(g) for g in catalog.gpus.index}
    return lowered.get(name.lower())


def _relocated(error: InputError, file: str, row: int) -> list[Problem]:
    """Problems of a job-shaped check (``workload.params``) re-addressed to a CSV cell (``params``)."""
    return [Problem(file=file, field=p.field.removeprefix("workload."), row=row,
                    message=p.message.replace("workload.", "")) for p in error.problems]


def read_history(path: str | Path, catalog: Catalog) -> History:
    """Read and validate a history CSV; every run gets its FLOPs, scale-out and implied attenuation.

    Raises InputError listing every bad cell (file, row, column) — nothing is fitted on a
    history with a single wrong number, since one typo can move a percentile.
    """
    from pydantic import ValidationError

    from ..catalogs import schema

    file = str(path)
    problems = ProblemList()
    if Path(path).is_dir():
        raise InputError.at(file, "", "is a directory; give a history CSV file")
    raw = schema.read_raw(file, problems, "history")
    problems.raise_if_any(InputError)
    assert raw is not None
    table = schema.coerce(raw, _history_schema(), file, problems)
    if table.empty:
        problems.add(file, "", "no runs: the file has a header but no rows", row=schema.HEADER_ROW)
    has_hours, has_gpu_hours = "hours" in raw.columns, "gpu_hours" in raw.columns
    if not table.empty and not (has_hours or has_gpu_hours):
        problems.add(file, "hours", "required column is missing: give wall-clock `hours` or total "
                     "`gpu_hours` per run", row=schema.HEADER_ROW)
    header_broken = any(p.row == schema.HEADER_ROW for p in problems.items)
    bad_cells = {p.row for p in problems.items}  # rows coerce already faulted (e.g. gpu_count "eight")
    models = catalog.model_table()
    runs: list[Run] = []
    seen: dict[str, int] = {}
    for index, record in table.iterrows():
        row = int(index) + 2
        before = len(problems.items)

        def add(column: str, message: str, row: int = row) -> None:
            problems.add(file, column, message, row=row)

        name = str(record["name"])
        if name and name in seen:
            add("name", f"duplicate run name {name!r} (first on row {seen[name]})")
        seen.setdefault(name, row)
        numbers: dict[str, float] = {}
        for column in ("hours", "gpu_hours", "cost_usd", "budget_usd"):
            text = str(record[column])
            if text:
                try:
                    numbers[column] = _parse_cell(text, column)
                except UnitError as exc:
                    add(column, str(exc))
        if (has_hours or has_gpu_hours) and not (str(record["hours"]) or str(record["gpu_hours"])):
            add("hours", "empty; give wall-clock `hours` or total `gpu_hours` of the run")
        gpu_text = str(record["gpu"])
        gpu = _resolve_gpu(gpu_text, catalog) if gpu_text else None
        if gpu_text and gpu is None:
            import difflib

            known = sorted(str(g) for g in catalog.gpus.index)
            by_lower = {k.lower(): k for k in known}  # compare case-blind, suggest the catalog's spelling
            close = difflib.get_close_matches(gpu_text.lower(), list(by_lower), n=1, cutoff=0.5)
            hint = f"did you mean '{by_lower[close[0]]}'? " if close else ""
            add("gpu", f"unknown gpu {gpu_text!r} (not in gpus.csv); {hint}known: {', '.join(known)}")
        precision = str(record["precision"])
        peak = math.nan
        if gpu is not None and precision in PRECISIONS:
            # solve's own effective peak: reference precision × realised speed-up (fp8 runs are
            # measured against the bf16 peak, not the fp8 datasheet), fp16 standing in for bf16.
            peaks = effective_peaks(catalog.gpus, catalog.precision, str(record["workload"]),
                                    np.array([gpu], dtype=object), precision)
            peak = float(peaks["peak_tflops"].iloc[0])
            if not (peak > 0):  # NaN: the GPU has no such unit
                has = [p for p in PRECISIONS if float(catalog.gpus.at[gpu, f"peak_tflops_{p}"]) > 0]
                add("precision", f"{gpu} has no {precision} peak in gpus.csv; it has: {', '.join(has)}")
        workload_values: dict[str, Any] = {"kind": str(record["workload"])}
        workload_values.update({c: str(record[c]) for c in WORKLOAD_COLUMNS if str(record[c])})
        estimate: FlopEstimate | None = None
        if workload_values["kind"] in WORKLOAD_KINDS:
            try:
                workload = Workload.model_validate(workload_values)
                estimate = estimate_flops(workload, models, file)
            except ValidationError as exc:
                problems.items.extend(_relocated(translate_validation_error(exc, file, Workload), file, row))
            except InputError as exc:
                problems.items.extend(_relocated(exc, file, row))
        if len(problems.items) > before or header_broken or row in bad_cells or estimate is None:
            continue
        assert gpu is not None
        count = int(record["gpu_count"])
        if "hours" in numbers and "gpu_hours" in numbers:
            implied = numbers["gpu_hours"] / count
            if not math.isclose(implied, numbers["hours"], rel_tol=0.02):
                add("gpu_hours", f"{numbers['gpu_hours']:g} GPU-hours / {count} GPUs = {implied:.4g} h, but hours "
                    f"is {numbers['hours']:g}; give one of them (gpu_hours = hours × gpu_count)")
                continue
        hours = numbers["hours"] if "hours" in numbers else numbers["gpu_hours"] / count
        hours_column = "hours" if "hours" in numbers else "gpu_hours"
        scenario = str(record["scenario"]) or ("lab" if count == 1 else "cluster")
        bandwidth = float(catalog.gpus.at[gpu, "mem_bandwidth_gbs"])
        frame = hardware_frame(count, peak, precision, bandwidth)
        scale = scale_for(count)
        seconds = hours * 3600.0
        # The efficiency at the run's own count (ref_gpus = gpu_count: no rescaling); the value at
        # another reference count is implied_at(run, ref) — the same inversion with scale(n)/scale(ref).
        attenuation = attenuation_for_seconds(frame, estimate, 1.0, seconds)
        mfu = estimate.total_flops / (count * peak * 1e12 * seconds)
        if attenuation < MIN_PLAUSIBLE_ATTENUATION:
            add(hours_column, f"{hours:.4g} h on {count} × {gpu} at {precision} implies {attenuation * 100:.3g}% of "
                f"peak ({estimate.total_flops:.3g} FLOPs); below {MIN_PLAUSIBLE_ATTENUATION:.1%} is not a real run — "
                "check hours vs gpu_hours, gpu_count and the workload numbers")
            continue
        if attenuation > 1.0:
            add(hours_column, f"{hours:.4g} h on {count} × {gpu} at {precision} implies {attenuation * 100:.3g}% of "
                f"peak ({estimate.total_flops:.3g} FLOPs); above 100% is impossible — "
                "check hours vs gpu_hours, gpu_count, precision and the workload numbers")
            continue
        runs.append(Run(
            name=name, row=row, kind=workload_values["kind"], gpu=gpu, gpu_count=count, precision=precision,
            scenario=scenario, scenario_given=bool(str(record["scenario"])), estimate=estimate,
            measured_hours=hours, peak_tflops=peak, mem_bandwidth_gbs=bandwidth, scale_efficiency=scale,
            mfu=mfu, implied_attenuation=attenuation, cost_usd=numbers.get("cost_usd"),
            budget_usd=numbers.get("budget_usd"), date=str(record["date"]), source=str(record["source"]),
        ))
    problems.items.sort(key=lambda p: p.row or 0)  # in file order, whichever check found them
    problems.raise_if_any(InputError)
    return History(file=file, runs=tuple(runs))


HistoryInput = Union[History, str, Path]


def as_history(history: HistoryInput, catalog: Catalog) -> History:
    """A history as given, or read from its file (calibrate and backtest take either)."""
    return history if isinstance(history, History) else read_history(history, catalog)
