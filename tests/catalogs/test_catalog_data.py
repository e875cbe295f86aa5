"""Sanity checks on the bundled catalog CSVs (catalogs/*.csv).

Reads the files with the csv module only, independent of the project's loader,
so the data can be checked while the loader is being written.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from builders import REPO

CATALOGS = REPO / "catalogs"
LATEST_AS_OF = dt.date(2026, 12, 1)

HEADERS = {
    "gpus.csv": (
        "gpu,vendor,architecture,memory_gb,mem_bandwidth_gbs,tdp_w,peak_tflops_fp64,peak_tflops_fp32,"
        "peak_tflops_tf32,peak_tflops_bf16,peak_tflops_fp16,peak_tflops_fp8,peak_tflops_int8,"
        "source,as_of"
    ),
    "offers.csv": (
        "offer_id,provider,kind,region,instance_type,gpu,gpus_per_instance,price_per_hour_usd,"
        "billing_increment_hours,min_hours,max_instances,interconnect,interruption_overhead,"
        "capex_usd,amortization_years,utilization,power_kw,electricity_usd_per_kwh,sunk,source,as_of,"
        "price_quality,fetched_at"
    ),
    "attenuation.csv": "scenario,workload,gpu,low,high,median,uncertainty,ref_gpus,bottleneck,source",
    "precision.csv": "workload,gpu,precision,speedup,source,as_of",
    "models.csv": (
        "name,kind,params,active_params,layers,d_model,n_heads,n_kv_heads,seq_len,flops_per_sample,source"
    ),
}

OFFER_KINDS = {"on_demand", "spot", "reserved", "owned", "cluster_quote", "edge"}
INTERCONNECTS = {"nvlink", "pcie", "infiniband", "ethernet"}
NON_CLOUD_PROVIDERS = {"owned", "quote", "edge"}
SCENARIOS = {"lab", "cloud", "edge", "cluster"}
WORKLOADS = {
    "any",
    "transformer_training",
    "transformer_inference",
    "cnn_training",
    "cnn_inference",
    "custom",
}
PRECISION_COLUMNS = [
    "peak_tflops_fp64",
    "peak_tflops_fp32",
    "peak_tflops_tf32",
    "peak_tflops_bf16",
    "peak_tflops_fp16",
    "peak_tflops_fp8",
    "peak_tflops_int8",
]


def _read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (CATALOGS / name).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def gpus() -> dict[str, dict[str, str]]:
    return {row["gpu"]: row for row in _read("gpus.csv")[1]}


@pytest.fixture(scope="module")
def offers() -> list[dict[str, str]]:
    return _read("offers.csv")[1]


@pytest.fixture(scope="module")
def offers_by_id(offers: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["offer_id"]: row for row in offers}


@pytest.fixture(scope="module")
def attenuation() -> list[dict[str, str]]:
    return _read("attenuation.csv")[1]


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in _read("models.csv")[1]}


# --- structure shared by all files -------------------------------------------


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_header_is_exact(name: str) -> None:
    with (CATALOGS / name).open(newline="", encoding="utf-8") as f:
        first = next(csv.reader(f))
    assert first == HEADERS[name].split(",")


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_every_row_has_a_source_and_full_width(name: str) -> None:
    header, rows = _read(name)
    assert rows, f"{name} is empty"
    for i, row in enumerate(rows, start=2):
        assert None not in row, f"{name}:{i} has more cells than the header"
        assert all(v is not None for v in row.values()), f"{name}:{i} is short"
        assert row["source"].strip(), f"{name}:{i} has no source"


@pytest.mark.parametrize("name", ["gpus.csv", "offers.csv"])
def test_as_of_is_a_date_not_in_the_future(name: str) -> None:
    for i, row in enumerate(_read(name)[1], start=2):
        day = dt.date.fromisoformat(row["as_of"])
        assert day <= LATEST_AS_OF, f"{name}:{i} as_of {day}"


# --- gpus.csv ---------------------------------------------------------------------


def test_gpu_ids_present(gpus: dict[str, dict[str, str]]) -> None:
    assert len(gpus) >= 16
    required = {
        "V100", "T4", "A10G", "A10", "L4", "L40S", "A100-40GB", "A100-80GB", "H100-SXM",
        "H100-PCIe", "H200", "B200", "GH200", "MI250X", "MI300X", "TPU-v5e", "TPU-v5p",
        "Jetson-AGX-Orin",
    }
    assert required <= set(gpus)


def test_gpu_numbers_are_plain_positive_decimals(gpus: dict[str, dict[str, str]]) -> None:
    for gpu, row in gpus.items():
        assert float(row["memory_gb"]) > 0, gpu
        assert float(row["mem_bandwidth_gbs"]) > 0, gpu
        for col in PRECISION_COLUMNS + ["tdp_w"]:
            if row[col] != "":
                assert float(row[col]) > 0, (gpu, col)
        # every GPU needs some matrix rate; every non-TPU needs fp32
        assert row["peak_tflops_bf16"] or row["peak_tflops_fp16"], gpu
        if row["vendor"] != "google":
            assert float(row["peak_tflops_fp32"]) > 0, gpu


def test_gpu_spot_values_from_reference(gpus: dict[str, dict[str, str]]) -> None:
    # Dense (no sparsity) values, /work/shared/reference/specs-and-prices.md Part A:
    # H100 SXM datasheet prints 1,979* (sparse) for BF16 -> 989.5 dense (S7).
    assert float(gpus["H100-SXM"]["peak_tflops_bf16"]) == pytest.approx(989.5, abs=1)
    assert float(gpus["H100-SXM"]["peak_tflops_tf32"]) == pytest.approx(494.5, abs=1)
    # A100 80GB: 80 GB HBM2e, 2,039 GB/s, BF16 312 dense (S6).
    assert float(gpus["A100-80GB"]["memory_gb"]) == 80
    assert float(gpus["A100-80GB"]["mem_bandwidth_gbs"]) == 2039
    assert float(gpus["A100-80GB"]["peak_tflops_bf16"]) == 312
    # V100: FP16 tensor 125, no BF16/TF32/FP8 matrix path (S1).
    v100 = gpus["V100"]
    assert float(v100["peak_tflops_fp16"]) == 125
    assert v100["peak_tflops_bf16"] == v100["peak_tflops_tf32"] == v100["peak_tflops_fp8"] == ""
    # MI300X dense FP16/BF16 1,307.4 (AMD prints dense and sparse separately, S12).
    assert float(gpus["MI300X"]["peak_tflops_bf16"]) == pytest.approx(1307.4)
    # TPU v5p 459 TFLOPS bf16 per chip (S13).
    assert float(gpus["TPU-v5p"]["peak_tflops_bf16"]) == 459


# --- offers.csv -------------------------------------------------------------------


def test_offer_ids_unique_and_lowercase(offers: list[dict[str, str]]) -> None:
    ids = [row["offer_id"] for row in offers]
    assert len(ids) == len(set(ids))
    for oid in ids:
        assert oid == oid.lower(), oid
        assert " " not in oid, oid


def test_offer_counts(offers: list[dict[str, str]]) -> None:
    assert len(offers) >= 60
    clouds = {row["provider"] for row in offers} - NON_CLOUD_PROVIDERS
    assert len(clouds) >= 6, clouds
    assert {"aws", "gcp", "azure", "lambda", "runpod"} <= clouds
    kinds = [row["kind"] for row in offers]
    assert kinds.count("owned") == 0  # no bundled row is the user's hardware
    assert kinds.count("cluster_quote") >= 1
    assert kinds.count("edge") >= 1
    sizes = {int(row["gpus_per_instance"]) for row in offers}
    assert {1, 2, 4, 8} <= sizes


def test_offer_references_and_enums(
    offers: list[dict[str, str]], gpus: dict[str, dict[str, str]]
) -> None:
    for row in offers:
        oid = row["offer_id"]
        assert row["gpu"] in gpus, oid
        assert row["kind"] in OFFER_KINDS, oid
        assert row["interconnect"] in INTERCONNECTS, oid
        assert row["provider"] == row["provider"].lower(), oid
        assert int(row["gpus_per_instance"]) >= 1, oid
        assert float(row["billing_increment_hours"]) >= 0, oid
        assert float(row["min_hours"]) >= 0, oid
        if row["max_instances"]:
            assert int(row["max_instances"]) >= 1, oid


def test_rental_rows(offers: list[dict[str, str]]) -> None:
    for row in offers:
        oid = row["offer_id"]
        if row["kind"] in {"on_demand", "spot", "reserved", "cluster_quote"}:
            assert float(row["price_per_hour_usd"]) > 0, oid
            for col in ("capex_usd", "amortization_years", "utilization", "sunk"):
                assert row[col] == "", (oid, col)
        if row["kind"] == "spot":
            assert 0 < float(row["interruption_overhead"]) < 1, oid
        else:
            assert row["interruption_overhead"] == "", oid


def test_owned_and_edge_rows(offers: list[dict[str, str]]) -> None:
    for row in offers:
        if row["kind"] not in {"owned", "edge"}:
            continue
        oid = row["offer_id"]
        assert float(row["capex_usd"]) > 0, oid
        assert float(row["amortization_years"]) > 0, oid
        assert 0 < float(row["utilization"]) <= 1, oid
        assert float(row["power_kw"]) > 0, oid
        assert float(row["electricity_usd_per_kwh"]) > 0, oid
        assert row["sunk"] in {"true", "false"}, oid
        assert float(row["price_per_hour_usd"]) >= 0, oid
        assert float(row["billing_increment_hours"]) == 0, oid
    # One row per physical machine: a "sunk" twin of the same box would double its capacity and
    # make every small job pick a near-free machine. Sunk capex belongs in the user's own catalog.
    machines = [r["instance_type"] for r in offers if r["kind"] in {"owned", "edge"}]
    assert len(machines) == len(set(machines)) >= 1


def test_example_owned_machines_are_importable_offers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The owned examples live in examples/, in offers.csv format, and import cleanly."""
    from flopopt.catalogs.manage import import_file

    example = CATALOGS.parent / "examples" / "owned-machines.csv"
    with example.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 2 and {r["kind"] for r in rows} == {"owned"}
    assert ",".join(rows[0]) == HEADERS["offers.csv"]
    monkeypatch.setenv("FLOPOPT_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("FLOPOPT_CACHE_DIR", str(tmp_path / "cache"))
    report = import_file(example)
    assert report.rows_imported == len(rows) and not report.held


PRIMARY_SOURCE = re.compile(
    r"^https://(aws\.amazon\.com|cloud\.google\.com|prices\.azure\.com|azure\.microsoft\.com|"
    r"www\.nvidia\.com|github\.com/skypilot-org/skypilot-catalog/blob/[0-9a-f]{8,40}/)"
)


def test_every_price_is_primary_or_an_estimate_with_its_basis(offers: list[dict[str, str]]) -> None:
    """Primary = the provider's page or API, or SkyPilot's catalog at a named commit;
    anything else is marked estimate and says why in its source."""
    for row in offers:
        oid, source = row["offer_id"], row["source"]
        assert row["price_quality"] in {"primary", "estimate"}, oid
        if row["price_quality"] == "estimate":
            assert "price_quality estimate: " in source, oid
        else:
            assert PRIMARY_SOURCE.match(source), (oid, source)
            assert "blob/master" not in source, oid


def test_the_doubtful_mi300x_rows_are_reclassified(offers_by_id: dict[str, dict[str, str]]) -> None:
    assert "tensorwave-8x_mi300x-ondemand" not in offers_by_id
    tw = offers_by_id["tensorwave-8x_mi300x-reserved-1y"]
    assert (tw["kind"], tw["min_hours"], tw["price_quality"]) == ("reserved", "8760", "estimate")
    azure = offers_by_id["azure-nd96isr-mi300x-v5-ondemand"]
    assert azure["instance_type"] == "Standard_ND96isr_MI300X_v5" and azure["price_quality"] == "estimate"


def test_cluster_quote_shape(offers_by_id: dict[str, dict[str, str]]) -> None:
    quote = offers_by_id["quote-h100-64x-reserved-1m"]
    assert quote["gpu"] == "H100-SXM"
    assert int(quote["gpus_per_instance"]) == 64
    assert int(quote["max_instances"]) == 1
    assert float(quote["min_hours"]) == 720
    assert quote["interconnect"] == "infiniband"
    per_gpu = float(quote["price_per_hour_usd"]) / 64
    assert 1.5 <= per_gpu <= 3.0


def test_offer_spot_values_from_reference(offers_by_id: dict[str, dict[str, str]]) -> None:
    # AWS p5.48xlarge after the June-2025 cut: 55.04 USD/h for 8x H100 SXM
    # (reference Part C, source [DR] hyperscalers.json).
    p5 = offers_by_id["aws-p5.48xlarge-ondemand"]
    assert float(p5["price_per_hour_usd"]) == pytest.approx(55.04)
    assert int(p5["gpus_per_instance"]) == 8
    assert p5["gpu"] == "H100-SXM"
    assert float(p5["billing_increment_hours"]) == pytest.approx(1 / 3600, rel=1e-3)
    # Lambda gpu_8x_h100_sxm5: 23.92 USD/h (reference Part C, [SKY-LAMBDA]).
    lam = offers_by_id["lambda-gpu_8x_h100_sxm5-ondemand"]
    assert float(lam["price_per_hour_usd"]) == pytest.approx(23.92)
    assert int(lam["gpus_per_instance"]) == 8
    # AWS p4de.24xlarge post-cut 27.447 (8x A100 80GB; [DR]).
    assert float(offers_by_id["aws-p4de.24xlarge-ondemand"]["price_per_hour_usd"]) == pytest.approx(
        27.447
    )
    # RunPod 1x A100 80GB secure: 1.64 on-demand, 1.19 spot ([SKY-RUNPOD]).
    assert float(
        offers_by_id["runpod-1x_a100-80gb_secure-ondemand"]["price_per_hour_usd"]
    ) == pytest.approx(1.64)
    assert float(
        offers_by_id["runpod-1x_a100-80gb_secure-spot"]["price_per_hour_usd"]
    ) == pytest.approx(1.19)


def test_spot_is_cheaper_than_matching_on_demand(offers_by_id: dict[str, dict[str, str]]) -> None:
    for oid, row in offers_by_id.items():
        if row["kind"] != "spot" or not oid.endswith("-spot"):
            continue
        twin = offers_by_id.get(oid[: -len("-spot")] + "-ondemand")
        if twin is not None:
            assert float(row["price_per_hour_usd"]) < float(twin["price_per_hour_usd"]), oid


# --- attenuation.csv ----------------------------------------------------------------


def test_attenuation_ranges(attenuation: list[dict[str, str]]) -> None:
    keys = set()
    for row in attenuation:
        key = (row["scenario"], row["workload"], row["gpu"])
        assert key not in keys, key
        keys.add(key)
        assert row["scenario"] in SCENARIOS, key
        assert row["workload"] in WORKLOADS, key
        low, high = float(row["low"]), float(row["high"])
        assert 0 < low <= high <= 1, key
        assert 0 < float(row["uncertainty"]) < 1, key
        assert row["bottleneck"].strip(), key


def test_attenuation_seed_defaults(attenuation: list[dict[str, str]]) -> None:
    # Envelope-method scenario table (shared/seed; DESIGN.md section 2).
    expected = {
        "lab": (0.70, 0.80, 0.10),
        "cloud": (0.30, 0.50, 0.20),
        "edge": (0.10, 0.30, 0.30),
        "cluster": (0.20, 0.40, 0.25),
    }
    got = {
        row["scenario"]: (float(row["low"]), float(row["high"]), float(row["uncertainty"]))
        for row in attenuation
        if row["workload"] == "any" and row["gpu"] == ""
    }
    assert set(got) == set(expected)
    for scenario, values in expected.items():
        assert got[scenario] == pytest.approx(values), scenario


# --- models.csv ---------------------------------------------------------------------


def test_models(models: dict[str, dict[str, str]]) -> None:
    required = {
        "resnet50", "resnet18", "vit-b16", "efficientnet-b0", "mobilenet-v2", "bert-base",
        "bert-large", "gpt2", "gpt3-175b", "llama2-7b", "llama2-13b", "llama2-70b",
        "llama3-8b", "llama3-70b", "llama3-405b", "mistral-7b", "mixtral-8x7b",
        "chinchilla-70b",
    }
    assert required <= set(models)
    for name, row in models.items():
        assert name == name.lower() and " " not in name, name
        assert row["kind"] in {"transformer", "cnn"}, name
        assert float(row["params"]) > 0, name
        if row["kind"] == "cnn":
            assert float(row["flops_per_sample"]) > 0, name
        else:
            for col in ("layers", "d_model", "n_heads", "seq_len"):
                assert int(row[col]) > 0, (name, col)
        if row["active_params"]:
            assert float(row["active_params"]) < float(row["params"]), name


def test_model_spot_values(models: dict[str, dict[str, str]]) -> None:
    # ResNet-50: 4.09 GMACs (torchvision) -> 8.18e9 FLOPs with FLOPs = 2 x MACs.
    assert float(models["resnet50"]["flops_per_sample"]) == pytest.approx(8.18e9, rel=0.02)
    # Mixtral 8x7B: 46.7B total, 12.9B active (arXiv 2401.04088).
    assert float(models["mixtral-8x7b"]["params"]) == pytest.approx(46.7e9)
    assert float(models["mixtral-8x7b"]["active_params"]) == pytest.approx(12.9e9)
    # Llama 2 7B: 32 layers, d_model 4096 (HF config.json).
    assert int(models["llama2-7b"]["layers"]) == 32
    assert int(models["llama2-7b"]["d_model"]) == 4096
