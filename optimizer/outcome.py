"""What a solver run ended with: two enums and maps, in the manner of linopy's constants.

A solver that stops on a limit has *not* shown that no plan exists, so it must not be reported
as "infeasible" (and no relaxation hint may be written for it). Every status of both solvers is
mapped here, once; callers ask ``outcome.is_optimal``, ``outcome.has_solution`` or
``outcome.proven_infeasible``, and ``result_status`` turns an outcome into a result's status and
the sentence that goes with it (every integer program in flopopt goes through it).

HiGHS (highspy's ``HighsModelStatus``, read from the solver itself: PuLP's own table lacks
kSolutionLimit, kInterrupt's newer twin kHighsInterrupt and kMemoryLimit, and folds every stop
into "time limit"):

    kOptimal                                   →  optimal
    kInfeasible                                →  infeasible
    kUnboundedOrInfeasible                     →  infeasible when the objective is bounded by the
                                                  variables' bounds (it cannot be unbounded, so no
                                                  finite optimum means no solution), else
                                                  infeasible_or_unbounded
    kUnbounded                                 →  unbounded
    kTimeLimit                                 →  time_limit
    kIterationLimit                            →  iteration_limit
    kSolutionLimit (node, leaf or improving-
      solution limit), kObjectiveBound,
      kObjectiveTarget                         →  terminated_by_limit
    kMemoryLimit                               →  memory_limit
    kInterrupt (a callback), kHighsInterrupt   →  interrupted
    kLoadError, kModelError, kPresolveError,
      kSolveError, kPostsolveError             →  solver_error
    kNotset, kModelEmpty, kUnknown             →  not_solved
    (a status this table does not know)        →  not_solved

PuLP (every other solver, CBC included), its (status, sol_status) pair:

    LpStatus*      LpSolution*                        →  TerminationCondition
    any            IntegerFeasible (stopped early)    →  why it stopped (CBC's log: time, node,
                                                          solution, iteration limit, ctrl-c), else
                                                          time_limit if a limit was set, else
                                                          terminated_by_limit; with a solution
    Optimal        any other                          →  optimal
    Infeasible     any other                          →  infeasible, unless the time limit had passed
                                                          by then: time_limit (CBC 2.10's preprocessing,
                                                          cut short by its time limit, says "infeasible"
                                                          of feasible programs: not a proof)
    Unbounded      any other                          →  unbounded
    Not Solved     any other                          →  why it stopped (as above), else time_limit
                                                          if a limit was set, else not_solved
    Undefined, or a code PuLP does not list            →  solver_error

The SolverStatus follows from the termination condition (``STATUS_OF``): ``ok`` for an answer
(optimal, or proven infeasible), ``error`` for a solver failure, ``warning`` for every stop.

The MIP gap is the solver's relative gap between its incumbent and its best bound,
(incumbent − bound) / |incumbent| (model.py reads it: HiGHS reports it, CBC's log is parsed).
"optimal" means the gap is within the solver's tolerance (``mip_gap_tolerance``), not zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .vocabulary import Status


class SolverStatus(str, Enum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class TerminationCondition(str, Enum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    TERMINATED_BY_LIMIT = "terminated_by_limit"   # node, leaf, solution or objective limit
    MEMORY_LIMIT = "memory_limit"
    INTERRUPTED = "interrupted"
    SOLVER_ERROR = "solver_error"
    NOT_SOLVED = "not_solved"


TC = TerminationCondition

STATUS_OF: dict[TerminationCondition, SolverStatus] = {
    TC.OPTIMAL: SolverStatus.OK,
    TC.INFEASIBLE: SolverStatus.OK,
    TC.INFEASIBLE_OR_UNBOUNDED: SolverStatus.WARNING,
    TC.UNBOUNDED: SolverStatus.WARNING,
    TC.TIME_LIMIT: SolverStatus.WARNING,
    TC.ITERATION_LIMIT: SolverStatus.WARNING,
    TC.TERMINATED_BY_LIMIT: SolverStatus.WARNING,
    TC.MEMORY_LIMIT: SolverStatus.WARNING,
    TC.INTERRUPTED: SolverStatus.WARNING,
    TC.SOLVER_ERROR: SolverStatus.ERROR,
    TC.NOT_SOLVED: SolverStatus.WARNING,
}

# highspy.HighsModelStatus member names (HiGHS 1.16) → condition; see the module docstring.
HIGHS_MODEL_STATUS: dict[str, TerminationCondition] = {
    "kNotset": TC.NOT_SOLVED,
    "kLoadError": TC.SOLVER_ERROR,
    "kModelError": TC.SOLVER_ERROR,
    "kPresolveError": TC.SOLVER_ERROR,
    "kSolveError": TC.SOLVER_ERROR,
    "kPostsolveError": TC.SOLVER_ERROR,
    "kModelEmpty": TC.NOT_SOLVED,
    "kOptimal": TC.OPTIMAL,
    "kInfeasible": TC.INFEASIBLE,
    "kUnboundedOrInfeasible": TC.INFEASIBLE_OR_UNBOUNDED,
    "kUnbounded": TC.UNBOUNDED,
    "kObjectiveBound": TC.TERMINATED_BY_LIMIT,
    "kObjectiveTarget": TC.TERMINATED_BY_LIMIT,
    "kTimeLimit": TC.TIME_LIMIT,
    "kIterationLimit": TC.ITERATION_LIMIT,
    "kUnknown": TC.NOT_SOLVED,
    "kSolutionLimit": TC.TERMINATED_BY_LIMIT,
    "kInterrupt": TC.INTERRUPTED,
    "kMemoryLimit": TC.MEMORY_LIMIT,
    "kHighsInterrupt": TC.INTERRUPTED,
}

# CBC's closing "Result - Stopped on …" line (CbcSolver.cpp): a word of it → why the search stopped.
CBC_STOPPED_ON: tuple[tuple[str, TerminationCondition], ...] = (
    ("time", TC.TIME_LIMIT),
    ("node", TC.TERMINATED_BY_LIMIT),
    ("solution", TC.TERMINATED_BY_LIMIT),
    ("iteration", TC.ITERATION_LIMIT),
    ("ctrl-c", TC.INTERRUPTED),
)

# Terminations that end a search without deciding it: a stop, never a proof.
STOPS = frozenset(c for c in TC if c not in (TC.OPTIMAL, TC.INFEASIBLE))


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


def solver_outcome(termination: TerminationCondition, *, has_solution: bool = False, mip_gap: float | None = None,
                   mip_gap_tolerance: float | None = None) -> SolverOutcome:
    """The outcome of ``termination``, its SolverStatus from ``STATUS_OF``. ``mip_gap`` is kept only
    where there is an incumbent it can describe."""
    solution = has_solution or termination is TC.OPTIMAL
    return SolverOutcome(STATUS_OF[termination], termination, mip_gap if solution else None, solution,
                         mip_gap_tolerance)


def infeasible_by_construction() -> SolverOutcome:
    """No program to solve because some part of it has no option at all (a job without candidates,
    a bucket no replica serves): infeasible without asking a solver."""
    return solver_outcome(TC.INFEASIBLE)


def outcome_from_highs(model_status: str, *, has_solution: bool, objective_bounded: bool,
                       mip_gap: float | None = None, mip_gap_tolerance: float | None = None) -> SolverOutcome:
    """Map a HiGHS model status (``HighsModelStatus`` member name); see the module docstring.
    ``has_solution``: HiGHS holds a feasible primal solution (info.primal_solution_status)."""
    termination = HIGHS_MODEL_STATUS.get(model_status, TC.NOT_SOLVED)
    if termination is TC.INFEASIBLE_OR_UNBOUNDED and objective_bounded:
        termination = TC.INFEASIBLE
    if termination in (TC.INFEASIBLE, TC.INFEASIBLE_OR_UNBOUNDED, TC.UNBOUNDED):
        has_solution = False
    return solver_outcome(termination, has_solution=has_solution and termination is not TC.SOLVER_ERROR,
                          mip_gap=mip_gap, mip_gap_tolerance=mip_gap_tolerance)


def outcome_from_pulp(status_code: int, solution_code: int, *, time_limited: bool,
                      stopped_on: TerminationCondition | None = None, time_limit_reached: bool = False,
                      mip_gap: float | None = None, mip_gap_tolerance: float | None = None) -> SolverOutcome:
    """Map PuLP's (status, sol_status) pair; see the table in the module docstring. ``stopped_on``
    is why the solver says it stopped, when it says (``cbc_stopped_on``); ``time_limit_reached``:
    the solve took at least its time limit."""
    import pulp

    stop = stopped_on if stopped_on in STOPS else None
    if solution_code == pulp.LpSolutionIntegerFeasible:
        why = stop or (TC.TIME_LIMIT if time_limited else TC.TERMINATED_BY_LIMIT)
        return solver_outcome(why, has_solution=True, mip_gap=mip_gap, mip_gap_tolerance=mip_gap_tolerance)
    if status_code == pulp.LpStatusInfeasible and time_limit_reached:
        return solver_outcome(TC.TIME_LIMIT, mip_gap_tolerance=mip_gap_tolerance)
    decided = {pulp.LpStatusOptimal: TC.OPTIMAL, pulp.LpStatusInfeasible: TC.INFEASIBLE,
               pulp.LpStatusUnbounded: TC.UNBOUNDED}
    if status_code in decided:
        return solver_outcome(decided[status_code], mip_gap=mip_gap, mip_gap_tolerance=mip_gap_tolerance)
    if status_code == pulp.LpStatusNotSolved:
        why = stop or (TC.TIME_LIMIT if time_limited else TC.NOT_SOLVED)
        return solver_outcome(why, mip_gap_tolerance=mip_gap_tolerance)
    return solver_outcome(TC.SOLVER_ERROR, mip_gap_tolerance=mip_gap_tolerance)


def cbc_stopped_on(log: str) -> TerminationCondition | None:
    """Why CBC stopped, from its "Result - Stopped on time limit" line; None when it did not stop
    early (or printed no summary)."""
    for line in reversed(log.splitlines()):
        if line.startswith("Result - "):
            what = line.lower()
            if "stopped" not in what and "ctrl-c" not in what:
                return None
            for word, condition in CBC_STOPPED_ON:
                if word in what:
                    return condition
            return TC.TERMINATED_BY_LIMIT
    return None


# What the solver did, for a user: the start of "the solver … before finding a plan".
_STOPPED: dict[TerminationCondition, str] = {
    TC.ITERATION_LIMIT: "stopped at its iteration limit",
    TC.TERMINATED_BY_LIMIT: "stopped at a node, solution or objective limit",
    TC.MEMORY_LIMIT: "ran out of memory",
    TC.INTERRUPTED: "was interrupted",
    TC.SOLVER_ERROR: "failed",
    TC.UNBOUNDED: "reported the program unbounded",
    TC.INFEASIBLE_OR_UNBOUNDED: "could not tell whether the program is infeasible or unbounded",
    TC.NOT_SOLVED: "stopped without a result",
}


def result_status(outcome: SolverOutcome, *, what: str = "plan",
                  time_limit_seconds: float | None = None) -> tuple[Status, str | None]:
    """A result's status and, when the solver did not finish, what to tell the user about ``what``
    (the "plan", the "fleet").

    Proven optimal: ``optimal``, nothing to say. Proven infeasible: ``infeasible`` (the caller then
    explains which limit binds). Any stop — with an incumbent (still a plan, not proven optimal,
    with its MIP gap) or without one — is ``time_limit`` when the time limit stopped it, else
    ``not_solved``, and the sentence says what stopped the solver and suggests no relaxation:
    nothing showed that a limit binds.
    """
    if outcome.is_optimal:
        return Status.OPTIMAL, None
    if outcome.proven_infeasible:
        return Status.INFEASIBLE, None
    timed = outcome.termination is TC.TIME_LIMIT
    status = Status.TIME_LIMIT if timed else Status.NOT_SOLVED
    limit = f" ({time_limit_seconds:g} s)" if time_limit_seconds is not None else ""
    if outcome.has_solution:
        gap = outcome.mip_gap
        gap_text = f"relative MIP gap {gap:.2%}" if gap is not None else "the solver reported no MIP gap"
        if timed:
            return status, (f"the solver stopped at its time limit{limit}: this {what} is the best it found, "
                            f"not proven optimal ({gap_text}); raise the time limit to prove it")
        return status, (f"the solver {_STOPPED[outcome.termination]}: this {what} is the best it found, not "
                        f"proven optimal ({gap_text}); try the other solver (--solver highs or cbc) to prove it")
    if timed:
        return status, f"the solver stopped at its time limit{limit} before finding a {what}; raise the time limit"
    return status, (f"the solver {_STOPPED[outcome.termination]} before finding a {what}; try the other solver "
                    "(--solver highs or cbc)")
