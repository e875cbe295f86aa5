"""The one accelerator-name mapping: price sources' names → gpus.csv ids, as data.

``accelerators.csv`` (next to this file) holds every rule, one a line, with its basis:

    source           skypilot, skypilot:<cloud> (overrides skypilot for that cloud),
                     vast, or azure (whose names are VM sizes)
    name             the source's name (matched case-insensitively)
    memory_gib       optional: the GPU memory the source reports (SkyPilot's GpuInfo
                     MemoryInfo, vast's gpu_ram), matched within 10% — so V100 16 GB and
                     32 GB, or A100 40 and 80 GB, map to different gpus.csv rows
    instance_contains optional: a lower-case text the instance type must contain
                     ("pcie", "nvl"), for sources that name the board only there
    gpu, interconnect the gpus.csv id, and how the instance's GPUs are connected
    gpus_per_instance only for azure VM sizes (the size fixes the count)

The most specific matching rule wins (cloud over source, then memory, then instance
text). A name no rule matches is reported by name by the adapters, never dropped as
CPU-only. Keeping the rules in one table means one test on real rows covers them all.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass

from .paths import BUNDLED_DIR

MAPPING_FILE = BUNDLED_DIR / "accelerators.csv"
MEMORY_TOLERANCE = 0.1


@dataclass(frozen=True)
class Rule:
    source: str
    name: str
    memory_gib: float | None
    instance_contains: str
    gpu: str
    interconnect: str
    gpus_per_instance: int | None
    basis: str


@dataclass(frozen=True)
class Mapped:
    """What a source name resolves to."""

    gpu: str
    interconnect: str
    gpus_per_instance: int | None = None


@functools.lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    with MAPPING_FILE.open(newline="", encoding="utf-8") as handle:
        return tuple(
            Rule(
                source=r["source"].strip().lower(),
                name=r["name"].strip(),
                memory_gib=float(r["memory_gib"]) if r["memory_gib"].strip() else None,
                instance_contains=r["instance_contains"].strip().lower(),
                gpu=r["gpu"].strip(),
                interconnect=r["interconnect"].strip(),
                gpus_per_instance=(
                    int(r["gpus_per_instance"]) if r["gpus_per_instance"].strip() else None
                ),
                basis=r["basis"].strip(),
            )
            for r in csv.DictReader(handle)
        )


def normalise(name: str) -> str:
    """Upper case, underscores as spaces, single spaces: vast writes ``RTX_4090`` and ``RTX 4090``."""
    return " ".join(name.replace("_", " ").split()).upper()


def resolve(
    source: str,
    name: str,
    *,
    cloud: str | None = None,
    memory_gib: float | None = None,
    instance_type: str = "",
) -> Mapped | None:
    """The gpus.csv id for a source's accelerator name, or None when no rule matches."""
    wanted = normalise(name)
    sources = [f"{source}:{cloud}".lower(), source.lower()] if cloud else [source.lower()]
    instance = instance_type.lower()
    best: tuple[tuple[int, int, int], Rule] | None = None
    for rule in rules():
        if rule.source not in sources or normalise(rule.name) != wanted:
            continue
        if rule.memory_gib is not None and (
            memory_gib is None or abs(memory_gib - rule.memory_gib) > MEMORY_TOLERANCE * rule.memory_gib
        ):
            continue
        if rule.instance_contains and rule.instance_contains not in instance:
            continue
        rank = (
            int(rule.source != source.lower()),
            int(rule.memory_gib is not None),
            int(bool(rule.instance_contains)),
        )
        if best is None or rank > best[0]:
            best = (rank, rule)
    if best is None:
        return None
    rule = best[1]
    return Mapped(rule.gpu, rule.interconnect, rule.gpus_per_instance)


def azure_sizes() -> dict[str, Mapped]:
    """Azure VM size → its GPUs (the sizes the Azure feed asks the Retail Prices API for).

    Names keep their case: the Retail Prices API's filter values are case-sensitive.
    """
    return {
        rule.name: Mapped(rule.gpu, rule.interconnect, rule.gpus_per_instance)
        for rule in rules()
        if rule.source == "azure"
    }
