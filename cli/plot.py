"""``--plot out.png``: cost vs time of every feasible plan, the Pareto front and the choice.

matplotlib is imported inside the function (it costs ~0.3 s and only ``--plot`` needs
it) and always with the headless Agg backend, so plotting works over SSH and in CI.
The PNG is rendered into memory and written atomically: a reader never sees half a file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..optimizer import fileio
from ..optimizer.compare import OFFER_CLASSES, Comparison
from .render import usd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE_IN = (10.0, 6.25)
DPI = 100                    # → 1000 × 625 pixels; tests pin this size
# One colour per offer class (colour-blind-safe Okabe–Ito palette), stable across plots
# so the same class always looks the same.
CLASS_COLOURS: dict[str, str] = {
    "cloud_on_demand": "#0072B2",
    "cloud_spot": "#E69F00",
    "owned": "#009E73",
    "cluster_quote": "#CC79A7",
    "edge": "#56B4E9",
}
FRONT_COLOUR = "#222222"
QUOTE_MARKERS = ("D", "s", "^", "v", "P")   # one per quotes file
LIMIT_COLOUR = "#D55E00"


def plot_comparison(comparison: Comparison, path: Path) -> None:
    """Write :func:`comparison_figure` as a PNG to ``path`` (atomically)."""
    buffer = io.BytesIO()
    comparison_figure(comparison).savefig(buffer, format="png", dpi=DPI)
    fileio.write_bytes(path, buffer.getvalue(), report=True)  # never over the job or a quotes file


def comparison_figure(comparison: Comparison) -> Figure:
    """A log-log plot of cost (USD) against wall-clock hours.

    Points are the feasible candidates coloured by offer class (each quotes file its own
    series, named after the file); the Pareto front is a step line — for any time allowance it reads off
    the least you can pay; the deadline and budget are dashed lines; the optimum is a
    star with its label.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI)   # no pyplot: no global figure state to leak
    ax = figure.add_subplot(1, 1, 1)
    points = comparison.feasible
    from_quote = points.source != "catalog"
    for cid, label, _ in OFFER_CLASSES:
        mask = (points.offer_class == cid) & ~from_quote
        if mask.any():
            ax.scatter(points.hours[mask], points.cost_usd[mask], s=22, marker="o", color=CLASS_COLOURS[cid],
                       alpha=0.75, edgecolors="none", label=f"{label} ({int(mask.sum())})", zorder=2)
    # One series per quotes file, named after it: that is how the user knows which quote is which.
    for i, source in enumerate(dict.fromkeys(points.source[from_quote])):
        mask = points.source == source
        classes = list(dict.fromkeys(points.offer_class[mask]))
        ax.scatter(points.hours[mask], points.cost_usd[mask], s=34, marker=QUOTE_MARKERS[i % len(QUOTE_MARKERS)],
                   color=CLASS_COLOURS.get(classes[0], FRONT_COLOUR), alpha=0.8, edgecolors="black",
                   linewidths=0.6, label=f"{Path(str(source)).name} ({int(mask.sum())})", zorder=2)
    _draw_front(ax, comparison)
    _draw_limits(ax, comparison)
    if not len(points.hours):
        ax.text(0.5, 0.5, "no feasible plan under the job's limits", transform=ax.transAxes,
                ha="center", va="center", fontsize=13, color=LIMIT_COLOUR)
        _frame_empty(ax, comparison)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    _make_room_for_label(ax, comparison)
    _draw_optimum(ax, comparison)   # after the limits are final: its label is placed in axes fractions
    ax.set_xlabel("wall-clock time (hours, log scale)")
    ax.set_ylabel("total cost (USD, log scale)")
    ax.grid(True, which="major", alpha=0.3)
    job = comparison.job
    ax.set_title(f"{job.name}: cost vs time of {len(points.hours):,} feasible plans "
                 f"({comparison.estimate.total_flops:.3g} FLOPs)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    # Fixed margins instead of tight_layout: measuring every label costs ~0.5 s.
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.09, top=0.93)
    return figure


def _plain_log_ticks(ax: Axes) -> None:
    """Decade ticks as "100 h" and "$10k" instead of mathtext 10^n (more readable, and
    mathtext layout was half of the plotting time)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, text in ((ax.xaxis, _hours_tick), (ax.yaxis, _usd_tick)):
        axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _pos, text=text: text(value)))
        axis.set_minor_formatter(NullFormatter())


def _hours_tick(value: float) -> str:
    return f"{value:,.0f} h" if value >= 1 else f"{value:g} h"


def _usd_tick(value: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"${value / scale:g}{suffix}"
    return f"${value:g}"


def _draw_front(ax: Axes, comparison: Comparison) -> None:
    if not comparison.pareto:
        return
    # Fastest first: cost falls as time grows; "post" keeps each cost until the next
    # (slower, cheaper) plan becomes available.
    front = sorted(comparison.pareto, key=lambda p: p.plan.hours)
    hours = [p.plan.hours for p in front]
    cost = [p.plan.cost_usd for p in front]
    ax.step(hours, cost, where="post", color=FRONT_COLOUR, linewidth=1.4,
            label=f"Pareto front ({len(front)})", zorder=3)


def _draw_limits(ax: Axes, comparison: Comparison) -> None:
    c = comparison.job.constraints
    if c.deadline_hours is not None:
        ax.axvline(c.deadline_hours, color=LIMIT_COLOUR, linestyle="--", linewidth=1.2,
                   label=f"deadline {c.deadline_hours:,.0f} h", zorder=1)
    if c.budget_usd is not None:
        ax.axhline(c.budget_usd, color=LIMIT_COLOUR, linestyle="--", linewidth=1.2, alpha=0.6,
                   label=f"budget ${c.budget_usd:,.0f}", zorder=1)


def _draw_optimum(ax: Axes, comparison: Comparison) -> None:
    best = comparison.optimum
    if best is None:
        return
    p = best.plan
    ax.scatter([p.hours], [p.cost_usd], marker="*", s=320, color="gold", edgecolors="black",
               linewidths=1.0, zorder=5, label="chosen plan")
    # The same words as the text report: usd() gives $2.52 where "$3" would be wrong by 19%.
    text = f"chosen: {p.gpu_count}×{p.gpu} {p.precision}, {p.provider} {p.kind}\n" \
           f"{usd(p.cost_usd)}, {p.hours / 24:,.1f} days"
    # Nothing feasible is cheaper than the cost optimum (nor faster than the time optimum),
    # so the label goes into that empty band below (or left of) the star, at a position in
    # axes fractions clamped away from the edges: it stays inside the plot wherever the star is.
    x_frac, y_frac = ax.transAxes.inverted().transform(ax.transData.transform((p.hours, p.cost_usd)))
    if comparison.job.objective == "time":
        at, ha, va = (0.03, min(max(float(y_frac), 0.25), 0.75)), "left", "center"
    else:
        at, ha, va = (min(max(float(x_frac), 0.25), 0.75), 0.04), "center", "bottom"
    ax.annotate(text, xy=(p.hours, p.cost_usd), xytext=at, textcoords="axes fraction", ha=ha, va=va,
                fontsize=9, zorder=6, annotation_clip=False,
                bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "black", "alpha": 0.9},
                arrowprops={"arrowstyle": "->", "color": "black"})


def _make_room_for_label(ax: Axes, comparison: Comparison) -> None:
    """Stretch the (log) axis past the optimum so its label fits inside the plot."""
    best = comparison.optimum
    if best is None:
        return
    if comparison.job.objective == "time":
        left, right = ax.get_xlim()
        ax.set_xlim(min(left, best.plan.hours / 8.0), right)
    else:
        bottom, top = ax.get_ylim()
        ax.set_ylim(min(bottom, best.plan.cost_usd / 6.0), top)


def _frame_empty(ax: Axes, comparison: Comparison) -> None:
    """Log axes need positive limits even with nothing to show."""
    c = comparison.job.constraints
    hours = float(c.deadline_hours or 100.0)
    cost = float(c.budget_usd or 1000.0)
    ax.set_xlim(hours / 10.0, hours * 10.0)
    ax.set_ylim(cost / 10.0, cost * 10.0)
