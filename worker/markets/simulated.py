"""A deterministic simulated CS2 market: the embedded default and the workload of tests.

Item `i` of a catalog is derived from `(seed, i)` alone, so any page can be rebuilt at any
time and a resumed scan sees exactly the catalog it started on.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from worker import observe
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.base import Item, Page, check_page_limit
from worker.settings import DEV_MODE_VARIABLE

WEAPONS = (
    "AK-47", "M4A4", "M4A1-S", "AWP", "Desert Eagle", "USP-S", "Glock-18", "P250",
    "FAMAS", "Galil AR", "SSG 08", "MP9", "MAC-10", "UMP-45", "P90", "Five-SeveN",
    "Tec-9", "CZ75-Auto", "Nova", "XM1014", "MP7", "SG 553", "AUG", "Karambit",
    "Butterfly Knife", "M9 Bayonet",
)  # fmt: skip
FINISHES = (
    "Redline", "Asiimov", "Vulcan", "Hyper Beast", "Fade", "Doppler", "Case Hardened",
    "Slaughter", "Neo-Noir", "Printstream", "Fire Serpent", "Bloodsport", "Dragon Lore",
    "Howl", "Kill Confirmed", "Cortex", "Fever Dream", "Safari Mesh", "Boreal Forest",
    "Night", "Crimson Web", "Tiger Tooth", "Blue Steel", "Emerald Pinstripe", "Wasteland Rebel",
)  # fmt: skip
EXTERIORS = (
    "Factory New", "Minimal Wear", "Field-Tested", "Well-Worn", "Battle-Scarred",
)  # fmt: skip
_CURSOR_PREFIX = "sim1:"
CRASH_EXIT_CODE = 137
# The options that make a scan misbehave on purpose, for tests, demos and benchmarks: a
# crash kills the worker process that inspects the item, a latency holds a worker for up
# to a minute a page or an item, injected 429s and 5xx fail scans. Set to anything but
# their default, they are refused unless development is on (MARKETSCAN_DEV_MODE), so a
# start from anywhere (the CLI, a client, the bot, a broker message, Flower) cannot use
# them against a production fleet, and a production worker fails a scan that does.
FAULT_OPTIONS = ("latency_ms", "item_latency_ms", "fail_rate", "crash_item")


@dataclass(frozen=True)
class SimulatedOptions:
    """What a simulated scan is made of; stored in the scan's params."""

    items: int = 1000
    seed: int = 42
    latency_ms: int = 0
    item_latency_ms: int = 0
    fail_rate: float = 0.0
    # The catalog index of an item whose inspection kills the process, as a poison input
    # (a decoder segfault, an OOM) would; -1 for none.
    crash_item: int = -1
    # 1: judge with a fee table as DMarket publishes one (a default and reduced fees for a
    # few titles, worker.markets.fees.configured.SimulatedFees) instead of the one fee.
    fee_table: int = 0

    @classmethod
    def from_json(cls, options: dict[str, Any], *, development: bool = False) -> SimulatedOptions:
        """The options of a scan's params; fault injection only with `development`."""
        known = {
            "items", "seed", "latency_ms", "item_latency_ms", "fail_rate", "crash_item",
            "fee_table",
        }  # fmt: skip
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(
                f"unknown simulated market option {unknown[0]!r}: allowed are "
                f"{', '.join(sorted(known))}"
            )
        parsed = cls(
            items=_integer(options, "items", 1000, 0, 10_000_000),
            seed=_integer(options, "seed", 42, -(2**63), 2**63 - 1),
            latency_ms=_integer(options, "latency_ms", 0, 0, 60_000),
            item_latency_ms=_integer(options, "item_latency_ms", 0, 0, 60_000),
            fail_rate=_fraction(options, "fail_rate", 0.0),
            crash_item=_integer(options, "crash_item", -1, -1, 10_000_000),
            fee_table=_integer(options, "fee_table", 0, 0, 1),
        )
        if not development:
            _refuse_faults(parsed)
        return parsed


class SimulatedMarket:
    """Pages of a seeded catalog behind opaque cursors, with optional latency and faults."""

    def __init__(self, options: SimulatedOptions) -> None:
        self.options = options
        self._faults = random.Random()
        # Worked out once: inspect compares every listing's id with it.
        self._crash_id = (
            _item_id(options.seed, options.crash_item) if options.crash_item >= 0 else None
        )

    def fetch_page(self, cursor: str | None, limit: int) -> Page:
        check_page_limit(limit)
        if self.options.latency_ms:
            time.sleep(self.options.latency_ms / 1000)
        if self.options.fail_rate and self._faults.random() < self.options.fail_rate:
            status = self._faults.choice((429, 500, 502, 503))
            observe.market_request("simulated", "page", status)
            raise RetryableMarketError(f"simulated market answered {status}")
        start = decode_cursor(cursor)
        end = min(start + limit, self.options.items)
        items = tuple(catalog_item(self.options.seed, index) for index in range(start, end))
        next_cursor = encode_cursor(end) if end < self.options.items else None
        observe.market_request("simulated", "page", 200)
        return Page(items=items, next_cursor=next_cursor, total=self.options.items)

    def inspect(self, item: Item) -> Item:
        if item.item_id == self._crash_id:
            os._exit(CRASH_EXIT_CODE)
        if self.options.item_latency_ms:
            time.sleep(self.options.item_latency_ms / 1000)
        return item

    def close(self) -> None:
        return None


def catalog_item(seed: int, index: int) -> Item:
    """Item `index` of the catalog of `seed`: always the same item."""
    rng = random.Random(f"{seed}:{index}")
    title = f"{rng.choice(WEAPONS)} | {rng.choice(FINISHES)} ({rng.choice(EXTERIORS)})"
    # Log-normal prices: most items cost a few dollars, a few cost hundreds.
    price_cents = max(3, round(math.exp(rng.gauss(6.2, 1.4))))
    # Most listings sit near the suggested price; some are underpriced by a hurried seller.
    spread = rng.gauss(1.0, 0.06) if rng.random() > 0.08 else rng.uniform(1.1, 1.6)
    reference = max(1, round(price_cents * spread))
    return Item(
        item_id=_item_id(seed, index),
        title=title,
        price_cents=price_cents,
        reference_price_cents=reference,
        extra={"floatValue": round(rng.random(), 4)},
    )


def _item_id(seed: int, index: int) -> str:
    return f"sim-{seed}-{index:08d}"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if text.startswith(_CURSOR_PREFIX):
            offset = int(text.removeprefix(_CURSOR_PREFIX))
            if offset >= 0:
                return offset
    except (ValueError, UnicodeDecodeError):
        pass
    raise PermanentMarketError(f"simulated market: cursor {cursor!r} is not one it issued")


def _refuse_faults(options: SimulatedOptions) -> None:
    quiet = SimulatedOptions()
    for name in FAULT_OPTIONS:
        if getattr(options, name) != getattr(quiet, name):
            raise InvalidInput(
                f"simulated market option {name} injects faults, which only a development "
                f"fleet runs: refused unless {DEV_MODE_VARIABLE}=1 is set where the scan is "
                "started and where its pages run"
            )


def _integer(options: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = options.get(name, default)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"simulated market option {name} must be an integer from {low} to {high}, got {value!r}"
        )
    return value


def _fraction(options: dict[str, Any], name: str, default: float) -> float:
    value = options.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number < 1.0:
        raise InvalidInput(
            f"simulated market option {name} must be a number from 0 to below 1, got {value!r}"
        )
    return number
