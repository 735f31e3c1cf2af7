"""Where a page's time goes: the page runner driven in the bench process, with a stopwatch.

A chain is run without Celery (published pages go to a list, as in the page-runner tests)
through a store that times each call of worker.db.pages; the items' own work (catalog
generation, inspection, judging) is timed on its own with no database at all.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from bench.kit.scans import params
from worker.chain import lifecycle as scans
from worker.chain.runner import PageContext, run_page
from worker.db import driver_url, relaxed_engine, relaxed_sessions
from worker.db import pages as page_store
from worker.db.pages import ClaimedPage, Lease, PageResult
from worker.domain.page_message import PageMessage
from worker.markets.simulated import SimulatedMarket, SimulatedOptions
from worker.settings import get_settings

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class TimedStore:
    """worker.db.pages with the seconds of each kind of call added up."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def _timed(self, name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] += time.perf_counter() - started

    def claim(
        self,
        session: Session,
        message: PageMessage,
        owner: str,
        task_id: str,
        lease_seconds: float,
        *,
        count_delivery: bool = True,
    ) -> ClaimedPage | None:
        # The claim's commit happens in run_page right after; its time is in "other".
        return self._timed(
            "claim",
            page_store.claim,
            session,
            message,
            owner,
            task_id,
            lease_seconds,
            count_delivery=count_delivery,
        )

    def renew(
        self, session: Session, message: PageMessage, task_id: str, lease_seconds: float
    ) -> bool:
        return self._timed("renew", page_store.renew, session, message, task_id, lease_seconds)

    def release(self, session: Session, message: PageMessage, task_id: str) -> bool:
        return self._timed("release", page_store.release, session, message, task_id)

    def commit_page(
        self,
        session: Session,
        message: PageMessage,
        result: PageResult,
        *,
        keep: Lease | None = None,
    ) -> str | None:
        return self._timed(
            "commit_page", page_store.commit_page, session, message, result, keep=keep
        )

    def fail(self, session: Session, message: PageMessage, error_message: str) -> bool:
        return self._timed("fail", page_store.fail, session, message, error_message)

    def current_status(self, session: Session, message: PageMessage) -> str | None:
        return self._timed("current_status", page_store.current_status, session, message)


@dataclass(frozen=True)
class PageBreakdown:
    """Seconds per page, in-process: the whole page and its parts."""

    total_s: float
    claim_s: float
    commit_s: float
    # session.commit() of the claim's and the commit's transactions: round trip + WAL flush.
    commits_s: float
    # Inside the DBAPI's cursor.execute: BEGIN, the statements' round trips, PostgreSQL's work.
    database_s: float
    # The market building the page's 100 items, and judging them (no database).
    fetch_s: float
    judge_s: float

    @property
    def items_s(self) -> float:
        return self.fetch_s + self.judge_s

    @property
    def waiting_s(self) -> float:
        """Waiting on PostgreSQL: statements and COMMITs."""
        return self.database_s + self.commits_s

    @property
    def storing_s(self) -> float:
        """Everything of the page that is not the items' own work."""
        return self.total_s - self.items_s

    @property
    def python_s(self) -> float:
        """The storing part spent in Python: SQLAlchemy, sessions, the runner itself."""
        return self.storing_s - self.waiting_s


class TimedCommitSession(Session):
    """A Session that adds the seconds of each commit() to `info["seconds"]["commits"]`."""

    def commit(self) -> None:
        started = time.perf_counter()
        try:
            super().commit()
        finally:
            self.info["seconds"]["commits"] += time.perf_counter() - started


def in_process_page(database_url: str, pages: int) -> PageBreakdown:
    """Run a `pages`-page scan through run_page in this process and split its time."""
    engine = create_engine(driver_url(database_url))
    store = TimedStore()
    sessions = sessionmaker(
        engine, class_=TimedCommitSession, expire_on_commit=False, info={"seconds": store.seconds}
    )
    settings = dataclasses.replace(get_settings(), database_url=database_url)
    published: list[PageMessage] = []
    scan_params = params(pages * 100)
    with sessions() as session:
        scans.start_scan(session, scan_params, settings, published.append)
    store.seconds.clear()
    # The claim and the lease renewals go through the worker's relaxed engine, as in a worker.
    relaxed = relaxed_engine(database_url)
    waited = _time_statements(engine, _time_statements(relaxed))
    context = PageContext(
        owner="inprocess@bench",
        settings=settings,
        publish=published.append,
        sessions=sessions,
        lease_sessions=relaxed_sessions(relaxed),
        store=store,
    )
    started = time.perf_counter()
    while published:
        run_page(published.pop(0), context)
    total = time.perf_counter() - started
    engine.dispose()
    relaxed.dispose()
    fetch_s, judge_s = item_work_seconds(pages)
    return PageBreakdown(
        total_s=total / pages,
        claim_s=store.seconds["claim"] / pages,
        commit_s=store.seconds["commit_page"] / pages,
        commits_s=store.seconds["commits"] / pages,
        database_s=waited[0] / pages,
        fetch_s=fetch_s,
        judge_s=judge_s,
    )


def _time_statements(engine: Engine, waited: list[float] | None = None) -> list[float]:
    """A one-element list that accumulates the seconds `engine` spends in cursor.execute
    (`waited`, when given, adds up more than one engine's)."""
    waited = [0.0] if waited is None else waited
    started: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def before(*_: object) -> None:
        started.append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def after(*_: object) -> None:
        waited[0] += time.perf_counter() - started.pop()

    return waited


def item_work_seconds(pages: int) -> tuple[float, float]:
    """Seconds per page of building 100 simulated items, and of inspecting and judging them."""
    scan_params = params(pages * 100)
    market = SimulatedMarket(
        SimulatedOptions.from_json(scan_params.market_options, development=True)
    )
    cursor = None
    fetching = judging = 0.0
    for _ in range(pages):
        started = time.perf_counter()
        page = market.fetch_page(cursor, scan_params.page_size)
        fetched = time.perf_counter()
        for item in page.items:
            scan_params.judge(market.inspect(item))
        judging += time.perf_counter() - fetched
        fetching += fetched - started
        cursor = page.next_cursor
    return fetching / pages, judging / pages
