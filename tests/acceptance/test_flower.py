"""Flower, run as docker-compose.yml runs it, shows scans' page tasks and their progress.

Every page task is listed under the task's own name, `marketscan.scan.page`: Flower labels
its Prometheus metrics by the shown name and never drops a label, so a name per page would
grow its memory and /metrics with every page run. A page shows its scan in its arguments
(the scan id first) and in its result, `scan <scan_id> page <n>: <outcome>: <processed> of
<total> items`, so a search for a scan id finds all its pages, and the list says how far
the scan got without opening a task.

What Flower makes observable about a page's `task-progress` event: Celery's event state
turns it into the custom task state PROGRESS, but the event is sent at the page's commit,
a moment before task-succeeded replaces that state, so PROGRESS is only a glimpse; Flower's
API serialises a task's standard fields only, so `processed` and `total` never appear in
it. What lasts is Flower's Prometheus counter
`flower_events_total{type="task-progress", task="marketscan.scan.page"}`. The event's
contents are checked on the same event stream Flower consumes.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.flower import EventRecorder, Flower
from tests.support.processes import CeleryProcess
from tests.support.scans import start_scan_cli, wait_for_status

ROOT = Path(__file__).resolve().parents[2]
AUTH = ("user", "secret")
WORKER = "w1@test"
# The brief's scan: 10 pages of 100 items, 0.2 s each.
ITEMS, PAGE_SIZE = 1000, 100
DEADLINE_SECONDS = 60.0


@pytest.fixture
def start_flower(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Flower]]:
    """Start Flower processes that are always stopped at teardown."""
    started: list[Flower] = []

    def start(*options: str, flower_env: dict[str, str] | None = None) -> Flower:
        log_path = tmp_path / f"flower-{len(started)}.log"
        flower = Flower.start(celery_env, log_path, options, flower_env)
        started.append(flower)
        flower.wait_until_serving()
        return flower

    yield start
    for flower in started:
        flower.stop()


def compose_flower_options() -> list[str]:
    """The options docker-compose.yml gives `celery -A worker flower`."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command: list[str] = compose["services"]["flower"]["command"]
    return command[command.index("flower") + 1 :]


def page_tasks_of(flower: Flower, scan_id: str) -> dict[int, dict[str, Any]]:
    """Flower's page tasks of one scan, by page_seq."""
    tasks = flower.get("/api/tasks", auth=AUTH)
    assert tasks.status_code == 200, tasks.text
    found: dict[int, dict[str, Any]] = {}
    for task in tasks.json().values():
        args = ast.literal_eval(task["args"]) if task.get("args") else ()
        if args and args[0] == scan_id:
            found[args[2]] = task
    return found


def search(flower: Flower, text: str) -> list[str]:
    """The uuids of the tasks Flower's search box finds for `text`."""
    found = flower.get(f"/api/tasks?search={text}", auth=AUTH)
    assert found.status_code == 200, found.text
    return list(found.json())


@pytest.fixture(autouse=True)
def one_page_per_task(celery_env: dict[str, str]) -> None:
    """Each page its own task, so Flower has one row per page to show (with time slices a
    task walks several pages; test_a_sliced_task_says_which_pages_it_walked covers those)."""
    celery_env["MARKETSCAN_SLICE_PAGES"] = "1"


def test_flower_lists_a_scans_page_tasks_by_scan_and_page_and_counts_progress_per_page(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_flower: Callable[..., Flower],
) -> None:
    # Given a worker, Flower with basic auth, and a recorder of the events Flower consumes
    start_worker(WORKER)
    flower = start_flower("--basic-auth=user:secret")
    flower.wait_until_worker_online(WORKER)
    with EventRecorder(celery_env["CELERY_BROKER_URL"]) as recorder:
        recorder.wait_for_worker(WORKER)

        # When a 1,000-item scan runs to completion
        scan_uuid = start_scan_cli(
            celery_env, "--market-opt", f"items={ITEMS}", "--market-opt", "item_latency_ms=2"
        )
        scan_id = str(scan_uuid)
        done = wait_for_status(database_url, scan_uuid)
        pages = done.page_seq
        assert (done.processed_items, pages) == (ITEMS, ITEMS // PAGE_SIZE)

        # Then Flower's API refuses a request without or with wrong credentials
        assert flower.get("/api/tasks").status_code == 401
        assert flower.get("/api/tasks", auth=("user", "wrong")).status_code == 401

        # And lists every page task of the scan by its name, succeeded on the worker
        def all_pages_succeeded() -> dict[int, dict[str, Any]] | None:
            found = page_tasks_of(flower, scan_id)
            states = {task["state"] for task in found.values()}
            return found if len(found) == pages and states == {"SUCCESS"} else None

        tasks = flower.poll(
            all_pages_succeeded,
            lambda: f"Flower's page tasks of the scan: {page_tasks_of(flower, scan_id)}",
            DEADLINE_SECONDS,
        )
        assert sorted(tasks) == list(range(pages))
        assert {task["worker"] for task in tasks.values()} == {WORKER}
        # And each is listed under the page task's own name
        assert {tasks[seq]["name"] for seq in range(pages)} == {"marketscan.scan.page"}
        # And each shows its scan, its page and how far the scan got in its result, the
        # last one the whole scan
        per_page = ITEMS // pages
        reached = [f"next_published: {(seq + 1) * per_page}" for seq in range(pages - 1)]
        reached.append(f"completed: {ITEMS}")
        assert [tasks[seq]["result"] for seq in range(pages)] == [
            repr(f"scan {scan_id} page {seq}: {outcome} of {ITEMS} items")
            for seq, outcome in enumerate(reached)
        ]
        # And searching Flower for the scan id finds exactly its pages
        assert set(search(flower, scan_id)) == {task["uuid"] for task in tasks.values()}
        assert set(search(flower, scan_id[:8])) == {task["uuid"] for task in tasks.values()}
        # And so does searching for one page of it
        third = search(flower, f'"scan {scan_id} page 2:"')
        assert third == [tasks[2]["uuid"]]

        # And Flower counted one task-progress event per committed page
        def progress_count() -> float | None:
            return sum(
                value
                for name, labels, value in flower.metrics()
                if name == "flower_events_total"
                and labels.get("type") == "task-progress"
                and labels.get("worker") == WORKER
                and labels.get("task") == "marketscan.scan.page"
            )

        flower.poll(
            lambda: progress_count() == pages,
            lambda: f"Flower counted {progress_count()} task-progress events for {pages} pages",
            DEADLINE_SECONDS,
        )

        # And each of those events is the page's own task, carrying processed/total after it
        def progress_of_scan() -> list[dict[str, Any]]:
            events = recorder.events("task-progress")
            return [event for event in events if event.get("scan_id") == scan_id]

        flower.poll(lambda: len(progress_of_scan()) == pages, "progress events missing")
        progress = sorted(progress_of_scan(), key=lambda event: event["page_seq"])
        assert [(e["page_seq"], e["processed"], e["total"]) for e in progress] == [
            (seq, (seq + 1) * PAGE_SIZE, ITEMS) for seq in range(pages)
        ]
        assert [e["uuid"] for e in progress] == [tasks[seq]["uuid"] for seq in range(pages)]


def test_flower_metrics_and_healthcheck_are_served_without_credentials(
    start_flower: Callable[..., Flower],
) -> None:
    # Given Flower with basic auth
    flower = start_flower("--basic-auth=user:secret")
    # When /metrics and /healthcheck are fetched without credentials
    metrics = flower.get("/metrics")
    health = flower.get("/healthcheck")
    # Then both answer: Flower protects its UI and API, not these (so it stays on loopback)
    assert metrics.status_code == 200 and "flower_worker_online" in metrics.text
    assert (health.status_code, health.text) == (200, "OK")
    assert flower.get("/api/workers").status_code == 401


def test_the_compose_flower_command_takes_basic_auth_from_the_environment_and_persists(
    start_flower: Callable[..., Flower], tmp_path: Path
) -> None:
    # Given docker-compose.yml's flower options, with its /data volume moved to tmp_path
    options = [
        f"--db={tmp_path / 'flower.db'}" if option.startswith("--db=") else option
        for option in compose_flower_options()
        if not option.startswith(("--port=", "--address="))
    ]
    assert f"--db={tmp_path / 'flower.db'}" in options and "--persistent=True" in options
    # When Flower runs with them and FLOWER_BASIC_AUTH in its environment, as compose does
    flower = start_flower(*options, flower_env={"FLOWER_BASIC_AUTH": "user:secret"})
    # Then its API wants those credentials
    assert flower.get("/api/tasks").status_code == 401
    assert flower.get("/api/tasks", auth=AUTH).status_code == 200
    # And its state is saved to the volume when it stops
    flower.stop()
    assert list(tmp_path.glob("flower.db*")), f"no state saved:\n{flower.process.log()}"


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, given time for Flower's page scripts to fetch and draw the table."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--virtual-time-budget=15000", "--window-size=1400,900", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_flowers_task_list_in_a_browser_shows_each_page_of_a_searched_scan(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_flower: Callable[..., Flower],
    tmp_path: Path,
) -> None:
    # Given a worker, Flower, and a finished scan of 5 pages
    start_worker(WORKER)
    flower = start_flower("--basic-auth=user:secret")
    flower.wait_until_worker_online(WORKER)
    scan_uuid = start_scan_cli(celery_env, "--market-opt", "items=500")
    scan_id = str(scan_uuid)
    wait_for_status(database_url, scan_uuid)
    flower.poll(
        lambda: len(search(flower, scan_id)) == 5, "Flower never saw the 5 pages", DEADLINE_SECONDS
    )
    # When a real browser opens Flower's task list searched for the scan's short id
    page = f"{flower.base_url.replace('://', '://user:secret@')}/tasks?name={scan_id[:8]}"
    dom = chromium("--dump-dom", page)
    # Then the list shows every page of the scan by its scan and page (its result), without
    # opening one
    assert dom.returncode == 0, dom.stderr
    for seq in range(5):
        assert f"scan {scan_id} page {seq}" in dom.stdout, dom.stdout[-3000:]
    shot = chromium(f"--screenshot={tmp_path / 'flower-tasks.png'}", page)
    assert shot.returncode == 0 and (tmp_path / "flower-tasks.png").stat().st_size > 0


def test_a_sliced_task_says_which_pages_it_walked(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_flower: Callable[..., Flower],
) -> None:
    # Given a worker whose page tasks may walk ten pages each, with time to spare
    celery_env.update(MARKETSCAN_SLICE_PAGES="10", MARKETSCAN_SLICE_MS="60000")
    start_worker(WORKER)
    flower = start_flower("--basic-auth=user:secret")
    flower.wait_until_worker_online(WORKER)
    # When a scan of five pages runs alone
    scan_uuid = start_scan_cli(celery_env, "--market-opt", "items=500")
    scan_id = str(scan_uuid)
    assert wait_for_status(database_url, scan_uuid).page_seq == 5

    # Then Flower lists one task for it, whose result names its first page and the pages
    # it walked
    def one_task_done() -> dict[int, dict[str, Any]] | None:
        found = page_tasks_of(flower, scan_id)
        return found if [t["state"] for t in found.values()] == ["SUCCESS"] else None

    tasks = flower.poll(one_task_done, lambda: str(page_tasks_of(flower, scan_id)), 60)
    assert tasks[0]["name"] == "marketscan.scan.page"
    assert (
        tasks[0]["result"] == f"'scan {scan_id} page 0: completed: 500 of 500 items over pages 0-4'"
    )


def test_flowers_metrics_keep_the_same_series_however_many_pages_run(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_flower: Callable[..., Flower],
) -> None:
    # Given a worker and Flower
    start_worker(WORKER)
    flower = start_flower("--basic-auth=user:secret")
    flower.wait_until_worker_online(WORKER)

    def run_scan_of_30_pages() -> int:
        """The number of series on Flower's /metrics once it has seen the scan's 30 pages."""
        scan_uuid = start_scan_cli(celery_env, "--market-opt", "items=3000")
        scan_id = str(scan_uuid)
        assert wait_for_status(database_url, scan_uuid).page_seq == 30

        def all_pages_succeeded() -> dict[int, dict[str, Any]] | None:
            found = page_tasks_of(flower, scan_id)
            states = {task["state"] for task in found.values()}
            return found if len(found) == 30 and states == {"SUCCESS"} else None

        tasks = flower.poll(all_pages_succeeded, lambda: str(page_tasks_of(flower, scan_id)), 60)
        # Each page stays findable in Flower by its scan id, and says how far the scan got
        assert set(search(flower, scan_id)) == {task["uuid"] for task in tasks.values()}
        assert tasks[29]["result"] == f"'scan {scan_id} page 29: completed: 3000 of 3000 items'"
        return len(list(flower.metrics()))

    # When a scan of 30 pages runs, and then another one
    after_first = run_scan_of_30_pages()
    after_second = run_scan_of_30_pages()
    # Then the second scan added no series to Flower's metrics: its pages were counted
    # under the same task names as the first one's
    assert after_second == after_first


def test_flowers_queue_lengths_name_both_of_the_workers_queues(
    start_flower: Callable[..., Flower],
) -> None:
    # Given Flower on the fleet's broker
    flower = start_flower("--basic-auth=user:secret")
    # When its queue lengths are asked for (the API behind its Broker page)
    answer = flower.get("/api/queues/length", auth=AUTH)
    # Then it answers with the two queues every worker consumes
    assert answer.status_code == 200, answer.text
    names = {queue["name"] for queue in answer.json()["active_queues"]}
    assert names == {"marketscan", "marketscan.recovered"}
