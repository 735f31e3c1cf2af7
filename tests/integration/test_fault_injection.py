"""Fault injection is for development: the simulated market's crash_item, latencies and
injected failures are refused wherever a scan or watch starts, and by a page task, unless
MARKETSCAN_DEV_MODE=1 says the fleet is a development one.

(The suites switch development on for every test (tests/conftest.py `env`); these turn it
off again, as production leaves it.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanWatch
from tests.support.scans import cli
from worker import client
from worker.chain import lifecycle
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput
from worker.markets.simulated import SimulatedOptions
from worker.settings import Settings, get_settings

# Each option that makes a scan misbehave on purpose, at a value a test would use.
FAULTS = {
    "crash_item": 5,
    "latency_ms": 60_000,
    "item_latency_ms": 60_000,
    "fail_rate": 0.5,
}


@pytest.fixture
def production(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """This process's settings with development off, as a production fleet has them."""
    monkeypatch.setenv("MARKETSCAN_DEV_MODE", "0")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


def _by_cli(settings: Settings, options: dict[str, Any]) -> str:
    ((name, value),) = options.items()
    done = cli(["scan", "start", "--game", "csgo", "--market-opt", f"{name}={value}"], os.environ)
    assert done.returncode == 2, done.stdout + done.stderr
    return done.stderr


def _by_client(settings: Settings, options: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as refused:
        client.start("csgo", market_options=options)
    return str(refused.value)


def _by_watch(settings: Settings, options: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as refused:
        client.add_watch("csgo", owner_id=7, chat_id=7, every_seconds=900, market_options=options)
    return str(refused.value)


def _by_start_task(settings: Settings, options: dict[str, Any]) -> str:
    # What the marketscan.scan.start task runs for a broker message or Flower.
    published: list[PageMessage] = []
    params, scan_id = lifecycle.start_request(
        {"game": "csgo", "market_options": options}, str(uuid.uuid4())
    )
    with pytest.raises(InvalidInput) as refused, session_scope() as session:
        lifecycle.start_scan(session, params, settings, published.append, scan_id)
    assert published == []
    return str(refused.value)


STARTS: dict[str, Callable[[Settings, dict[str, Any]], str]] = {
    "cli": _by_cli,
    "client": _by_client,
    "watch": _by_watch,
    "start task": _by_start_task,
}


@pytest.mark.parametrize("option", FAULTS)
@pytest.mark.parametrize("start", STARTS)
def test_every_start_refuses_fault_injection_outside_development_and_stores_nothing(
    production: Settings, session: Session, start: str, option: str
) -> None:
    # Given a fleet without development, When a scan or a watch is started injecting a fault
    refusal = STARTS[start](production, {option: FAULTS[option]})
    # Then it is refused, naming the option and the variable that allows it
    assert f"option {option} injects faults" in refusal
    assert "MARKETSCAN_DEV_MODE=1" in refusal
    # And nothing was stored (nor, then, published)
    assert session.scalar(select(func.count()).select_from(ScanCheckpoint)) == 0
    assert session.scalar(select(func.count()).select_from(ScanWatch)) == 0


def test_development_accepts_every_fault_and_plain_options_need_none(
    production: Settings,
) -> None:
    # Given the simulated market's options with and without development
    plain = SimulatedOptions.from_json({"items": 20, "seed": 3, "latency_ms": 0})
    faulty = SimulatedOptions.from_json(dict(FAULTS), development=True)
    # Then a catalog without faults needs no development, and development takes every fault
    assert (plain.items, plain.seed) == (20, 3)
    assert (faulty.crash_item, faulty.latency_ms, faulty.fail_rate) == (5, 60_000, 0.5)
    assert replace(production, dev_mode=True).dev_mode and not production.dev_mode


def test_a_production_worker_fails_a_stored_scan_that_injects_faults_instead_of_running_it(
    production: Settings, session: Session
) -> None:
    # Given a scan stored by a development process, with a minute of latency per page
    development = replace(production, dev_mode=True)
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", market_options={"items": 200, "latency_ms": 60_000})
    with session_scope() as opened:
        scan_id = lifecycle.start_scan(opened, params, development, published.append)
    # When a production worker takes its first page
    context = PageContext("w1@test", production, publish=published.append)
    outcome = run_page(published.pop(), context)
    # Then the scan fails at once, naming the option, and no page was walked
    failed = session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()
    assert outcome is Outcome.FAILED and failed.status == "failed"
    assert "option latency_ms injects faults" in (failed.error_message or "")
    assert failed.processed_items == 0 and published == []
