"""row tallies: what the stored rows count, kept by triggers where the rows are written

The metrics exporter counted and summed every stored checkpoint and opportunity at each
scrape, a cost that grew with the data. `row_tallies` holds those counts instead (the
checkpoints by status, the page chain's pages, items and skipped items, the opportunities),
kept by triggers in the statements that change the rows, and filled from the rows here.

The counts are spread over 64 shards, a row each; a transaction adds to the shard of its
backend (`pg_backend_pid() % 64`), so concurrent page commits seldom wait on one row and a
transaction never locks two shards. Inserts and deletes are tallied once per statement
from its transition table (a cleanup batch of a thousand rows writes one tally); an update
once per row, and only when a counted column changed (a lease renewal writes none). What no
trigger sees, a detached day (worker.db.opportunity_days takes it out itself) and a
TRUNCATE (which zeroes the table's counts), is taken care of; a migration that rebuilds
either table must recreate its triggers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 64
STATUSES = ("in_progress", "paused", "completed", "failed", "cancelled")
STATUS_COLUMNS = tuple(f"scans_{status}" for status in STATUSES)
CHAIN_COLUMNS = {"page_seq": "chain_pages", "processed_items": "chain_items",
                 "skipped_items": "chain_skipped"}  # fmt: skip
COLUMNS = (*STATUS_COLUMNS, *CHAIN_COLUMNS.values(), "opportunities")

# Adds its arguments (in COLUMNS' order) to this backend's shard. Also called by cleanup,
# with negative amounts, for the rows of a day it detaches.
ADD = f"""
CREATE FUNCTION row_tallies_add({", ".join(f"add_{column} bigint" for column in COLUMNS)})
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO row_tallies AS t (shard, {", ".join(COLUMNS)})
  VALUES (pg_backend_pid() % {SHARDS}, {", ".join(f"add_{column}" for column in COLUMNS)})
  ON CONFLICT (shard) DO UPDATE SET
    {", ".join(f"{column} = t.{column} + excluded.{column}" for column in COLUMNS)};
END $$
"""


def _of_checkpoints(sign: str, finds: str = "0") -> str:
    """row_tallies_add's arguments for the checkpoint rows of the FROM clause, times
    `sign`, and `finds` opportunities."""
    statuses = [f"{sign} * count(*) FILTER (WHERE status = '{status}')" for status in STATUSES]
    chain = [
        f"{sign} * coalesce(sum({column}) FILTER (WHERE runner = 'chain'), 0)"
        for column in CHAIN_COLUMNS
    ]
    return ", ".join([*statuses, *chain, finds])


def _of_checkpoint_row(row: str) -> list[str]:
    """What one checkpoint row (NEW or OLD) adds to each of COLUMNS but opportunities."""
    statuses = [f"({row}.status = '{status}')::int" for status in STATUSES]
    chain = [
        f"CASE WHEN {row}.runner = 'chain' THEN {row}.{column} ELSE 0 END"
        for column in CHAIN_COLUMNS
    ]
    return [*statuses, *chain]


_UPDATE_DELTAS = ", ".join(
    f"{new} - {old}"
    for new, old in zip(_of_checkpoint_row("NEW"), _of_checkpoint_row("OLD"), strict=True)
)
_ZEROED = ", ".join(f"{column} = 0" for column in (*STATUS_COLUMNS, *CHAIN_COLUMNS.values()))
OF_CHECKPOINTS = f"""
CREATE FUNCTION row_tallies_of_checkpoints() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sign CONSTANT int := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
  PERFORM row_tallies_add({_of_checkpoints("sign")})
  FROM changed_checkpoints HAVING count(*) > 0;
  RETURN NULL;
END $$
"""
OF_CHECKPOINT_UPDATE = f"""
CREATE FUNCTION row_tallies_of_checkpoint_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM row_tallies_add({_UPDATE_DELTAS}, 0);
  RETURN NULL;
END $$
"""
OF_OPPORTUNITIES = f"""
CREATE FUNCTION row_tallies_of_opportunities() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM row_tallies_add({", ".join(["0"] * (len(COLUMNS) - 1))},
    CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END)
  FROM changed_opportunities HAVING count(*) > 0;
  RETURN NULL;
END $$
"""
# After a TRUNCATE the table is empty: its counts are zero, whatever they were.
OF_TRUNCATE = f"""
CREATE FUNCTION row_tallies_of_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'scan_opportunities' THEN
    UPDATE row_tallies SET opportunities = 0;
  ELSE
    UPDATE row_tallies SET {_ZEROED};
  END IF;
  RETURN NULL;
END $$
"""
# An update is tallied only when it changes what is counted: a status, or a chain row's
# numbers (a lease renewal or a caller's own save fires nothing).
_COUNTED_CHANGE = (
    "OLD.status IS DISTINCT FROM NEW.status OR ('chain' IN (OLD.runner, NEW.runner) AND"
    f" (OLD.runner, {', '.join(f'OLD.{c}' for c in CHAIN_COLUMNS)}) IS DISTINCT FROM"
    f" (NEW.runner, {', '.join(f'NEW.{c}' for c in CHAIN_COLUMNS)}))"
)
TRIGGERS = (
    ("scan_checkpoints", "row_tallies_insert", "AFTER INSERT",
     "REFERENCING NEW TABLE AS changed_checkpoints FOR EACH STATEMENT",
     "row_tallies_of_checkpoints"),
    ("scan_checkpoints", "row_tallies_delete", "AFTER DELETE",
     "REFERENCING OLD TABLE AS changed_checkpoints FOR EACH STATEMENT",
     "row_tallies_of_checkpoints"),
    ("scan_checkpoints", "row_tallies_update", "AFTER UPDATE",
     f"FOR EACH ROW WHEN ({_COUNTED_CHANGE})", "row_tallies_of_checkpoint_update"),
    ("scan_checkpoints", "row_tallies_truncate", "AFTER TRUNCATE", "FOR EACH STATEMENT",
     "row_tallies_of_truncate"),
    ("scan_opportunities", "row_tallies_insert", "AFTER INSERT",
     "REFERENCING NEW TABLE AS changed_opportunities FOR EACH STATEMENT",
     "row_tallies_of_opportunities"),
    ("scan_opportunities", "row_tallies_delete", "AFTER DELETE",
     "REFERENCING OLD TABLE AS changed_opportunities FOR EACH STATEMENT",
     "row_tallies_of_opportunities"),
    ("scan_opportunities", "row_tallies_truncate", "AFTER TRUNCATE", "FOR EACH STATEMENT",
     "row_tallies_of_truncate"),
)  # fmt: skip
FUNCTIONS = (
    "row_tallies_of_checkpoints()",
    "row_tallies_of_checkpoint_update()",
    "row_tallies_of_opportunities()",
    "row_tallies_of_truncate()",
    f"row_tallies_add({', '.join(['bigint'] * len(COLUMNS))})",
)


def upgrade() -> None:
    # No row changes between the count below and the triggers taking over: writers wait
    # for this transaction's commit.
    op.execute("LOCK TABLE scan_checkpoints, scan_opportunities IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        "row_tallies",
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        *(sa.Column(name, sa.BigInteger(), server_default="0", nullable=False) for name in COLUMNS),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_row_tallies")),
    )
    for function in (ADD, OF_CHECKPOINTS, OF_CHECKPOINT_UPDATE, OF_OPPORTUNITIES, OF_TRUNCATE):
        op.execute(function)
    for table, name, when, how, function in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} ON {table} {how} EXECUTE FUNCTION {function}()")
    finds = "(SELECT count(*) FROM scan_opportunities)"
    op.execute(f"SELECT row_tallies_add({_of_checkpoints('1', finds)}) FROM scan_checkpoints")


def downgrade() -> None:
    for table, name, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("row_tallies")
