"""One exception tree for everything the user can get wrong.

    FlopoptError                 any problem flopopt reports to the user (CLI exit 2)
     ├── InputError              a job, portfolio, quotes or history file is invalid
     ├── CatalogError            a catalog CSV is invalid (may carry many problems)
     └── SolverError             no MILP solver could run

Lower-layer errors (YAML, pydantic, pandas, PuLP, requests) are translated into
these where they enter, so the message names the file, the field and the fix.
Infeasibility is *not* an error: it is a result status (see ``solve.Status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FlopoptError(Exception):
    """Base class; ``str(err)`` is the one-line message the CLI prints."""


@dataclass(frozen=True)
class Problem:
    """One defect in an input file, located precisely enough to fix it."""

    file: str
    field: str
    message: str
    row: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}"
        if self.row is not None:
            where += f": row {self.row}"
        if self.field:
            where += f": {self.field}"
        return f"{where}: {self.message}"


MAX_LISTED_PROBLEMS = 20  # a file with 20,000 bad keys printed 3.3 MB of errors


class InputError(FlopoptError):
    """A user input file is wrong; carries every problem found.

    ``problems`` keeps them all; the message lists the first ``MAX_LISTED_PROBLEMS`` and
    then "and N more", since nobody reads the 21st line and a terminal may choke on the 20,000th.
    """

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems: list[Problem] = problems if isinstance(problems, list) else [problems]
        lines = [str(p) for p in self.problems[:MAX_LISTED_PROBLEMS]]
        hidden = len(self.problems) - len(lines)
        if hidden > 0:
            lines.append(f"and {hidden:,} more problem(s) (fix these first)")
        super().__init__("\n".join(lines))

    @classmethod
    def at(cls, file: str, field_path: str, message: str, row: int | None = None) -> "InputError":
        return cls(Problem(file=file, field=field_path, message=message, row=row))


class CatalogError(InputError):
    """A catalog CSV is invalid; lists every problem at once."""


class SolverError(FlopoptError):
    """The MILP solver failed to run (not: the problem is infeasible)."""


@dataclass
class ProblemList:
    """Collects problems so validation can report all of them at once."""

    items: list[Problem] = field(default_factory=list)

    def add(self, file: str, field_path: str, message: str, row: int | None = None) -> None:
        self.items.append(Problem(file=file, field=field_path, message=message, row=row))

    def raise_if_any(self, error_type: type[InputError] = InputError) -> None:
        if self.items:
            raise error_type(self.items)
