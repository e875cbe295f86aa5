"""What each estimation mistake would cost, how the plan holds up under stress, and
how likely it is to land on time and on budget.

Pitfalls (the seed's four decision traps) re-plan under a mistaken belief, then
evaluate that plan under the realistic model:

| pitfall           | mistaken belief                                              |
|-------------------|--------------------------------------------------------------|
| over_optimism     | attenuation 1.0 and no buffer (peak FLOP/s is achievable)     |
| over_conservatism | attenuation at the low end of its range and a 50% buffer     |
| tech_bias         | only the team's familiar GPU / provider is considered        |
| empiricism        | the history scenario's attenuation applies to every candidate |

Stress tests re-solve the realistic problem in a harder world: budget × 0.5,
deadline × 0.5, precision one step up (fp8/int8 → bf16 → tf32 → fp32).

The Monte Carlo draws the attenuation uniformly from each row's range widened by its
uncertainty: a split log-normal with the row's median and its low/high as P10/P90, one common draw per sample (the same
software stack is either good or bad on every candidate), and reports the *actual*
hours (no buffer: the buffer is a planning reserve, not work).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .candidates import CandidateSet, dominated_mask
from .economics import HOURS_PER_YEAR, utilization_break_even
from .limits import meets_deadline, within_budget
from .outcome import result_status
from .performance import Assumptions, base_seconds_for, billed_hours, realistic_assumptions
from .planner import DeadlineQuantile, Outcome, Planner, explain_infeasible
from .result import Plan, Result, Risk, SensitivityItem, plan_from_row

PRECISION_UP = {"int8": "bf16", "fp8": "bf16", "bf16": "tf32", "fp16": "tf32", "tf32": "fp32", "fp32": "fp32",
                "fp64": "fp64"}
MIN_ATTENUATION = 0.01


def _pct(new: float, old: float) -> float:
    return (new / old - 1.0) * 100.0 if old > 0 and math.isfinite(new) else math.nan


def _limits_text(hours: float, cost: float, deadline: float | None, budget: float | None) -> str:
    parts = []
    if deadline is not None:
        if meets_deadline(hours, deadline):
            parts.append(f"meets the {deadline:,.0f} h deadline")
        else:
            parts.append(f"misses the {deadline:,.0f} h deadline by {(hours / deadline - 1) * 100:.0f}%")
    if budget is not None:
        if within_budget(cost, budget):
            parts.append(f"stays within the ${budget:,.0f} budget")
        else:
            parts.append(f"overruns the ${budget:,.0f} budget by {(cost / budget - 1) * 100:.0f}%")
    return " and ".join(parts) if parts else "no deadline or budget to miss"


def _pitfall(planner: Planner, optimum: Plan, name: str, assumption: str,
             mistaken: Outcome, realistic: Assumptions) -> SensitivityItem:
    c = planner.job.constraints
    if mistaken.chosen is None:
        if not mistaken.solution.solver_outcome.proven_infeasible:   # stopped: no plan, but nothing proven
            summary = f"the re-plan stopped: {_stopped(planner, mistaken)}"
        elif name != "tech_bias":
            summary = ("under this belief no plan looks feasible, so the job would be wrongly declared "
                       "impossible (or over-scoped)")
        else:
            summary = ("no candidate on the familiar GPU/provider can run this job at all (see the candidates' "
                       "reasons, e.g. GPU memory)")
        return SensitivityItem(
            name=name, category="pitfall", assumption=assumption, plan=None, hours=math.nan, cost_usd=math.nan,
            delta_cost_pct=math.nan, deadline_met=False, within_budget=False, skipped=None, summary=summary,
        )
    believed = mistaken.plan
    assert believed is not None
    real_row = planner.evaluate_plan(believed, realistic)
    real = plan_from_row(real_row.to_dict())
    deadline_met = bool(meets_deadline(real.hours, c.deadline_hours))
    affordable = bool(within_budget(real.cost_usd, c.budget_usd))
    delta = _pct(real.cost_usd, optimum.cost_usd)
    same = (believed.offer_id, believed.instances, believed.precision) == (
        optimum.offer_id, optimum.instances, optimum.precision)
    summary = (f"plans {believed.label} for {believed.hours:,.0f} h at ${believed.cost_usd:,.0f}; "
               f"realistically needs {real.hours:,.0f} h and ${real.cost_usd:,.0f} "
               f"({delta:+.0f}% vs the optimum) and "
               f"{_limits_text(real.hours, real.cost_usd, c.deadline_hours, c.budget_usd)}")
    if same:
        summary += " — same choice as the realistic plan, only the forecast is off"
    return SensitivityItem(
        name=name, category="pitfall", assumption=assumption, plan=real, hours=real.hours, cost_usd=real.cost_usd,
        delta_cost_pct=delta, deadline_met=deadline_met, within_budget=affordable, skipped=None,
        summary=summary, believed_hours=believed.hours,
    )


def _stopped(planner: Planner, outcome: Outcome) -> str:
    """What stopped a re-plan's solver before it found a plan (outcome.result_status's sentence)."""
    return result_status(outcome.solution.solver_outcome, time_limit_seconds=planner.time_limit_seconds)[1] or ""


def _skipped(name: str, category: str, assumption: str, why: str) -> SensitivityItem:
    return SensitivityItem(name=name, category=category, assumption=assumption, plan=None, hours=math.nan,
                           cost_usd=math.nan, delta_cost_pct=math.nan, deadline_met=False, within_budget=False,
                           skipped=why, summary=why)


def pitfalls(planner: Planner, optimum: Plan) -> list[SensitivityItem]:
    job = planner.job
    realistic = realistic_assumptions(job, planner.catalog.efficiency)
    items = [
        _pitfall(planner, optimum, "over_optimism", "attenuation = 1.0 (peak FLOP/s) and no buffer",
                 planner.plan(replace(realistic, attenuation_override=1.0, buffer_override=0.0)), realistic),
        _pitfall(planner, optimum, "over_conservatism", "attenuation at the low end of its range and a 50% buffer",
                 planner.plan(replace(realistic, attenuation_override=None, attenuation_point="low",
                                      buffer_override=0.5)), realistic),
    ]
    familiar = job.familiar
    if familiar is None or (familiar.gpu is None and familiar.provider is None):
        items.append(_skipped("tech_bias", "pitfall", "only the familiar GPU/provider",
                              "skipped: the job names no `familiar: {gpu, provider}`"))
    else:
        offers = planner.catalog.offers
        mask = pd.Series(True, index=offers.index)
        if familiar.gpu:
            mask &= offers["gpu"].str.lower() == familiar.gpu.lower()
        if familiar.provider:
            mask &= offers["provider"].str.lower() == familiar.provider.lower()
        what = " on ".join(x for x in (familiar.gpu, familiar.provider) if x)
        biased = planner.with_offers(mask)
        outcome = biased.plan(realistic)
        if outcome.chosen is None and outcome.solution.solver_outcome.proven_infeasible:
            # The habit cannot do this job at all: show its best attempt and what it misses.
            outcome = biased.plan(realistic, deadline_hours=None, budget_usd=None)
        items.append(_pitfall(planner, optimum, "tech_bias", f"only {what} is considered", outcome, realistic))
    history = job.history_scenario or "lab"
    note = "" if job.history_scenario else " (no history_scenario given: lab benchmarks assumed)"
    items.append(_pitfall(planner, optimum, "empiricism",
                          f"the {history} scenario's attenuation is reused for every candidate{note}",
                          planner.plan(replace(realistic, attenuation_scenario=history)), realistic))
    return items


def _stress(planner: Planner, optimum: Plan, name: str, assumption: str, stressed: Planner) -> SensitivityItem:
    outcome = stressed.plan()
    c = stressed.job.constraints
    if outcome.chosen is None:
        if outcome.solution.solver_outcome.proven_infeasible:
            binding, why = explain_infeasible(stressed, outcome.candidates)
            summary = f"no plan ({binding} binds): {why}"
        else:   # stopped before finding a plan: nothing shows that a limit binds
            summary = f"the re-plan stopped: {_stopped(stressed, outcome)}"
        return SensitivityItem(name=name, category="stress", assumption=assumption, plan=None, hours=math.nan,
                               cost_usd=math.nan, delta_cost_pct=math.nan, deadline_met=False,
                               within_budget=False, skipped=None, summary=summary)
    plan = outcome.plan
    assert plan is not None
    delta = _pct(plan.cost_usd, optimum.cost_usd)
    return SensitivityItem(
        name=name, category="stress", assumption=assumption, plan=plan, hours=plan.hours, cost_usd=plan.cost_usd,
        delta_cost_pct=delta,
        deadline_met=bool(meets_deadline(plan.hours, c.deadline_hours)),
        within_budget=bool(within_budget(plan.cost_usd, c.budget_usd)),
        skipped=None,
        summary=(f"the plan holds: {plan.label}, {plan.hours:,.0f} h, ${plan.cost_usd:,.0f}"
                 if (plan.offer_id, plan.instances, plan.precision) == (optimum.offer_id, optimum.instances,
                                                                        optimum.precision)
                 else f"switch to {plan.label}: {plan.hours:,.0f} h, ${plan.cost_usd:,.0f} ({delta:+.0f}% cost)"),
    )


def stress_tests(planner: Planner, optimum: Plan) -> list[SensitivityItem]:
    c = planner.job.constraints
    items = []
    if c.budget_usd is None:
        items.append(_skipped("budget_halved", "stress", "budget × 0.5",
                              "skipped: the job sets no budget_usd to halve"))
    else:
        items.append(_stress(planner, optimum, "budget_halved", f"budget × 0.5 = ${c.budget_usd * 0.5:,.0f}",
                             planner.with_limits(deadline_hours=c.deadline_hours, budget_usd=c.budget_usd * 0.5)))
    if c.deadline_hours is None:
        items.append(_skipped("deadline_halved", "stress", "deadline × 0.5",
                              "skipped: the job sets no deadline_hours to halve"))
    else:
        items.append(_stress(planner, optimum, "deadline_halved", f"deadline × 0.5 = {c.deadline_hours * 0.5:,.1f} h",
                             planner.with_limits(deadline_hours=c.deadline_hours * 0.5, budget_usd=c.budget_usd)))
    raised = list(dict.fromkeys(PRECISION_UP[p] for p in planner.job.precision))
    if raised == list(planner.job.precision):
        items.append(_skipped("precision_up", "stress", "precision one step up",
                              f"skipped: {', '.join(raised)} is already the highest precision step"))
    else:
        items.append(_stress(planner, optimum, "precision_up",
                             f"precision {', '.join(planner.job.precision)} → {', '.join(raised)}",
                             planner.with_precisions(raised)))
    return items


# ---------------------------------------------------------------------------
# Break-even points


def _actual_hours_at(planner: Planner, row: pd.Series, attenuation: np.ndarray) -> np.ndarray:
    """Actual hours of one candidate for each attenuation value: no buffer (it is a planning
    reserve, not work), spot overhead kept — the same quantity the Monte Carlo samples.

    A one-row frame broadcasts against the attenuation vector, so this is one numpy pass.
    """
    frame = pd.DataFrame([row]).reset_index(drop=True)
    seconds, _ = base_seconds_for(frame, planner.estimate, attenuation, np.asarray([row["scale_efficiency"]]))
    return np.asarray(seconds * (1.0 + _spot_overhead(frame)[0]) / 3600.0, dtype=float)


def _spot_overhead(rows: pd.DataFrame) -> np.ndarray:
    return np.where(rows["kind"].to_numpy() == "spot", rows["interruption_overhead"].fillna(0.0).to_numpy(float), 0.0)


def break_even(planner: Planner, outcome: Outcome, result: Result) -> dict[str, Any]:
    plan, chosen = result.plan, outcome.chosen
    assert plan is not None and chosen is not None
    job = planner.job
    out: dict[str, Any] = {}
    if job.constraints.deadline_hours is not None:
        deadline = job.constraints.deadline_hours
        grid = np.linspace(MIN_ATTENUATION, 1.0, 991)
        hours = _actual_hours_at(planner, chosen, grid)
        ok = grid[hours <= deadline]
        out["attenuation_min"] = float(ok.min()) if ok.size else None
        if not ok.size:
            note = "misses the deadline at any attenuation"
        elif ok.min() <= MIN_ATTENUATION:
            note = f"meets the {deadline:,.0f} h deadline at any attenuation ≥ {MIN_ATTENUATION}"
        else:
            note = (f"below attenuation {ok.min():.2f} the chosen plan's actual work (buffer excluded) overruns "
                    f"the {deadline:,.0f} h deadline; planned at {plan.attenuation:.2f} with a "
                    f"{plan.buffer:.0%} buffer")
        out["attenuation_min_note"] = note
    feasible = outcome.candidates.feasible
    rivals = feasible[feasible["offer_id"] != plan.offer_id].sort_values(["cost_usd", "hours"])
    if not rivals.empty:
        r = rivals.iloc[0]
        runner_units = float(r["instances"]) * float(r["billed_hours"])
        plan_units = plan.instances * plan.billed_hours
        wins_below = plan.cost_usd / runner_units if runner_units > 0 else None
        loses_above = float(r["cost_usd"]) / plan_units if plan_units > 0 else None
        out["runner_up"] = {
            "offer_id": str(r["offer_id"]),
            "gpu": str(r["gpu"]),
            "gpu_count": int(r["gpu_count"]),
            "cost_usd": float(r["cost_usd"]),
            # effective costs per instance-hour (plan.effective_cost_per_instance_hour_usd): the list
            # price for rentals, capex + power + fee for owned hardware
            "effective_cost_per_instance_hour_usd": float(r["hourly_cost_usd"]),
            "wins_below_effective_cost_per_instance_hour_usd": wins_below,
            "chosen_loses_above_effective_cost_per_instance_hour_usd": loses_above,
            "note": (f"{r['offer_id']} ({int(r['gpu_count'])}×{r['gpu']}, ${float(r['cost_usd']):,.0f}) becomes "
                     f"the cheaper choice if its price falls below ${wins_below or 0:,.2f}/instance-h "
                     f"(now ${float(r['hourly_cost_usd']):,.2f}) or this plan's rises above "
                     f"${loses_above or 0:,.2f}/instance-h (now ${plan.effective_cost_per_instance_hour_usd:,.2f})"),
        }
    owned = feasible[feasible["kind"].isin(("owned", "edge"))]
    rentals = feasible[~feasible["kind"].isin(("owned", "edge"))]
    if not owned.empty and not rentals.empty:
        out["own_vs_rent"] = own_vs_rent_break_even(owned, rentals)
    return out


def own_vs_rent_break_even(owned: pd.DataFrame, rentals: pd.DataFrame) -> dict[str, Any]:
    """Utilisation u* at which the cheapest owned plan costs the same as the cheapest rental.

    Owned cost at utilisation u: I·h·(K/u + R) with K = capex/(Y·8760), R = power + fee, I instances,
    h hours. Setting it equal to the rental cost C gives u* = K / (C/(I·h) − R)
    (``loader.break_even_utilization`` with V = C/(I·h)). Owning wins above u*; sunk capex
    counts as zero, so u* = 0 for sunk machines.
    """
    # A machine whose capex still counts is the informative case ("should we buy one?");
    # fall back to sunk machines only when that is all there is.
    o = owned.assign(_sunk=owned["sunk"].astype(bool)).sort_values(["_sunk", "cost_usd"]).iloc[0]
    rent = rentals.sort_values("cost_usd").iloc[0]
    inst_hours = float(o["instances"]) * float(o["billed_hours"])
    sunk = bool(o["sunk"])
    capex_per_hour_at_full_use = float(o["capex_usd"]) / (float(o["amortization_years"]) * HOURS_PER_YEAR)
    running = float(o["power_kw"]) * float(o["electricity_usd_per_kwh"]) + float(o["price_per_hour_usd"])
    # Renting this job's work costs C in total, i.e. C / (I·h) per machine-hour of the owned plan.
    u_star = 0.0 if sunk else utilization_break_even(
        capex_per_hour_at_full_use, running, float(rent["cost_usd"]) / inst_hours)
    return {
        "owned_offer_id": str(o["offer_id"]),
        "rental_offer_id": str(rent["offer_id"]),
        "rental_cost_usd": float(rent["cost_usd"]),
        "utilization_break_even": u_star,
        "note": ("capex is marked sunk: owning costs only power" if sunk else
                 "running costs alone exceed renting: owning never wins" if u_star is None else
                 f"owning beats renting when the machine is busy more than {u_star:.0%} of its life"
                 + (" (never: > 100%)" if u_star > 1 else "")),
    }


# ---------------------------------------------------------------------------
# Monte Carlo


Z_90 = 1.2815515655446004   # the standard normal's 90th percentile


def _attenuation_draws(rows: pd.DataFrame, normals: np.ndarray) -> np.ndarray:
    """samples × candidates attenuation matrix (common random numbers across candidates).

    The row's range is read as its P10–P90 around the median: a split log-normal with median
    ``att_median``, 10th percentile ``att_low`` and 90th ``att_high`` — so the Monte Carlo's P50
    hours is the point estimate and its P90 hours is the plan at the low end of the range."""
    median = rows["att_median"].to_numpy(float) if "att_median" in rows.columns else (
        (rows["att_low"].to_numpy(float) + rows["att_high"].to_numpy(float)) / 2.0)
    sigma_low = np.log(median / np.maximum(rows["att_low"].to_numpy(float), MIN_ATTENUATION)) / Z_90
    sigma_high = np.log(np.maximum(rows["att_high"].to_numpy(float), median) / median) / Z_90
    z = normals[:, None]
    log_draw = np.log(median)[None, :] + np.where(z < 0, z * sigma_low[None, :], z * sigma_high[None, :])
    return np.asarray(np.clip(np.exp(log_draw), MIN_ATTENUATION, 1.0), dtype=float)


def actual_hours_samples(planner: Planner, rows: pd.DataFrame, samples: int, seed: int) -> np.ndarray:
    """samples × candidates matrix of actual hours (no buffer; spot overhead kept)."""
    normals = np.random.default_rng(seed).standard_normal(samples)
    att = _attenuation_draws(rows, normals)
    hours = np.empty_like(att)
    for j in range(len(rows)):  # one numpy pass per candidate, broadcasting over the samples
        hours[:, j] = _actual_hours_at(planner, rows.iloc[j], att[:, j])
    return hours


def monte_carlo(planner: Planner, chosen: pd.Series, samples: int, seed: int) -> Risk:
    rows = pd.DataFrame([chosen]).reset_index(drop=True)
    hours = actual_hours_samples(planner, rows, samples, seed)[:, 0]
    billed = billed_hours(hours, np.full(samples, float(np.nan_to_num(chosen["billing_increment_hours"]))),
                          np.full(samples, float(np.nan_to_num(chosen["min_hours"]))))
    cost = float(chosen["instances"]) * float(chosen["hourly_cost_usd"]) * billed
    c = planner.job.constraints
    p_deadline = float(np.mean(hours <= c.deadline_hours)) if c.deadline_hours is not None else None
    p_budget = float(np.mean(within_budget(cost, c.budget_usd))) if c.budget_usd is not None else None
    return Risk(samples=samples, seed=seed, p_deadline=p_deadline, p_budget=p_budget,
                hours_p50=float(np.percentile(hours, 50)), hours_p90=float(np.percentile(hours, 90)),
                cost_p50=float(np.percentile(cost, 50)), cost_p90=float(np.percentile(cost, 90)))


def plan_with_confidence(planner: Planner, confidence: float, samples: int, seed: int) -> Outcome:
    """Cheapest plan whose sampled ``confidence``-quantile of actual hours meets the deadline
    (a chance constraint P(hours ≤ deadline) ≥ confidence, via the sampled quantile)."""
    deadline = planner.job.constraints.deadline_hours
    cands = planner.assess(deadline_hours=None)
    if deadline is None:
        return planner.choose(cands)
    t = cands.table.copy()
    candidates = t[t["feasible"]]
    sampled = pd.Series(np.nan, index=t.index)   # the quantile of actual hours; NaN: not sampled
    if not candidates.empty:
        hours = actual_hours_samples(planner, candidates.reset_index(drop=True), samples, seed)
        quantile = np.quantile(hours, confidence, axis=0)
        sampled.loc[candidates.index] = quantile
        late = ~meets_deadline(quantile, deadline)
        idx = candidates.index[late]
        t.loc[idx, "feasible"] = False
        t.loc[idx, "category"] = f"P{confidence * 100:.0f} hours miss deadline"
        t.loc[idx, "reason"] = [f"P{confidence * 100:.0f} of actual hours is {q:,.0f} h, deadline {deadline:,.0f} h"
                                for q in quantile[late]]
    t["dominated"] = dominated_mask(t, None)
    excluded = dict(cands.excluded)
    excluded.pop("dominated (another plan is no slower and no dearer)", None)
    for cat, n in t.loc[~t["feasible"], "category"].value_counts().items():
        excluded[str(cat)] = int(n)
    if t["dominated"].any():
        excluded["dominated (another plan is no slower and no dearer)"] = int(t["dominated"].sum())
    outcome = planner.choose(CandidateSet(table=t, excluded=excluded, budget_usd=cands.budget_usd))
    if candidates.empty:   # nothing was sampled: the explanation judges the planned hours
        return outcome
    return replace(outcome, deadline_quantile=DeadlineQuantile(f"P{confidence * 100:g}", sampled))


def analyse(planner: Planner, result: Result, *, samples: int, seed: int) -> Result:
    """Attach pitfalls, stress tests, break-even points and the Monte Carlo risk."""
    plan = result.plan
    assert plan is not None
    outcome = planner.plan()
    chosen_mask = ((outcome.candidates.table["offer_id"] == plan.offer_id)
                   & (outcome.candidates.table["instances"] == plan.instances)
                   & (outcome.candidates.table["precision"] == plan.precision))
    chosen = outcome.candidates.table[chosen_mask].iloc[0]
    outcome = Outcome(outcome.candidates, outcome.solution, chosen)
    items = tuple(pitfalls(planner, plan) + stress_tests(planner, plan))
    return replace(result, sensitivity=items, break_even=break_even(planner, outcome, result),
                   risk=monte_carlo(planner, chosen, samples, seed))
