"""The candidate table has one schema (optimizer/candidate_schema.py): every stage's output
carries exactly the columns the schema gives it, with the schema's dtypes, and nothing else
beyond the offer columns of catalogs/schema.py."""

from __future__ import annotations

import pytest
from builders import REPO
from flopopt.catalogs.loader import load_catalog
from flopopt.catalogs.schema import OFFERS
from flopopt.optimizer.candidate_schema import BY_NAME, STAGES, columns, conforms
from flopopt.optimizer.job import load_job
from flopopt.optimizer.performance import evaluate, realistic_assumptions
from flopopt.optimizer.planner import Planner

LOADER_COLUMNS = {"origin_file", "origin_row", "capacity_source", "typical_quota_gpus"}  # loader.py adds these


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner.build(load_job(REPO / "examples" / "llama2-7b-pretrain.yaml"),
                         load_catalog(use_user_dir=False, use_cache=False))


def test_every_stage_output_conforms_to_the_schema(planner: Planner) -> None:
    assert planner.expansion.base is not None
    assert conforms(planner.expansion.base, "expand") == []
    assert conforms(planner.expansion.table, "count") == []
    job, catalog = planner.job, planner.catalog
    evaluated = evaluate(planner.expansion.table, planner.estimate, job, catalog.attenuation,
                         realistic_assumptions(job, catalog.efficiency))
    assert conforms(evaluated, "evaluate") == []
    assert conforms(planner.assess().table, "assess") == []


def test_no_stage_adds_a_column_the_schema_does_not_name(planner: Planner) -> None:
    known = {c.name for c in OFFERS} | LOADER_COLUMNS | set(BY_NAME)
    assert set(planner.assess().table.columns) - known == set()


def test_the_check_catches_a_missing_or_mistyped_column(planner: Planner) -> None:
    table = planner.assess().table
    assert conforms(table.drop(columns=["hours"]), "assess") == ["hours: missing after assess"]
    broken = table.assign(instances=table["instances"].astype(float))
    assert conforms(broken, "assess") == ["instances: float64, schema says int"]


def test_every_schema_column_belongs_to_one_stage() -> None:
    names = [n for s in STAGES for n in columns(s)]
    assert len(names) == len(set(names)) == len(BY_NAME)
