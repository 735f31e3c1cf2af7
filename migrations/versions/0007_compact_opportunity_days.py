"""compact opportunities, partitioned by the day their scan was created

Fee and profit in cents are no longer stored (they follow from the prices and the scan's
frozen fee), prices are INTEGER cents, the profit percent INTEGER hundredths, and the table
is partitioned by `scan_day` (one partition a day in schema scan_opportunity_days, plus a
default one) so that retention drops days whole. Every row is copied, ids included (alert
cursors compare them); the upgrade refuses, changing nothing, if a stored fee or profit
is not what the scan's fee derives, or if a price does not fit the new columns.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "scan_opportunity_days"
SEQUENCE = "scan_opportunity_ids"
AHEAD_DAYS = 7
OLD = "scan_opportunities_0006"
SCAN_DAY = "(c.created_at AT TIME ZONE 'UTC')::date"
# As the page path computed them (Python's round() on the float product, which float8
# round() matches: both round half to even).
FEE = "round(o.reference_price_cents::float8 * coalesce((c.params->>'fee')::float8, 0.07))"
PROFIT = f"(o.reference_price_cents - {FEE} - o.price_cents)"


def upgrade() -> None:
    op.execute(f"ALTER TABLE scan_opportunities RENAME TO {OLD}")
    op.execute(f"ALTER INDEX pk_scan_opportunities RENAME TO pk_{OLD}")
    _refuse_what_would_change()
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    max_id = op.get_bind().scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {OLD}"))
    op.execute(f"CREATE SEQUENCE {SEQUENCE} START WITH {int(max_id or 0) + 1}")
    op.execute(
        "CREATE TABLE scan_opportunities ("
        " id bigint NOT NULL DEFAULT nextval('scan_opportunity_ids'::regclass),"
        " found_at timestamptz NOT NULL DEFAULT now(),"
        " reference_fetched_at timestamptz,"
        " scan_id uuid NOT NULL,"
        " scan_day date NOT NULL,"
        " price_cents integer NOT NULL,"
        " reference_price_cents integer NOT NULL,"
        " profit_hundredths integer NOT NULL,"
        " page_seq integer NOT NULL,"
        " order_count integer,"
        " reference_kind smallint,"
        " item_id text NOT NULL,"
        " title text NOT NULL,"
        " CONSTRAINT pk_scan_opportunities PRIMARY KEY (scan_id, item_id, scan_day)"
        ") PARTITION BY RANGE (scan_day)"
    )
    op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY scan_opportunities.id")
    op.execute(f"CREATE TABLE {SCHEMA}.undated PARTITION OF scan_opportunities DEFAULT")
    for day in _days_to_make():
        end = day + timedelta(days=1)
        op.execute(
            f"CREATE TABLE {SCHEMA}.d{day:%Y%m%d} PARTITION OF scan_opportunities"
            f" FOR VALUES FROM ('{day.isoformat()}') TO ('{end.isoformat()}')"
        )
    op.execute(
        "INSERT INTO scan_opportunities (id, found_at, reference_fetched_at, scan_id,"
        " scan_day, price_cents, reference_price_cents, profit_hundredths, page_seq,"
        " order_count, reference_kind, item_id, title)"
        f" SELECT o.id, o.found_at, o.reference_fetched_at, o.scan_id, {SCAN_DAY},"
        " o.price_cents, o.reference_price_cents, (o.profit_percent * 100)::integer,"
        " o.page_seq, o.order_count, o.reference_kind, o.item_id, o.title"
        f" FROM {OLD} o JOIN scan_checkpoints c ON c.scan_id = o.scan_id"
    )
    _check_every_row_moved()
    op.execute(f"DROP TABLE {OLD}")


def _refuse_what_would_change() -> None:
    bind = op.get_bind()
    wrong = bind.scalar(
        sa.text(
            f"SELECT count(*) FROM {OLD} o JOIN scan_checkpoints c ON c.scan_id = o.scan_id"
            f" WHERE o.fee_cents <> {FEE} OR o.profit_cents <> {PROFIT}"
            " OR o.price_cents NOT BETWEEN -2147483648 AND 2147483647"
            " OR o.reference_price_cents NOT BETWEEN -2147483648 AND 2147483647"
        )
    )
    if wrong:
        raise RuntimeError(
            f"revision 0007: {wrong} scan_opportunities rows hold a fee or profit other than "
            "their scan's fee derives, or a price beyond 32 bits; nothing was changed"
        )


def _days_to_make() -> list[date]:
    bind = op.get_bind()
    stored = bind.scalars(
        sa.text(
            f"SELECT DISTINCT {SCAN_DAY} FROM {OLD} o"
            " JOIN scan_checkpoints c ON c.scan_id = o.scan_id"
        )
    ).all()
    today = bind.scalar(sa.text("SELECT (now() AT TIME ZONE 'UTC')::date"))
    ahead = {today + timedelta(days=offset) for offset in range(AHEAD_DAYS + 1)}
    return sorted(set(stored) | ahead)


def _check_every_row_moved() -> None:
    bind = op.get_bind()
    before = bind.scalar(sa.text(f"SELECT count(*) FROM {OLD}"))
    after = bind.scalar(sa.text("SELECT count(*) FROM scan_opportunities"))
    if before != after:
        raise RuntimeError(f"revision 0007: {before} rows before, {after} after; rolled back")


def downgrade() -> None:
    op.execute(f"ALTER TABLE scan_opportunities RENAME TO {OLD}")
    op.execute(f"ALTER INDEX pk_scan_opportunities RENAME TO pk_{OLD}")
    op.create_table(
        "scan_opportunities",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("reference_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("profit_cents", sa.BigInteger(), nullable=False),
        sa.Column("profit_percent", sa.Numeric(9, 2), nullable=False),
        sa.Column("reference_kind", sa.SmallInteger(), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=True),
        sa.Column("reference_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("page_seq", sa.Integer(), nullable=False),
        sa.Column(
            "found_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["scan_checkpoints.scan_id"],
            name=op.f("fk_scan_opportunities_scan_id_scan_checkpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_opportunities")),
        sa.UniqueConstraint(
            "scan_id", "item_id", name=op.f("uq_scan_opportunities_scan_id_item_id")
        ),
    )
    op.execute(
        "INSERT INTO scan_opportunities (id, scan_id, item_id, title, price_cents,"
        " reference_price_cents, fee_cents, profit_cents, profit_percent, reference_kind,"
        " order_count, reference_fetched_at, page_seq, found_at)"
        " OVERRIDING SYSTEM VALUE"
        f" SELECT o.id, o.scan_id, o.item_id, o.title, o.price_cents, o.reference_price_cents,"
        f" {FEE}, {PROFIT}, o.profit_hundredths / 100.0, o.reference_kind, o.order_count,"
        " o.reference_fetched_at, o.page_seq, o.found_at"
        f" FROM {OLD} o JOIN scan_checkpoints c ON c.scan_id = o.scan_id"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('scan_opportunities', 'id'),"
        " greatest((SELECT max(id) FROM scan_opportunities), 1))"
    )
    op.execute(f"DROP TABLE {OLD}")
    op.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
