"""``flopopt plan``: a portfolio of jobs over a horizon — what to buy, reserve and rent.

The command parses, calls ``procurement.plan`` and renders. The report's rendering
lives here rather than in render.py (one module per command's report, like
render_compare.py) but is built from render.py's pieces — grid(), usd(),
hours_cells(), document(), to_json() — so the formats agree. Nothing here computes a decision.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .app import (
    CATALOG_OPTION,
    EXIT_INFEASIBLE,
    EXIT_STOPPED,
    FORMAT_OPTION,
    OUTPUT_OPTION,
    SOLVER_OPTION,
    TIME_LIMIT_OPTION,
    Format,
    Solver,
    app,
    emit,
    guarded,
)

if TYPE_CHECKING:
    from ..optimizer.procurement_result import Assignment, PlanResult


@app.command()
def plan(
    portfolio_file: Path = typer.Argument(..., help="Portfolio YAML file (see examples/portfolio/)."),
    catalog: Optional[Path] = CATALOG_OPTION,
    format: Format = FORMAT_OPTION,
    output: Optional[Path] = OUTPUT_OPTION,
    solver: Solver = SOLVER_OPTION,
    time_limit: Optional[float] = TIME_LIMIT_OPTION,
) -> None:
    """Plan a portfolio of jobs over a horizon: which hardware to buy or reserve in which period,
    where each job runs, the total cost of ownership and each option's buy-vs-rent break-even.

    Example:  flopopt plan examples/portfolio/research-lab.yaml --format json

    Exit codes: 0 plan found (a time-limited plan, not proven optimal, too: status time_limit and a
    warning), 2 invalid input, 3 infeasible (the binding limit is named), 4 the solver stopped at
    --time-limit (or another limit) before finding any plan (not a proof that none exists).
    """
    from ..catalogs.loader import load_catalog
    from ..optimizer.portfolio import load_portfolio
    from ..optimizer.procurement import plan as run_plan
    from ..optimizer.vocabulary import Status

    def call() -> PlanResult:
        portfolio = load_portfolio(portfolio_file)
        return run_plan(portfolio, load_catalog(catalog), solver=solver.value, time_limit_seconds=time_limit)

    result = guarded(call)
    emit(render_plan(result, format.value), output, format.value)
    if result.status is Status.INFEASIBLE:
        typer.echo(f"infeasible: {result.binding}: {result.explanation}", err=True)
        raise typer.Exit(EXIT_INFEASIBLE)
    if result.cost is None:   # time_limit / not_solved without an incumbent: nothing is proven
        typer.echo(f"stopped: {result.explanation}", err=True)
        raise typer.Exit(EXIT_STOPPED)
    if result.status is not Status.OPTIMAL:
        typer.echo(f"warning: {result.explanation}", err=True)


# ---------------------------------------------------------------------------
# JSON (docs/schema/plan.json; extra keys are additions, never renames)


def plan_dict(result: PlanResult) -> dict[str, Any]:
    from .render import document

    cost = result.cost
    return document(result.status.value, {
        "portfolio": {"name": result.portfolio.name, "file": result.portfolio.source_file,
                      "periods": result.portfolio.horizon.periods,
                      "period_hours": result.portfolio.horizon.period_hours,
                      "budget_usd": result.portfolio.budget_usd, "jobs": len(result.portfolio.jobs)},
        "purchases": [{"period": p.period, "option": p.option, "count": p.count, "capex_usd": p.capex_usd,
                       "gpu": p.gpu, "gpus": p.gpus, "usable_from": p.usable_from, "resale_usd": p.resale_usd}
                      for p in result.purchases],
        "rentals": [_assignment_dict(a) for a in result.rentals],
        "commitments": [asdict(c) for c in result.commitments],
        "assignments": [_assignment_dict(a) for a in result.assignments],
        "periods": [asdict(p) for p in result.periods],
        "cost": None if cost is None else {
            "rental_usd": cost.rental_usd, "capex_usd": cost.capex_usd, "power_usd": cost.power_usd,
            "resale_usd": cost.resale_usd, "total_usd": cost.total_usd, "reserved_usd": cost.reserved_usd,
            "cash_usd": cost.cash_usd},
        "break_even": {b.option: asdict(b) for b in result.break_even},
        "binding": result.binding,
        "explanation": result.explanation,
        "model": asdict(result.stats),
        "catalog": {"layers": list(result.catalog_layers)},
        "warnings": list(result.warnings),
    })


def _assignment_dict(a: Assignment) -> dict[str, Any]:
    return {"job": a.job, "offer_id": a.offer_id, "gpu_count": a.gpu_count, "period": a.period, "hours": a.hours,
            "cost_usd": a.cost_usd, "resource": a.resource, "option": a.option, "provider": a.provider,
            "kind": a.kind, "gpu": a.gpu, "instances": a.instances, "precision": a.precision,
            "scenario": a.scenario, "periods": list(a.periods)}


# ---------------------------------------------------------------------------
# table / markdown


def render_plan(result: PlanResult, fmt: str) -> str:
    from .render import fit, gap_note, grid, hours_cells, to_json, usd

    if fmt == "json":
        return to_json(plan_dict(result))
    md = fmt == "markdown"
    p = result.portfolio
    bullet = "- " if md else "  "
    out = [f"# {p.name}: {result.status.value}\n\n" if md else f"{p.name}: {result.status.value}\n"]
    budget = f", shared budget {usd(p.budget_usd)}" if p.budget_usd else ""
    out.append(f"{bullet}{len(p.jobs)} jobs over {p.horizon.periods} periods of {p.horizon.period_hours:,.0f} h"
               f"{budget}; objective: total cost of ownership\n\n")
    if result.cost is None:
        why = f"binding: {result.binding}" if result.binding else f"status: {result.status.value}"
        out.append(("**No plan.** " if md else "NO PLAN  ") + f"{why}\n")
        out.append(("" if md else "  ") + f"{result.explanation}\n\n")
    else:
        if result.explanation:   # a plan with an explanation: the solver stopped, not proven optimal
            out.append(("**Warning:** " if md else "warning: ") + f"{result.explanation}\n\n")
        c = result.cost
        out.append(("**Total cost:** " if md else "TOTAL ") +
                   f"{usd(c.total_usd)} = rentals {usd(c.rental_usd)} + capex {usd(c.capex_usd)} + power "
                   f"{usd(c.power_usd)}" + (f" + reserved {usd(c.reserved_usd)}" if c.reserved_usd else "") +
                   f" − resale {usd(c.resale_usd)}; cash spent {usd(c.cash_usd)}\n\n")
        bought = [(str(b.period), b.option, str(b.count), f"{b.count * b.gpus} × {b.gpu}", usd(b.capex_usd),
                   f"period {b.usable_from}", usd(b.resale_usd)) for b in result.purchases]
        bought += [(str(c.period), c.option, str(c.count), f"{c.count * c.gpus} × {c.gpu}", usd(c.cost_usd),
                    f"periods {c.usable_from}–{c.usable_until}" + (" (signed)" if c.signed else ""), "—")
                   for c in result.commitments]
        if bought:
            out.append(grid(fmt, "Buy / reserve", ("period", "option", "units", "GPUs", "cost", "usable",
                                                   "resale"), bought))
        else:
            out.append(f"{bullet}nothing to buy or reserve: renting is cheaper for every job\n\n")
        hours = hours_cells([a.hours for a in result.assignments])
        rows = [(a.job, str(a.period), _where(a), f"{a.gpu_count} × {a.gpu}", a.precision, h, usd(a.cost_usd))
                for a, h in zip(result.assignments, hours)]
        out.append(grid(fmt, "Where each job runs", ("job", "period", "on", "GPUs", "prec.", "hours",
                                                     "direct cost"), rows, drop=("prec.", "period")))
        period_rows = [(str(u.period), ", ".join(f"{k} {v}" for k, v in u.units.items() if v) or "—",
                        f"{u.owned_gpu_hours:,.0f}", f"{u.used_gpu_hours:,.0f}",
                        f"{u.used_gpu_hours / u.owned_gpu_hours:.0%}" if u.owned_gpu_hours else "—",
                        f"{u.reserved_used_gpu_hours:,.0f} / {u.reserved_gpu_hours:,.0f}" if u.reserved_gpu_hours
                        else "—", f"{u.rented_gpu_hours:,.0f}", ", ".join(u.jobs_started))
                       for u in result.periods]
        out.append(grid(fmt, "Periods (GPU-hours)", ("period", "units on hand", "owned", "owned used", "busy",
                                                     "reserved used / on hand", "rented", "jobs starting"),
                        period_rows))
    if result.break_even:
        out.append(grid(fmt, "Buy vs rent break-even", ("option", "break-even"),
                        [(b.option, b.note) for b in result.break_even]))
    s = result.stats
    line = (f"model: {s.jobs} jobs × {s.periods} periods; {s.enumerated:,} candidates → {s.feasible:,} feasible → "
            f"{s.kept:,} kept; MILP {s.variables:,} variables ({s.integer_variables} integer), "
            f"{s.constraints:,} constraints, {s.solver}; candidates {s.candidate_seconds:.1f} s, "
            f"solve {s.solve_seconds:.1f} s{gap_note(s.mip_gap, result.status.value)}; catalog: "
            f"{', '.join(result.catalog_layers)}")
    out.append(f"_{line}_\n" if md else line + "\n")
    for w in result.warnings:
        out.append(w + "\n")
    return fit("".join(out), fmt)


def _where(a: Assignment) -> str:
    if a.resource == "purchase":
        return f"bought {a.option}"
    if a.resource == "reserved":
        return f"reserved {a.option}"
    where = f" in {a.region}" if a.region else ""
    return f"{a.offer_id} ({a.provider} {a.kind}{where})"
