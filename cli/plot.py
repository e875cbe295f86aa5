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

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

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
LIMIT_COLOUR = "#D55E00"


def plot_comparison(comparison: Comparison, path: Path) -> None:
    """Write a log-log PNG of cost (USD) against wall-clock hours to ``path``.

    Points are the feasible candidates coloured by offer class (quoted ones drawn as
    diamonds); the Pareto front is a step line — for any time allowance it reads off
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
        in_class = points.offer_class == cid
        for quoted, marker, suffix in ((False, "o", ""), (True, "D", " (quotes)")):
            mask = in_class & (from_quote if quoted else ~from_quote)
            if mask.any():
                ax.scatter(points.hours[mask], points.cost_usd[mask], s=22 if not quoted else 34,
                           marker=marker, color=CLASS_COLOURS[cid], alpha=0.75,
                           edgecolors="black" if quoted else "none", linewidths=0.6,
                           label=f"{label}{suffix} ({int(mask.sum())})", zorder=2)
    _draw_front(ax, comparison)
    _draw_limits(ax, comparison)
    _draw_optimum(ax, comparison)
    if not len(points.hours):
        ax.text(0.5, 0.5, "no feasible plan under the job's limits", transform=ax.transAxes,
                ha="center", va="center", fontsize=13, color=LIMIT_COLOUR)
        _frame_empty(ax, comparison)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    _make_room_for_label(ax, comparison)
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    fileio.write_bytes(path, buffer.getvalue(), report=True)  # never over the job or a quotes file


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
    text = f"chosen: {p.gpu_count}×{p.gpu} {p.precision}, {p.provider} {p.kind}\n" \
           f"${p.cost_usd:,.0f}, {p.hours / 24:,.1f} days"
    # Nothing feasible is cheaper than the cost optimum (nor faster than the time optimum),
    # so the label goes into that empty region, below (or left of) the star.
    by_time = comparison.job.objective == "time"
    ax.annotate(text, xy=(p.hours, p.cost_usd), xytext=(-16, 0) if by_time else (-8, -22),
                textcoords="offset points", ha="right", va="center" if by_time else "top", fontsize=9,
                zorder=6, bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "black", "alpha": 0.9},
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
        ax.set_ylim(min(bottom, best.plan.cost_usd / 3.0), top)


def _frame_empty(ax: Axes, comparison: Comparison) -> None:
    """Log axes need positive limits even with nothing to show."""
    c = comparison.job.constraints
    hours = float(c.deadline_hours or 100.0)
    cost = float(c.budget_usd or 1000.0)
    ax.set_xlim(hours / 10.0, hours * 10.0)
    ax.set_ylim(cost / 10.0, cost * 10.0)
