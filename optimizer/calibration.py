"""Fit attenuation from past runs (``flopopt calibrate``) and check the model against them
(``flopopt backtest``).

The envelope method's weakest number is the attenuation factor: the seed's table
(lab 0.7–0.8, cloud 0.3–0.5, …) is a starting point, and "经验校正" — correcting it with
the team's own history — is how it becomes trustworthy. This module turns a history CSV
(one finished run per row) into attenuation rows, and measures how well the current
catalog would have predicted those runs.

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
    scale(n)            performance.scale_out_efficiency with the documented defaults,
                        assuming 8-GPU NVLink nodes joined by InfiniBand — the HGX/DGX
                        layout of nearly every published run: 0.98^log2(min(n, 8)) ×
                        0.97^log2(n / 8) for n > 8.
    attenuation         FLOPs / (n · peak(precision) · scale(n) · measured seconds)
                        (for inference the decode roofline is inverted too: the value is
                        the attenuation at which ``base_seconds_for`` gives the measured time)
    mfu                 FLOPs / (n · peak · seconds) — before scale-out, as papers report it

A run implying an attenuation above 1 is rejected: it ran faster than the GPUs' peak, which
means hours were given as gpu_hours (or vice versa), or gpu_count / precision is wrong.

``calibrate`` groups runs by (scenario, workload kind) and, within a group that mixes GPU
types, also by GPU when that GPU has at least ``MIN_RUNS`` runs (its own row then wins in
the lookup). Per group:

    low, high      10th / 90th percentile of the implied attenuations (numpy's linear
                   interpolation) when n ≥ MIN_RUNS; with fewer runs there is no spread to
                   read, so mean × (1 ∓ u) with u the catalog's current uncertainty there
    uncertainty    half the relative spread, (high − low) / (high + low), clamped to
                   [0.05, 0.5] — the same ± the buffer rule of the README (How the numbers are made) reads (with
                   n < MIN_RUNS this gives back u, so the buffer does not change)

``write_calibration`` writes attenuation.csv rows (source "calibrated from HISTORY.csv,
N runs, DATE"), by default merged into the user catalog folder, which layers above the
bundled catalog: a calibrated (scenario, workload[, gpu]) row replaces the bundled row
with the same key for every later ``solve`` ("a calibration file's rows come first").

``backtest`` predicts every run with the current catalog, with ``solve``'s formula:
hours = FLOPs · (1 + buffer) / (n · peak · attenuation · scale) / 3600, attenuation the
middle of the looked-up range and the buffer ``auto`` from its uncertainty. The comparison
is WITH the buffer, because the seed's criterion "actual time within 80–120% of the
estimate" is about the estimate the team planned with; the error without the buffer (the
bare envelope estimate) is reported next to it, per run. Summary (fractions of runs, 0–1):

    within_20pct            |predicted − measured| / measured ≤ 20%   (estimate accuracy ±20%)
    median_abs_error_pct    median |error_pct|
    time_within_80_120pct   measured / predicted in [0.8, 1.2]        (time prediction)
    cost_within_90_110pct   cost_usd / budget_usd in [0.9, 1.1], over the runs that give
                            both; null when none does                (cost control)
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args

import numpy as np
import pandas as pd

from . import efficiency_fit, fileio
from .efficiency_fit import Covariates, EfficiencyModel, covariates_of
from .errors import CatalogError, InputError, Problem, ProblemList
from .flops import FlopEstimate, estimate_flops
from .job import PRECISIONS, SCENARIOS, Workload, WorkloadKind, translate_validation_error
from .performance import (
    DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING,
    auto_buffer,
    base_seconds_for,
    effective_peaks,
    lookup_attenuation,
    reference_scale,
    scale_out_efficiency,
)
from .units import UnitError, parse_count, parse_hours, parse_money
from .vocabulary import Status

if TYPE_CHECKING:
    from ..catalogs.loader import Catalog

__all__ = [
    "Run", "History", "GroupFit", "Calibration", "BacktestRun", "BacktestSummary", "Backtest",
    "read_history", "calibrate", "write_calibration", "backtest", "assumed_scale_efficiency",
]

# A node of the published runs' hardware: 8 GPUs on NVLink (HGX/DGX), nodes on InfiniBand.
GPUS_PER_NODE = 8
INTRA_NODE_FABRIC = "nvlink"

MIN_RUNS = 3                      # fewer runs give no spread worth a percentile
MIN_FIT_RUNS = 8                  # the covariate fit needs several runs per term it may use
PRIOR_WEIGHT_RUNS = 10            # below this many runs a group's range is widened to the prior's
MIN_PLAUSIBLE_ATTENUATION = 1e-3  # a run at 0.1% of peak is a unit mistake, not a measurement
LOW_PERCENTILE, HIGH_PERCENTILE = 10.0, 90.0
UNCERTAINTY_BOUNDS = (0.05, 0.5)  # ±5% is as tight as any history supports; ±50% is the buffer's cap

# The seed's decision-quality metrics (shared/seed, "决策质量指标").
ESTIMATE_TOLERANCE_PCT = 20.0          # 估算准确性: ±20%
TIME_RATIO_BOUNDS = (0.8, 1.2)         # 时间预测: actual within 80–120% of the estimate
COST_RATIO_BOUNDS = (0.9, 1.1)         # 成本控制: actual cost within 90–110% of budget

WORKLOAD_KINDS: tuple[str, ...] = get_args(WorkloadKind)
# Every workload field of a job file may be a column, except the kind (the ``workload`` column).
WORKLOAD_COLUMNS: tuple[str, ...] = tuple(n for n in Workload.model_fields if n != "kind")
RUN_COLUMNS = ("name", "workload", "gpu", "gpu_count", "precision", "scenario", "hours", "gpu_hours",
               "cost_usd", "budget_usd", "date", "source")
HISTORY_COLUMNS: tuple[str, ...] = (*RUN_COLUMNS[:2], *WORKLOAD_COLUMNS, *RUN_COLUMNS[2:])


# ---------------------------------------------------------------------------
# Records


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


@dataclass(frozen=True)
class GroupFit:
    """Fitted attenuation of one (scenario, workload[, gpu]) group, next to the catalog's."""

    scenario: str
    workload: str
    gpu: str                       # "" = any GPU
    n: int
    median: float
    low: float
    high: float
    uncertainty: float
    method: str                    # "p10–p90" or "mean ± catalog uncertainty"
    current_low: float
    current_high: float
    current_uncertainty: float
    current_source: str            # the catalog row it would replace or refine, e.g. cluster/any
    bottleneck: str
    run_names: tuple[str, ...]
    ref_gpus: int = 1               # the GPU count the figures are stated at

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.workload}" + (f"/{self.gpu}" if self.gpu else "")

    @property
    def point(self) -> float:
        """The value ``solve`` will use: the median of the runs."""
        return self.median


@dataclass(frozen=True)
class Calibration:
    history_file: str
    runs: tuple[Run, ...]
    groups: tuple[GroupFit, ...]
    created: str                   # ISO date of the fit
    models: tuple[EfficiencyModel, ...] = ()   # efficiency.csv: one covariate fit per workload

    @property
    def status(self) -> Status:
        return Status.OK

    def source_for(self, group: GroupFit) -> str:
        runs = "run" if group.n == 1 else "runs"
        return f"calibrated from {Path(self.history_file).name}, {group.n} {runs}, {self.created}"

    def rows(self) -> list[dict[str, Any]]:
        """attenuation.csv rows (catalogs/schema.py ATTENUATION columns)."""
        return [{"scenario": g.scenario, "workload": g.workload, "gpu": g.gpu, "low": g.low,
                 "high": g.high, "uncertainty": g.uncertainty, "ref_gpus": g.ref_gpus, "median": g.median,
                 "bottleneck": g.bottleneck, "source": self.source_for(g)} for g in self.groups]

    def efficiency_rows(self) -> list[dict[str, Any]]:
        """efficiency.csv rows (catalogs/schema.py EFFICIENCY columns)."""
        return [row for model in self.models for row in model.rows()]


@dataclass(frozen=True)
class BacktestRun:
    name: str
    predicted_hours: float          # with the buffer: what the team would have planned with
    measured_hours: float
    error_pct: float                # (predicted − measured) / measured × 100
    predicted_hours_no_buffer: float
    error_pct_no_buffer: float
    scenario: str
    gpu: str
    gpu_count: int
    precision: str
    attenuation: float
    attenuation_source: str
    buffer: float
    scale_efficiency: float
    total_flops: float
    cost_usd: float | None
    budget_usd: float | None
    predicted_hours_p10: float = math.nan    # at the high end of the efficiency range
    predicted_hours_p90: float = math.nan    # at the low end
    planned_hours_with_buffer: float = math.nan

    @property
    def time_ratio(self) -> float:
        """measured / predicted: the seed's "actual time as a share of the estimate"."""
        return self.measured_hours / self.predicted_hours

    @property
    def cost_ratio(self) -> float | None:
        if self.cost_usd is None or self.budget_usd is None:
            return None
        return self.cost_usd / self.budget_usd


@dataclass(frozen=True)
class BacktestSummary:
    """The backtest summary (docs/schema/backtest.json); fractions of runs in [0, 1]."""

    n: int
    within_20pct: float
    median_abs_error_pct: float
    time_within_80_120pct: float
    cost_within_90_110pct: float | None   # None: no run gives both cost_usd and budget_usd
    cost_runs: int = 0                    # how many runs the cost fraction is over
    coverage_p10_p90: float = math.nan    # share of runs whose measured hours lie in [P10, P90]

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "within_20pct": self.within_20pct,
                "median_abs_error_pct": self.median_abs_error_pct,
                "time_within_80_120pct": self.time_within_80_120pct,
                "cost_within_90_110pct": self.cost_within_90_110pct,
                "coverage_p10_p90": self.coverage_p10_p90}


@dataclass(frozen=True)
class Backtest:
    history_file: str
    runs: tuple[BacktestRun, ...]
    summary: BacktestSummary
    catalog_layers: tuple[str, ...] = field(default_factory=tuple)
    loo_runs: tuple[BacktestRun, ...] = ()             # leave-one-out predictions (--loo)
    loo_summary: BacktestSummary | None = None
    in_sample_summary: BacktestSummary | None = None   # calibrated on every run, scored on them

    @property
    def status(self) -> Status:
        return Status.OK


# ---------------------------------------------------------------------------
# Reading and validating a history file


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


@functools.lru_cache(maxsize=256)
def _scale_for(gpu_count: int) -> float:
    return float(assumed_scale_efficiency([gpu_count])[0])


def assumed_scale_efficiency(gpu_counts: np.ndarray | list[int]) -> np.ndarray:
    """Scale-out efficiency ``solve`` would apply to n GPUs in 8-GPU NVLink nodes on InfiniBand."""
    frame = _fabric_frame(np.asarray(gpu_counts, dtype=float))
    return scale_out_efficiency(frame, dict(DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING))


def _fabric_frame(gpu_counts: np.ndarray) -> pd.DataFrame:
    per_node = np.minimum(gpu_counts, GPUS_PER_NODE)
    return pd.DataFrame({
        "gpu_count": gpu_counts,
        "gpus_per_instance": per_node,
        "instances": gpu_counts / per_node,   # 12 GPUs = 1.5 nodes: scale is continuous in n
        "interconnect": [INTRA_NODE_FABRIC] * len(gpu_counts),
    })


def _hardware_frame(gpu_count: int, peak_tflops: float, precision: str, bandwidth_gbs: float) -> pd.DataFrame:
    """The one-row candidate table ``performance.base_seconds_for`` expects."""
    frame = _fabric_frame(np.array([float(gpu_count)]))
    frame["peak_tflops"] = [peak_tflops]
    frame["precision"] = [precision]
    frame["mem_bandwidth_gbs"] = [bandwidth_gbs]
    return frame


def _seconds_at(frame: pd.DataFrame, estimate: FlopEstimate, attenuation: float, scale: float) -> float:
    seconds, _ = base_seconds_for(frame, estimate, np.array([attenuation]), np.array([scale]))
    return float(seconds[0])


def _implied_attenuation(frame: pd.DataFrame, estimate: FlopEstimate, scale: float,
                         measured_seconds: float) -> float:
    """The attenuation at which ``base_seconds_for`` predicts the measured time (before buffer).

    Compute-bound time is ∝ 1/attenuation, so one evaluation gives it exactly; when the
    inference decode roofline binds, the time is only monotone in attenuation, so narrow a
    bracket on a grid (one vectorised call per round instead of a hundred scalar bisections).
    Returns a value > 1 when even full peak would be slower than measured.
    """
    at_peak = _seconds_at(frame, estimate, 1.0, scale)
    guess = at_peak / measured_seconds
    if guess > 1.0 or math.isclose(_seconds_at(frame, estimate, guess, scale), measured_seconds,
                                   rel_tol=1e-9):
        return guess
    points = 65
    grid = frame.loc[frame.index.repeat(points)].reset_index(drop=True)
    low, high = 1e-12, 1.0  # not 0: seconds there would divide by zero; at 1.0 the run is fast enough
    for _ in range(8):      # each round shrinks the bracket 64×: 64^-8 ≈ 4e-15
        candidates = np.linspace(low, high, points)
        seconds, _ = base_seconds_for(grid, estimate, candidates, np.full(points, scale))
        first_fast = int(np.argmax(seconds <= measured_seconds))  # seconds fall as attenuation rises
        low, high = float(candidates[max(first_fast - 1, 0)]), float(candidates[first_fast])
    return (low + high) / 2.0


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
        frame = _hardware_frame(count, peak, precision, bandwidth)
        scale = _scale_for(count)
        seconds = hours * 3600.0
        # The efficiency at the run's own count (ref_gpus = gpu_count: no rescaling); the value at
        # another reference count is implied_at(run, ref) — the same inversion with scale(n)/scale(ref).
        attenuation = _implied_attenuation(frame, estimate, 1.0, seconds)
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


def _as_history(history: HistoryInput, catalog: Catalog) -> History:
    return history if isinstance(history, History) else read_history(history, catalog)


# ---------------------------------------------------------------------------
# calibrate


def implied_at(run: Run, ref_gpus: float) -> float:
    """The attenuation at ``ref_gpus`` that makes solve's model reproduce the run's measured time
    at the run's own count: the exact inverse of performance.py (scale(n)/scale(ref) included)."""
    scale = _relative_scale(run.gpu_count, ref_gpus)
    if run.kind != "transformer_inference":  # compute-bound: time ∝ 1 / attenuation, in closed form
        return run.implied_attenuation / scale
    frame = _hardware_frame(run.gpu_count, run.peak_tflops, run.precision, run.mem_bandwidth_gbs)
    return _implied_attenuation(frame, run.estimate, scale, run.measured_hours * 3600.0)


def reference_count(runs: tuple[Run, ...] | list[Run]) -> int:
    """The typical GPU count of the runs (a power of two near their log-median): the ref_gpus
    that fitted rows are stated at, so a row reads as "what a run of this size delivers"."""
    if not runs:
        return 1
    return int(2 ** round(float(np.median([math.log2(r.gpu_count) for r in runs]))))


def _current(catalog: Catalog, scenario: str, kind: str, gpu: str) -> tuple[float, float, float, str, str]:
    """(low, high, uncertainty, bottleneck, source key) of the row ``solve`` uses today."""
    found = lookup_attenuation(catalog.attenuation, np.array([scenario], dtype=object), kind,
                               np.array([gpu], dtype=object))
    row = found.iloc[0]
    return (float(row["att_low"]), float(row["att_high"]), float(row["uncertainty"]),
            str(row["bottleneck"]), str(row["att_source"]))


def _fit(values: list[float], current_uncertainty: float) -> tuple[float, float, float, str]:
    """(low, high, uncertainty, method) of one group's implied attenuations.

    Robust quantiles, never narrower than the prior allows: with few runs the p10–p90 of three
    numbers says little, so the range is at least median × (1 ∓ u) with u the catalog's current
    uncertainty there."""
    data = np.asarray(values, dtype=float)
    median = min(float(np.median(data)), 1.0)   # rescaled to ref_gpus a large run can imply > 1
    prior_low, prior_high = median * (1.0 - current_uncertainty), median * (1.0 + current_uncertainty)
    if len(data) >= MIN_RUNS:
        low = float(np.percentile(data, LOW_PERCENTILE))
        high = float(np.percentile(data, HIGH_PERCENTILE))
        method = f"p{LOW_PERCENTILE:g}–p{HIGH_PERCENTILE:g}"
        if len(data) < PRIOR_WEIGHT_RUNS:
            low, high = min(low, prior_low), max(high, prior_high)
            method += " (widened to the prior's ±)"
    else:
        low, high = prior_low, prior_high
        method = "median ± catalog uncertainty"
    low = min(max(low, 1e-6), median)   # attenuation.csv requires 0 < low ≤ median …
    high = min(max(high, median), 1.0)  # … ≤ high ≤ 1
    spread = (high - low) / (high + low)
    uncertainty = min(max(spread, UNCERTAINTY_BOUNDS[0]), UNCERTAINTY_BOUNDS[1])
    return low, high, uncertainty, method


def calibrate(history: HistoryInput, catalog: Catalog, *, today: dt.date | None = None) -> Calibration:
    """Fit attenuation per (workload[, gpu]) and an efficiency model per workload (module docstring).

    Rows are keyed to scenario "any": measured runs describe the workload on that GPU whatever
    environment the optimiser later picks (a row keyed "cluster" went unused as soon as the
    optimiser moved to one node labelled "cloud").
    """
    hist = _as_history(history, catalog)
    created = (today or dt.date.today()).isoformat()
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in hist.runs:
        groups.setdefault((run.kind, ""), []).append(run)
    for (kind, _), members in list(groups.items()):
        gpus = sorted({r.gpu for r in members})
        if len(gpus) < 2:
            continue  # a GPU row would repeat the workload row
        for gpu in gpus:
            mine = [r for r in members if r.gpu == gpu]
            if len(mine) >= MIN_RUNS:
                groups[(kind, gpu)] = mine
    fits = []
    models: list[EfficiencyModel] = []
    for (kind, gpu), members in sorted(groups.items()):
        ref = reference_count(groups[(kind, "")])
        scenario = members[0].scenario
        cur_low, cur_high, cur_unc, bottleneck, cur_source = _current(catalog, scenario, kind, gpu)
        values = [implied_at(r, ref) for r in members]
        low, high, uncertainty, method = _fit(values, cur_unc)
        fits.append(GroupFit(
            scenario="any", workload=kind, gpu=gpu, n=len(members), median=float(np.median(values)),
            low=low, high=high, uncertainty=uncertainty, method=method, current_low=cur_low,
            current_high=cur_high, current_uncertainty=cur_unc, current_source=cur_source,
            bottleneck=bottleneck, run_names=tuple(r.name for r in members), ref_gpus=ref,
        ))
        if not gpu and len(members) >= MIN_FIT_RUNS:
            models.append(fit_efficiency(members, catalog, ref_gpus=ref,
                                         source=f"calibrated from {Path(hist.file).name}", as_of=created))
    return Calibration(history_file=hist.file, runs=hist.runs, groups=tuple(fits), created=created,
                       models=tuple(models))


def _covariates(runs: list[Run] | tuple[Run, ...], catalog: Catalog) -> Covariates:
    gpus = catalog.gpus
    arch = [str(gpus.at[r.gpu, "architecture"]) if "architecture" in gpus.columns
            and str(gpus.at[r.gpu, "architecture"]) not in ("", "nan") else "" for r in runs]
    ref = effective_reference(catalog, runs)
    # bf16 and fp16 run at the same tensor rate: only a different speed class (fp8, tf32, …) is a covariate
    same = {"bf16", "fp16"}
    precision = ["" if r.precision == ref[i] or {r.precision, ref[i]} <= same else r.precision
                 for i, r in enumerate(runs)]
    params = [float(r.estimate.workload.compute_params or 0.0) for r in runs]
    return covariates_of(params, arch, precision, [float(r.gpu_count) for r in runs])


def effective_reference(catalog: Catalog, runs: list[Run] | tuple[Run, ...]) -> list[str]:
    """Each run GPU's reference precision (bf16, else fp16, else fp32)."""
    seen: dict[tuple[str, str, str], str] = {}
    out = []
    for r in runs:
        key = (r.kind, r.gpu, r.precision)
        if key not in seen:
            peaks = effective_peaks(catalog.gpus, catalog.precision, r.kind, np.array([r.gpu], dtype=object),
                                    r.precision)
            seen[key] = str(peaks["ref_precision"].iloc[0])
        out.append(seen[key])
    return out


def fit_efficiency(runs: list[Run] | tuple[Run, ...], catalog: Catalog, *, ref_gpus: float, source: str = "",
                   as_of: str = "", covariates: Covariates | None = None) -> EfficiencyModel:
    """The efficiency model (efficiency_fit.py) of one workload's runs."""
    y = np.log([implied_at(r, ref_gpus) for r in runs])
    x = covariates if covariates is not None else _covariates(runs, catalog)
    return efficiency_fit.fit(y, x, workload=runs[0].kind, ref_gpus=float(ref_gpus),
                              source=f"{source}, {len(runs)} runs" if source else "", as_of=as_of)


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


# ---------------------------------------------------------------------------
# backtest


def _fraction(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


@dataclass(frozen=True)
class Prediction:
    """What the model says of one run: attenuation at ref_gpus (P10 efficiency = low, P50 =
    median, P90 = high) and where it came from."""

    low: float
    median: float
    high: float
    uncertainty: float
    ref_gpus: float
    source: str


def _row_predictions(runs: tuple[Run, ...], catalog: Catalog) -> list[Prediction]:
    """Predictions from the catalog as solve would use it: its efficiency fit for the workload
    when it has one, else the most specific attenuation row."""
    out: list[Prediction | None] = [None] * len(runs)
    for kind in sorted({r.kind for r in runs}):
        mine = [i for i, r in enumerate(runs) if r.kind == kind]
        model = EfficiencyModel.from_table(catalog.efficiency, kind)
        if model is not None:
            for i, p in zip(mine, _model_predictions([runs[i] for i in mine], catalog, model)):
                out[i] = p
            continue
        found = lookup_attenuation(catalog.attenuation, np.array([runs[i].scenario for i in mine], dtype=object),
                                   kind, np.array([runs[i].gpu for i in mine], dtype=object))
        for i, row in zip(mine, found.itertuples(index=False)):
            out[i] = Prediction(float(row.att_low), float(row.att_median), float(row.att_high),
                                float(row.uncertainty), float(row.ref_gpus), str(row.att_source))
    return [p for p in out if p is not None]


def _model_predictions(runs: list[Run], catalog: Catalog, model: EfficiencyModel) -> list[Prediction]:
    low, median, high = model.predict(_covariates(runs, catalog))
    unc = np.clip((high - low) / (high + low), *UNCERTAINTY_BOUNDS)
    return [Prediction(float(lo), float(me), float(hi), float(u), model.ref_gpus,
                       f"calibrated fit ({model.runs} runs)") for lo, me, hi, u in zip(low, median, high, unc)]


@functools.lru_cache(maxsize=4096)
def _relative_scale(gpu_count: float, ref_gpus: float) -> float:
    """scale(n) / scale(ref) on the HGX layout (8-GPU NVLink nodes on InfiniBand) of published runs."""
    pair = reference_scale(np.array([gpu_count, ref_gpus], dtype=float), DEFAULT_SCALE_EFFICIENCY_PER_DOUBLING)
    return float(pair[0] / pair[1])


def _hours_at(run: Run, attenuation: float, ref_gpus: float) -> float:
    scale = _relative_scale(run.gpu_count, ref_gpus)
    frame = _hardware_frame(run.gpu_count, run.peak_tflops, run.precision, run.mem_bandwidth_gbs)
    return _seconds_at(frame, run.estimate, attenuation, scale) / 3600.0


def _backtest_run(run: Run, p: Prediction) -> BacktestRun:
    """P50 hours at the median efficiency (no buffer: the point estimate), P10/P90 hours at the
    high/low end of the range, and the planned hours with the buffer next to them."""
    buffer = float(auto_buffer(p.uncertainty))
    p50 = _hours_at(run, p.median, p.ref_gpus)
    p10 = _hours_at(run, p.high, p.ref_gpus)
    p90 = _hours_at(run, p.low, p.ref_gpus)
    measured = run.measured_hours
    planned = p50 * (1.0 + buffer)
    return BacktestRun(
        name=run.name, predicted_hours=p50, measured_hours=measured,
        error_pct=(p50 - measured) / measured * 100.0, predicted_hours_no_buffer=p50,
        error_pct_no_buffer=(p50 - measured) / measured * 100.0, scenario=run.scenario,
        gpu=run.gpu, gpu_count=run.gpu_count, precision=run.precision, attenuation=p.median,
        attenuation_source=p.source, buffer=buffer, scale_efficiency=run.scale_efficiency,
        total_flops=run.total_flops, cost_usd=run.cost_usd, budget_usd=run.budget_usd,
        predicted_hours_p10=p10, predicted_hours_p90=p90, planned_hours_with_buffer=planned,
    )


def _summary(results: list[BacktestRun]) -> BacktestSummary:
    tolerance = ESTIMATE_TOLERANCE_PCT * (1 + 1e-12)  # 20.000000000001% is still "within 20%"
    cost_ratios = [r.cost_ratio for r in results if r.cost_ratio is not None]
    return BacktestSummary(
        n=len(results),
        within_20pct=_fraction([abs(r.error_pct) <= tolerance for r in results]),
        median_abs_error_pct=float(statistics.median(abs(r.error_pct) for r in results)),
        time_within_80_120pct=_fraction([TIME_RATIO_BOUNDS[0] <= r.time_ratio <= TIME_RATIO_BOUNDS[1]
                                         for r in results]),
        cost_within_90_110pct=(_fraction([COST_RATIO_BOUNDS[0] <= c <= COST_RATIO_BOUNDS[1] for c in cost_ratios])
                               if cost_ratios else None),
        cost_runs=len(cost_ratios),
        coverage_p10_p90=_fraction([r.predicted_hours_p10 * (1 - 1e-9) <= r.measured_hours
                                    <= r.predicted_hours_p90 * (1 + 1e-9) for r in results]),
    )


def backtest(runs: HistoryInput, catalog: Catalog, *, loo: bool = False) -> Backtest:
    """Predict every past run with the current catalog and compare with what was measured.

    With ``loo``: also leave-one-out — for each run, calibrate on all the other runs (the same
    fit ``flopopt calibrate`` writes), predict the left-out run, and score those predictions; the
    in-sample figure (calibrated on every run, scored on the same runs) is reported next to it.
    """
    hist = _as_history(runs, catalog)
    results = [_backtest_run(r, p) for r, p in zip(hist.runs, _row_predictions(hist.runs, catalog))]
    if not loo:
        return Backtest(history_file=hist.file, runs=tuple(results), summary=_summary(results),
                        catalog_layers=catalog.layers)
    loo_results = [_backtest_run(run, p) for run, p in zip(hist.runs, _loo_predictions(hist.runs, catalog))]
    every = _covariates(hist.runs, catalog)
    by_id = {id(r): every.subset([i]) for i, r in enumerate(hist.runs)}
    in_sample = [_backtest_run(run, p) for run, p in zip(hist.runs, _calibrated_predictions(
        hist.runs, hist.runs, catalog, by_id))]
    return Backtest(history_file=hist.file, runs=tuple(results), summary=_summary(results),
                    catalog_layers=catalog.layers, loo_runs=tuple(loo_results), loo_summary=_summary(loo_results),
                    in_sample_summary=_summary(in_sample))


def _calibrated_predictions(train: tuple[Run, ...] | list[Run], test: tuple[Run, ...] | list[Run],
                            catalog: Catalog, covariates: dict[int, Covariates] | None = None) -> list[Prediction]:
    """Predict ``test`` from a calibration on ``train``: the workload's efficiency fit when it has
    enough runs, else the calibrated (workload[, gpu]) rows, else the catalog's rows.
    ``covariates`` (by id of the run) saves recomputing them in leave-one-out."""
    out: list[Prediction] = []
    for run in test:
        mine = [r for r in train if r.kind == run.kind]
        ref = reference_count(mine)
        if len(mine) >= MIN_FIT_RUNS:
            x = _stack([covariates[id(r)] for r in mine]) if covariates else None
            model = fit_efficiency(mine, catalog, ref_gpus=ref, covariates=x)
            test_x = covariates[id(run)] if covariates else _covariates([run], catalog)
            lows, medians, highs = model.predict(test_x)
            unc = float(np.clip((highs[0] - lows[0]) / (highs[0] + lows[0]), *UNCERTAINTY_BOUNDS))
            out.append(Prediction(float(lows[0]), float(medians[0]), float(highs[0]), unc, model.ref_gpus,
                                  f"calibrated fit ({model.runs} runs)"))
            continue
        if len(mine) >= 1:
            cur = _current(catalog, run.scenario, run.kind, run.gpu)
            low, high, unc, _ = _fit([implied_at(r, ref) for r in mine], cur[2])
            median = float(np.median([implied_at(r, ref) for r in mine]))
            out.append(Prediction(low, median, high, unc, float(ref), f"calibrated rows ({len(mine)} runs)"))
            continue
        out.extend(_row_predictions((run,), catalog))
    return out


def _stack(parts: list[Covariates]) -> Covariates:
    return Covariates(params=np.concatenate([p.params for p in parts]),
                      architecture=np.concatenate([p.architecture for p in parts]),
                      precision=np.concatenate([p.precision for p in parts]),
                      gpu_count=np.concatenate([p.gpu_count for p in parts]))


def _loo_predictions(runs: tuple[Run, ...], catalog: Catalog) -> list[Prediction]:
    every = _covariates(runs, catalog)
    by_id = {id(r): every.subset([i]) for i, r in enumerate(runs)}
    return [_calibrated_predictions([r for j, r in enumerate(runs) if j != i], [run], catalog, by_id)[0]
            for i, run in enumerate(runs)]
