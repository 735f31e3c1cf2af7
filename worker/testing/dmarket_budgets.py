"""The loopback DMarket's request budgets: one sliding one-second window per endpoint class,
as DMarket counts them, and the rate-limit headers every answer carries.

Headers, as DMarket's rate-limit article lists them: `X-RateLimit-Limit-Second`,
`X-RateLimit-Remaining-Second`, `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (whole seconds until a slot frees; 0 when one is free).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from worker.testing.dmarket_fees import FEES_PATH
from worker.testing.dmarket_v2_replies import AGGREGATED_PRICES_PATH, LAST_SALES_PATH

# The budget window of the real API: at most N requests of a class in any second.
BUDGET_WINDOW_SECONDS = 1.0
# Every class in one budget: the fake's `requests_per_second`, from before classes.
EVERY_CLASS = "*"


def endpoint_class(path: str, classes: Mapping[str, int]) -> str:
    """The budget class a request to `path` counts against, among those configured."""
    if EVERY_CLASS in classes:
        return EVERY_CLASS
    if path == LAST_SALES_PATH and "last_sales" in classes:
        return "last_sales"
    # DMarket gives its customized fees a budget of their own (limited only if configured).
    if path == FEES_PATH:
        return "fees"
    if path in (AGGREGATED_PRICES_PATH, LAST_SALES_PATH):
        return "other"
    return "market_items"


@dataclass(frozen=True)
class Spent:
    """One request counted: None for `over_wait_seconds` if it fit, and its headers."""

    over_wait_seconds: float | None
    headers: dict[str, str]


class Budgets:
    """Sliding windows per class; not thread-safe (the fake calls it under its lock)."""

    def __init__(self, classes: Mapping[str, int]) -> None:
        self.classes = dict(classes)
        self._windows: dict[str, deque[float]] = {name: deque() for name in self.classes}

    def spend(self, path: str, received_at: float) -> Spent:
        name = endpoint_class(path, self.classes)
        if name not in self.classes:
            return Spent(None, {})
        limit, window = self.classes[name], self._windows[name]
        while window and received_at - window[0] >= BUDGET_WINDOW_SECONDS:
            window.popleft()
        over = None
        if len(window) >= limit:
            over = BUDGET_WINDOW_SECONDS - (received_at - window[0])
        else:
            window.append(received_at)
        remaining = limit - len(window)
        reset = 0 if remaining > 0 else math.ceil(BUDGET_WINDOW_SECONDS - (received_at - window[0]))
        headers = {
            "X-RateLimit-Limit-Second": str(limit),
            "X-RateLimit-Remaining-Second": str(remaining),
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }
        return Spent(over, headers)


def requests_over_rate(arrivals: Sequence[float], requests_per_second: int) -> int:
    """How many requests arrived when `requests_per_second` others had in the second before.

    0 means no one-second window (sliding, by arrival) held more than the budget.
    """
    ordered = sorted(arrivals)
    return sum(
        1
        for index in range(requests_per_second, len(ordered))
        if ordered[index] - ordered[index - requests_per_second] < BUDGET_WINDOW_SECONDS
    )
