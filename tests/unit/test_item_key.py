"""A listing's id is stored in as few bytes as it allows and always read back exactly."""

from __future__ import annotations

import uuid

import pytest

from models.item_key import decode_item_id, encode_item_id

IDS = [
    str(uuid.UUID(int=0x1234)),  # canonical: lower-case, hyphenated
    "1F3C9A2E-0000-4000-8000-00000000ABCD",  # upper-case: not canonical, kept as text
    "1f3c9a2e000040008000000000000abc",  # a UUID's hex without hyphens
    "sim-42-00000013",  # 15 bytes
    "sim-42-000000013",  # 16 bytes, a UUID's length in bytes
    "",
    "ключ-1234567",  # 16 bytes of UTF-8 in 12 characters
    "dm-good",
]


@pytest.mark.parametrize("item_id", IDS)
def test_every_id_reads_back_exactly(item_id: str) -> None:
    assert decode_item_id(encode_item_id(item_id)) == item_id


def test_only_a_canonical_uuid_is_stored_in_16_bytes() -> None:
    sizes = {item_id: len(encode_item_id(item_id)) for item_id in IDS}
    assert [item_id for item_id, size in sizes.items() if size == 16] == [IDS[0]]
    # And a text id costs at most one byte more than its UTF-8
    assert all(size <= len(item_id.encode()) + 1 for item_id, size in sizes.items())
