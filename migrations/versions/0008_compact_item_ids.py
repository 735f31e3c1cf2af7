"""opportunities' item ids as compact bytea: a canonical UUID in 16 bytes

`scan_opportunities.item_id` becomes bytea (models.item_key): DMarket's ids, canonical UUID
strings, take 16 bytes instead of 37 in the row and in every entry of the unique
(scan_id, item_id, scan_day) index; any other id is kept exactly, as its UTF-8 bytes. The
upgrade first checks that every stored id reads back as it is, and refuses, changing
nothing, if one would not; the row count is checked after. The downgrade gives the text
column back, value for value.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "scan_opportunities"
# models.item_key's rule, frozen here as this revision applies it.
UUID_TEXT = "'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"


def item_key_sql(column: str) -> str:
    return (
        f"CASE WHEN {column} ~ {UUID_TEXT} THEN decode(replace({column}, '-', ''), 'hex')"
        f" WHEN octet_length({column}) = 16 THEN '\\x00'::bytea || convert_to({column}, 'UTF8')"
        f" ELSE convert_to({column}, 'UTF8') END"
    )


def item_id_text_sql(column: str) -> str:
    return (
        f"CASE WHEN octet_length({column}) = 16 THEN encode({column}, 'hex')::uuid::text"
        f" ELSE convert_from(ltrim({column}, '\\x00'::bytea), 'UTF8') END"
    )


def upgrade() -> None:
    bind = op.get_bind()
    before = _count()
    changed = bind.scalar(
        sa.text(
            f"SELECT count(*) FROM {TABLE}"
            f" WHERE ({item_id_text_sql(item_key_sql('item_id'))}) IS DISTINCT FROM item_id"
        )
    )
    if changed:
        raise RuntimeError(
            f"revision 0008: {changed} {TABLE} item ids would not read back as stored; "
            "nothing was changed"
        )
    op.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN item_id TYPE bytea USING {item_key_sql('item_id')}"
    )
    _check_count("0008", before)


def downgrade() -> None:
    before = _count()
    op.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN item_id TYPE text USING {item_id_text_sql('item_id')}"
    )
    _check_count("0008 (downgrade)", before)


def _count() -> int:
    return int(op.get_bind().scalar(sa.text(f"SELECT count(*) FROM {TABLE}")) or 0)


def _check_count(step: str, before: int) -> None:
    after = _count()
    if after != before:
        raise RuntimeError(f"revision {step}: {before} rows before, {after} after; rolled back")
