"""Serving traffic: what a ``transformer_serving`` job asks the fleet to carry.

Requests per day × peak factor (or peak requests per second), request buckets with shares,
the serving window. Kept apart from the replica model (serving.py) so the FLOP count of a
service (flops.py) needs nothing above the job model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import InputError
from .job import Workload


@dataclass(frozen=True)
class Bucket:
    name: str
    share: float
    prompt_tokens: float
    output_tokens: float

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.output_tokens


@dataclass(frozen=True)
class Demand:
    """Traffic, request shapes, latency targets and window of one service."""

    buckets: tuple[Bucket, ...]
    peak_rps: float
    average_rps: float
    window_hours: float
    hours_per_day: float
    ttft_seconds: float | None
    tpot_seconds: float | None

    @property
    def fleet_hours(self) -> float:
        """Hours the fleet runs (and is billed) over the window."""
        return self.window_hours * self.hours_per_day / 24.0

    @property
    def bucket_peak_rps(self) -> np.ndarray:
        return np.array([self.peak_rps * b.share for b in self.buckets], dtype=float)

    @property
    def requests_in_window(self) -> float:
        return self.average_rps * self.fleet_hours * 3600.0

    @property
    def tokens_per_request(self) -> float:
        return sum(b.share * b.tokens for b in self.buckets)

    @property
    def output_tokens_per_request(self) -> float:
        return sum(b.share * b.output_tokens for b in self.buckets)

    def scaled(self, traffic: float = 1.0, latency: float = 1.0) -> "Demand":
        """A harder world: more traffic, tighter latency targets (stress tests)."""
        return replace(self, peak_rps=self.peak_rps * traffic, average_rps=self.average_rps * traffic,
                       ttft_seconds=None if self.ttft_seconds is None else self.ttft_seconds * latency,
                       tpot_seconds=None if self.tpot_seconds is None else self.tpot_seconds * latency)


def serving_demand(w: Workload, file: str = "<job>") -> Demand:
    """Read traffic, shapes, targets and window from the workload; every gap is an InputError."""
    if w.buckets is not None:
        buckets = tuple(Bucket(b.name or f"bucket{i + 1}", b.share, b.prompt_tokens, b.output_tokens)
                        for i, b in enumerate(w.buckets))
    elif w.prompt_tokens is not None and w.output_tokens is not None:
        buckets = (Bucket("all", 1.0, float(w.prompt_tokens), float(w.output_tokens)),)
    else:
        raise InputError.at(file, "workload.prompt_tokens", "a service needs prompt_tokens and output_tokens "
                            "per request, or buckets: [{share, prompt_tokens, output_tokens}, ...]")
    if w.window_hours is None:
        raise InputError.at(file, "workload.window_hours", "required for kind transformer_serving: how long "
                            "the service runs, e.g. 30d (always on) — with hours_per_day for part-time service")
    seconds_per_day = w.hours_per_day * 3600.0
    if w.peak_requests_per_second is not None:
        peak = float(w.peak_requests_per_second)
        if w.requests_per_day is not None:
            average = float(w.requests_per_day) / seconds_per_day
        else:
            average = peak / float(w.peak_factor or 1.0)
        if average > peak * (1 + 1e-9):
            raise InputError.at(file, "workload.peak_requests_per_second",
                                f"peak {peak:,.1f} requests/s is below the average {average:,.1f} requests/s "
                                "implied by requests_per_day")
    elif w.requests_per_day is not None:
        if w.peak_factor is None:
            raise InputError.at(file, "workload.peak_factor", "required with requests_per_day: the peak-to-average "
                                "traffic ratio (e.g. 3 for a daytime chat service; 1 for flat traffic)")
        average = float(w.requests_per_day) / seconds_per_day
        peak = average * float(w.peak_factor)
    else:
        raise InputError.at(file, "workload.requests_per_day", "a service needs traffic: requests_per_day with "
                            "peak_factor, or peak_requests_per_second")
    return Demand(buckets, peak, average, float(w.window_hours), float(w.hours_per_day),
                  w.ttft_seconds, w.tpot_seconds)
