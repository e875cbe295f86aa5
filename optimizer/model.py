"""The integer program: pick one candidate per job.

Sets
    J           jobs (a single ``solve`` is |J| = 1)
    C_j         surviving candidates of job j (feasible, not dominated)
    O           offers with a quota shared between jobs
Parameters
    cost_jc     cost of candidate c for job j                        [USD]
    hours_jc    wall-clock hours of candidate c for job j            [h]
    inst_jco    instances of offer o that candidate c occupies       [instances]
    B           shared budget of the portfolio (optional)            [USD]
    Q_o         quota / owned machines of offer o (optional)         [instances]
Variables
    x_jc ∈ {0,1}  job j runs on candidate c
    T ≥ 0         makespan (objective ``time`` only)                 [h]
Objective
    cost:  min Σ_jc cost_jc · x_jc
    time:  min T, then (second solve, T fixed at its optimum) min Σ cost_jc · x_jc
Constraints
    (1) Σ_c x_jc = 1                       ∀ j       one plan per job
    (2) hours_jc · x_jc ≤ T                ∀ j, c    makespan (objective time)
    (3) Σ_jc cost_jc · x_jc ≤ B                      shared budget
    (4) Σ_jc inst_jco · x_jc ≤ Q_o         ∀ o       shared quota: jobs run side by side
Per-job deadlines and budgets are applied before the model is built (candidates.py),
which is what keeps it small.

A time limit that stops the search with an incumbent still yields a plan: ``status`` says
"time_limit" (not proven optimal) and ``mip_gap`` how far from proven it is. The gap is the
solver's own (``solver_gap``): HiGHS reports it, for CBC it is read from the log.

``solve_outcome`` is the one way every integer program of flopopt is solved (this one, the
serving fleet, the procurement plan, and their re-plans): it maps what the solver ended with to
a SolverOutcome (outcome.py) that says whether an incumbent exists; outcome.result_status then
gives the result's status and what to tell the user.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import SolverError
from .outcome import (
    SolverOutcome,
    TerminationCondition,
    cbc_stopped_on,
    infeasible_by_construction,
    outcome_from_highs,
    outcome_from_pulp,
    solver_outcome,
)

SolverName = Literal["highs", "cbc"]


@dataclass(frozen=True)
class JobOptions:
    name: str
    cost_usd: np.ndarray
    hours: np.ndarray
    offer_id: np.ndarray
    instances: np.ndarray


@dataclass(frozen=True)
class ModelSpec:
    jobs: list[JobOptions]
    objective: Literal["cost", "time"] = "cost"
    budget_usd: float | None = None
    quotas: dict[str, int] = field(default_factory=dict)
    time_limit_seconds: float | None = None


# TerminationCondition's values (outcome.py): "optimal", or why the solver ended without one.
ModelStatus = Literal["optimal", "infeasible", "infeasible_or_unbounded", "unbounded", "time_limit",
                      "iteration_limit", "terminated_by_limit", "memory_limit", "interrupted", "solver_error",
                      "not_solved"]


@dataclass(frozen=True)
class ModelSolution:
    """``status`` is the termination condition (outcome.py): only "infeasible" is a proof that
    no plan exists; the others but "optimal" mean the solver stopped without deciding. A stopped
    solution may still hold an incumbent (``choice`` non-empty): a plan, not proven optimal."""

    status: ModelStatus
    choice: tuple[int, ...]          # index into each job's options; empty when there is no incumbent
    objective_value: float | None
    variables: int
    constraints: int
    solver: str
    seconds: float
    outcome: SolverOutcome | None = None

    @property
    def solver_outcome(self) -> SolverOutcome:
        """The outcome (the one recorded, else the one ``status`` and ``choice`` imply)."""
        if self.outcome is not None:
            return self.outcome
        return solver_outcome(TerminationCondition(self.status), has_solution=bool(self.choice))

    @property
    def mip_gap(self) -> float | None:
        """Relative gap of the returned incumbent (outcome.py); None without one or without a bound."""
        return None if self.outcome is None else self.outcome.mip_gap

    @property
    def mip_gap_tolerance(self) -> float | None:
        return None if self.outcome is None else self.outcome.mip_gap_tolerance


def variable(prob: Any, name: str, low: float | None = None, cat: str = "Continuous") -> Any:
    """PuLP ≥ 3.3 attaches variables to the problem (the 4.0 API); older PuLP builds them freely."""
    import pulp

    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lowBound=low, cat=cat)
    return pulp.LpVariable(name, lowBound=low, cat=cat)


def binary_variable(prob: Any, name: str) -> Any:
    return variable(prob, name, cat="Binary")


def make_solver(name: SolverName, time_limit_seconds: float | None = None) -> object:
    import pulp

    limit: dict[str, float] = {} if time_limit_seconds is None else {"timeLimit": float(time_limit_seconds)}
    if name == "highs":
        solver = pulp.HiGHS(msg=False, **limit)
        if solver.available():
            return solver
        name = "cbc"  # HiGHS missing: fall back rather than fail
    solver = pulp.COIN_CMD(msg=False, **limit)
    if not solver.available():
        # PuLP 3.x still ships a CBC binary behind PULP_CBC_CMD, deprecated ahead of 4.0.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, **limit)
    if not solver.available():
        raise SolverError("no MILP solver available: install highspy (pip install highspy) or CBC")
    return solver


def solve_model(spec: ModelSpec, solver: SolverName = "highs") -> ModelSolution:
    import pulp

    started = time.perf_counter()
    if any(len(j.cost_usd) == 0 for j in spec.jobs):
        return ModelSolution("infeasible", (), None, 0, 0, solver, time.perf_counter() - started,
                             infeasible_by_construction())
    engine = make_solver(solver, spec.time_limit_seconds)
    limited = spec.time_limit_seconds is not None
    prob = pulp.LpProblem("flopopt", pulp.LpMinimize)
    x = [
        [binary_variable(prob, f"x_{j}_{c}") for c in range(len(job.cost_usd))]
        for j, job in enumerate(spec.jobs)
    ]
    total_cost = pulp.lpSum(
        float(job.cost_usd[c]) * x[j][c] for j, job in enumerate(spec.jobs) for c in range(len(job.cost_usd))
    )
    # (1) one plan per job
    for j, row in enumerate(x):
        prob += pulp.lpSum(row) == 1, f"one_plan_{j}"
    makespan = None
    if spec.objective == "time":
        makespan = variable(prob, "T", low=0.0)
        # (2) makespan bounds every chosen plan's hours
        for j, job in enumerate(spec.jobs):
            hours = pulp.lpSum(float(job.hours[c]) * x[j][c] for c in range(len(job.hours)))
            prob += hours <= makespan, f"makespan_{j}"
    # (3) shared budget
    if spec.budget_usd is not None:
        prob += total_cost <= spec.budget_usd, "shared_budget"
    # (4) shared quotas
    for offer, quota in spec.quotas.items():
        terms = [
            float(job.instances[c]) * x[j][c]
            for j, job in enumerate(spec.jobs)
            for c in np.flatnonzero(job.offer_id == offer)
        ]
        if terms:
            prob += pulp.lpSum(terms) <= quota, f"quota_{offer}"
    prob += (makespan if makespan is not None else total_cost)
    outcome = solve_outcome(prob, engine, time_limited=limited)

    def incumbent() -> tuple[tuple[int, ...], float]:
        return tuple(int(np.argmax([v.varValue or 0.0 for v in row])) for row in x), float(pulp.value(total_cost))

    choice, cost = incumbent() if outcome.has_solution else ((), math.nan)
    if outcome.is_optimal and makespan is not None:
        best = pulp.value(makespan)
        left = None if spec.time_limit_seconds is None else spec.time_limit_seconds - (time.perf_counter() - started)
        # Cheapest plan at the optimal makespan; without time left for that second solve the
        # fastest plan found stands, its cost not proven minimal (so: time_limit, gap unknown).
        unproven = solver_outcome(TerminationCondition.TIME_LIMIT, has_solution=True,
                                  mip_gap_tolerance=outcome.mip_gap_tolerance)
        if left is not None and left <= 0:
            outcome = unproven
        else:
            # solver tolerances report T a hair under the true makespan; fixing it exactly can
            # make the second solve infeasible, so allow 1e-6 relative slack
            prob += makespan <= best * (1 + 1e-6) + 1e-6, "makespan_fixed"
            prob.setObjective(total_cost)
            if left is not None:
                engine.timeLimit = left  # type: ignore[attr-defined]  # both PuLP solvers read it per solve
            second = solve_outcome(prob, engine, time_limited=limited)
            if second.has_solution:
                outcome = second
                choice, cost = incumbent()
            else:
                outcome = unproven
    seconds = time.perf_counter() - started
    n_vars, n_cons = prob.numVariables(), prob.numConstraints()
    status = model_status(outcome)
    if not outcome.has_solution:
        return ModelSolution(status, (), None, n_vars, n_cons, solver, seconds, outcome)
    return ModelSolution(status, choice, cost, n_vars, n_cons, solver, seconds, outcome)


def model_status(outcome: SolverOutcome) -> ModelStatus:
    """The termination condition's value, as every program's solution records it."""
    value: ModelStatus = outcome.termination.value   # the Literal lists TerminationCondition's values
    return value


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """highspy prints a banner straight to file descriptor 1 when it starts, which
    would corrupt ``--format json`` output; park fd 1 on /dev/null meanwhile."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured stdout (tests): nothing to guard
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def solve_outcome(prob: object, engine: object, *, time_limited: bool = False) -> SolverOutcome:
    """Solve and map what the solver ended with to a SolverOutcome (outcome.py), with the solver's MIP
    gap (``solver_gap``); solver crashes become SolverError. ``time_limited``: a time limit was set
    (read where the solver does not say why it stopped).

    HiGHS: its own model status and primal solution status are read, not PuLP's pair (PuLP's table
    has no entry for kSolutionLimit, kMemoryLimit or kHighsInterrupt and raises KeyError on them,
    after the solution values are read; and it reports every stop as a time limit). CBC: PuLP's
    pair, with the reason for an early stop from CBC's log; an "infeasible" that arrives after the
    time limit has passed is a time limit (outcome.py: CBC's preprocessing, cut short, says
    "infeasible" of feasible programs).
    """
    import pulp

    log_file = _attach_cbc_log(engine)
    try:
        with _quiet_stdout():
            try:
                code = prob.solve(engine)  # type: ignore[attr-defined]
            except KeyError as exc:
                if _highs_model(prob, engine) is None or not _is_highs_status(exc):
                    raise
                code = pulp.LpStatusNotSolved   # PuLP has no name for it; HiGHS's own status is read below
        log = Path(log_file).read_text(encoding="utf-8", errors="replace") if log_file else ""
    except pulp.PulpSolverError as exc:
        raise SolverError(f"the MILP solver failed: {exc}") from None
    except (ArithmeticError, IndexError, ValueError) as exc:  # e.g. HiGHS on absurdly scaled numbers
        raise SolverError(f"the MILP solver failed on this problem ({exc.__class__.__name__}: {exc}); "
                          "check for extreme numbers in the inputs") from None
    finally:
        if log_file:
            engine.optionsDict.pop("logPath", None)  # type: ignore[attr-defined]
            with contextlib.suppress(OSError):
                os.unlink(log_file)
    gap, tolerance = solver_gap(prob, engine, log)
    highs = _highs_model(prob, engine)
    if highs is not None:
        feasible = int(highs.getInfo().primal_solution_status) == 2   # kSolutionStatusFeasible
        return outcome_from_highs(highs.getModelStatus().name, has_solution=feasible,
                                  objective_bounded=objective_bounded(prob), mip_gap=gap,
                                  mip_gap_tolerance=tolerance)
    limit = getattr(engine, "timeLimit", None)
    took = getattr(prob, "solutionTime", None)   # wall-clock seconds of the solve (PuLP's clock)
    reached = limit is not None and took is not None and float(took) >= float(limit)
    return outcome_from_pulp(int(code), int(getattr(prob, "sol_status", 0)), time_limited=time_limited,
                             stopped_on=cbc_stopped_on(log) if log else None, time_limit_reached=reached,
                             mip_gap=gap, mip_gap_tolerance=tolerance)


def _highs_model(prob: object, engine: object) -> Any:
    """The highspy model PuLP's HiGHS interface solved (``prob.solverModel``), else None."""
    import pulp

    if not isinstance(engine, pulp.HiGHS):
        return None
    model = getattr(prob, "solverModel", None)
    return model if model is not None and hasattr(model, "getModelStatus") else None


def _is_highs_status(exc: KeyError) -> bool:
    """The KeyError is PuLP's status table missing a HighsModelStatus (not some other lookup)."""
    import highspy

    return bool(exc.args) and isinstance(exc.args[0], highspy.HighsModelStatus)


def objective_bounded(prob: Any) -> bool:
    """The variables' bounds alone bound the objective (every variable it raises has a finite lower
    bound when minimising, every one it lowers a finite upper bound): the program cannot be
    unbounded, so "infeasible or unbounded" means infeasible. True of every program in flopopt
    (costs ≥ 0 on non-negative variables)."""
    import pulp

    sign = 1.0 if prob.sense == pulp.LpMinimize else -1.0
    for var, coefficient in prob.objective.items():
        c = sign * float(coefficient)
        if (c > 0 and var.lowBound is None) or (c < 0 and var.upBound is None):
            return False
    return True


def _is_cbc(engine: object) -> bool:
    import pulp

    return isinstance(engine, pulp.COIN_CMD)   # PULP_CBC_CMD (PuLP's bundled CBC) is a COIN_CMD


def _attach_cbc_log(engine: object) -> str | None:
    """CBC states its best bound only in its log: route the log to a private temporary file
    (PuLP's ``logPath`` option) for this one solve. Returns the file, or None for other solvers."""
    if not _is_cbc(engine):
        return None
    options: dict[str, Any] = engine.optionsDict  # type: ignore[attr-defined]
    if options.get("logPath"):
        return None
    fd, path = tempfile.mkstemp(prefix="flopopt-cbc-", suffix=".log")
    os.close(fd)
    options["logPath"] = path
    return path


def solver_gap(prob: object, engine: object, cbc_log: str = "") -> tuple[float | None, float | None]:
    """(relative MIP gap of the incumbent, the solver's relative gap tolerance), as the solver has them.

    HiGHS (highspy, the model PuLP keeps as ``prob.solverModel``): ``info.mip_gap`` =
    (primal − dual bound) / |primal|, infinite without an incumbent; the tolerance is the
    ``mip_rel_gap`` option (default 1e-4; HiGHS also stops at ``mip_abs_gap``, 1e-6 absolute).
    CBC: ``cbc_gap`` reads the log; its tolerance is PuLP's ``gapRel`` (CBC's ratioGap), 0 unless set.
    A problem without integer variables has no MIP gap: (None, None).
    """
    import pulp

    if not getattr(prob, "isMIP", lambda: True)():
        return None, None
    if _is_cbc(engine):
        ratio = engine.optionsDict.get("gapRel")  # type: ignore[attr-defined]
        return cbc_gap(cbc_log), float(ratio) if ratio is not None else 0.0
    model = getattr(prob, "solverModel", None)
    if not isinstance(engine, pulp.HiGHS) or model is None:
        return None, None
    try:
        gap = float(model.getInfo().mip_gap)
        option = model.getOptionValue("mip_rel_gap")
    except (AttributeError, TypeError, ValueError):   # an older or newer highspy without these
        return None, None
    tolerance = float(option[-1] if isinstance(option, tuple) else option)   # highspy ≥ 1.8: (status, value)
    return (gap if math.isfinite(gap) and gap >= 0 else None), tolerance


_CBC_RESULT = re.compile(r"^Result - (?P<what>.+?)\s*$", re.MULTILINE)
_CBC_OBJECTIVE = re.compile(r"^Objective value:\s+(?P<value>\S+)", re.MULTILINE)
_CBC_BOUND = re.compile(r"^(?:Lower|Upper) bound:\s+(?P<value>\S+)", re.MULTILINE)


def cbc_gap(log: str) -> float | None:
    """The relative gap from CBC's closing summary (CBC 2.x).

    After an early stop (time or node limit, or "Optimal solution found (within gap tolerance)")
    CBC prints the incumbent ("Objective value:") and its best bound ("Lower bound:"); the gap is
    computed from the two, because CBC's own "Gap:" line has only two decimals (the bound line has
    six significant digits, so the gap is good to about 1e-6). After a completed search
    ("Optimal solution found") CBC prints no bound: the tree is exhausted, so CBC's best possible
    objective is the incumbent and the gap is 0, to within CBC's cutoff increment (1e-5 absolute).
    None when there is no incumbent or no summary (a CBC that prints none).
    """
    objective, bound = _CBC_OBJECTIVE.search(log), _CBC_BOUND.search(log)
    if objective is None:
        return None
    if bound is None:
        result = _CBC_RESULT.search(log)
        return 0.0 if result is not None and result["what"] == "Optimal solution found" else None
    try:
        gap = relative_gap(float(objective["value"]), float(bound["value"]))
    except ValueError:   # not a number: a summary format this parser does not know
        return None
    return gap if math.isfinite(gap) else None


def relative_gap(incumbent: float, bound: float) -> float:
    """|incumbent − bound| / |incumbent|, the definition HiGHS reports (minimising or maximising);
    0 when both are 0, infinite when only the incumbent is."""
    if incumbent == 0:
        return 0.0 if bound == 0 else math.inf
    return abs(incumbent - bound) / abs(incumbent)
