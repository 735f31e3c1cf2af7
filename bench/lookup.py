"""7. Active-scan lookup: `checkpoint_store.get_active_checkpoints(session, user_id=...)` on a
table of 1,000,000 checkpoints of 100,000 users (about 10 each), 2% of them active
(in_progress or paused), the rest terminal, then VACUUM ANALYZE. 200 calls for random
users (each call and its commit timed in the bench process, as StateManager runs it);
median and p95. Floor: `SELECT 1` and commit on the same session.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.kit import dataset
from bench.kit.database import connect
from bench.kit.dataset import USER_ID_BASE
from bench.kit.harness import Bench, say
from bench.kit.report import Row, ms
from worker.db import driver_url
from worker.db.checkpoints import get_active_checkpoints

NAME = "lookup"
USERS = 100_000
GOAL_S = 0.005
ACTIVE_STATUS_SQL = (
    "CASE WHEN random() < 0.02 THEN (CASE WHEN random() < 0.5 THEN 'in_progress'"
    f" ELSE 'paused' END) ELSE {dataset.TERMINAL_STATUS_SQL} END"
)


def _timed(calls: int, call: Callable[[], object]) -> list[float]:
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def run(bench: Bench) -> list[Row]:
    rows, calls = bench.size(1_000_000, 100_000), bench.size(200, 100)
    users = USERS * rows // 1_000_000
    users_asked = random.Random(11)
    found: list[int] = []
    with bench.database(NAME) as url:
        connection = connect(url)
        started = time.monotonic()
        dataset.insert_checkpoints(connection, rows, users=users, status_sql=ACTIVE_STATUS_SQL)
        say(f"{NAME}: {rows:,} rows inserted in {time.monotonic() - started:.0f}s")
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN SELECT * FROM scan_checkpoints WHERE status IN ('in_progress', 'paused')"
                " AND user_id = %s ORDER BY timestamp DESC, id DESC",
                (USER_ID_BASE + 1,),
            )
            plan = " / ".join(line.strip() for (line,) in cursor.fetchall())
        connection.close()
        engine = create_engine(driver_url(url))
        with Session(engine) as session:

            def lookup() -> None:
                user_id = USER_ID_BASE + users_asked.randrange(users)
                found.append(len(get_active_checkpoints(session, user_id=user_id)))
                session.commit()

            def round_trip() -> None:
                session.execute(text("SELECT 1"))
                session.commit()

            _timed(20, lookup)
            found.clear()
            seconds = _timed(calls, lookup)
            floor = _timed(calls, round_trip)
        engine.dispose()
    median, p95 = statistics.median(seconds), statistics.quantiles(seconds, n=20)[18]
    return [
        Row(
            figure=f"7 active-scan lookup by user ({rows:,} rows, {users:,} users)",
            measured=f"median {ms(median)}, p95 {ms(p95)}",
            floor=f"SELECT 1 {ms(statistics.median(floor))} -> "
            f"{median / statistics.median(floor):.1f}x",
            goal=f"< {GOAL_S * 1000:.0f} ms",
            met=median < GOAL_S,
            note="The user_id index narrows a lookup to the user's ~10 rows; a miss would "
            "come from a user with thousands of rows, which a (user_id, status) index fixes.",
            detail=f"{calls} calls, {statistics.mean(found):.2f} active scans returned on "
            f"average; plan: {plan}",
        )
    ]
