"""The JSON output contract: one envelope, one rounding rule, one error document.

Every ``--format json`` document is built by :func:`document`, so it starts with
``schema_version`` and ``status``; :func:`to_json` is the one place that turns it into
text, and it rounds every float of the whole document to :data:`FLOAT_DIGITS`
significant digits (``0.42500000000000004`` → ``0.425``): the numbers are estimates,
and raw binary noise in them only makes diffs of two reports unreadable.

The shapes are published as JSON Schema files in ``docs/schema/`` (shipped in the
package as ``flopopt/docs/schema``) and described in ``docs/output-contract.md``.
``schema_version`` follows semantic versioning: a new key is a minor bump, renaming or
removing one (or changing its type) is a major bump.

With ``--format json`` an error is a JSON document on stdout as well (status
``"error"``, with ``code``, ``file``, ``field`` and ``message``), and the process exits
with the same code as without it; the one-line ``error: …`` message still goes to stderr.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

SCHEMA_VERSION = "2.0.0"
FLOAT_DIGITS = 6          # significant digits of every float in a JSON document
STATUS_OK = "ok"
STATUS_ERROR = "error"

_PLAIN = (str, int, bool, type(None))


def round_float(value: float, digits: int = FLOAT_DIGITS) -> float | None:
    """``digits`` significant digits; NaN and infinity become null (JSON has neither)."""
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")


def clean(value: Any) -> Any:
    """JSON-safe and rounded: floats to FLOAT_DIGITS significant digits, NaN/inf → null,
    tuples → lists, numpy scalars → Python numbers, keys → strings."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        return round_float(value)
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def document(status: str, body: dict[str, Any]) -> dict[str, Any]:
    """The envelope of every JSON document: ``schema_version`` and ``status`` first."""
    return {"schema_version": SCHEMA_VERSION, "status": status, **body}


def to_json(data: Any, indent: int | None = 2) -> str:
    """The document as text, rounded. ``indent=None`` (one line) is for the big solve document."""
    return json.dumps(clean(data), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def error_document(command: str, code: int, message: str, problems: Sequence[Any] = (),
                   file: str | None = None, field: str | None = None) -> dict[str, Any]:
    """The error document: what failed (``file``, ``field``), why (``message``), the exit code.

    ``problems`` are :class:`~flopopt.optimizer.errors.Problem` items; the first one names
    ``file`` and ``field`` when they are not given, and all are listed.
    """
    items = [{"file": p.file or None, "field": p.field or None, "row": p.row, "message": p.message}
             for p in problems]
    first = items[0] if items else {}
    return document(STATUS_ERROR, {
        "command": command,
        "code": code,
        "file": file if file is not None else first.get("file"),
        "field": field if field is not None else first.get("field"),
        "message": message,
        "problems": items,
    })


# ---------------------------------------------------------------------------
# which argument list asks for JSON (usage errors happen before options are parsed)


def asks_for_json(args: Iterable[str]) -> bool:
    """True when the raw arguments hold ``-f json``, ``--format json``, ``--format=json`` or ``-fjson``."""
    tokens = list(args)
    for i, token in enumerate(tokens):
        if token in ("-f", "--format") and i + 1 < len(tokens) and tokens[i + 1] == "json":
            return True
        if token in ("--format=json", "-fjson"):
            return True
    return False


# ---------------------------------------------------------------------------
# the published schemas

SCHEMA_PACKAGE_DIR = ("docs", "schema")


def schema_dir() -> Path:
    """Where the JSON Schema files are: ``docs/schema`` of the installed package (or checkout)."""
    root = resources.files("flopopt")
    return Path(str(root.joinpath(*SCHEMA_PACKAGE_DIR)))


def schema_names() -> list[str]:
    """The command schemas (``common`` holds shared definitions only)."""
    return sorted(p.stem for p in schema_dir().glob("*.json") if p.stem != "common")


def validator(name: str) -> Any:
    """A jsonschema validator for one command's document (``solve``, ``catalog-list``, ``error`` …).

    jsonschema is a test dependency, not a runtime one: only tests and users who want to
    check a document call this. References between the files (``common.json#/$defs/plan``)
    resolve against the files themselves, so nothing is fetched.
    """
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    folder = schema_dir()
    resources = [(p.name, Resource.from_contents(json.loads(p.read_text(encoding="utf-8")),
                                                 default_specification=DRAFT202012))
                 for p in folder.glob("*.json")]
    registry: Any = Registry().with_resources(resources)
    schema = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=registry)
