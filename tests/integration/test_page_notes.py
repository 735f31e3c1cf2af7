"""What a page notes for the metrics, on real PostgreSQL: a committed page its three
phases, a redelivered (stale) message one drop and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from worker import observe
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_notes() -> Iterator[None]:
    observe.drain()
    yield
    observe.drain()


def test_a_page_notes_its_phases_and_its_stale_copy_notes_only_a_drop(
    env: dict[str, str],
) -> None:
    # Given a scan of two pages, one page per task
    settings = replace(get_settings(), slice_pages=1)
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", page_size=100, market_options={"items": 200, "seed": 5})
    with session_scope() as session:
        scans.start_scan(session, params, settings, published.append)
    context = PageContext(owner="w1@test", settings=settings, publish=published.append)
    first = published[0]
    # When its first page runs
    assert run_page(first, context) is Outcome.NEXT_PUBLISHED
    notes = observe.drain()
    # Then it noted one fetch, one judge, one commit, one market request, and no drop
    phases = sorted(dict(labels)["phase"] for name, labels, _ in notes.durations
                    if name == observe.PAGE_PHASE)  # fmt: skip
    assert phases == ["commit", "fetch", "judge"]
    assert sum(n for (name, _), n in notes.counts.items() if name == observe.MARKET_REQUESTS) == 1
    assert (observe.STALE_MESSAGES, ()) not in notes.counts
    # When the same message is delivered again (a redelivery)
    assert run_page(first, context) is Outcome.STALE
    # Then it noted one dropped message and nothing of a page
    again = observe.drain()
    assert again.counts == {(observe.STALE_MESSAGES, ()): 1}
    assert again.durations == []
