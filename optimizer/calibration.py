"""Fit attenuation from past runs (``flopopt calibrate``): group the runs, fit each group's range.

The envelope method's weakest number is the attenuation factor: the seed's table
(lab 0.7–0.8, cloud 0.3–0.5, …) is a starting point, and "经验校正" — correcting it with
the team's own history — is how it becomes trustworthy. Calibration turns a history CSV
(one finished run per row) into attenuation rows, and the backtest measures how well the
current catalog would have predicted those runs. One stage per module, in the order data
flows:

    history.py              read and validate the history CSV → Run records
    implied_efficiency.py   a run's measured time → the attenuation it implies
    calibration.py          group the runs and fit each group's range (this module)
    calibration_writer.py   write the fitted rows (attenuation.csv, efficiency.csv)
    backtest.py             predict every run with the catalog; leave-one-out

``calibrate`` groups runs by (scenario, workload kind) and, within a group that mixes GPU
types, also by GPU when that GPU has at least ``MIN_RUNS`` runs (its own row then wins in
the lookup). Per group:

    low, high      10th / 90th percentile of the implied attenuations (numpy's linear
                   interpolation) when n ≥ MIN_RUNS; with fewer runs there is no spread to
                   read, so mean × (1 ∓ u) with u the catalog's current uncertainty there
    uncertainty    half the relative spread, (high − low) / (high + low), clamped to
                   [0.05, 0.5] — the same ± the buffer rule of the README (How the numbers are made) reads (with
                   n < MIN_RUNS this gives back u, so the buffer does not change)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import efficiency_fit
from .efficiency_fit import Covariates, EfficiencyModel, covariates_of
from .history import HistoryInput, Run, as_history
from .implied_efficiency import attenuation_for_seconds, hardware_frame, relative_scale
from .performance import effective_peaks, lookup_attenuation
from .vocabulary import Status

if TYPE_CHECKING:
    from ..catalogs.loader import Catalog

__all__ = [
    "MIN_FIT_RUNS", "MIN_RUNS", "UNCERTAINTY_BOUNDS", "Calibration", "GroupFit", "calibrate", "current_row",
    "effective_reference", "fit_efficiency", "fit_range", "implied_at", "reference_count", "run_covariates",
]

MIN_RUNS = 3                      # fewer runs give no spread worth a percentile
MIN_FIT_RUNS = 8                  # the covariate fit needs several runs per term it may use
PRIOR_WEIGHT_RUNS = 10            # below this many runs a group's range is widened to the prior's
LOW_PERCENTILE, HIGH_PERCENTILE = 10.0, 90.0
UNCERTAINTY_BOUNDS = (0.05, 0.5)  # ±5% is as tight as any history supports; ±50% is the buffer's cap


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


def implied_at(run: Run, ref_gpus: float) -> float:
    """The attenuation at ``ref_gpus`` that makes solve's model reproduce the run's measured time
    at the run's own count: the exact inverse of performance.py (scale(n)/scale(ref) included)."""
    scale = relative_scale(run.gpu_count, ref_gpus)
    if run.kind != "transformer_inference":  # compute-bound: time ∝ 1 / attenuation, in closed form
        return run.implied_attenuation / scale
    frame = hardware_frame(run.gpu_count, run.peak_tflops, run.precision, run.mem_bandwidth_gbs)
    return attenuation_for_seconds(frame, run.estimate, scale, run.measured_hours * 3600.0)


def reference_count(runs: tuple[Run, ...] | list[Run]) -> int:
    """The typical GPU count of the runs (a power of two near their log-median): the ref_gpus
    that fitted rows are stated at, so a row reads as "what a run of this size delivers"."""
    if not runs:
        return 1
    return int(2 ** round(float(np.median([math.log2(r.gpu_count) for r in runs]))))


def current_row(catalog: Catalog, scenario: str, kind: str, gpu: str) -> tuple[float, float, float, str, str]:
    """(low, high, uncertainty, bottleneck, source key) of the row ``solve`` uses today."""
    found = lookup_attenuation(catalog.attenuation, np.array([scenario], dtype=object), kind,
                               np.array([gpu], dtype=object))
    row = found.iloc[0]
    return (float(row["att_low"]), float(row["att_high"]), float(row["uncertainty"]),
            str(row["bottleneck"]), str(row["att_source"]))


def fit_range(values: list[float], current_uncertainty: float) -> tuple[float, float, float, str]:
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
    hist = as_history(history, catalog)
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
        cur_low, cur_high, cur_unc, bottleneck, cur_source = current_row(catalog, scenario, kind, gpu)
        values = [implied_at(r, ref) for r in members]
        low, high, uncertainty, method = fit_range(values, cur_unc)
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


def run_covariates(runs: list[Run] | tuple[Run, ...], catalog: Catalog) -> Covariates:
    """What the efficiency fit may explain a run by: model size, GPU architecture, a precision
    of another speed class than the GPU's reference, and the GPU count."""
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
    x = covariates if covariates is not None else run_covariates(runs, catalog)
    return efficiency_fit.fit(y, x, workload=runs[0].kind, ref_gpus=float(ref_gpus),
                              source=f"{source}, {len(runs)} runs" if source else "", as_of=as_of)
