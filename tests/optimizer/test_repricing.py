"""``performance.at_counts`` re-prices evaluated rows at other instance counts by recomputing only
the columns that follow the count; it must give exactly what a full ``evaluate`` gives."""

from __future__ import annotations

import numpy as np
import pytest
from builders import REPO
from flopopt.catalogs.loader import load_catalog
from flopopt.optimizer.counts import repeat_counts
from flopopt.optimizer.job import load_job
from flopopt.optimizer.performance import at_counts, evaluate, realistic_assumptions
from flopopt.optimizer.planner import Planner

COUNT_COLUMNS = ("instances", "gpu_count", "need_gb_per_gpu", "scale_efficiency", "base_hours", "hours",
                 "billed_hours", "cost_usd")


@pytest.mark.parametrize("example", ["llama2-7b-pretrain", "llama3-70b-batch-inference", "resnet50-imagenet"])
def test_repricing_at_other_counts_matches_a_full_evaluation(example: str) -> None:
    job = load_job(REPO / "examples" / f"{example}.yaml")
    planner = Planner.build(job, load_catalog(use_user_dir=False, use_cache=False))
    base, table = planner.expansion.base, planner.expansion.table
    assert base is not None
    assumptions = realistic_assumptions(job, planner.catalog.efficiency)
    evaluated = evaluate(table, planner.estimate, job, planner.catalog.attenuation, assumptions)
    rng = np.random.default_rng(0)
    positions = rng.integers(0, len(evaluated), 300)
    lo = evaluated["count_lo"].to_numpy(np.int64)[positions]
    hi = evaluated["count_hi"].to_numpy(np.int64)[positions]
    counts = lo + (rng.random(300) * (hi - lo + 1)).astype(np.int64)
    fast = at_counts(evaluated, positions, counts, planner.estimate, assumptions)
    rows = evaluated["base_row"].to_numpy(np.int64)[positions]
    full = evaluate(repeat_counts(base, planner.estimate, rows, counts), planner.estimate, job,
                    planner.catalog.attenuation, assumptions)
    for column in COUNT_COLUMNS:
        np.testing.assert_allclose(fast[column].to_numpy(float), full[column].to_numpy(float), rtol=1e-12,
                                   err_msg=column)
    assert (fast["roofline_bound"].to_numpy() == full["roofline_bound"].to_numpy()).all()
    assert sorted(fast.columns) == sorted(full.columns)
