"""All rendering: rich tables, JSON (docs/output-contract.md) and markdown.

Library results come in, strings go out; nothing here computes a number.

Text tables fit the output width (:func:`output_width`): ids never break — an offer id
is what the user pastes into ``catalog show`` — so when a table cannot fit, its lesser
columns are dropped (and named under it) before any id would have to fold. Lines of
prose longer than the width wrap at spaces, never inside a word or an id.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import shutil
import sys
import textwrap
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..optimizer.estimate import MAX_ENVELOPE_GPUS, EstimateReport, GpuEstimate
from ..optimizer.flops import FlopEstimate
from ..optimizer.result import Plan, Result, SensitivityItem, plan_dict
from ..optimizer.serving_solve import ServingResult
from .contract import STATUS_OK as STATUS_OK  # re-exported: every report builds its JSON from render
from .contract import document as document
from .contract import to_json as to_json

if TYPE_CHECKING:
    import pandas as pd

    from ..catalogs.guards import HeldRow

FORMATS = ("table", "json", "markdown")

DEFAULT_WIDTH = 100        # text width when stdout is not a terminal and COLUMNS is not set
MIN_WIDTH = 40             # narrower than this, tables cannot say anything useful
# Columns whose cells are ids (pasted into other commands): never wrapped or folded.
ID_COLUMNS = frozenset({"offer", "offer_id", "option", "GPU"})
_BOX = frozenset("│┃━─╇┼╋┿")
# "352 h", "19.5 of 192 GB", "64 × MI300X", "tokens = 2e+12": a number stays on the line of its unit.
_KEEP_TOGETHER = re.compile(r"\w+ = [^\s,]+|\d (?:× \S+|of \d\S*(?: GB)?|(?:h|min|d|s|ms|GB|days|samples)\b)")
_NBSP = "\u00a0"


# ---------------------------------------------------------------------------
# number formatting


def usd(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def hours_text(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value < 1:
        return f"{value * 60:,.1f} min"
    return f"{value:,.1f} h" if value < 100 else f"{value:,.0f} h"


def hours_cells(values: Sequence[float | None]) -> list[str]:
    """One duration unit for a whole column: minutes only when every value is under an hour.

    Mixing "49.1 min" and "1,202 h" in one column makes it unreadable at a glance; hours
    keep one decimal below 100 h (0.8 h), none above.
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if finite and max(finite) < 1:
        return [hours_text(v) for v in values]
    return ["—" if v is None or not math.isfinite(v) else (f"{v:,.1f} h" if v < 100 else f"{v:,.0f} h")
            for v in values]


def days_text(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value / 24:,.1f} d"


def flops_text(value: float) -> str:
    return f"{value:.3g} FLOPs"


def pct(value: float | None, signed: bool = True) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.0f}%" if signed else f"{value:.0f}%"


# ---------------------------------------------------------------------------
# width and tables


def output_width() -> int:
    """The text width: ``COLUMNS`` when set, else the terminal's, else DEFAULT_WIDTH (files, pipes)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        return max(int(columns), MIN_WIDTH)
    if sys.stdout.isatty():
        return max(shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns, MIN_WIDTH)
    return DEFAULT_WIDTH


LONG_WORD = 48    # longer than any offer id; URLs and paths beyond it fold in non-id columns
SHORT_CELL = 10   # cells this short ("1,202 h", "$45,120") are never wrapped either


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.split("\n")), default=0)


def _word_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in text.split()), default=0)


def _column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], keep: Sequence[int],
                   width: int) -> list[int] | None:
    """Content width per kept column so that ids and short cells stay whole and long text
    wraps only at spaces; None when these columns cannot fit in ``width``.

    Rich's own shrinking cuts the widest columns first, words and ids included, so the
    widths are fixed here: every column gets its minimum (whole cell for ids and short
    cells, the longest word otherwise), and the room left goes to the wrapping columns in
    proportion to what they would need to be unwrapped.
    """
    lows, highs = [], []
    for i in keep:
        cells = [str(r[i]) for r in rows]
        high = max([_cell_width(c) for c in cells] + [_word_width(headers[i])])
        whole = headers[i] in ID_COLUMNS or high <= SHORT_CELL
        # A word longer than LONG_WORD (a URL in a source) may fold; anything shorter stays whole.
        low = high if whole else min(max([_word_width(c) for c in cells] + [_word_width(headers[i]), 1]),
                                     max(LONG_WORD, _word_width(headers[i])))
        lows.append(low)
        highs.append(high)
    overhead = 3 * len(keep) - 3       # " │ " between columns; no padding at the outer edges
    room = width - overhead
    if sum(lows) > room:
        return None
    if sum(highs) <= room:
        return highs
    spare, want = room - sum(lows), [h - lo for h, lo in zip(highs, lows)]
    total = sum(want)
    widths = [lo + (spare * w) // total for lo, w in zip(lows, want)]
    return widths


def _rich_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]],
                keep: Sequence[int], widths: Sequence[int]) -> Any:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for i, w in zip(keep, widths):
        is_id = headers[i] in ID_COLUMNS
        table.add_column(headers[i], no_wrap=is_id, overflow="ignore" if is_id else "fold", width=w)
    for r in rows:
        table.add_row(*[str(r[i]) for i in keep])
    return table


def _table_to_text(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]],
                   drop: Sequence[str]) -> str:
    """The table at the output width, dropping columns (``drop`` order, else right to left,
    never the first column or an id) until no id and no word has to break."""
    from rich.console import Console

    width = output_width()
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, highlight=False)
    order = [headers.index(h) for h in drop if h in headers]
    order += [i for i in reversed(range(1, len(headers))) if i not in order and headers[i] not in ID_COLUMNS]
    keep = list(range(len(headers)))
    dropped: list[str] = []
    widths = _column_widths(headers, rows, keep, width)
    while widths is None and order:
        column = order.pop(0)
        keep.remove(column)
        dropped.append(headers[column])
        widths = _column_widths(headers, rows, keep, width)
    if widths is None:  # only ids left and still too wide: print them whole, wider than asked
        widths = [max([_cell_width(str(r[i])) for r in rows] + [_cell_width(headers[i])]) for i in keep]
    if title:   # above the table, not in it: a title as wide as a narrow table would fold its words
        console.print(title, overflow="ignore", crop=False)
    console.print(_rich_table(title, headers, rows, keep, widths))
    if dropped:
        console.print(f"(hidden at {width} columns: {', '.join(dropped)})")
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


# "<" that could open an HTML tag, comment or processing instruction. Only those are
# escaped: "< 1 h" stays readable, and no text from a feed or file can become markup.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def markdown_safe(text: str) -> str:
    """Markdown with every would-be HTML tag escaped (``<script>`` → ``&lt;script>``)."""
    return _TAG_START.sub("&lt;", text)


def _markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines) + "\n"


def grid(fmt: str, title: str | None, headers: Sequence[str], rows: Iterable[Sequence[str]],
         drop: Sequence[str] = ()) -> str:
    """One table in the chosen text format (table or markdown); ``drop`` names the columns
    to give up first when a text table does not fit the width."""
    if fmt == "markdown":
        return (f"### {title}\n\n" if title else "") + _markdown_table(headers, list(rows)) + "\n"
    return _table_to_text(title, headers, list(rows), drop) + "\n"


def fit(text: str, fmt: str) -> str:
    """Wrap the prose lines of a text report to the output width (tables already fit).

    Continuation lines are indented under the line's own indent plus four spaces; words and
    ids are never split at hyphens, and only a word longer than a whole line (a long file
    path) is cut.
    """
    if fmt != "table":
        return text
    width = output_width()
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width or _BOX & set(line):
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        line = _KEEP_TOGETHER.sub(lambda m: m.group(0).replace(" ", _NBSP), line)
        # break_long_words only splits a word longer than the whole line (a long path), never an id.
        out.extend(textwrap.wrap(line, width=width, subsequent_indent=indent + "    ", break_long_words=True,
                                 break_on_hyphens=False, drop_whitespace=True) or [line])
    return "\n".join(out).replace(_NBSP, " ")


# ---------------------------------------------------------------------------
# estimate


def estimate_dict(estimate: FlopEstimate) -> dict[str, Any]:
    return {"total_flops": estimate.total_flops, "formula": estimate.formula, "terms": dict(estimate.terms)}


def _terms_text(estimate: FlopEstimate) -> str:
    return ", ".join(f"{k} = {v:.4g}" for k, v in estimate.terms.items())


def gpu_estimate_dict(g: GpuEstimate) -> dict[str, Any]:
    return asdict(g)


def estimate_report_dict(report: EstimateReport, all_rows: bool = False) -> dict[str, Any]:
    """``estimate``'s document: ``per_gpu`` holds the rows the table shows (``--all``: every row)."""
    rows = report.per_gpu if all_rows else report.smallest_fit
    return document(STATUS_OK, {
        "job": report.job.model_dump(mode="json"),
        "estimate": estimate_dict(report.estimate),
        "rows": "all" if all_rows else "smallest_fit",
        "per_gpu": [gpu_estimate_dict(g) for g in rows],
        "no_fit": list(report.no_fit),
    })


def render_estimate(report: EstimateReport, fmt: str, all_rows: bool = False) -> str:
    if fmt == "json":
        return to_json(estimate_report_dict(report, all_rows))
    est = report.estimate
    head = (f"{report.job.name}: {flops_text(est.total_flops)} = {est.formula}\n"
            f"  terms: {_terms_text(est)}\n"
            "  hours = FLOPs × (1 + buffer) / (GPUs × peak × attenuation × scale-out) / 3600\n\n")
    if fmt == "markdown":
        indented = "\n".join(f"    {line}" for line in head.splitlines())
        head = f"## {report.job.name}: FLOP estimate\n\n{indented}\n\n"
    per_gpu = report.per_gpu if all_rows else report.smallest_fit
    hours = hours_cells([g.hours for g in per_gpu])
    rows = [
        (g.gpu, str(g.gpu_count), g.precision, f"{g.peak_tflops:,.1f}", g.scenario, f"{g.attenuation:.2f}",
         f"{g.attenuation_low:.2f}–{g.attenuation_high:.2f}", pct(g.buffer * 100, False),
         f"{g.need_gb_per_gpu:,.1f} / {g.memory_gb:,.0f}" + ("" if g.fits_memory else " NO"), h, days_text(g.hours))
        for g, h in zip(per_gpu, hours)
    ]
    headers = ("GPU", "GPUs", "precision", "peak TFLOPS", "scenario", "atten.", "range", "buffer", "memory GB",
               "hours", "days")
    title = ("Hours per GPU type, precision, scenario and count (before prices)" if all_rows else
             "Hours per GPU type at the fewest GPUs that hold the job in memory (before prices)")
    text = head + grid(fmt, title, headers, rows, drop=("range", "peak TFLOPS", "days", "buffer"))
    notes = []
    if report.no_fit:
        limit = report.job.constraints.max_gpus or MAX_ENVELOPE_GPUS
        notes.append(f"cannot hold the job at up to {limit:,} GPUs: {', '.join(report.no_fit)}")
    if not all_rows:
        notes.append("memory GB = needed per GPU / on the GPU; --all shows 1 and 8 GPUs, every precision "
                     "and scenario")
    text += "".join(("- " if fmt == "markdown" else "  ") + n + "\n" for n in notes)
    return fit(text, fmt)


# ---------------------------------------------------------------------------
# solve


def sensitivity_dict(item: SensitivityItem) -> dict[str, Any]:
    return {
        item.category: item.name,
        "assumption": item.assumption,
        "plan": plan_dict(item.plan),
        "hours": item.hours,
        "cost_usd": item.cost_usd,
        "delta_cost_pct": item.delta_cost_pct,
        "deadline_met": item.deadline_met,
        "within_budget": item.within_budget,
        "skipped": item.skipped,
        "summary": item.summary,
        "believed_hours": item.believed_hours,
    }


# The core plan fields of the contract (docs/schema/common.json#/$defs/candidate);
# candidates carry these, plans carry more.
CANDIDATE_FIELDS = ("offer_id", "provider", "kind", "gpu", "gpu_count", "instances", "precision", "scenario",
                    "attenuation", "buffer", "hours", "cost_usd", "price_as_of")


def solve_dict(result: Result, price_note: str | None = None, all_candidates: bool = False) -> dict[str, Any]:
    """``solve``'s document. ``candidates`` are the feasible ones (dominated ones included,
    with their reason) unless ``all_candidates``: every enumerated one, thousands for a big catalog."""
    return document(result.status.value, {
        "job": result.job.model_dump(mode="json"),
        "estimate": estimate_dict(result.estimate),
        "plan": plan_dict(result.plan),
        "candidates_shown": "all" if all_candidates else "feasible",
        "candidates": result.candidates.records(CANDIDATE_FIELDS, feasible_only=not all_candidates),
        "sensitivity": [sensitivity_dict(s) for s in result.sensitivity],
        "break_even": result.break_even,
        "risk": asdict(result.risk) if result.risk else {},
        "binding": result.binding,
        "explanation": result.explanation,
        "alternatives": [plan_dict(p) for p in result.alternatives],
        "excluded": result.excluded,
        "model": asdict(result.stats),
        "catalog": {"layers": list(result.catalog_layers), "warnings": list(result.warnings),
                    "prices": price_note},
    })


def plan_summary(plan: Plan) -> str:
    where = f"{plan.provider} {plan.kind}" + (f" in {plan.region}" if plan.region else "")
    if plan.instance_type:
        where += f", {plan.instances} × {plan.instance_type}"
    return (f"{plan.gpu_count} × {plan.gpu} at {plan.precision} — {where}: "
            f"{hours_text(plan.hours)} ({days_text(plan.hours)}), {usd(plan.cost_usd)} · "
            f"{plan_price_note(plan)}")


def plan_price_note(plan: Plan) -> str:
    """Price date (and fetch date when it differs), quality, and a quota the plan exceeds."""
    text = f"price as of {plan.price_as_of}"
    if plan.price_fetched_at and plan.price_fetched_at != plan.price_as_of:
        text += f" (fetched {plan.price_fetched_at})"
    if plan.price_quality == "estimate":
        text += ", estimate (not from the provider's own page; see `flopopt catalog show`)"
    quota = plan.typical_quota_gpus
    if quota is not None and plan.gpu_count > quota and plan.kind in ("on_demand", "spot"):
        text += (f"; above the typical default quota of {quota:,.0f} GPUs for {plan.provider} "
                 f"{plan.kind.replace('_', '-')}: request a quota increase first")
    return text


def stale_price_warning(plan: Plan, today: dt.date | None = None) -> str | None:
    """A warning when the winning price is older than ``STALE_AFTER_DAYS`` (180 days)."""
    from ..catalogs.loader import STALE_AFTER_DAYS

    try:
        as_of = dt.date.fromisoformat(plan.price_as_of)
    except ValueError:
        return None
    age = ((today or dt.date.today()) - as_of).days
    if age <= STALE_AFTER_DAYS:
        return None
    return (f"warning: the winning price ({plan.offer_id}) is {age} days old (as of {plan.price_as_of}; "
            f"older than {STALE_AFTER_DAYS} days): check it or run `flopopt catalog refresh`")


def plan_assumptions(plan: Plan) -> str:
    extra = "; decode bound by memory bandwidth (roofline)" if plan.roofline_bound else ""
    if plan.capex_sunk:
        extra += "; capex treated as sunk (zero marginal cost): only power is charged"
    return (f"scenario {plan.scenario} · attenuation {plan.attenuation:.2f} "
            f"(range {plan.attenuation_low:.2f}–{plan.attenuation_high:.2f}, row {plan.attenuation_source}, "
            f"bottleneck: {plan.bottleneck}) · buffer {plan.buffer:.0%} · scale-out efficiency "
            f"{plan.scale_efficiency:.3f} · {plan_hourly_cost(plan)} as of {plan.price_as_of} · "
            f"billed {hours_text(plan.billed_hours)} · memory {plan.need_gb_per_gpu:,.1f} of "
            f"{plan.memory_gb:,.0f} GB per GPU{extra}")


def plan_hourly_cost(plan: Plan) -> str:
    """"$48.00/instance-h ($6.00/GPU-h)": for a rental the list price is the effective cost; for owned
    hardware the effective cost adds amortised capex and power to the list fee, so both are shown."""
    text = (f"{usd(plan.effective_cost_per_instance_hour_usd)}/instance-h "
            f"({usd(plan.effective_cost_per_gpu_hour_usd)}/GPU-h)")
    if math.isclose(plan.effective_cost_per_instance_hour_usd, plan.list_price_per_instance_hour_usd,
                    rel_tol=1e-9, abs_tol=1e-9):
        return text
    added = "power" if plan.capex_sunk else "amortised capex and power"
    return (f"effective {text}: list price {usd(plan.list_price_per_instance_hour_usd)}/instance-h "
            f"plus {added}")


def recommendation(result: Result) -> str:
    """A review-ready paragraph: the decision, its odds, and the costliest way to get it wrong."""
    p = result.plan
    assert p is not None
    parts = [f"Use {p.gpu_count}×{p.gpu} at {p.precision} ({p.provider} {p.kind}, {p.offer_id}) for about "
             f"{hours_text(p.hours)} and {usd(p.cost_usd)}, a plan that already includes a {p.buffer:.0%} buffer "
             f"on attenuation {p.attenuation:.2f}."]
    r = result.risk
    if r is not None and r.p_deadline is not None:
        parts.append(f"Simulated over the attenuation range it meets the deadline with probability "
                     f"{r.p_deadline:.0%} (P90 of actual work {hours_text(r.hours_p90)}).")
    failing = [s for s in result.sensitivity if s.category == "pitfall" and not s.skipped and s.plan is not None
               and not (s.deadline_met and s.within_budget)]
    costly = [s for s in result.sensitivity if s.category == "pitfall" and not s.skipped and s.plan is not None
              and s.delta_cost_pct == s.delta_cost_pct and s.delta_cost_pct > 0]
    if failing:
        parts.append(f"Watch for {failing[0].name.replace('_', ' ')}: {failing[0].summary}.")
    elif costly:
        worst = max(costly, key=lambda s: s.delta_cost_pct)
        parts.append(f"The costliest mistake is {worst.name.replace('_', ' ')}: {pct(worst.delta_cost_pct)} cost.")
    return " ".join(parts)


def _plan_rows(plans: Sequence[Plan]) -> list[tuple[str, ...]]:
    hours = hours_cells([p.hours for p in plans])
    return [
        (str(p.gpu_count), p.gpu, p.precision, p.provider, p.kind, p.region or "—", p.offer_id, h,
         days_text(p.hours), usd(p.cost_usd), f"{p.attenuation:.2f}", f"{p.buffer:.0%}",
         p.price_as_of + (" (est.)" if p.price_quality == "estimate" else ""))
        for p, h in zip(plans, hours)
    ]


PLAN_HEADERS = ("GPUs", "GPU", "prec.", "provider", "kind", "region", "offer", "hours", "days", "cost", "atten.",
                "buffer", "price as of")
# Given up first when the table is too narrow: what the plan line above already says.
PLAN_DROP = ("price as of", "region", "buffer", "atten.", "days", "kind", "provider", "prec.")


def render_solve(result: Result | ServingResult, fmt: str, price_note: str | None = None,
                 all_candidates: bool = False) -> str:
    if isinstance(result, ServingResult):
        return render_serving(result, fmt, price_note, all_candidates)
    if fmt == "json":
        return to_json(solve_dict(result, price_note, all_candidates), indent=None)
    md = fmt == "markdown"
    est = result.estimate
    job = result.job
    c = job.constraints
    limits = ", ".join(
        part for part in [
            f"deadline {hours_text(c.deadline_hours)}" if c.deadline_hours else "",
            f"budget {usd(c.budget_usd)}" if c.budget_usd else "",
            f"max {c.max_gpus} GPUs" if c.max_gpus else "",
            f"objective {job.objective}",
        ] if part
    )
    out: list[str] = []
    title = f"{job.name}: {result.status.value}"
    out.append(f"# {title}\n\n" if md else f"{title}\n")
    out.append(("- " if md else "  ") + f"FLOPs: {flops_text(est.total_flops)} = {est.formula}\n")
    out.append(("- " if md else "  ") + f"terms: {_terms_text(est)}\n")
    out.append(("- " if md else "  ") + f"limits: {limits}\n\n")
    if result.plan is not None:
        p = result.plan
        out.append(("**Plan:** " if md else "PLAN  ") + plan_summary(p) + "\n")
        out.append(("\n_Assumptions:_ " if md else "      ") + plan_assumptions(p) + "\n\n")
        if result.explanation:   # a plan with an explanation: stopped at the time limit, not proven optimal
            out.append(("**Warning:** " if md else "warning: ") + f"{result.explanation}\n\n")
        if md:
            out.append(f"**Recommendation.** {recommendation(result)}\n\n")
    else:
        why = f"binding: {result.binding}" if result.binding else f"status: {result.status.value}"
        out.append(("**No plan.** " if md else "NO PLAN  ") + f"{why}\n")
        out.append(("" if md else "  ") + f"{result.explanation}\n\n")
    if result.alternatives:
        out.append(grid(fmt, "Next best (one per offer)", PLAN_HEADERS, _plan_rows(result.alternatives),
                        drop=PLAN_DROP))
    if result.excluded:
        rows = sorted(result.excluded.items(), key=lambda kv: -kv[1])
        out.append(grid(fmt, "Why other candidates were not chosen", ("reason", "candidates"),
                        [(k, f"{v:,}") for k, v in rows]))
    if result.sensitivity:
        if md:
            real_hours = hours_cells([s.hours for s in result.sensitivity])
            rows2 = [
                (s.category, s.name, s.assumption, "skipped" if s.skipped else (s.plan.label if s.plan else "no plan"),
                 h, usd(s.cost_usd), pct(s.delta_cost_pct),
                 "yes" if s.deadline_met else "NO", "yes" if s.within_budget else "NO", s.skipped or s.summary)
                for s, h in zip(result.sensitivity, real_hours)
            ]
            out.append(grid(fmt, "What could go wrong", ("type", "name", "mistaken belief / stress", "plan",
                                                         "real hours", "real cost", "Δ cost", "deadline", "budget",
                                                         "what happens"), rows2))
        else:
            out.append("What could go wrong\n")
            for s in result.sensitivity:
                flag = "  " if s.skipped else ("ok" if s.deadline_met and s.within_budget else "!!")
                out.append(f" {flag} {s.name:<17} {s.assumption}: {s.skipped or s.summary}\n")
            out.append("\n")
    if result.break_even:
        out.append(grid(fmt, "Break-even points", ("quantity", "value"), _break_even_rows(result.break_even)))
    if result.risk:
        r = result.risk
        title = f"Risk (Monte Carlo, {r.samples:,} samples, seed {r.seed})"
        out.append(f"### {title}\n\n" if md else f"{title}\n")
        p_deadline = "n/a (no deadline)" if r.p_deadline is None else f"{r.p_deadline:.0%}"
        p_budget = "n/a (no budget)" if r.p_budget is None else f"{r.p_budget:.0%}"
        out.append(("- " if md else "  ") + f"P(deadline met) = {p_deadline}, P(within budget) = {p_budget}\n")
        out.append(("- " if md else "  ") + f"actual hours (buffer excluded) P50 {hours_text(r.hours_p50)}, "
                   f"P90 {hours_text(r.hours_p90)}; cost P50 {usd(r.cost_p50)}, P90 {usd(r.cost_p90)}\n\n")
    st = result.stats
    out.append(("_" if md else "") + f"model: {st.enumerated:,} candidates → {st.feasible:,} feasible → "
               f"{st.after_pruning:,} after pruning dominated ones; MILP {st.variables} binary variables, "
               f"{st.constraints} constraint(s), {st.solver} in {st.solve_seconds * 1000:.0f} ms"
               f"{gap_note(st.mip_gap, result.status.value)}; catalog: "
               f"{', '.join(result.catalog_layers)}" + ("_" if md else "") + "\n")
    if price_note:
        out.append(price_note + "\n")
    stale = stale_price_warning(result.plan) if result.plan is not None else None
    for w in [*result.warnings, *([stale] if stale else [])]:
        out.append(w + "\n")
    return fit("".join(out), fmt)


def gap_note(mip_gap: float | None, status: str) -> str:
    """", MIP gap 3.90%" on the model line of a plan the solver did not prove optimal (JSON always has it)."""
    if status not in ("time_limit", "not_solved"):
        return ""
    return ", MIP gap not reported" if mip_gap is None else f", MIP gap {mip_gap:.2%}"


def _break_even_rows(break_even: dict[str, Any]) -> list[tuple[str, str]]:
    """One readable line per break-even point: its sentence when it has one."""
    rows = []
    for key, value in break_even.items():
        if key.endswith("_note"):
            continue
        if isinstance(value, dict):
            rows.append((key, str(value.get("note", value))))
        else:
            rows.append((key, str(break_even.get(f"{key}_note", value))))
    return rows


# ---------------------------------------------------------------------------
# catalog


def render_offer_list(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return to_json(document(STATUS_OK, {"offers": table.to_dict("records")}))
    rows = [
        (r["offer_id"], r["provider"], r["kind"], r["region"] or "—", r["gpu"], str(int(r["gpus_per_instance"])),
         f"${r['effective_cost_per_instance_hour_usd']:,.2f}", f"${r['effective_cost_per_gpu_hour_usd']:,.2f}",
         r["as_of"] + (" (est.)" if r.get("price_quality") == "estimate" else ""))
        for r in table.to_dict("records")
    ]
    headers = ("offer", "provider", "kind", "region", "GPU", "GPUs/inst.", "$/instance-h", "$/GPU-h", "as of")
    return fit(grid(fmt, f"{len(rows)} offers", headers, rows,
                    drop=("as of", "region", "$/instance-h", "GPUs/inst.", "kind", "provider")), fmt)


def render_offer(offer: dict[str, Any], gpu: dict[str, Any], fmt: str) -> str:
    keep = {k: v for k, v in offer.items() if k not in ("origin_row",)}
    if fmt == "json":
        return to_json(document(STATUS_OK, {"offer": keep, "gpu": gpu}))
    rows = [(k, "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for k, v in keep.items()]
    rows += [(f"gpu.{k}", "" if isinstance(v, float) and math.isnan(v) else str(v)) for k, v in gpu.items()]
    return fit(grid(fmt, str(offer["offer_id"]), ("field", "value"), rows), fmt)


# ---------------------------------------------------------------------------
# serving (kind: transformer_serving)


def serving_dict(result: ServingResult, price_note: str | None = None, all_candidates: bool = False) -> dict[str, Any]:
    """The serving JSON document (docs/schema/solve-serving.json), built in one place (the keys of
    solve_dict where they apply); replica options are the feasible ones unless ``all_candidates``."""
    return document(result.status.value, {
        "job": result.job.model_dump(mode="json"),
        "estimate": estimate_dict(result.estimate),
        "demand": {**asdict(result.demand), "fleet_hours": result.demand.fleet_hours,
                   "requests_in_window": result.demand.requests_in_window},
        "plan": {**result.plan.contract_fields(), **asdict(result.plan)} if result.plan else None,
        "candidates_shown": "all" if all_candidates else "feasible",
        "candidates": [asdict(c) for c in result.candidates if all_candidates or c.feasible],
        "sensitivity": [{s.category: s.name, **asdict(s)} for s in result.sensitivity],
        "break_even": {},
        "risk": {},
        "binding": result.binding,
        "explanation": result.explanation,
        "excluded": result.excluded,
        "model": asdict(result.stats),
        "catalog": {"layers": list(result.catalog_layers), "warnings": list(result.warnings),
                    "prices": price_note},
    })


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None or not math.isfinite(seconds) else f"{seconds * 1000:,.0f} ms"


def render_serving(result: ServingResult, fmt: str, price_note: str | None = None,
                   all_candidates: bool = False) -> str:
    if fmt == "json":
        return to_json(serving_dict(result, price_note, all_candidates), indent=None)
    md = fmt == "markdown"
    bullet = "- " if md else "  "
    d = result.demand
    job = result.job
    out = [f"# {job.name}: {result.status.value}\n\n" if md else f"{job.name}: {result.status.value}\n"]
    shapes = ", ".join(f"{b.name} {b.share:.0%} ({b.prompt_tokens:,.0f} in / {b.output_tokens:,.0f} out)"
                       for b in d.buckets)
    window = f"{d.window_hours:,.0f} h" + ("" if d.hours_per_day >= 24 else f", {d.hours_per_day:g} h/day")
    out.append(f"{bullet}traffic: peak {d.peak_rps:,.1f} requests/s, average {d.average_rps:,.1f} requests/s; "
               f"requests: {shapes}\n")
    out.append(f"{bullet}targets: TTFT ≤ {_ms(d.ttft_seconds)}, TPOT ≤ {_ms(d.tpot_seconds)}; window {window} "
               f"({d.fleet_hours:,.0f} fleet-hours)\n\n")
    p = result.plan
    if p is None:
        why = f"binding: {result.binding}" if result.binding else f"status: {result.status.value}"
        out.append(("**No fleet.** " if md else "NO FLEET  ") + f"{why}\n")
        out.append(("" if md else "  ") + f"{result.explanation}\n\n")
    else:
        if result.explanation:   # a fleet with an explanation: the solver stopped, not proven optimal
            out.append(("**Warning:** " if md else "warning: ") + f"{result.explanation}\n\n")
        out.append(("**Fleet:** " if md else "FLEET  ") + f"{p.replicas} replicas on {p.gpus} GPUs, "
                   f"{usd(p.cost_usd)} for the window — {usd(p.usd_per_million_tokens)} per million tokens "
                   f"({usd(p.usd_per_million_output_tokens)} per million output tokens)\n")
        out.append(f"{bullet}capacity {p.capacity_vs_peak:.2f} × the peak (buffer excluded); utilisation at "
                   f"average load {p.utilisation_at_average:.0%}\n")
        out.append(f"{bullet}what binds: {'; '.join(p.binds) or 'nothing (demand alone)'}\n\n")
        rows = [  # a line serving several buckets: its totals on its first row only
            ((f"{line.gpu} {line.precision} TP{line.tensor_parallel}",
              f"{line.offer_id} ({line.region})" if line.region else line.offer_id, str(line.instances),
              str(line.replicas), str(line.gpus)) if i == 0 else ("", "", "", "", ""))
            + (load.bucket, f"{load.peak_rps:,.1f}", str(load.batch), _ms(load.ttft_seconds),
               f"{load.tpot_seconds * 1000:,.1f} ms", f"{load.tokens_per_s_per_replica:,.0f}")
            + ((f"{line.peak_utilisation:.0%}", usd(line.cost_usd)) if i == 0 else ("", ""))
            for line in p.lines for i, load in enumerate(line.loads)
        ]
        out.append(grid(fmt, "Replicas per type (batch, latency and tokens/s at the chosen batch)",
                        ("replica", "offer", "inst.", "replicas", "GPUs", "bucket", "peak req/s", "batch", "TTFT",
                         "TPOT", "tok/s/replica", "peak util.", "cost"), rows))
    if result.excluded:
        rows2 = sorted(result.excluded.items(), key=lambda kv: -kv[1])
        out.append(grid(fmt, "Why other replica options were not chosen", ("reason", "options"),
                        [(k, f"{v:,}") for k, v in rows2]))
    if result.sensitivity:
        rows3 = [(s.category, s.name, s.assumption, usd(s.cost_usd), pct(s.delta_cost_pct),
                  f"{s.carries_peak:.0%}", s.summary) for s in result.sensitivity]
        out.append(grid(fmt, "What could go wrong", ("type", "name", "belief / stress", "cost", "Δ cost",
                                                     "peak carried", "what happens"), rows3))
    st = result.stats
    out.append(("_" if md else "") + f"model: {st.enumerated:,} replica options → {st.feasible:,} can serve → "
               f"{st.after_pruning:,} not dominated; "
               f"integer program {st.variables} variables, {st.constraints} constraints, {st.solver} in "
               f"{st.solve_seconds * 1000:.0f} ms{gap_note(st.mip_gap, result.status.value)}; catalog: "
               f"{', '.join(result.catalog_layers)}" + ("_" if md else "") + "\n")
    if price_note:
        out.append(price_note + "\n")
    for w in result.warnings:
        out.append(w + "\n")
    return fit("".join(out), fmt)


# ---------------------------------------------------------------------------
# rows held back by the price guards (refresh, catalog import)

HELD_HEADERS = ("offer", "from", "kind", "region", "gpu", "$/instance-h", "reasons")


def held_rows(held: Sequence[HeldRow]) -> list[tuple[str, ...]]:
    from ..catalogs.guards import usd_text

    return [
        (h.offer_id, h.source, h.kind, h.region or "—", h.gpu,
         "—" if h.price_per_hour_usd is None else usd_text(h.price_per_hour_usd), "; ".join(h.reasons))
        for h in held
    ]


def held_dict(h: HeldRow) -> dict[str, Any]:
    return {"offer_id": h.offer_id, "source": h.source, "provider": h.provider, "kind": h.kind,
            "region": h.region, "gpu": h.gpu, "price_per_hour_usd": h.price_per_hour_usd,
            "reasons": list(h.reasons), "accept_changes_adopts": h.change_only}
def render_validation(cat: Any, warning: str | None, fmt: str) -> str:
    """``catalog validate``: what was loaded (problems never get here: they exit 2)."""
    counts = {"gpus": len(cat.gpus), "offers": len(cat.offers), "attenuation": len(cat.attenuation),
              "models": len(cat.models)}
    if fmt == "json":
        return to_json(document(STATUS_OK, {"counts": counts, "layers": list(cat.layers),
                                            "warnings": [warning] if warning else []}))
    line = (f"ok: {counts['gpus']} GPUs, {counts['offers']} offers, {counts['attenuation']} attenuation rows, "
            f"{counts['models']} models ({', '.join(cat.layers)})")
    return fit(("- " if fmt == "markdown" else "") + line + "\n", fmt)


def render_import(report: Any, fmt: str) -> str:
    """``catalog import``: where the rows went, and the rows the price guards held back
    (status ``partial`` then; the command exits 1)."""
    if fmt == "json":
        return to_json(document("partial" if report.held else STATUS_OK, {
            "target": str(report.target), "catalog_file": report.catalog_file, "form": report.form,
            "rows_imported": report.rows_imported, "rows_total": report.rows_total,
            "held_back": [held_dict(h) for h in report.held]}))
    line = (f"imported {report.rows_imported} row(s) into {report.target} "
            f"({report.rows_total} rows in your {report.catalog_file})")
    text = ("- " if fmt == "markdown" else "") + line + "\n"
    if report.held:
        text += grid(fmt, f"Held back by the price guards (not imported; {len(report.held)} row(s))",
                     HELD_HEADERS, held_rows(report.held))
    return fit(text, fmt)
