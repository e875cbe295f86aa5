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
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import SolverError
from .outcome import SolverOutcome, outcome_from_pulp

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


ModelStatus = Literal["optimal", "infeasible", "time_limit", "unbounded", "not_solved"]


@dataclass(frozen=True)
class ModelSolution:
    """``status`` is the termination condition (outcome.py): only "infeasible" is a proof that
    no plan exists; "time_limit" / "not_solved" mean the solver stopped without deciding."""

    status: ModelStatus
    choice: tuple[int, ...]          # index into each job's options; empty when infeasible
    objective_value: float | None
    variables: int
    constraints: int
    solver: str
    seconds: float
    outcome: SolverOutcome | None = None


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
        return ModelSolution("infeasible", (), None, 0, 0, solver, time.perf_counter() - started)
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
    if outcome.is_optimal and makespan is not None:
        best = pulp.value(makespan)
        # solver tolerances report T a hair under the true makespan; fixing it exactly can
        # make the second solve infeasible, so allow 1e-6 relative slack
        prob += makespan <= best * (1 + 1e-6) + 1e-6, "makespan_fixed"
        prob.setObjective(total_cost)
        outcome = solve_outcome(prob, engine, time_limited=limited)
    seconds = time.perf_counter() - started
    n_vars, n_cons = prob.numVariables(), prob.numConstraints()
    if not outcome.is_optimal:
        return ModelSolution(outcome.termination.value, (), None, n_vars, n_cons, solver, seconds,
                             outcome)
    choice = tuple(int(np.argmax([v.varValue or 0.0 for v in row])) for row in x)
    return ModelSolution("optimal", choice, float(pulp.value(prob.objective)), n_vars, n_cons, solver, seconds,
                         outcome)


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


def run_solver(prob: object, engine: object) -> str:
    """Solve and return the termination condition's name ("optimal", "infeasible", "time_limit", …)."""
    limited = getattr(engine, "timeLimit", None) is not None
    return solve_outcome(prob, engine, time_limited=limited).termination.value


def solve_outcome(prob: object, engine: object, *, time_limited: bool = False) -> SolverOutcome:
    """Solve and map PuLP's status pair to a SolverOutcome (outcome.py); solver crashes become
    SolverError."""
    import pulp

    try:
        with _quiet_stdout():
            code = prob.solve(engine)  # type: ignore[attr-defined]
    except pulp.PulpSolverError as exc:
        raise SolverError(f"the MILP solver failed: {exc}") from None
    except (ArithmeticError, IndexError, ValueError) as exc:  # e.g. HiGHS on absurdly scaled numbers
        raise SolverError(f"the MILP solver failed on this problem ({exc.__class__.__name__}: {exc}); "
                          "check for extreme numbers in the inputs") from None
    return outcome_from_pulp(int(code), int(getattr(prob, "sol_status", 0)), time_limited=time_limited)
