"""What a solver run ended with: two enums and a map, in the manner of linopy's constants.

A solver that stops on a time limit has *not* shown that no plan exists, so it must not be
reported as "infeasible" (and no relaxation hint may be written for it). Every PuLP status is
mapped here, once; callers ask ``outcome.is_optimal``, ``outcome.has_solution`` or
``outcome.proven_infeasible``.

    PuLP status (LpStatus*)   solution status (LpSolution*)   →  SolverStatus, TerminationCondition
    Optimal                   Optimal                          →  ok,      optimal
    Optimal / Not Solved      IntegerFeasible (stopped early)  →  warning, time_limit (an incumbent, gap ≥ 0)
    Infeasible                Infeasible                       →  ok,      infeasible
    Unbounded                 Unbounded                        →  warning, unbounded
    Not Solved                NoSolutionFound                  →  warning, time_limit if a limit was set,
                                                                   else not_solved
    Undefined                 —                                →  error,   not_solved

PuLP reports every early stop with an incumbent (time limit, node limit, interrupt) as
IntegerFeasible; flopopt sets only time limits, so that row reads "time_limit".

The MIP gap is the solver's relative gap between its incumbent and its best bound,
(incumbent − bound) / |incumbent| (model.py reads it: HiGHS reports it, CBC's log is parsed).
"optimal" means the gap is within the solver's tolerance (``mip_gap_tolerance``), not zero.
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
    # Relative gap of the incumbent, (incumbent − best bound) / |incumbent|, as the solver reports it;
    # None when there is no incumbent or the solver gave no bound (model.py says when).
    mip_gap: float | None = None
    has_solution: bool = False            # an incumbent exists (optimal, or stopped early with one)
    mip_gap_tolerance: float | None = None  # the relative gap at which the solver calls a solution optimal

    @property
    def is_optimal(self) -> bool:
        return self.status is SolverStatus.OK and self.termination is TerminationCondition.OPTIMAL

    @property
    def proven_infeasible(self) -> bool:
        return self.termination is TerminationCondition.INFEASIBLE


def outcome_from_pulp(status_code: int, solution_code: int, *, time_limited: bool,
                      mip_gap: float | None = None, mip_gap_tolerance: float | None = None) -> SolverOutcome:
    """Map PuLP's (status, sol_status) pair; see the table in the module docstring. ``mip_gap`` is
    kept only where there is an incumbent it can describe."""
    import pulp

    if solution_code == pulp.LpSolutionIntegerFeasible:
        return SolverOutcome(SolverStatus.WARNING, TerminationCondition.TIME_LIMIT, mip_gap, True, mip_gap_tolerance)
    if status_code == pulp.LpStatusOptimal:
        return SolverOutcome(SolverStatus.OK, TerminationCondition.OPTIMAL, mip_gap, True, mip_gap_tolerance)
    if status_code == pulp.LpStatusInfeasible:
        return SolverOutcome(SolverStatus.OK, TerminationCondition.INFEASIBLE, mip_gap_tolerance=mip_gap_tolerance)
    if status_code == pulp.LpStatusUnbounded:
        return SolverOutcome(SolverStatus.WARNING, TerminationCondition.UNBOUNDED, mip_gap_tolerance=mip_gap_tolerance)
    if status_code == pulp.LpStatusNotSolved:
        return SolverOutcome(SolverStatus.WARNING,
                             TerminationCondition.TIME_LIMIT if time_limited else TerminationCondition.NOT_SOLVED,
                             mip_gap_tolerance=mip_gap_tolerance)
    return SolverOutcome(SolverStatus.ERROR, TerminationCondition.NOT_SOLVED, mip_gap_tolerance=mip_gap_tolerance)
