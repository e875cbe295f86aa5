"""``compare --plot``: the chosen plan's label stays inside the axes and says what the table says;
quote series are named after their files."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import REPO
from flopopt.catalogs.loader import load_catalog
from flopopt.cli.plot import comparison_figure
from flopopt.cli.render import usd
from flopopt.optimizer.compare import compare
from flopopt.optimizer.job import load_job

EX = REPO / "examples"
QUOTES = [EX / "quotes" / "example-colo-quote-short.csv", EX / "quotes" / "example-local-cluster-quote.csv"]


@pytest.mark.slow
@pytest.mark.parametrize(("job", "objective"), [("llama2-7b-pretrain.yaml", "cost"),
                                                ("seed-worked-example.yaml", "cost"),
                                                ("llama2-7b-pretrain.yaml", "time")])
def test_label_inside_axes_with_the_tables_cost(job: str, objective: str) -> None:
    from matplotlib.text import Annotation

    parsed = load_job(EX / job)
    parsed = parsed.model_copy(update={"objective": objective})
    comparison = compare(parsed, load_catalog(use_user_dir=False, use_cache=False), QUOTES)
    assert comparison.optimum is not None
    figure = comparison_figure(comparison)
    ax = figure.axes[0]
    (label,) = [t for t in ax.texts if isinstance(t, Annotation)]
    assert usd(comparison.optimum.plan.cost_usd) in label.get_text()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    box, axes_box = label.get_bbox_patch().get_window_extent(renderer), ax.get_window_extent(renderer)
    assert axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1 and axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    quoted = {str(s) for s in comparison.feasible.source} - {"catalog"}   # quote files with feasible plans
    for quote in quoted:
        assert any(text.startswith(Path(quote).name + " (") for text in legend), legend
    assert not any("(quotes)" in text for text in legend)


def test_quote_series_are_named_after_their_files(tmp_path: Path) -> None:
    """A big quote at a plausible price ($1.17/GPU-h, inside the price guards' band) is feasible."""
    quote = tmp_path / "acme-h100-offer.csv"
    quote.write_text("provider,gpu,gpus,price_per_hour_usd,kind\nacme,H100-SXM,512,600,cluster_quote\n")
    job = load_job(EX / "llama2-7b-pretrain.yaml")
    comparison = compare(job, load_catalog(use_user_dir=False, use_cache=False), [quote])
    assert "acme-h100-offer.csv" in {Path(str(s)).name for s in comparison.feasible.source}
    legend = [t.get_text() for t in comparison_figure(comparison).axes[0].get_legend().get_texts()]
    assert any(text.startswith("acme-h100-offer.csv (") for text in legend), legend
