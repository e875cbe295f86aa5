"""Rendering of ``flopopt compare``: table, JSON (docs/schema/compare.json) and markdown.

Kept apart from render.py (one module per command's report) but built from its
pieces — grid(), usd(), hours_text(), to_json(), plan_dict — so the formats agree.
Nothing here computes a decision; the recommendation only puts the numbers in words.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from ..optimizer.compare import ClassResult, ComparedPlan, Comparison, Ownership, QuoteResult
from ..optimizer.result import Plan, plan_dict
from .render import days_text, document, estimate_dict, fit, flops_text, grid, hours_cells, hours_text, to_json, usd

KIND_WORDS = {"on_demand": "on-demand", "spot": "spot", "reserved": "reserved", "owned": "owned",
              "cluster_quote": "cluster quote", "edge": "edge"}


# ---------------------------------------------------------------------------
# JSON


def compared_dict(item: ComparedPlan | None) -> dict[str, Any] | None:
    """The solve contract's plan object plus compare's fields."""
    if item is None:
        return None
    return {**(plan_dict(item.plan) or {}), "offer_class": item.offer_class, "source": item.source,
            "cost_per_pflop_usd": item.cost_per_pflop_usd, "deadline_met": item.deadline_met,
            "within_budget": item.within_budget}


def _class_dict(c: ClassResult) -> dict[str, Any]:
    return {"offer_class": c.offer_class, "label": c.label, "best": compared_dict(c.best), "reason": c.reason,
            "candidates": c.candidates, "feasible": c.feasible, "top": [compared_dict(p) for p in c.top],
            "nearest": compared_dict(c.nearest)}


def _quote_dict(q: QuoteResult) -> dict[str, Any]:
    return {"file": q.file, "best": compared_dict(q.best), "reason": q.reason, "form": q.form,
            "offers": q.offers, "candidates": q.candidates, "feasible": q.feasible,
            "nearest": compared_dict(q.nearest)}


def compare_dict(comparison: Comparison) -> dict[str, Any]:
    status = "optimal" if comparison.optimum is not None else "infeasible"
    return document(status, {
        "job": comparison.job.model_dump(mode="json"),
        "estimate": estimate_dict(comparison.estimate),
        "classes": [_class_dict(c) for c in comparison.classes],
        "quotes": [_quote_dict(q) for q in comparison.quotes],
        "pareto": [compared_dict(p) for p in comparison.pareto],
        "optimum": compared_dict(comparison.optimum),
        "ownership": [asdict(o) for o in comparison.ownership],
        "binding": comparison.binding,
        "explanation": comparison.explanation,
        "recommendation": recommendation(comparison),
        "catalog": {"layers": list(comparison.catalog_layers)},
    })


# ---------------------------------------------------------------------------
# words


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def per_pflop(value: float) -> str:
    """USD per PFLOP delivered; small numbers for modern GPUs, so show significant digits."""
    return f"${value:.3g}"


def _utilization_text(value: float | None) -> str:
    if value is None:
        return "never"
    return f"{value:.0%}" if value <= 1 else f"never ({value:.0%} needed)"


def _plan_words(item: ComparedPlan) -> str:
    p = item.plan
    kind = KIND_WORDS.get(p.kind, p.kind)
    if p.kind in ("owned", "edge"):
        head = f"Run on the {kind} {p.gpu_count}×{p.gpu} ({p.offer_id})"
    elif p.kind == "cluster_quote":
        head = f"Take the cluster quote from {p.provider}: {p.gpu_count}×{p.gpu}"
    else:
        head = f"Rent {p.gpu_count}×{p.gpu} {kind} on {p.provider}"
    where = "" if item.source == "catalog" else f" (quoted in {item.source})"
    return (f"{head}{where} at {p.precision}: {usd(p.cost_usd)}, {p.days:,.1f} days "
            f"({per_pflop(item.cost_per_pflop_usd)} per PFLOP delivered)")


def _ownership_words(o: Ownership) -> str | None:
    """One sentence per owned machine that can run the job; None when it cannot."""
    if o.delivered_pflop_per_hour is None or o.rental_equivalent_per_hour_usd is None:
        return None
    name = f"the {o.gpus_per_instance}×{o.gpu} machine {o.offer_id}"
    rent = usd(o.rental_equivalent_per_hour_usd)
    u = o.break_even_utilization
    if u is None:
        buying = (f"buying it never pays: power and fees alone ({usd(o.power_per_hour_usd + o.fee_per_hour_usd)}/h) "
                  f"cost more than renting its throughput ({rent}/h)")
    elif u > 1:
        buying = f"buying it would only beat renting its throughput ({rent}/h) at {u:.0%} utilisation, i.e. never"
    else:
        verdict = "owning wins" if o.utilization >= u else "renting wins"
        buying = (f"owning it beats renting its throughput ({rent}/h) above {u:.0%} utilisation "
                  f"(planned {o.utilization:.0%}, so {verdict})")
    if not o.sunk:
        return f"For {name}, {buying}."
    marginal = "is cheaper than" if o.beats_rental else "still costs more than"
    return (f"For {name}, {o.sunk_note}: running it ({usd(o.total_per_hour_usd)}/h) {marginal} renting "
            f"the same throughput ({rent}/h) — though {buying}.")


def recommendation(comparison: Comparison) -> str:
    """A short paragraph generated from the numbers: the choice, the trade-off, quotes, ownership."""
    sentences: list[str] = []
    best = comparison.optimum
    if best is None:
        sentences.append(f"No plan meets the job's limits ({comparison.binding}): {comparison.explanation}.")
    else:
        sentences.append(_plan_words(best) + ".")
        fastest = min(comparison.pareto, key=lambda p: p.plan.hours, default=None)
        if fastest is not None and fastest.plan.hours < best.plan.hours * 0.95:
            extra = fastest.plan.cost_usd - best.plan.cost_usd
            sentences.append(
                f"The fastest plan on the cost/time front, {fastest.label}, finishes in "
                f"{fastest.plan.days:,.1f} days for {usd(extra)} more.")
        for q in comparison.quotes:
            name = Path(q.file).name
            if q.best is None:
                sentences.append(f"The quote {name} has no feasible plan ({q.reason}).")
            elif q.best.source == best.source and q.best.plan.offer_id == best.plan.offer_id:
                sentences.append(f"The quote {name} provides the optimum.")
            else:
                delta = (q.best.plan.cost_usd / best.plan.cost_usd - 1) * 100 if best.plan.cost_usd else 0.0
                sentences.append(f"The quote {name} is best at {q.best.plan.gpu_count}×{q.best.plan.gpu} "
                                 f"{q.best.plan.precision}: {usd(q.best.plan.cost_usd)}, "
                                 f"{q.best.plan.days:,.1f} days ({delta:+.0f}% vs the optimum).")
    for o in comparison.ownership:
        words = _ownership_words(o) if o.kind == "owned" else None
        if words:
            sentences.append(words)
    return " ".join(sentences)


# ---------------------------------------------------------------------------
# tables (fit the output width: render.grid drops the ``*_DROP`` columns first; notes go below)

PLAN_HEADERS = ("plan", "provider", "offer", "hours", "days", "cost", "$/PFLOP", "deadline", "budget")
ROW_HEADERS = ("plan", "offer", "hours", "days", "cost", "$/PFLOP", "limits")
ROW_DROP = ("days", "$/PFLOP", "limits")


def _plan_text(item: ComparedPlan) -> str:
    p = item.plan
    return f"{p.gpu_count}×{p.gpu} {p.precision}"


def _limits_text(item: ComparedPlan) -> str:
    missed = [name for name, ok in (("deadline", item.deadline_met), ("budget", item.within_budget)) if not ok]
    return "met" if not missed else " & ".join(missed) + " NO"


def _where(p: Plan) -> str:
    return f"{p.provider} ({p.region})" if p.region else p.provider  # region on every plan table


def _plan_rows(items: Sequence[ComparedPlan]) -> list[tuple[str, ...]]:
    hours = hours_cells([i.plan.hours for i in items])
    return [(_plan_text(i), _where(i.plan), i.plan.offer_id, h, days_text(i.plan.hours), usd(i.plan.cost_usd),
             per_pflop(i.cost_per_pflop_usd), _yes(i.deadline_met), _yes(i.within_budget))
            for i, h in zip(items, hours)]


def _short_rows(items: Sequence[ComparedPlan | None]) -> list[tuple[str, ...]]:
    """One row per class or quote file (— when it has no plan), hours in one unit."""
    hours = hours_cells([i.plan.hours for i in items if i is not None])
    rows: list[tuple[str, ...]] = []
    for item in items:
        if item is None:
            rows.append(("—",) + ("",) * (len(ROW_HEADERS) - 1))
            continue
        p = item.plan
        rows.append((_plan_text(item), p.offer_id, hours.pop(0), days_text(p.hours), usd(p.cost_usd),
                     per_pflop(item.cost_per_pflop_usd), _limits_text(item)))
    return rows


def _notes(lines: list[str], md: bool) -> str:
    if not lines:
        return ""
    return "".join(("- " if md else "  ") + line + "\n" for line in lines) + "\n"


def _ownership_rows(comparison: Comparison) -> tuple[list[tuple[str, ...]], list[str]]:
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for o in comparison.ownership:
        runs = o.delivered_pflop_per_hour is not None and o.rental_equivalent_per_hour_usd is not None
        rows.append((
            o.offer_id, f"{o.gpus_per_instance}×{o.gpu}", f"{usd(o.capex_usd)} / {o.amortization_years:g} y",
            f"{o.utilization:.0%}", usd(o.amortized_capex_per_hour_usd), usd(o.power_per_hour_usd),
            usd(o.total_per_hour_usd), usd(o.rental_equivalent_per_hour_usd) if runs else "—",
            _utilization_text(o.break_even_utilization) if runs else "—",
        ))
        for text in (o.sunk_note, None if runs and o.note.startswith("cheapest rental within") else o.note):
            if text:
                notes.append(f"{o.offer_id}: {text}")
    notes.append("capex $/h = capex / (years × 8,760 h × utilisation), 0 when sunk; rent $/h = the cheapest "
                 "rental's $ per PFLOP × the machine's PFLOP/h (rentals within ×2 of its throughput); "
                 "break-even u* = capex / (years × 8,760 h) / (rent $/h − power $/h − fees $/h)")
    return rows, notes


OWNERSHIP_HEADERS = ("offer", "hardware", "capex / amortised", "util.", "capex $/h", "power $/h",
                     "total $/h", "rent $/h", "break-even util.")


def render_compare(comparison: Comparison, fmt: str) -> str:
    if fmt == "json":
        return to_json(compare_dict(comparison))
    md = fmt == "markdown"
    job = comparison.job
    c = job.constraints
    limits = ", ".join(part for part in (
        f"deadline {hours_text(c.deadline_hours)} ({days_text(c.deadline_hours)})" if c.deadline_hours else "",
        f"budget {usd(c.budget_usd)}" if c.budget_usd else "",
        f"max {c.max_gpus} GPUs" if c.max_gpus else "",
        f"objective {job.objective}",
    ) if part)
    est = comparison.estimate
    bullet = "- " if md else "  "
    title = f"{job.name}: cloud vs local vs cluster"
    out: list[str] = [f"# {title}\n\n" if md else f"{title}\n"]
    out.append(f"{bullet}FLOPs: {flops_text(est.total_flops)} = {est.formula} "
               f"({comparison.total_pflop:,.4g} PFLOP)\n")
    out.append(f"{bullet}limits: {limits}\n\n")
    if md:
        out.append("## Recommendation\n\n" + recommendation(comparison) + "\n\n")
        for cls in comparison.classes:
            if cls.top:
                out.append(grid(fmt, f"{cls.label} — {cls.reason}", PLAN_HEADERS, _plan_rows(cls.top)))
                continue
            out.append(f"### {cls.label}\n\n{cls.reason}.\n\n")
            if cls.nearest is not None:
                out.append("Nearest plan, limits ignored:\n\n"
                           + grid(fmt, None, PLAN_HEADERS, _plan_rows([cls.nearest])))
    else:
        notes = [f"{cls.label}: {cls.reason}" + ("; the nearest plan (limits ignored) is shown" if cls.nearest else "")
                 for cls in comparison.classes if cls.best is None]
        short = _short_rows([cls.best or cls.nearest for cls in comparison.classes])
        out.append(grid(fmt, "Best plan per offer class", ("class", *ROW_HEADERS),
                        [(cls.label, *row) for cls, row in zip(comparison.classes, short)], drop=ROW_DROP))
        out.append(_notes(notes, md))
    if comparison.quotes:
        short = _short_rows([q.best or q.nearest for q in comparison.quotes])
        out.append(grid(fmt, "Quotes", ("quotes file", *ROW_HEADERS),
                        [(Path(q.file).name, *row) for q, row in zip(comparison.quotes, short)],
                        drop=(*ROW_DROP, "plan", "hours")))
        out.append(_notes([f"{q.file} ({q.form} form, {q.offers} offer(s)): {q.reason}" for q in comparison.quotes],
                          md))
    if comparison.pareto:
        out.append(grid(fmt, "Pareto front: no plan here is both slower and dearer than another",
                        PLAN_HEADERS[:7], [row[:7] for row in _plan_rows(comparison.pareto)],
                        drop=("days", "$/PFLOP", "provider")))
    if comparison.ownership:
        rows, notes = _ownership_rows(comparison)
        out.append(grid(fmt, "Owned / local hardware: total cost of ownership (per instance and busy hour)",
                        OWNERSHIP_HEADERS, rows, drop=("capex / amortised", "util.", "capex $/h", "power $/h")))
        out.append(_notes(notes, md))
    if not md:
        out.append("RECOMMENDATION  " + recommendation(comparison) + "\n")
    return fit("".join(out), fmt)
