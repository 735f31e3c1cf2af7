"""checkpoints partitioned by the day their scan was created

`scan_checkpoints` becomes partitioned by range of `created_at`, one partition per UTC day
in schema scan_checkpoint_days (the days of the opportunities' partitions), plus a default
one, so that retention drops a day of checkpoints and opportunities whole. A unique key of
a partitioned table must hold the partition key: `scan_id` is unique with `created_at`, and
across days by create_checkpoint's advisory lock. Every row is copied, ids included; the
upgrade refuses, changing nothing, if a scan id is stored twice or a row did not move.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "scan_checkpoint_days"
OPPORTUNITY_SCHEMA = "scan_opportunity_days"
SEQUENCE = "scan_checkpoint_ids"
AHEAD_DAYS = 7
OLD = "scan_checkpoints_0008"
NEW = "scan_checkpoints_0009"
DAY = "(created_at AT TIME ZONE 'UTC')::date"
INDEXES = (
    ("ix_scan_checkpoints_user_id", "(user_id)"),
    ("ix_scan_checkpoints_status_lease_expires_at", "(status, lease_expires_at)"),
    ("ix_scan_checkpoints_status_updated_at", "(status, updated_at)"),
)


def upgrade() -> None:
    _rename_away("scan_checkpoints", OLD, "0008")
    _refuse_duplicates()
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    max_id = op.get_bind().scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {OLD}"))
    op.execute(f"CREATE SEQUENCE {SEQUENCE} START WITH {int(max_id or 0) + 1}")
    op.execute(
        f"CREATE TABLE scan_checkpoints (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        " PARTITION BY RANGE (created_at)"
    )
    op.execute(f"ALTER TABLE scan_checkpoints ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')")
    op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY scan_checkpoints.id")
    op.execute(
        "ALTER TABLE scan_checkpoints ADD CONSTRAINT pk_scan_checkpoints"
        " PRIMARY KEY (id, created_at)"
    )
    op.execute(
        "ALTER TABLE scan_checkpoints ADD CONSTRAINT uq_scan_checkpoints_scan_id_created_at"
        " UNIQUE (scan_id, created_at)"
    )
    for name, columns in INDEXES:
        op.execute(f"CREATE INDEX {name} ON scan_checkpoints {columns}")
    op.execute(f"CREATE TABLE {SCHEMA}.undated PARTITION OF scan_checkpoints DEFAULT")
    for day in _days_to_make():
        op.execute(
            f"CREATE TABLE {SCHEMA}.d{day:%Y%m%d} PARTITION OF scan_checkpoints"
            f" FOR VALUES FROM ('{day.isoformat()} 00:00:00+00')"
            f" TO ('{day + timedelta(days=1)} 00:00:00+00')"
        )
    op.execute(f"INSERT INTO scan_checkpoints SELECT * FROM {OLD}")
    _check_every_row_moved(OLD)
    op.execute(f"DROP TABLE {OLD}")


def _rename_away(table: str, to: str, suffix: str) -> None:
    """Rename `table` and its indexes out of the way of their successors."""
    bind = op.get_bind()
    indexes = bind.scalars(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :table"), {"table": table}
    ).all()
    op.execute(f"ALTER TABLE {table} RENAME TO {to}")
    for index in indexes:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_{suffix}")


def _refuse_duplicates() -> None:
    duplicated = op.get_bind().scalar(
        sa.text(f"SELECT count(*) - count(DISTINCT scan_id) FROM {OLD}")
    )
    if duplicated:
        raise RuntimeError(f"revision 0009: {duplicated} scan ids stored twice; nothing changed")


def _days_to_make() -> list[date]:
    """The stored checkpoints' days, the opportunities' partitioned days and the coming
    ones, but no day some of whose finds are in the opportunities' `undated` (a day dropped
    whole must take every row of it)."""
    bind = op.get_bind()
    stored = set(bind.scalars(sa.text(f"SELECT DISTINCT {DAY} FROM {OLD}")).all())
    names = bind.scalars(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.inhparent = 'scan_opportunities'::regclass AND n.nspname = :schema"
            " AND c.relname ~ '^d[0-9]{8}$'"
        ),
        {"schema": OPPORTUNITY_SCHEMA},
    ).all()
    partitioned = {date(int(n[1:5]), int(n[5:7]), int(n[7:9])) for n in names}
    undated = set(
        bind.scalars(sa.text(f"SELECT DISTINCT scan_day FROM {OPPORTUNITY_SCHEMA}.undated")).all()
    )
    today = bind.scalar(sa.text("SELECT (now() AT TIME ZONE 'UTC')::date"))
    ahead = {today + timedelta(days=offset) for offset in range(AHEAD_DAYS + 1)}
    return sorted((stored | partitioned | ahead) - undated)


def _check_every_row_moved(old: str) -> None:
    bind = op.get_bind()
    before = bind.scalar(sa.text(f"SELECT count(*) FROM {old}"))
    after = bind.scalar(sa.text("SELECT count(*) FROM scan_checkpoints"))
    if before != after:
        raise RuntimeError(f"revision 0009: {before} rows before, {after} after; rolled back")


def downgrade() -> None:
    _rename_away("scan_checkpoints", NEW, "0009")
    op.execute(
        f"CREATE TABLE scan_checkpoints (LIKE {NEW} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    op.execute(
        "ALTER TABLE scan_checkpoints ALTER COLUMN id DROP DEFAULT,"
        " ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY"
    )
    op.execute("ALTER TABLE scan_checkpoints ADD CONSTRAINT pk_scan_checkpoints PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE scan_checkpoints ADD CONSTRAINT uq_scan_checkpoints_scan_id UNIQUE (scan_id)"
    )
    for name, columns in INDEXES:
        op.execute(f"CREATE INDEX {name} ON scan_checkpoints {columns}")
    op.execute(f"INSERT INTO scan_checkpoints OVERRIDING SYSTEM VALUE SELECT * FROM {NEW}")
    _check_every_row_moved(NEW)
    op.execute(
        "SELECT setval(pg_get_serial_sequence('scan_checkpoints', 'id'),"
        " greatest((SELECT max(id) FROM scan_checkpoints), 1))"
    )
    op.execute(f"DROP TABLE {NEW}")
    op.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
