"""A cursor a market may hand on is one the seed API's checkpoints take: the DMarket reader's
bound (64 KiB of UTF-8) and the checkpoint's (64 KiB characters) agree, so a program saving
the chain's cursor through StateManager is never refused it."""

from __future__ import annotations

import pytest

from worker.domain import validation
from worker.errors import InvalidInput
from worker.markets.dmarket import bounds
from worker.markets.dmarket.v1_items import parse_page


@pytest.mark.parametrize("character", ["c", "™"], ids=["one-byte", "three-byte"])
def test_the_longest_cursor_a_dmarket_page_hands_on_is_one_a_checkpoint_takes(
    character: str,
) -> None:
    # Given the longest cursor a DMarket page may hand on, in one-byte or three-byte text
    cursor = character * (bounds.CURSOR_MAX_BYTES // len(character.encode()))
    # When the page is read, then the cursor is kept
    assert parse_page({"objects": [], "cursor": cursor}).next_cursor == cursor
    # And a checkpoint takes it as it came
    assert validation.cursor_of(cursor) == cursor


def test_a_checkpoint_takes_a_cursor_of_64_kib_and_no_more() -> None:
    # Given cursors as long as upstream's TEXT column takes in practice, and one more
    longest = "c" * 65_536
    # Then the first is kept and the second refused, naming the bound
    assert validation.cursor_of(longest) == longest
    with pytest.raises(InvalidInput, match="cursor must be at most 65536 characters, got 65537"):
        validation.cursor_of(longest + "c")
