"""What a solver run ended with: two enums and a map, in the manner of linopy's constants.

A solver that stops on a time limit has *not* shown that no plan exists, so it must not be
reported as "infeasible" (and no relaxation hint may be written for it). Every PuLP status is
mapped here, once; callers ask ``outcome.is_optimal`` or ``outcome.proven_infeasible``.

    PuLP status (LpStatus*)   solution status (LpSolution*)   →  SolverStatus, TerminationCondition
    Optimal                   Optimal                          →  ok,      optimal
    Optimal / Not Solved      IntegerFeasible (stopped early)  →  warning, time_limit (a plan, gap > 0)
    Infeasible                Infeasible                       →  ok,      infeasible
    Unbounded                 Unbounded                        →  warning, unbounded
    Not Solved                NoSolutionFound                  →  warning, time_limit if a limit was set,
                                                                   else not_solved
    Undefined                 —                                →  error,   not_solved
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SolverStatus(str, Enum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class TerminationCondition(str, Enum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    NOT_SOLVED = "not_solved"


@dataclass(frozen=True)
class SolverOutcome:
    status: SolverStatus
    termination: TerminationCondition
    mip_gap: float | None = None          # relative gap of the incumbent (0 when proven optimal)
    has_solution: bool = False            # an incumbent exists (optimal, or stopped early with one)

    @property
    def is_optimal(self) -> bool:
        return self.status is SolverStatus.OK and self.termination is TerminationCondition.OPTIMAL

    @property
    def proven_infeasible(self) -> bool:
        return self.termination is TerminationCondition.INFEASIBLE


def outcome_from_pulp(status_code: int, solution_code: int, *, time_limited: bool,
                      mip_gap: float | None = None) -> SolverOutcome:
    """Map PuLP's (status, sol_status) pair; see the table in the module docstring."""
    import pulp

    if solution_code == pulp.LpSolutionIntegerFeasible:
        return SolverOutcome(SolverStatus.WARNING, TerminationCondition.TIME_LIMIT, mip_gap, True)
    if status_code == pulp.LpStatusOptimal:
        return SolverOutcome(SolverStatus.OK, TerminationCondition.OPTIMAL, 0.0, True)
    if status_code == pulp.LpStatusInfeasible:
        return SolverOutcome(SolverStatus.OK, TerminationCondition.INFEASIBLE)
    if status_code == pulp.LpStatusUnbounded:
        return SolverOutcome(SolverStatus.WARNING, TerminationCondition.UNBOUNDED)
    if status_code == pulp.LpStatusNotSolved:
        return SolverOutcome(SolverStatus.WARNING,
                             TerminationCondition.TIME_LIMIT if time_limited else TerminationCondition.NOT_SOLVED)
    return SolverOutcome(SolverStatus.ERROR, TerminationCondition.NOT_SOLVED)
