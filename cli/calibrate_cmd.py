"""``flopopt calibrate`` and ``flopopt backtest``: learn attenuation from past runs, and check it.

The commands parse, call ``optimizer.calibration`` (and ``calibration_writer``) or
``optimizer.backtest``, render. Rendering lives here rather than in render.py only because
it is specific to these two reports; it uses the shared
``grid``/``to_json`` helpers so the three formats look like every other command's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .app import CATALOG_OPTION, FORMAT_OPTION, OUTPUT_OPTION, Format, app, emit, guarded

if TYPE_CHECKING:
    from ..optimizer.backtest import Backtest
    from ..optimizer.calibration import Calibration


@app.command()
def calibrate(
    history_file: Path = typer.Argument(..., help="History CSV: one finished run per row (see examples/history.csv)."),
    catalog: Optional[Path] = CATALOG_OPTION,
    rows_to: Optional[Path] = typer.Option(
        None, "--rows-to", metavar="FILE",
        help="Write the calibrated rows to FILE.csv (attenuation.csv format) instead of merging them "
             "into the user catalog folder."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the fitted ranges; write nothing."),
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
) -> None:
    """Fit attenuation ranges from past runs and store them above the bundled catalog.

    Per run: implied attenuation = FLOPs / (GPUs × peak × scale-out × measured seconds).
    Per (scenario, workload[, gpu]) group: range = 10th–90th percentile (mean ± the
    catalog's uncertainty with fewer than 3 runs). The rows are merged into the user
    catalog folder's attenuation.csv, so every later `flopopt solve` uses them.

    Example:  flopopt calibrate examples/history.csv --dry-run

    -o/--output is the report, as in every command; --rows-to FILE is where the rows go.
    """
    from ..catalogs.loader import load_catalog
    from ..optimizer.calibration import calibrate as run_calibrate
    from ..optimizer.calibration_writer import default_calibration_path, write_calibration

    cal = guarded(lambda: run_calibrate(history_file, load_catalog(catalog)))
    target = rows_to if rows_to is not None else default_calibration_path()
    written: Path | None = None
    if not dry_run:
        written = guarded(lambda: write_calibration(cal, rows_to))
    emit(render_calibration(cal, format.value, written=written, would_write=target), output, format.value)
    if format == Format.json:  # the table and markdown reports say it themselves
        typer.echo(f"wrote {len(cal.groups)} calibrated row(s) to {written}" if written is not None
                   else f"dry run: nothing written (would write {target})", err=True)


@app.command()
def backtest(
    runs_file: Path = typer.Argument(..., help="History CSV of finished runs (same format as for calibrate)."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    loo: bool = typer.Option(False, "--loo", help="Also leave-one-out: calibrate on all runs but one, predict "
                             "it, for every run; shown next to the in-sample figure."),
) -> None:
    """How well the current catalog predicts past runs: P50 hours (the point estimate, no
    buffer) vs measured per run, the share inside the predicted P10–P90, and the seed's
    decision-quality metrics (estimate within ±20%, time within 80–120%, cost within 90–110%
    of budget). The planned hours with the buffer are shown too.

    Example:  flopopt backtest --loo examples/history.csv
    """
    from ..catalogs.loader import load_catalog
    from ..optimizer.backtest import backtest as run_backtest

    result = guarded(lambda: run_backtest(runs_file, load_catalog(catalog), loo=loo))
    emit(render_backtest(result, format.value), output, format.value)


# ---------------------------------------------------------------------------
# rendering


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def calibration_dict(cal: Calibration, written: Path | None) -> dict[str, Any]:
    from .render import STATUS_OK, document

    return document(STATUS_OK, {
        "history": cal.history_file,
        "created": cal.created,
        "runs": [{"name": r.name, "row": r.row, "workload": r.kind, "scenario": r.scenario,
                  "scenario_given": r.scenario_given, "gpu": r.gpu, "gpu_count": r.gpu_count,
                  "precision": r.precision, "total_flops": r.total_flops, "measured_hours": r.measured_hours,
                  "mfu": r.mfu, "scale_efficiency": r.scale_efficiency,
                  "implied_attenuation": r.implied_attenuation, "source": r.source} for r in cal.runs],
        "groups": [{"scenario": g.scenario, "workload": g.workload, "gpu": g.gpu or None, "n": g.n,
                    "median": g.median, "low": g.low, "high": g.high, "uncertainty": g.uncertainty,
                    "method": g.method, "source": cal.source_for(g), "runs": list(g.run_names),
                    "current": {"low": g.current_low, "high": g.current_high,
                                "uncertainty": g.current_uncertainty, "row": g.current_source}}
                   for g in cal.groups],
        "written": str(written) if written is not None else None,
    })


def render_calibration(cal: Calibration, fmt: str, *, written: Path | None, would_write: Path) -> str:
    from .render import fit, grid, hours_cells, to_json

    if fmt == "json":
        return to_json(calibration_dict(cal, written))
    measured = hours_cells([r.measured_hours for r in cal.runs])
    run_rows = [(r.name, r.scenario + ("" if r.scenario_given else "*"), f"{r.gpu_count} × {r.gpu}",
                 r.precision, f"{r.total_flops:.3g}", h, f"{r.mfu:.2f}",
                 f"{r.scale_efficiency:.2f}", f"{r.implied_attenuation:.3f}") for r, h in zip(cal.runs, measured)]
    group_rows = [(g.scenario, g.workload, g.gpu or "any", str(g.n), f"{g.median:.3f}",
                   f"{g.low:.3f}–{g.high:.3f}", f"±{g.uncertainty * 100:.0f}%",
                   f"{g.current_low:.2f}–{g.current_high:.2f} ±{g.current_uncertainty * 100:.0f}% ({g.current_source})",
                   g.method) for g in cal.groups]
    text = grid(fmt, f"Runs in {cal.history_file}: implied attenuation = FLOPs / (GPUs × peak × scale-out × seconds)",
                ("run", "scenario", "GPUs", "precision", "FLOPs", "measured", "MFU", "scale-out",
                 "attenuation"), run_rows, drop=("precision", "FLOPs", "scale-out", "MFU"))
    if any(not r.scenario_given for r in cal.runs):
        text += "* scenario not given: 1 GPU → lab, several → cluster\n\n"
    text += grid(fmt, "Fitted attenuation vs the catalog today",
                 ("scenario", "workload", "gpu", "runs", "median", "fitted", "±", "current (row)", "fit"), group_rows,
                 drop=("median", "±", "fit"))
    if written is not None:
        text += f"Written to {written}: these rows now come first in every solve.\n"
    else:
        text += f"Dry run: nothing written (would write {would_write}).\n"
    return fit(text, fmt)


def backtest_dict(result: Backtest) -> dict[str, Any]:
    from .render import STATUS_OK, document

    return document(STATUS_OK, {
        "runs": [{"name": r.name, "predicted_hours": r.predicted_hours, "measured_hours": r.measured_hours,
                  "error_pct": r.error_pct, "predicted_hours_no_buffer": r.predicted_hours_no_buffer,
                  "error_pct_no_buffer": r.error_pct_no_buffer, "scenario": r.scenario, "gpu": r.gpu,
                  "gpu_count": r.gpu_count, "precision": r.precision, "attenuation": r.attenuation,
                  "attenuation_source": r.attenuation_source, "buffer": r.buffer,
                  "scale_efficiency": r.scale_efficiency, "total_flops": r.total_flops,
                  "cost_usd": r.cost_usd, "budget_usd": r.budget_usd,
                  "predicted_hours_p10": r.predicted_hours_p10, "predicted_hours_p90": r.predicted_hours_p90,
                  "planned_hours_with_buffer": r.planned_hours_with_buffer} for r in result.runs],
        "summary": result.summary.as_dict(),
        **({"loo": {"runs": [{"name": r.name, "predicted_hours": r.predicted_hours, "error_pct": r.error_pct,
                              "predicted_hours_p10": r.predicted_hours_p10,
                              "predicted_hours_p90": r.predicted_hours_p90, "attenuation": r.attenuation}
                             for r in result.loo_runs],
                    "summary": result.loo_summary.as_dict(),
                    "in_sample_summary": result.in_sample_summary.as_dict() if result.in_sample_summary else None}}
           if result.loo_summary is not None else {}),
    })


def render_backtest(result: Backtest, fmt: str) -> str:
    from .render import fit, grid, hours_cells, pct, to_json

    if fmt == "json":
        return to_json(backtest_dict(result))
    loo = {r.name: r for r in result.loo_runs}
    both = hours_cells([r.predicted_hours for r in result.runs] + [r.measured_hours for r in result.runs])
    predicted, measured = both[:len(result.runs)], both[len(result.runs):]   # one unit for both columns
    rows = [(r.name, f"{r.gpu_count} × {r.gpu}", r.attenuation_source[:40], f"{r.attenuation:.2f}",
             p, m, pct(r.error_pct), *((pct(loo[r.name].error_pct),) if loo else ()))
            for r, p, m in zip(result.runs, predicted, measured)]
    text = grid(fmt, f"Backtest of {result.history_file}: P50 hours (no buffer) vs measured",
                ("run", "GPUs", "attenuation row", "attenuation", "P50", "measured", "error",
                 *(("error LOO",) if loo else ())), rows, drop=("attenuation row", "attenuation"))
    s = result.summary
    cost = (f"{_pct(s.cost_within_90_110pct)} of {s.cost_runs} run(s) with cost_usd and budget_usd"
            if s.cost_within_90_110pct is not None else "— (no run gives both cost_usd and budget_usd)")
    lines = [
        f"runs: {s.n}",
        f"estimate within ±20% of measured: {_pct(s.within_20pct)} of runs",
        f"median |error|: {s.median_abs_error_pct:.0f}%",
        f"measured time within 80–120% of the plan: {_pct(s.time_within_80_120pct)} of runs",
        f"cost within 90–110% of budget: {cost}",
        f"measured inside the predicted P10–P90 hours: {_pct(s.coverage_p10_p90)} of runs",
    ]
    if result.loo_summary is not None and result.in_sample_summary is not None:
        o, i = result.loo_summary, result.in_sample_summary
        lines += [
            "calibrated on this history (flopopt calibrate's fit):",
            f"  leave-one-out: within ±20% {_pct(o.within_20pct)}, median |error| {o.median_abs_error_pct:.0f}%, "
            f"P10–P90 coverage {_pct(o.coverage_p10_p90)}",
            f"  in-sample:     within ±20% {_pct(i.within_20pct)}, median |error| {i.median_abs_error_pct:.0f}%, "
            f"P10–P90 coverage {_pct(i.coverage_p10_p90)}  (fitted and scored on the same runs: optimistic)",
        ]
    if fmt == "markdown":
        return text + "\n".join(f"- {line}" for line in lines) + "\n"
    return fit(text + "\n".join(lines) + "\n", fmt)
