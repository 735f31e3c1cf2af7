"""How `scan_opportunities.item_id` holds a listing's id: bytea, as short as the id allows.

DMarket's item ids are canonical UUID strings (36 characters, lower-case, hyphenated); they
are stored as their 16 bytes, which saves 20 bytes in the row and as many again in every
entry of the (scan_id, item_id, scan_day) index. Any other id is stored as it is, exactly:
its UTF-8 bytes, with one NUL byte in front if it is itself 16 bytes long, so that 16 bytes
always mean a UUID. Ids never hold a NUL byte (worker.domain.opportunities refuses them),
so leading NULs are never part of an id and reading drops them.

Ordering by the bytea would not be the order of the ids (a UUID's bytes sort after a text
id's), so whatever orders by id orders by `ITEM_ID_TEXT`, the id decoded in SQL.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect

UUID_BYTES = 16
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def encode_item_id(item_id: str) -> bytes:
    if _CANONICAL_UUID.fullmatch(item_id):
        return uuid.UUID(item_id).bytes
    raw = item_id.encode("utf-8")
    return b"\x00" + raw if len(raw) == UUID_BYTES else raw


def decode_item_id(stored: bytes) -> str:
    if len(stored) == UUID_BYTES:
        return str(uuid.UUID(bytes=stored))
    return stored.lstrip(b"\x00").decode("utf-8")


def item_id_text_sql(column: str) -> str:
    """SQL giving back the id `column` holds as text (decode_item_id in SQL)."""
    return (
        f"CASE WHEN octet_length({column}) = {UUID_BYTES}"
        f" THEN encode({column}, 'hex')::uuid::text"
        f" ELSE convert_from(ltrim({column}, '\\x00'::bytea), 'UTF8') END"
    )


class ItemKey(TypeDecorator[str]):
    """A listing's id, str in Python, compact bytea in the table."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else encode_item_id(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decode_item_id(bytes(value))
