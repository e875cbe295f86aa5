"""Backtest: predict every past run with the current catalog and score the predictions.

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

With ``loo`` the same runs are also scored leave-one-out: each run predicted from a
calibration (``calibration.py``) on all the others, next to the in-sample figure.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import (
    MIN_FIT_RUNS,
    UNCERTAINTY_BOUNDS,
    current_row,
    fit_efficiency,
    fit_range,
    implied_at,
    reference_count,
    run_covariates,
)
from .efficiency_fit import Covariates, EfficiencyModel
from .history import HistoryInput, Run, as_history
from .implied_efficiency import hardware_frame, relative_scale, seconds_at
from .performance import auto_buffer, lookup_attenuation
from .vocabulary import Status

if TYPE_CHECKING:
    from ..catalogs.loader import Catalog

__all__ = ["Backtest", "BacktestRun", "BacktestSummary", "Prediction", "backtest"]

# The seed's decision-quality metrics (shared/seed, "决策质量指标").
ESTIMATE_TOLERANCE_PCT = 20.0          # 估算准确性: ±20%
TIME_RATIO_BOUNDS = (0.8, 1.2)         # 时间预测: actual within 80–120% of the estimate
COST_RATIO_BOUNDS = (0.9, 1.1)         # 成本控制: actual cost within 90–110% of budget


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
    low, median, high = model.predict(run_covariates(runs, catalog))
    unc = np.clip((high - low) / (high + low), *UNCERTAINTY_BOUNDS)
    return [Prediction(float(lo), float(me), float(hi), float(u), model.ref_gpus,
                       f"calibrated fit ({model.runs} runs)") for lo, me, hi, u in zip(low, median, high, unc)]


def _hours_at(run: Run, attenuation: float, ref_gpus: float) -> float:
    scale = relative_scale(run.gpu_count, ref_gpus)
    frame = hardware_frame(run.gpu_count, run.peak_tflops, run.precision, run.mem_bandwidth_gbs)
    return seconds_at(frame, run.estimate, attenuation, scale) / 3600.0


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
    hist = as_history(runs, catalog)
    results = [_backtest_run(r, p) for r, p in zip(hist.runs, _row_predictions(hist.runs, catalog))]
    if not loo:
        return Backtest(history_file=hist.file, runs=tuple(results), summary=_summary(results),
                        catalog_layers=catalog.layers)
    loo_results = [_backtest_run(run, p) for run, p in zip(hist.runs, _loo_predictions(hist.runs, catalog))]
    every = run_covariates(hist.runs, catalog)
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
            test_x = covariates[id(run)] if covariates else run_covariates([run], catalog)
            lows, medians, highs = model.predict(test_x)
            unc = float(np.clip((highs[0] - lows[0]) / (highs[0] + lows[0]), *UNCERTAINTY_BOUNDS))
            out.append(Prediction(float(lows[0]), float(medians[0]), float(highs[0]), unc, model.ref_gpus,
                                  f"calibrated fit ({model.runs} runs)"))
            continue
        if len(mine) >= 1:
            cur = current_row(catalog, run.scenario, run.kind, run.gpu)
            low, high, unc, _ = fit_range([implied_at(r, ref) for r in mine], cur[2])
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
    every = run_covariates(runs, catalog)
    by_id = {id(r): every.subset([i]) for i, r in enumerate(runs)}
    return [_calibrated_predictions([r for j, r in enumerate(runs) if j != i], [run], catalog, by_id)[0]
            for i, run in enumerate(runs)]
