"""A calibrated end-to-end efficiency model: log efficiency on a few physical covariates.

Published runs differ systematically: a 405B-parameter run keeps an H100 busier than an 8B
one, A100-era runs reached a larger share of their (lower) peak than H100-era runs, and fp8
runs gain less than the datasheet says. One attenuation number per scenario cannot carry
that, so ``flopopt calibrate`` fits, over the history's runs,

    ln e_ref = β0 + (β_size + β_size[a]) · log10(N / 1e10) + β_arch[a] + β_prec[p] + β_n · log2(n / ref_gpus)

where e_ref is the run's implied attenuation at ``ref_gpus`` (the exact inverse of solve's
time model at the run's count, see implied_efficiency.py), N the active parameters, a the GPU's
architecture (gpus.csv), p the precision the run used when it is not the GPU's reference
precision, and n the run's GPU count. β_n ≤ 0, so per-GPU throughput never rises with the count.

Robust and shrunk: the fit minimises Σ|residual| + λ · Σ|β_j| (j ≠ 0) — a median (L1)
regression, so one odd run moves it little, with an L1 penalty that keeps an architecture's or
precision's offset at 0 (the pooled value) unless enough runs support it. It is solved by
iteratively reweighted least squares (Schlossmacher 1973), which needs nothing beyond numpy.

The interval: the 10th and 90th percentiles of the residuals, widened by √(n / (n − p)) for the
p fitted terms (in-sample residuals understate out-of-sample ones) and never narrower than
±``MIN_HALF_WIDTH`` in log terms (with few runs the spread is not known better than that).

Stored as efficiency.csv rows (workload, term, value, source, as_of), so a fit travels with the
user's catalog and applies to that workload on every GPU, whatever scenario the optimiser picks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .flops import FlopEstimate

PARAMS_PIVOT = 1e10             # log10(N / 1e10): the intercept is a 10B-parameter model
SHRINKAGE = 2.0                 # λ: an offset needs about this many runs' worth of support
MIN_HALF_WIDTH = 0.15           # ln units: an interval of at least about ±15%
IRLS_ITERATIONS = 200
IRLS_FLOOR = 1e-4               # |r| below this counts as this (keeps weights finite)
COEFFICIENT_FLOOR = 1e-3        # IRLS leaves penalised coefficients near, not at, 0: below this they are 0
LOW_Q, HIGH_Q = 10.0, 90.0
UNCERTAINTY_BOUNDS = (0.05, 0.5)
MIN_COUNT_SLOPE = -0.3          # per doubling e^-0.3 = 0.74 more loss at most: 2 × 0.74 × 0.9 > 1

# Fixed terms; arch:NAME and precision:NAME terms are added per group seen in the history.
INTERCEPT, SIZE, COUNT = "intercept", "log10_params_over_1e10", "log2_gpus_over_ref"
META_TERMS = ("ref_gpus", "resid_p10", "resid_p90", "runs")


@dataclass(frozen=True)
class Covariates:
    """One run's (or candidate's) covariates, vectorised over rows."""

    params: np.ndarray          # active parameters (0 = unknown: the size term is not used)
    architecture: np.ndarray    # gpus.csv architecture ("" = unknown: pooled)
    precision: np.ndarray       # run precision when not the reference one, else ""
    gpu_count: np.ndarray

    def subset(self, rows: list[int] | np.ndarray) -> Covariates:
        idx = np.asarray(rows, dtype=int)
        return Covariates(params=self.params[idx], architecture=self.architecture[idx],
                          precision=self.precision[idx], gpu_count=self.gpu_count[idx])


@dataclass(frozen=True)
class EfficiencyModel:
    """Coefficients of the fit (see the module docstring) and its residual interval."""

    workload: str
    coefficients: dict[str, float]
    ref_gpus: float
    resid_p10: float
    resid_p90: float
    runs: int
    source: str = ""
    as_of: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    # -- persistence -------------------------------------------------------
    @classmethod
    def from_table(cls, table: pd.DataFrame | None, workload: str) -> EfficiencyModel | None:
        if table is None or table.empty or "workload" not in table.columns:
            return None
        mine = table[table["workload"] == workload]
        if mine.empty:
            return None
        values = {str(t): float(v) for t, v in zip(mine["term"], mine["value"])}
        meta = {k: values.pop(k) for k in META_TERMS if k in values}
        if INTERCEPT not in values:
            return None
        return cls(workload=workload, coefficients=values, ref_gpus=meta.get("ref_gpus", 1.0),
                   resid_p10=meta.get("resid_p10", -MIN_HALF_WIDTH), resid_p90=meta.get("resid_p90", MIN_HALF_WIDTH),
                   runs=int(meta.get("runs", 0)), source=str(mine["source"].iloc[0]), as_of=str(mine["as_of"].iloc[0]))

    def rows(self) -> list[dict[str, object]]:
        terms = {**self.coefficients, "ref_gpus": self.ref_gpus, "resid_p10": self.resid_p10,
                 "resid_p90": self.resid_p90, "runs": float(self.runs)}
        return [{"workload": self.workload, "term": t, "value": round(v, 6), "source": self.source,
                 "as_of": self.as_of} for t, v in terms.items()]

    # -- prediction --------------------------------------------------------
    def log_point(self, x: Covariates) -> np.ndarray:
        c = self.coefficients
        out = np.full(len(x.gpu_count), c.get(INTERCEPT, 0.0))
        size = np.where(x.params > 0, np.log10(np.maximum(x.params, 1.0) / PARAMS_PIVOT), 0.0)
        out = out + c.get(SIZE, 0.0) * size
        out = out + c.get(COUNT, 0.0) * np.log2(np.maximum(x.gpu_count, 1.0) / self.ref_gpus)
        for i, (arch, prec) in enumerate(zip(x.architecture, x.precision)):
            out[i] += (c.get(f"arch:{arch}", 0.0) + c.get(f"size_arch:{arch}", 0.0) * size[i]
                       + (c.get(f"precision:{prec}", 0.0) if prec else 0.0))
        return np.asarray(out, dtype=float)

    def predict(self, x: Covariates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(low, median, high) attenuation at ref_gpus, each in (0, 1]."""
        log_point = self.log_point(x)
        median = np.minimum(np.exp(log_point), 1.0)
        return (np.minimum(median * math.exp(self.resid_p10), 1.0), median,
                np.minimum(median * math.exp(self.resid_p90), 1.0))

    def apply(self, out: pd.DataFrame, estimate: FlopEstimate) -> None:
        """Overwrite the looked-up attenuation columns of a candidate table (in place)."""
        if out.empty:
            return
        for name, values in self.columns(out, estimate).items():
            out[name] = values

    def columns(self, out: pd.DataFrame, estimate: FlopEstimate) -> dict[str, np.ndarray]:
        """The attenuation columns this fit predicts for each candidate of ``out``."""
        params = float(estimate.workload.compute_params or 0.0)
        run_precision = out["run_precision"].to_numpy(dtype=object) if "run_precision" in out.columns else None
        ref_precision = out["ref_precision"].to_numpy(dtype=object) if "ref_precision" in out.columns else None
        precision = (np.where(run_precision == ref_precision, "", run_precision)
                     if run_precision is not None and ref_precision is not None
                     else np.full(len(out), "", dtype=object))
        architecture = (out["architecture"].fillna("").to_numpy(dtype=object) if "architecture" in out.columns
                        else np.full(len(out), "", dtype=object))
        x = Covariates(params=np.full(len(out), params), architecture=architecture, precision=precision,
                       gpu_count=out["gpu_count"].to_numpy(float))
        low, median, high = self.predict(x)
        # The fitted value is the attenuation at ref_gpus (β_n already moved it to this count's
        # excess loss); evaluate() applies scale(n)/scale(ref_gpus) on top, exactly as the fit's
        # target was computed from each run (calibration.implied_at).
        n = len(out)
        return {"att_low": np.asarray(low, dtype=float), "att_median": np.asarray(median, dtype=float),
                "att_high": np.asarray(high, dtype=float),
                "uncertainty": np.clip((high - low) / (high + low), *UNCERTAINTY_BOUNDS),
                "ref_gpus": np.full(n, float(self.ref_gpus)),
                "att_source": np.full(n, f"calibrated fit ({self.workload}, {self.runs} runs): {self.source}",
                                      dtype=object)}


def covariates_of(params: list[float], architecture: list[str], precision: list[str],
                  gpu_count: list[float]) -> Covariates:
    return Covariates(params=np.asarray(params, dtype=float), architecture=np.asarray(architecture, dtype=object),
                      precision=np.asarray(precision, dtype=object), gpu_count=np.asarray(gpu_count, dtype=float))


def _design(x: Covariates, ref_gpus: float, groups: list[str]) -> tuple[np.ndarray, list[str]]:
    size = np.where(x.params > 0, np.log10(np.maximum(x.params, 1.0) / PARAMS_PIVOT), 0.0)
    count = np.log2(np.maximum(x.gpu_count, 1.0) / ref_gpus)
    columns = [np.ones(len(size)), size, count]
    names = [INTERCEPT, SIZE, COUNT]
    for g in groups:
        kind, _, value = g.partition(":")
        if kind == "size_arch":   # a generation's own size slope: small models fill an H100 worse
            columns.append(size * (x.architecture == value))
        else:
            source = x.architecture if kind == "arch" else x.precision
            columns.append((source == value).astype(float))
        names.append(g)
    return np.column_stack(columns), names


def fit(y_log: np.ndarray, x: Covariates, *, workload: str, ref_gpus: float, source: str = "",
        as_of: str = "", shrinkage: float = SHRINKAGE) -> EfficiencyModel:
    """Penalised L1 regression of ln(efficiency at ref_gpus) on the covariates (module docstring)."""
    y = np.asarray(y_log, dtype=float)
    archs = {str(a) for a in x.architecture if a}
    groups = sorted({f"arch:{a}" for a in archs} | {f"size_arch:{a}" for a in archs}
                    | {f"precision:{p}" for p in x.precision if p})
    design, names = _design(x, ref_gpus, groups)
    beta = _penalised_l1(design, y, shrinkage)
    count_at = names.index(COUNT)
    if beta[count_at] > 0:  # β_n ≤ 0 (monotone): refit with the count term fixed at 0
        keep = [i for i in range(len(names)) if i != count_at]
        sub = _penalised_l1(design[:, keep], y, shrinkage)
        beta = np.zeros(len(names))
        beta[keep] = sub
    # ... and β_n ≥ MIN_COUNT_SLOPE, so doubling the GPUs still shortens the run (hours fall with n,
    # which the exact-count search relies on)
    beta[count_at] = max(beta[count_at], MIN_COUNT_SLOPE)
    residuals = y - design @ beta
    n = len(y)
    used = int(np.sum(beta != 0.0))
    inflate = math.sqrt(n / max(n - used, 1)) if n > used else 2.0
    low = min(float(np.percentile(residuals, LOW_Q)) * inflate, -MIN_HALF_WIDTH) if n else -MIN_HALF_WIDTH
    high = max(float(np.percentile(residuals, HIGH_Q)) * inflate, MIN_HALF_WIDTH) if n else MIN_HALF_WIDTH
    coefficients = {name: float(b) for name, b in zip(names, beta) if name == INTERCEPT or b != 0.0}
    return EfficiencyModel(workload=workload, coefficients=coefficients, ref_gpus=ref_gpus, resid_p10=low,
                           resid_p90=high, runs=n, source=source, as_of=as_of)


def _penalised_l1(design: np.ndarray, y: np.ndarray, shrinkage: float) -> np.ndarray:
    """argmin Σ|y − Xβ| + λ Σ_{j≥1} |β_j| by IRLS: each step is a weighted ridge-like solve with
    weights 1/|r| on the residuals and λ/|β_j| on the coefficients."""
    rows, cols = design.shape
    if rows == 0:
        return np.zeros(cols)
    beta = np.zeros(cols)
    beta[0] = float(np.median(y))
    penalty = np.full(cols, shrinkage)
    penalty[0] = 0.0
    for _ in range(IRLS_ITERATIONS):
        r = y - design @ beta
        w = 1.0 / np.maximum(np.abs(r), IRLS_FLOOR)
        p = penalty / np.maximum(np.abs(beta), IRLS_FLOOR)
        lhs = design.T @ (design * w[:, None]) + np.diag(p)
        rhs = design.T @ (w * y)
        new = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        if np.max(np.abs(new - beta)) < 1e-9:
            beta = new
            break
        beta = new
    beta[np.abs(beta) < COEFFICIENT_FLOOR] = 0.0
    beta[0] = beta[0] if cols else 0.0
    return beta
