"""One behaviour suite for every page store: PostgreSQL (worker.db.pages) and memory
(worker.testing.memory_pages). Each test runs once per store; tests/support/page_stores.py
says how each store's scans are set up and read back.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from tests.support.page_stores import Backend, MemoryBackend, PostgresBackend
from worker.db.pages import ClaimedPage, Lease, PageResult
from worker.domain.opportunities import Opportunity
from worker.domain.page_message import PageMessage

LEASE_SECONDS = 300.0


@pytest.fixture(params=["postgresql", "memory"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return MemoryBackend()
    request.getfixturevalue("env")
    return PostgresBackend(request.getfixturevalue("session"))


def claim(
    backend: Backend, message: PageMessage, task_id: str = "task-1", *, count: bool = True
) -> ClaimedPage | None:
    with backend.session() as session:
        return backend.store.claim(
            session, message, "w1@test", task_id, LEASE_SECONDS, count_delivery=count
        )


def commit(
    backend: Backend, message: PageMessage, result: PageResult, keep: Lease | None = None
) -> str | None:
    with backend.session() as session:
        return backend.store.commit_page(session, message, result, keep=keep)


def renew(backend: Backend, message: PageMessage, task_id: str = "task-1") -> bool:
    with backend.session() as session:
        return backend.store.renew(session, message, task_id, LEASE_SECONDS)


def release(backend: Backend, message: PageMessage, task_id: str = "task-1") -> bool:
    with backend.session() as session:
        return backend.store.release(session, message, task_id)


def fail(backend: Backend, message: PageMessage) -> bool:
    with backend.session() as session:
        return backend.store.fail(session, message, "the market refused the page")


def status(backend: Backend, message: PageMessage) -> str | None:
    with backend.session() as session:
        return backend.store.current_status(session, message)


def found(item_id: str) -> Opportunity:
    return Opportunity(item_id, f"Item {item_id}", 100, 150, 10, 40, 40.0)


def whole_page(
    next_cursor: str | None = "cursor-1", items: int = 100, *opportunities: Opportunity
) -> PageResult:
    return PageResult(
        items_done=items,
        page_complete=True,
        next_cursor=next_cursor,
        total_items=250,
        opportunities=opportunities,
    )


def part_of_page(items: int, judged: tuple[str, ...], *opportunities: Opportunity) -> PageResult:
    return PageResult(
        items_done=items,
        page_complete=False,
        next_cursor=None,
        total_items=250,
        opportunities=opportunities,
        judged_ids=judged,
    )


def claimed_first_page(backend: Backend, task_id: str = "task-1") -> PageMessage:
    first = backend.start()
    assert claim(backend, first, task_id) is not None
    return first


# --- claim rules ---------------------------------------------------------------------


def test_a_queued_first_page_is_claimed_with_its_delivery_counted(backend: Backend) -> None:
    # Given a new scan, its first page queued
    first = backend.start()
    assert backend.row(first.scan_id).queued
    # When a delivery claims it
    claimed = claim(backend, first)
    # Then it starts at the top of the listing, and the row runs under that delivery
    assert claimed is not None
    assert (claimed.cursor, claimed.page_seq, claimed.page_offset) == (None, 0, 0)
    assert (claimed.processed_items, claimed.deliveries) == (0, 1)
    assert claimed.params["market_options"]["items"] == 250
    row = backend.row(first.scan_id)
    assert (row.status, row.lease_task_id, row.leased, row.queued) == (
        "in_progress", "task-1", True, False,
    )  # fmt: skip


def test_another_copy_of_a_live_page_is_dropped(backend: Backend) -> None:
    # Given a page held by a live delivery
    first = claimed_first_page(backend)
    before = backend.row(first.scan_id)
    # When a copy of the same message arrives under another task id
    # Then it is refused and the row is untouched
    assert claim(backend, first, "task-2") is None
    assert backend.row(first.scan_id) == before


def test_a_redelivery_of_the_holding_task_takes_the_page_back_and_counts(
    backend: Backend,
) -> None:
    first = claimed_first_page(backend)
    again = claim(backend, first, "task-1")
    assert again is not None
    assert again.deliveries == 2


def test_a_retry_that_returned_is_not_counted_as_a_delivery(backend: Backend) -> None:
    first = claimed_first_page(backend)
    again = claim(backend, first, "task-1", count=False)
    assert again is not None
    assert again.deliveries == 1


def test_a_lapsed_lease_lets_another_delivery_take_the_page(backend: Backend) -> None:
    # Given a page whose worker died: its lease lapsed
    first = claimed_first_page(backend)
    backend.lapse_lease(first.scan_id)
    # When another delivery of the message arrives
    taken = claim(backend, first, "task-2")
    # Then it takes the page, and the dead delivery counts toward the poison limit
    assert taken is not None
    assert taken.deliveries == 2
    assert backend.row(first.scan_id).lease_task_id == "task-2"


def test_deliveries_that_never_came_back_add_up_until_a_commit(backend: Backend) -> None:
    # Given a page whose workers died three times over
    first = claimed_first_page(backend, "task-1")
    for task_id in ("task-2", "task-3"):
        backend.lapse_lease(first.scan_id)
        assert claim(backend, first, task_id) is not None
    assert backend.row(first.scan_id).deliveries == 3
    # When the third delivery commits the page
    assert commit(backend, first, whole_page()) == "in_progress"
    # Then the next page starts with no delivery counted
    assert backend.row(first.scan_id).deliveries == 0


def test_a_redelivery_mid_slice_takes_the_row_where_the_slice_left_it(backend: Backend) -> None:
    # Given a delivery that committed page 0 and walked on to page 1 in its time slice
    first = claimed_first_page(backend, "task-1")
    assert commit(backend, first, whole_page(), keep=Lease("task-1", LEASE_SECONDS))
    # When its worker died and the broker redelivers the original page-0 message
    taken = claim(backend, first, "task-1")
    # Then it resumes at page 1, where the row stands
    assert taken is not None
    assert (taken.page_seq, taken.page_offset, taken.cursor) == (1, 0, "cursor-1")
    # And a copy under another task id is still refused, at either position
    assert claim(backend, first, "task-2") is None
    assert claim(backend, first.at(1, 0), "task-2") is None


# --- fences --------------------------------------------------------------------------


def stale_copies(message: PageMessage) -> list[PageMessage]:
    return [
        PageMessage(message.scan_id, uuid.uuid4(), message.page_seq, message.page_offset),
        message.at(message.page_seq + 1, 0),
        message.at(message.page_seq, message.page_offset + 5),
        PageMessage(uuid.uuid4(), message.lease_token, message.page_seq, message.page_offset),
    ]


def test_a_message_that_no_longer_matches_the_row_changes_nothing(backend: Backend) -> None:
    # Given a page held by its delivery
    first = claimed_first_page(backend)
    before = backend.row(first.scan_id)
    # When messages with another token, page, offset or scan arrive, under the same task id
    for stale in stale_copies(first):
        assert claim(backend, stale, "task-9") is None
        assert renew(backend, stale) is False
        assert release(backend, stale) is False
        assert commit(backend, stale, whole_page(None, 100, found("x"))) is None
        assert fail(backend, stale) is False
        assert status(backend, stale) is None
    # Then the row and the results are as they were
    assert backend.row(first.scan_id) == before
    assert backend.opportunities(first.scan_id) == []


def test_a_committed_page_message_delivered_again_is_stale(backend: Backend) -> None:
    first = claimed_first_page(backend)
    assert commit(backend, first, whole_page()) == "in_progress"
    after = backend.row(first.scan_id)
    assert claim(backend, first, "task-2") is None
    assert commit(backend, first, whole_page()) is None
    assert backend.row(first.scan_id) == after


def test_only_the_holding_delivery_renews_the_lease(backend: Backend) -> None:
    first = claimed_first_page(backend)
    assert renew(backend, first, "task-1") is True
    assert renew(backend, first, "task-2") is False
    assert status(backend, first) == "in_progress"


# --- commits -------------------------------------------------------------------------


def test_a_whole_page_without_keep_queues_the_next_page(backend: Backend) -> None:
    first = claimed_first_page(backend)
    assert commit(backend, first, whole_page("cursor-1", 100, found("a"))) == "in_progress"
    row = backend.row(first.scan_id)
    assert (row.cursor, row.page_seq, row.page_offset, row.processed_items) == (
        "cursor-1", 1, 0, 100,
    )  # fmt: skip
    assert (row.queued, row.leased, row.lease_task_id, row.deliveries) == (True, False, None, 0)
    assert backend.opportunities(first.scan_id) == [("a", 0)]


def test_a_whole_page_with_keep_leaves_the_scan_running_for_that_delivery(
    backend: Backend,
) -> None:
    first = claimed_first_page(backend)
    kept = commit(backend, first, whole_page(), keep=Lease("task-1", LEASE_SECONDS))
    assert kept == "in_progress"
    row = backend.row(first.scan_id)
    assert (row.page_seq, row.queued, row.leased, row.lease_task_id, row.deliveries) == (
        1, False, True, "task-1", 1,
    )  # fmt: skip
    # And the next page's commit, by the next message, lands
    assert commit(backend, first.at(1, 0), whole_page("cursor-2")) == "in_progress"


def test_only_a_whole_page_can_keep_the_scan_running(backend: Backend) -> None:
    first = claimed_first_page(backend)
    before = backend.row(first.scan_id)
    with pytest.raises(ValueError, match="whole page"):
        commit(backend, first, part_of_page(10, ("a",)), keep=Lease("task-1", 30.0))
    assert backend.row(first.scan_id) == before


def test_part_of_a_page_moves_the_offset_and_keeps_the_judged_ids(backend: Backend) -> None:
    # Given a page committed in two parts (drained twice)
    first = claimed_first_page(backend)
    assert commit(backend, first, part_of_page(2, ("a", "b"))) == "in_progress"
    second = first.at(0, 2)
    assert claim(backend, second, "task-2") is not None
    assert commit(backend, second, part_of_page(1, ("c",))) == "in_progress"
    # Then the row is on the same page, three items in, with all three judged ids
    row = backend.row(first.scan_id)
    assert (row.page_seq, row.page_offset, row.processed_items, row.queued) == (0, 3, 3, True)
    assert row.judged_ids == ("a", "b", "c")
    resumed = claim(backend, first.at(0, 3), "task-3")
    assert resumed is not None
    assert resumed.judged_ids == frozenset({"a", "b", "c"})
    # And the whole page's commit empties them
    assert commit(backend, first.at(0, 3), whole_page(items=97)) == "in_progress"
    assert backend.row(first.scan_id).judged_ids == ()


def test_the_last_page_completes_the_scan(backend: Backend) -> None:
    first = claimed_first_page(backend)
    done = commit(backend, first, whole_page(None), keep=Lease("task-1", LEASE_SECONDS))
    assert done == "completed"
    row = backend.row(first.scan_id)
    assert (row.cursor, row.page_seq, row.queued, row.leased, row.lease_task_id) == (
        None, 1, False, False, None,
    )  # fmt: skip
    assert claim(backend, first.at(1, 0), "task-1") is None


def test_a_total_passed_by_the_count_becomes_a_lower_bound(backend: Backend) -> None:
    first = claimed_first_page(backend)
    grown = replace(whole_page(), items_done=100, total_items=60)
    assert commit(backend, first, grown) == "in_progress"
    row = backend.row(first.scan_id)
    assert (row.processed_items, row.total_items, row.total_is_lower_bound) == (100, 100, True)


def test_an_opportunity_is_stored_once_per_item(backend: Backend) -> None:
    # Given part of a page found "a", and the resumed page finds "a" again with "b"
    first = claimed_first_page(backend)
    assert commit(backend, first, part_of_page(1, ("a",), found("a")))
    resumed = first.at(0, 1)
    assert claim(backend, resumed, "task-2") is not None
    assert commit(backend, resumed, whole_page("c", 99, found("a"), found("b")))
    # Then each item is stored once, under the page that found it first
    assert backend.opportunities(first.scan_id) == [("a", 0), ("b", 0)]


# --- pause, cancel, release, fail ------------------------------------------------------


def test_a_paused_scan_takes_the_page_in_flight_and_stops(backend: Backend) -> None:
    # Given a running page whose scan the user paused
    first = claimed_first_page(backend)
    backend.pause(first.scan_id)
    # Then its heartbeat misses, which tells the page to stop
    assert renew(backend, first) is False
    assert status(backend, first) == "paused"
    # And its commit lands, without queueing or keeping anything
    assert commit(backend, first, part_of_page(5, ("a",)), keep=None) == "paused"
    row = backend.row(first.scan_id)
    assert (row.page_offset, row.processed_items) == (5, 5)
    assert (row.queued, row.leased, row.lease_task_id) == (False, False, None)
    # And no delivery can claim it
    assert claim(backend, first.at(0, 5), "task-2") is None


def test_a_scan_paused_during_its_last_page_completes(backend: Backend) -> None:
    first = claimed_first_page(backend)
    backend.pause(first.scan_id)
    assert commit(backend, first, whole_page(None)) == "completed"


def test_a_cancelled_scan_takes_the_page_in_flight_and_stays_cancelled(
    backend: Backend,
) -> None:
    first = claimed_first_page(backend)
    backend.cancel(first.scan_id)
    assert commit(backend, first, whole_page(), keep=Lease("task-1", 30.0)) == "cancelled"
    row = backend.row(first.scan_id)
    assert (row.page_seq, row.queued, row.leased, row.lease_task_id) == (1, False, False, None)
    assert commit(backend, first.at(1, 0), whole_page(None)) == "cancelled"


def test_a_release_returns_the_page_to_the_queue_uncounted(backend: Backend) -> None:
    first = claimed_first_page(backend)
    assert release(backend, first, "task-2") is False
    assert release(backend, first, "task-1") is True
    row = backend.row(first.scan_id)
    assert (row.deliveries, row.queued, row.leased, row.lease_task_id) == (0, True, False, None)
    assert release(backend, first, "task-1") is False
    taken = claim(backend, first, "task-2")
    assert taken is not None
    assert taken.deliveries == 1


def test_a_failed_scan_keeps_its_checkpoint_and_takes_no_more_writes(backend: Backend) -> None:
    first = claimed_first_page(backend)
    assert commit(backend, first, part_of_page(4, ("a",))) == "in_progress"
    resumed = first.at(0, 4)
    assert claim(backend, resumed) is not None
    assert fail(backend, resumed) is True
    row = backend.row(first.scan_id)
    assert (row.status, row.error_message) == ("failed", "the market refused the page")
    assert (row.page_offset, row.processed_items, row.leased, row.queued) == (4, 4, False, False)
    assert fail(backend, resumed) is False
    assert commit(backend, resumed, whole_page()) is None
    assert claim(backend, resumed) is None
    assert status(backend, resumed) == "failed"
