"""A page task's time slice: the pages one delivery walks before it re-enqueues.

A Celery hop costs more than a page's own commit, so a page task keeps walking its scan's
next pages for up to `slice_pages` pages or `slice_ms`, whichever comes first. Each page
still gets its own fenced commit, and the commit of page N claims page N+1 for the same
delivery (worker.db.page_sql), so a page inside a slice costs one transaction.

A slice holds a pool slot, so while other pages wait in the queue it is bounded by time
instead: it goes on for `slice_backlog_ms` and then hands over, so the hop is paid once
per slice under a backlog as well. Fairness is kept by bounding the slice, not by
switching it off; `slice_backlog_ms=0` gives one page per task under a backlog, as
before. The bound is short (50 ms by default) because a queued scan waits for the slices
of every scan ahead of it, about scans/slots of them: with 16 scans of 20 ms pages on
two slots, 300 ms slices made a scan's worst wait between commits 1.7 s, against 0.5 s
one page per task. A slice of S against one page p adds about (scans/slots - 1) x (S - p)
to that wait (bench/fairness.py works it out), so at 50 ms such a scan walks one or two
20 ms pages a task and a DMarket page (500 ms) is one a task; pages that cost the market
nothing still walk several per slice.

Inside the backlog bound the queue is not even asked, which saves a broker round trip a
page. The bound is looked at before the next page's prefetch starts and again once the
current page is judged, so a page that took the slice past it (judged for long) still
ends the slice, its prefetch abandoned. "Inside" counts the page about to start: a next
page is walked unasked only if it ends inside the bound, judged by the last page's
duration (the first page's time so far, before one is known). A bound is a promise to the
scans that wait, so a slice does not outrun it by the page it started just before it;
the slice bound (`slice_ms`) is kept the same way.

With nobody waiting, the slice is what pays the hop once per `slice_pages` pages, at the
simulated market's 20 ms a page as at DMarket's 500 ms; `slice_ms` (10 s by default)
bounds how long one task holds its slot if the market is slower still.

While page N is judged and committed, the slice already fetches page N+1 (a prefetch):
the market's wait overlaps the database's. The next page is published, as ever, only after
the commit; a prefetch whose page is not walked (a drain, a pause, a part page) is
abandoned, at the cost of one market request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from worker.domain.page_message import PageMessage
from worker.markets.base import Page
from worker.settings import Settings

# A fetch told when to give up: the page, the failure text, or None if it gave up.
Fetch = Callable[[Callable[[], bool]], Page | str | None]


class PageSlice:
    """The page a delivery holds now, and whether there is room for one more."""

    def __init__(
        self,
        message: PageMessage,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._message = message
        started = clock()
        # When the current page started, and how long the last one took (None: none yet).
        self._page_started = started
        self._page_s: float | None = None
        self._deadline = started + settings.slice_ms / 1000
        self._backlog_deadline = started + min(settings.slice_ms, settings.slice_backlog_ms) / 1000
        self._pages_left = settings.slice_pages - 1
        self._clock = clock
        self._prefetch: _Prefetch | None = None
        # Whether the last has_room() asked the queue (it was past the backlog bound).
        self._asked = False
        # Held while the fence moves (a commit that keeps the page), and by each heartbeat
        # renewal, so a renewal never looks for a fence that is half-way to the next page.
        self.lock = threading.Lock()

    @property
    def message(self) -> PageMessage:
        """The page this delivery holds."""
        return self._message

    def has_room(self, others_waiting: Callable[[], bool]) -> bool:
        """Whether the slice may walk one page after the current one; `others_waiting`
        is asked only once the slice is past its backlog bound."""
        if self._pages_left <= 0:
            return False
        ends = self._next_page_ends()
        self._asked = ends >= self._backlog_deadline
        if not self._asked:
            return True
        return ends <= self._deadline and not others_waiting()

    def still_has_room(self, others_waiting: Callable[[], bool]) -> bool:
        """Whether to walk the prefetched page, now that the current one is judged. A
        page judged for long may take the slice past its backlog bound after has_room()
        said yes without asking: the queue is asked then, once, so a slice of slow pages
        under a backlog still hands over after one page (its prefetch abandoned)."""
        if self._asked:
            return True
        ends = self._next_page_ends()
        if ends < self._backlog_deadline:
            return True
        return ends <= self._deadline and not others_waiting()

    def _next_page_ends(self) -> float:
        """When a page started now would end, if it takes as long as the last one."""
        now = self._clock()
        page_s = self._page_s if self._page_s is not None else now - self._page_started
        return now + page_s

    def advance(self) -> None:
        """The current page committed and kept the scan running: hold the next one."""
        self._message = self._message.at(self._message.page_seq + 1, 0)
        self._pages_left -= 1
        now = self._clock()
        self._page_s, self._page_started = now - self._page_started, now

    def prefetch(self, fetch: Fetch) -> None:
        """Start fetching the next page in the background."""
        self.abandon_prefetch()
        self._prefetch = _Prefetch(fetch)

    @property
    def prefetching(self) -> bool:
        return self._prefetch is not None

    def prefetched(self) -> Page | str | None:
        """The next page's fetch started by `prefetch`; raises what it raised."""
        assert self._prefetch is not None, "no prefetch was started"
        prefetch, self._prefetch = self._prefetch, None
        return prefetch.result()

    def abandon_prefetch(self) -> None:
        """Let a started prefetch go: it stops at its next chance, its page unused."""
        if self._prefetch is not None:
            self._prefetch.abandon()
            self._prefetch = None


class _Prefetch:
    """A fetch on a daemon thread: a market call never keeps a worker from exiting."""

    def __init__(self, fetch: Fetch) -> None:
        self._abandoned = threading.Event()
        self._done = threading.Event()
        self._page: Page | str | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(fetch,), name="page-prefetch", daemon=True).start()

    def _run(self, fetch: Fetch) -> None:
        try:
            self._page = fetch(self._abandoned.is_set)
        except BaseException as exc:  # handed to the page's own thread by result()
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Page | str | None:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._page

    def abandon(self) -> None:
        self._abandoned.set()
