"""a scan id has one checkpoint whatever its day, refused by PostgreSQL itself

Since 0009 `scan_checkpoints` is partitioned by day, and a unique index of a partitioned
table must hold the partition key: `(scan_id, created_at)` keeps an id once per day only,
and uniqueness across days was left to create_checkpoint's advisory lock. Any other writer
(an operator's SQL, the upstream table's copy, a migration) could store an id twice.

Weighed and not taken: a registry, `scan_ids(scan_id primary key, day)`, filled by a trigger.
Its unique index would refuse a second id under any isolation, but its rows must leave when
their day is dropped: deleting a day of 1,000,000 of them wrote 103 MB of WAL and took 0.7 s
(PostgreSQL 16, after a checkpoint), where the whole-day drop writes about 1 MB in all
(bench figure 6): every finished scan would again cost a deleted row, which is what the day
partitions exist to avoid. Keeping its rows instead grows it without bound.

Taken: a check that costs a little per row inserted and nothing per row dropped (a scan
inserts one row; the bench's bulk insert of 1,000,000 rows takes about 130 s, not 27). A
BEFORE INSERT row trigger on the parent, which PostgreSQL clones onto every partition, those
made later included, so an INSERT into the parent or straight into a day, COPY, INSERT ...
SELECT and a row moved to another day by an UPDATE of created_at all pass through it, looks
the id up in every day and refuses it with unique_violation (constraint
`one_row_per_scan_id`).

Two inserts of one id into two days cannot see each other's uncommitted row, so before it
looks, the trigger updates the id's stripe, one of the 4096 rows of `scan_id_stripes`
(uuid_hash of the id): a second insert of the id waits there for the first's transaction to
end. Under READ COMMITTED its look-up, a statement of its own, then sees the committed row.
Under REPEATABLE READ or SERIALIZABLE its snapshot cannot, but updating a row that another
transaction updated after that snapshot is a serialization failure, so the insert is refused
either way (one of another id sharing the stripe may be too, and passes when retried). A row
update, not an advisory lock: an advisory lock would not catch that snapshot, and a lock per
id is an entry in the shared lock table, which a bulk INSERT of a million rows exhausts; row
locks live in the rows, and a transaction updates each stripe once.

An UPDATE that changes a checkpoint's scan_id is refused (`scan_id_never_changes`): no code
changes one, and an id moved by hand could land on a taken one. Left outside, since they
say they mean it: ALTER TABLE ... DISABLE TRIGGER, session_replication_role = replica, and
ATTACH PARTITION of a table holding a taken id (DDL fires no row trigger).

The upgrade makes the triggers first (their lock keeps new rows out until it commits), then
refuses, changing nothing, if an id is stored twice already, naming some. create_checkpoint
takes no advisory lock any more: it inserts, and reads this refusal as a DuplicateScan.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRIPES = 4096  # a power of two: the stripe is the id's hash masked
SHOWN = 5  # duplicated ids named when the upgrade refuses

ONE_ROW_PER_SCAN_ID = f"""
CREATE FUNCTION scan_checkpoints_one_row_per_scan_id() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stripe_of_id smallint := uuid_hash(NEW.scan_id) & {STRIPES - 1};
BEGIN
    -- Wait for any transaction that inserted an id of this stripe; a stripe this
    -- transaction updated already is held until it ends, and is not written again.
    UPDATE scan_id_stripes SET stripe = stripe
     WHERE stripe = stripe_of_id AND xmin <> pg_current_xact_id()::xid;
    IF NOT FOUND AND NOT EXISTS (SELECT FROM scan_id_stripes WHERE stripe = stripe_of_id) THEN
        RAISE EXCEPTION 'scan_id_stripes has lost stripe %', stripe_of_id;
    END IF;
    -- A statement of its own: under READ COMMITTED it sees what committed while we waited.
    IF EXISTS (SELECT FROM scan_checkpoints WHERE scan_id = NEW.scan_id) THEN
        RAISE EXCEPTION 'scan_id % is stored already', NEW.scan_id
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'one_row_per_scan_id',
                  TABLE = 'scan_checkpoints',
                  DETAIL = 'A scan id has one checkpoint, whatever its day.';
    END IF;
    RETURN NEW;
END
$$
"""
SCAN_ID_NEVER_CHANGES = """
CREATE FUNCTION scan_checkpoints_scan_id_never_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the scan_id of a checkpoint never changes (% to %)',
        OLD.scan_id, NEW.scan_id
        USING ERRCODE = 'integrity_constraint_violation',
              CONSTRAINT = 'scan_id_never_changes', TABLE = 'scan_checkpoints';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "scan_id_stripes",
        sa.Column("stripe", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("stripe", name=op.f("pk_scan_id_stripes")),
        # Room on each page for the versions the updates write, so they stay HOT.
        postgresql_with={"fillfactor": 50},
    )
    op.execute(f"INSERT INTO scan_id_stripes SELECT generate_series(0, {STRIPES - 1})")
    op.execute(ONE_ROW_PER_SCAN_ID)
    op.execute(SCAN_ID_NEVER_CHANGES)
    op.execute(
        "CREATE TRIGGER one_row_per_scan_id BEFORE INSERT ON scan_checkpoints"
        " FOR EACH ROW EXECUTE FUNCTION scan_checkpoints_one_row_per_scan_id()"
    )
    op.execute(
        "CREATE TRIGGER scan_id_never_changes BEFORE UPDATE OF scan_id ON scan_checkpoints"
        " FOR EACH ROW WHEN (OLD.scan_id IS DISTINCT FROM NEW.scan_id)"
        " EXECUTE FUNCTION scan_checkpoints_scan_id_never_changes()"
    )
    _refuse_duplicates()


def _refuse_duplicates() -> None:
    duplicated = (
        op.get_bind()
        .scalars(
            sa.text(
                "SELECT scan_id::text FROM scan_checkpoints GROUP BY scan_id"
                " HAVING count(*) > 1 ORDER BY scan_id"
            )
        )
        .all()
    )
    if duplicated:
        raise RuntimeError(
            f"revision 0010: {len(duplicated)} scan ids are stored more than once"
            f" ({', '.join(duplicated[:SHOWN])}{', ...' if len(duplicated) > SHOWN else ''});"
            " keep one row of each and upgrade again; nothing changed"
        )


def downgrade() -> None:
    op.execute("DROP TRIGGER scan_id_never_changes ON scan_checkpoints")
    op.execute("DROP TRIGGER one_row_per_scan_id ON scan_checkpoints")
    op.execute("DROP FUNCTION scan_checkpoints_scan_id_never_changes()")
    op.execute("DROP FUNCTION scan_checkpoints_one_row_per_scan_id()")
    op.drop_table("scan_id_stripes")
