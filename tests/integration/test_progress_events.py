"""Progress events go out through one dispatcher per process, on a connection of its own
(named `marketscan-progress-<pid>` in Redis), on real Redis: a forked child makes its own
and leaves its parent's alone, threads share the one, and a broker that restarted is
reached again. The worker's side (pool processes, a killed connection) is in
tests/acceptance/test_progress_events.py."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu.exceptions
import pytest
from celery import Celery
from celery.app.task import Context

from tests.support.flower import EventRecorder
from tests.support.progress_events import progress_clients
from worker.celery_glue import progress_events
from worker.devtools.embedded import EmbeddedRedis

HOSTNAME = "progress@test"
DEADLINE_SECONDS = 30.0


@pytest.fixture(autouse=True)
def no_dispatcher_left() -> Iterator[None]:
    progress_events.close()
    yield
    progress_events.close()


def celery_app(broker_url: str) -> Celery:
    return Celery("progress-test", broker=broker_url, set_as_current=False)


def request(task_id: str) -> Any:
    return Context(id=task_id, hostname=HOSTNAME)


def send(app: Celery, task_id: str, page_seq: int = 0) -> None:
    progress_events.send_progress(
        app, request(task_id), scan_id="scan-1", page_seq=page_seq, processed=1, total=2
    )


def wait_for(recorder: EventRecorder, task_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The task-progress events of `task_ids`, by task id, once all have arrived."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = {e["uuid"]: e for e in recorder.events("task-progress") if e["uuid"] in task_ids}
        if len(found) == len(task_ids):
            return found
        assert time.monotonic() < deadline, f"events of {task_ids - set(found)} never arrived"
        time.sleep(0.05)


def receiving(recorder: EventRecorder, app: Celery) -> None:
    """Send until the recorder hears one: its subscription is live after that."""
    for attempt in range(int(DEADLINE_SECONDS * 10)):
        send(app, f"warm-up-{attempt}")
        if any(e["uuid"].startswith("warm-up") for e in recorder.events("task-progress")):
            return
        time.sleep(0.1)
    raise AssertionError("the recorder heard no event")


def test_an_event_carries_the_tasks_id_hostname_and_fields_as_send_event_did(
    redis_url: str,
) -> None:
    # Given a recorder of the broker's events, and a process that has sent one
    app = celery_app(redis_url)
    with EventRecorder(redis_url) as recorder:
        receiving(recorder, app)
        connections = progress_clients(redis_url)
        # When a page reports its progress, and then 50 more
        progress_events.send_progress(
            app, request("task-a"), scan_id="scan-9", page_seq=3, processed=400, total=1000
        )
        for seq in range(50):
            send(app, f"task-b-{seq}", seq)
        event = wait_for(recorder, {"task-a", *(f"task-b-{seq}" for seq in range(50))})["task-a"]
    # Then the event is the task's own, with the page's fields, from this host and process
    assert event["type"] == "task-progress"
    assert (event["hostname"], event["pid"]) == (HOSTNAME, os.getpid())
    assert (event["scan_id"], event["page_seq"], event["processed"], event["total"]) == (
        "scan-9",
        3,
        400,
        1000,
    )
    # And every event went out on the connections the first one opened, named for this process
    assert list(connections) == [os.getpid()]
    assert progress_clients(redis_url) == connections


def test_a_forked_child_sends_on_its_own_dispatcher_and_leaves_its_parents_alone(
    redis_url: str,
) -> None:
    # Given a process that has sent an event on its dispatcher
    app = celery_app(redis_url)
    with EventRecorder(redis_url) as recorder:
        receiving(recorder, app)
        parent_connection = progress_clients(redis_url)[os.getpid()]
        # When it forks, and the child sends an event and closes at shutdown
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            status = 1
            try:
                send(app, "from-child")
                progress_events.close()
                status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # And the parent sends again
        send(app, "from-parent")
        events = wait_for(recorder, {"from-child", "from-parent"})
    # Then the child's event came from a dispatcher made in the child, not the parent's
    assert events["from-child"]["pid"] == child
    assert events["from-parent"]["pid"] == os.getpid()
    # And the parent still sends on the connection it had before the fork
    assert progress_clients(redis_url)[os.getpid()] == parent_connection


def test_threads_of_one_process_share_its_one_dispatcher(redis_url: str) -> None:
    # Given a process whose tasks run on several threads (Celery's threads pool)
    app = celery_app(redis_url)
    threads, per_thread = 4, 25
    task_ids = {f"thread-{n}-{seq}" for n in range(threads) for seq in range(per_thread)}
    with EventRecorder(redis_url) as recorder:
        receiving(recorder, app)
        connections = progress_clients(redis_url)

        def report(n: int) -> None:
            for seq in range(per_thread):
                send(app, f"thread-{n}-{seq}", seq)

        # When they all report progress at once
        workers = [threading.Thread(target=report, args=(n,)) for n in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        # Then every event arrives, on the connections the process already had
        assert set(wait_for(recorder, task_ids)) == task_ids
    assert list(connections) == [os.getpid()]
    assert progress_clients(redis_url) == connections


def test_events_reach_a_broker_that_restarted(tmp_path: Path) -> None:
    # Given a broker of its own, and a process that has sent it events
    broker = EmbeddedRedis(tmp_path / "broker")
    broker.start()
    try:
        app = celery_app(broker.url)
        with EventRecorder(broker.url) as recorder:
            receiving(recorder, app)
        # When the broker stops, an event cannot be sent: it fails after the retry policy,
        # as Task.send_event's would
        broker.stop()
        with pytest.raises(kombu.exceptions.OperationalError):
            send(app, "while-down")
        # And once the broker is back on its port
        broker.start()
        with EventRecorder(broker.url) as recorder:
            # Then events reach it again, on a new connection
            receiving(recorder, app)
            send(app, "after-restart")
            assert wait_for(recorder, {"after-restart"})["after-restart"]["pid"] == os.getpid()
        assert list(progress_clients(broker.url)) == [os.getpid()]
    finally:
        broker.stop()
