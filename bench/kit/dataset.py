"""Bulk rows for the table-size figures, made by PostgreSQL itself with generate_series.

Rows look like real ones: the params of a real simulated scan, the seed guide's metadata,
a lease token and owner, Telegram-sized user ids. `random()` is seeded, so a run's
dataset is the same every time.
"""

from __future__ import annotations

import json

from bench.kit.database import Connection
from bench.kit.scans import SEED, params
from worker.domain.opportunities import Opportunity
from worker.markets.simulated import catalog_item

# Telegram user ids are large; the bench's users are 10^9 + k.
USER_ID_BASE = 1_000_000_000
SEED_GUIDE_METADATA = {
    "game": "csgo",
    "level": "standard",
    "started_at": "2026-11-01T03:00:00.000000",
    "initiated_by": "telegram_command",
}
TERMINAL_STATUS_SQL = (
    "CASE WHEN random() < 0.1 THEN 'failed' WHEN random() < 0.1 THEN 'cancelled'"
    " ELSE 'completed' END"
)


def insert_checkpoints(
    connection: Connection,
    rows: int,
    *,
    users: int,
    status_sql: str = TERMINAL_STATUS_SQL,
    age_days_sql: str = "random() * 6",
) -> None:
    """Insert `rows` finished-looking checkpoints of `users` users, then VACUUM ANALYZE.

    `status_sql` and `age_days_sql` are SQL expressions evaluated per row (they may use
    random()); age is how long ago the row was last updated, in days.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"""
            INSERT INTO scan_checkpoints (
                scan_id, user_id, operation_type, cursor, processed_items, total_items,
                timestamp, metadata, status, params, page_seq, lease_token, lease_owner,
                created_at, updated_at)
            SELECT gen_random_uuid(), %(user_base)s + floor(random() * %(users)s)::bigint,
                'market_scan', NULL, 1000, 1000, at, %(metadata)s::jsonb, status,
                %(params)s::jsonb, 10, gen_random_uuid(), 'celery@worker-1', at, at
            FROM (
                SELECT now() - make_interval(secs => ({age_days_sql}) * 86400) AS at,
                       {status_sql} AS status
                FROM generate_series(1, %(rows)s)
            ) AS generated
            """,
            {
                "user_base": USER_ID_BASE,
                "users": users,
                "metadata": json.dumps(SEED_GUIDE_METADATA),
                "params": json.dumps(params(1000).to_json()),
                "rows": rows,
            },
        )
    vacuum_analyze(connection)


def vacuum_analyze(connection: Connection) -> None:
    """What autovacuum would have done to rows that old; needs an autocommit connection."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE scan_checkpoints")
        cursor.execute("VACUUM ANALYZE scan_opportunities")


def relation_bytes(connection: Connection, table: str) -> int:
    """Heap, TOAST and every index of `table`, summed over its partitions if it has any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))"
            " FROM pg_partition_tree(%s::regclass)), pg_total_relation_size(%s::regclass))",
            (table, table),
        )
        row = cursor.fetchone()
    return int(row[0])


def catalog_opportunities(items: int) -> list[Opportunity]:
    """What a scan of the first `items` items of the bench's catalog finds."""
    scan_params = params(items)
    judged = (scan_params.judge(catalog_item(SEED, index)) for index in range(items))
    return [hit for hit in judged if isinstance(hit, Opportunity)]
