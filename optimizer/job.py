"""Job and portfolio files: strict pydantic models plus one loader that never tracebacks.

A typo in a job file must not silently change a purchase decision, so unknown
keys are errors (with a "did you mean" hint), numbers must be finite and every
problem is reported as ``file: field: message (got value)``.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import InputError, Problem
from .fileio import SIZE_CAPS, control_character, read_text
from .units import parse_count, parse_hours, parse_money

# The vocabulary lives at the bottom layer; re-exported here for the job model's users.
from .vocabulary import INTERCONNECTS as INTERCONNECTS
from .vocabulary import OFFER_KINDS as OFFER_KINDS
from .vocabulary import PRECISIONS as PRECISIONS
from .vocabulary import SCENARIOS as SCENARIOS
from .vocabulary import FineTuneMethod as FineTuneMethod
from .vocabulary import Interconnect as Interconnect
from .vocabulary import OfferKind as OfferKind
from .vocabulary import Precision as Precision
from .vocabulary import Scenario as Scenario
from .vocabulary import WorkloadKind as WorkloadKind


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be > 0 (got {value:g})")
    return value


Count = Annotated[float, BeforeValidator(parse_count)]
PositiveCount = Annotated[float, BeforeValidator(lambda v: _positive(parse_count(v)))]
PositiveInt = Annotated[int, BeforeValidator(lambda v: _positive(parse_count(v))), Field(ge=1)]
Hours = Annotated[float, BeforeValidator(lambda v: _positive(parse_hours(v)))]
Money = Annotated[float, BeforeValidator(lambda v: _positive(parse_money(v)))]


def _seconds(value: Any) -> float:
    """Latency targets: a plain number is seconds (not hours, as elsewhere); ``50ms``, ``1s`` and
    ``0.5 s`` are accepted because that is how serving SLOs are written."""
    if isinstance(value, str) and value.strip().endswith("ms"):
        return _positive(parse_count(value.strip()[:-2]) / 1000.0)
    if isinstance(value, str) and value.strip()[-1:] in ("s", "n", "h"):
        return _positive(parse_hours(value) * 3600.0)
    return _positive(parse_count(value))


Seconds = Annotated[float, BeforeValidator(_seconds)]
Share = Annotated[float, Field(gt=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class RequestBucket(_Strict):
    """One request shape of a service and its share of the requests (Mélange-style buckets)."""

    name: str | None = None
    share: Share
    prompt_tokens: PositiveCount
    output_tokens: PositiveCount


# Fields that only make sense for one kind; set on another kind they would be silently ignored.
SERVING_FIELDS = ("requests_per_day", "peak_factor", "peak_requests_per_second", "buckets", "ttft_seconds",
                  "tpot_seconds", "window_hours", "hours_per_day")
FINE_TUNE_FIELDS = ("lora_rank", "trainable_params")


class Workload(_Strict):
    """What is computed. Which fields are required depends on ``kind`` (see flops.py; serving
    fields: serving.py)."""

    kind: WorkloadKind
    model: str | None = None
    params: PositiveCount | None = None
    active_params: PositiveCount | None = None
    tokens: PositiveCount | None = None
    seq_len: PositiveInt | None = None
    layers: PositiveInt | None = None
    d_model: PositiveInt | None = None
    n_heads: PositiveInt | None = None
    n_kv_heads: PositiveInt | None = None
    recompute: bool = False
    micro_batch_size: PositiveInt = 1
    requests: PositiveCount | None = None
    prompt_tokens: PositiveCount | None = None
    output_tokens: PositiveCount | None = None
    batch_size: PositiveInt | None = None
    context: PositiveInt | None = None
    flops_per_sample: PositiveCount | None = None
    samples: PositiveCount | None = None
    epochs: PositiveCount | None = None
    total_flops: PositiveCount | None = None
    # fine-tuning (transformer_training): LoRA / QLoRA train low-rank adapters only
    method: FineTuneMethod = "full"
    lora_rank: PositiveInt | None = None
    trainable_params: PositiveCount | None = None
    # serving (transformer_serving): traffic, request shape, latency targets, window
    requests_per_day: PositiveCount | None = None
    peak_factor: Annotated[float, Field(ge=1.0)] | None = None
    peak_requests_per_second: PositiveCount | None = None
    buckets: list[RequestBucket] | None = Field(default=None, min_length=1, max_length=16)
    ttft_seconds: Seconds | None = None
    tpot_seconds: Seconds | None = None
    window_hours: Hours | None = None
    hours_per_day: Annotated[float, Field(gt=0.0, le=24.0)] = 24.0

    @model_validator(mode="after")
    def _fields_of_kind(self) -> "Workload":
        given = self.model_fields_set
        if self.kind != "transformer_serving":
            stray = [f for f in SERVING_FIELDS if f in given]
            if stray:
                raise ValueError(f"{', '.join(stray)} only apply to kind transformer_serving (got kind "
                                 f"{self.kind}); a batch of requests with a deadline is transformer_inference")
        if self.kind != "transformer_training":
            stray = [f for f in ("method", *FINE_TUNE_FIELDS) if f in given]
            if stray:
                raise ValueError(f"{', '.join(stray)} only apply to kind transformer_training (got {self.kind})")
        elif self.method == "full" and any(f in given for f in FINE_TUNE_FIELDS):
            raise ValueError("lora_rank / trainable_params need method: lora or qlora (got method full)")
        if self.buckets is not None:
            total = sum(b.share for b in self.buckets)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"buckets' shares must add up to 1 (got {total:g})")
            if self.prompt_tokens is not None or self.output_tokens is not None:
                raise ValueError("give either buckets or prompt_tokens/output_tokens, not both")
        return self


class Constraints(_Strict):
    deadline_hours: Hours | None = None
    budget_usd: Money | None = None
    max_gpus: PositiveInt | None = None
    # Pin the fleet: exactly this many GPUs ("how long on the 64 GPUs we reserved?"), or at
    # least this many (a minimum allocation). Offers whose instances cannot make up an exact
    # count (64 GPUs from 3-GPU instances) are excluded with that reason.
    gpu_count: PositiveInt | None = None
    min_gpus: PositiveInt | None = None
    providers: list[str] | None = None
    offer_kinds: list[OfferKind] | None = None
    gpus: list[str] | None = None
    regions: list[str] | None = None

    @model_validator(mode="after")
    def _consistent_counts(self) -> "Constraints":
        lo, hi, pinned = self.min_gpus, self.max_gpus, self.gpu_count
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_gpus {lo} is above max_gpus {hi}")
        if pinned is not None and hi is not None and pinned > hi:
            raise ValueError(f"gpu_count {pinned} is above max_gpus {hi}")
        if pinned is not None and lo is not None and pinned < lo:
            raise ValueError(f"gpu_count {pinned} is below min_gpus {lo}")
        return self


class Risk(_Strict):
    buffer: Literal["auto"] | float = "auto"

    @field_validator("buffer", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        # Normalise here so a bad value gives one error on `risk.buffer` (not one per
        # member of the "auto" | float union) and `true` is not read as a 100% buffer.
        hint = f"must be 'auto' or a fraction in [0, 2], e.g. 0.3 or 30% (got {_describe(value)})"
        if isinstance(value, bool):
            raise ValueError(hint)
        if isinstance(value, str):
            text = value.strip()
            if text == "auto":
                return text
            try:
                number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
            except ValueError:
                raise ValueError(hint) from None
            value = number
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(hint)
        return value

    @field_validator("buffer")
    @classmethod
    def _range(cls, value: Literal["auto"] | float) -> Literal["auto"] | float:
        if value != "auto" and not 0.0 <= float(value) <= 2.0:
            raise ValueError(f"must be 'auto' or a fraction in [0, 2], e.g. 0.3 (got {value})")
        return value


class Familiar(_Strict):
    gpu: str | None = None
    provider: str | None = None


class Performance(_Strict):
    """Overrides of catalog assumptions, for users who measured their own numbers."""

    attenuation: float | None = Field(default=None, gt=0.0, le=1.0)
    # > 0.5: at 0.5 per doubling, twice the GPUs would finish no sooner (no real fabric is that bad)
    scale_efficiency_per_doubling: dict[Interconnect, Annotated[float, Field(gt=0.5, le=1.0)]] = (
        Field(default_factory=dict)
    )


class Job(_Strict):
    name: str = "job"
    workload: Workload
    precision: list[Precision] = Field(default_factory=lambda: list[Precision](["bf16"]), min_length=1)
    scenario: Literal["auto", "lab", "cloud", "edge", "cluster"] = "auto"
    constraints: Constraints = Field(default_factory=Constraints)
    risk: Risk = Field(default_factory=Risk)
    objective: Literal["cost", "time"] = "cost"
    familiar: Familiar | None = None
    history_scenario: Scenario | None = None
    performance: Performance = Field(default_factory=Performance)
    source_file: str = Field(default="<job>", exclude=True)

    @field_validator("precision", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


# ---------------------------------------------------------------------------
# Error translation: pydantic's errors → "file: field: message (got value)"


def _annotation_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, list, dict) or get_args(annotation):
        for arg in get_args(annotation):
            found = _annotation_model(arg)
            if found is not None:
                return found
    return None


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        model = _annotation_model(info.annotation)
    return model


def _public_fields(model: type[BaseModel]) -> list[str]:
    return [name for name, info in model.model_fields.items() if not info.exclude]


# Bounded repr: a few-hundred-byte YAML alias bomb expands to millions of list items,
# and a plain repr() of such a value takes seconds to minutes and gigabytes.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _describe(value: Any) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def translate_validation_error(
    error: ValidationError, file: str, root: type[BaseModel], prefix: str = ""
) -> InputError:
    problems: list[Problem] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        # pydantic appends the failing union member / validator name; keep real field names.
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        path = prefix + "".join(
            f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc)
        )
        kind = item["type"]
        value = item.get("input")
        if kind == "extra_forbidden":
            parent = _model_at(root, loc[:-1])
            allowed = _public_fields(parent) if parent else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            message = f"unknown key; {hint}allowed keys: {', '.join(allowed)}"
        elif kind == "missing":
            message = "required field is missing"
        elif kind in ("literal_error", "enum"):
            expected = item.get("ctx", {}).get("expected", "")
            message = f"must be one of {expected} (got {_describe(value)})"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"must be a mapping of keys to values (got {_describe(value)})"
        elif kind == "list_type":
            message = f"must be a list (got {_describe(value)})"
        elif kind == "finite_number":
            message = f"must be a finite number (got {_describe(value)})"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if "(got" not in message:
                message += f" (got {_describe(value)})"
        problems.append(Problem(file=file, field=path, message=message))
    # A union of "auto" | float reports one error per member; keep the first per field.
    seen: set[str] = set()
    unique = [p for p in problems if not (p.field in seen or seen.add(p.field))]  # type: ignore[func-returns-value]
    return InputError(unique)


# ---------------------------------------------------------------------------
# Reading files


class _DuplicateKey(yaml.YAMLError):  # type: ignore[misc]
    def __init__(self, key: object, first_line: int, again_line: int) -> None:
        self.key, self.first_line, self.again_line = key, first_line, again_line


# libyaml's parser where installed: 5× faster than pure Python on a file at the size cap.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader that refuses duplicate keys: with PyYAML the last one silently wins, so
    ``budget_usd: $2M`` followed by ``budget_usd: $1`` would plan with a $1 budget."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merge keys (<<) may be overridden on purpose; non-scalar keys fail later
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first:
                raise _DuplicateKey(key, first[key], line)
            first[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _control_character_problem(data: Any, file: str) -> InputError | None:
    """The first key or text value holding a control character (NUL, ESC, newline …).

    Containers are visited once each: an alias bomb shares them, so this stays linear in
    the file, not in the expanded document.
    """
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            bad = control_character(value)
            if bad:
                return InputError.at(file, where, f"contains the control character {bad}; "
                                     "names and ids must be printable text")
        elif isinstance(value, (dict, list)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and control_character(key):
                    return InputError.at(file, where, f"key {key!r} contains the control character "
                                         f"{control_character(key)}")
                part = f"{where}[{key}]" if isinstance(value, list) else (f"{where}.{key}" if where else str(key))
                stack.append((part, item))
    return None


def read_yaml_mapping(path: str | Path, what: str = "job") -> dict[str, Any]:
    """Read a small YAML file that must hold a mapping; every failure is an InputError.

    ``what`` is "job" or "portfolio": it picks the size cap (see ``fileio.SIZE_CAPS``).
    """
    file = str(path)
    text = read_text(path, what if what in SIZE_CAPS else "job")
    if not text.strip():
        raise InputError.at(file, "", f"file is empty; a {what} needs at least 'workload:'")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise InputError.at(file, str(exc.key), f"duplicate key on lines {exc.first_line} and {exc.again_line}; "
                            "remove one (YAML would silently keep the last)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InputError.at(file, "", f"invalid YAML at {where}: {problem}") from None
    if not isinstance(data, dict):
        raise InputError.at(
            file, "", f"must be a YAML mapping of keys (got {type(data).__name__})"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise InputError.at(file, str(bad_keys[0]), "keys must be text")
    control = _control_character_problem(data, file)
    if control is not None:
        raise control
    return data


def parse_job(data: dict[str, Any], file: str = "<job>", prefix: str = "") -> Job:
    try:
        job = Job.model_validate({**data, "source_file": file})
    except ValidationError as exc:
        raise translate_validation_error(exc, file, Job, prefix) from None
    if "source_file" in data:
        raise InputError.at(file, prefix + "source_file", "unknown key")
    return job


def load_job(path: str | Path) -> Job:
    """Load and validate a job YAML file."""
    return parse_job(read_yaml_mapping(path, "job"), str(path))
