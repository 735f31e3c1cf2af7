"""A fresh watch's watermark: a second and the ids judged near it, so listings that share
a second, or that became visible late within the lookback, are judged exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.domain.scan_params import ScanParams
from worker.domain.watch import every_seconds_of, parse_every
from worker.domain.watermark import Listed, Watermark, second_of
from worker.errors import InvalidInput
from worker.settings import Settings

BEGAN = datetime(2026, 12, 7, 4, 0, 0, tzinfo=UTC)
T0 = int(BEGAN.timestamp())


def _walk(*pairs: tuple[str, int]) -> list[Listed]:
    """Newest first, as DMarket's `orderDir=desc` serves them."""
    return [Listed(item_id, T0 + offset) for item_id, offset in pairs]


def test_listings_from_the_watch_second_on_are_new_and_older_ones_are_not() -> None:
    start = Watermark.start(BEGAN)
    advance = start.advance(
        _walk(("c", 2), ("b", 0), ("a", -1)), reached=True, lookback_seconds=10, as_of=T0 + 3
    )
    assert advance.new_ids == ("c", "b")
    assert advance.watermark.at == T0 + 2 and not advance.gap


def test_a_listing_sharing_the_watermark_second_is_judged_once() -> None:
    first = Watermark.start(BEGAN).advance(
        _walk(("b", 5), ("a", 5)), reached=True, lookback_seconds=10, as_of=T0 + 5
    )
    # Another listing of second 5 shows up at the next poll, beside the two judged.
    second = first.watermark.advance(
        _walk(("c", 5), ("b", 5), ("a", 5)), reached=True, lookback_seconds=10, as_of=T0 + 7
    )
    assert second.new_ids == ("c",)
    third = second.watermark.advance(
        _walk(("c", 5), ("b", 5), ("a", 5)), reached=True, lookback_seconds=10, as_of=T0 + 9
    )
    assert third.new_ids == ()


def test_a_late_visible_listing_within_the_lookback_is_judged_once_beyond_it_never() -> None:
    first = Watermark.start(BEGAN).advance(
        _walk(("n", 20), ("m", 12)), reached=True, lookback_seconds=10, as_of=T0 + 21
    )
    # "late" was created at second 14 but became visible only now; "old" at second 3.
    later = first.watermark.advance(
        _walk(("n", 20), ("late", 14), ("m", 12), ("old", 3)),
        reached=True,
        lookback_seconds=10,
        as_of=T0 + 23,
    )
    assert later.new_ids == ("late",)
    again = later.watermark.advance(
        _walk(("n", 20), ("late", 14), ("m", 12)), reached=True, lookback_seconds=10, as_of=T0 + 25
    )
    assert again.new_ids == ()
    # The ids kept are only those a later walk can still meet: within the lookback.
    assert set(again.watermark.seen) == {"n", "late", "m"}


def test_a_gap_deeper_than_the_walk_resumes_from_the_newest_and_is_counted() -> None:
    mark = Watermark.start(BEGAN)
    advance = mark.advance(
        _walk(("z", 500), ("y", 400)), reached=False, lookback_seconds=10, as_of=T0 + 501
    )
    assert advance.gap and advance.new_ids == ("z", "y")
    assert (advance.watermark.gaps, advance.watermark.gap_seconds) == (1, 400)
    assert advance.watermark.at == T0 + 500


def test_the_watermark_survives_its_cursor_and_a_broken_one_is_refused_by_name() -> None:
    mark = Watermark.start(BEGAN).advance(
        _walk(("a", 1)), reached=True, lookback_seconds=10, as_of=T0 + 2
    )
    assert Watermark.from_cursor(mark.watermark.to_cursor()) == mark.watermark
    with pytest.raises(InvalidInput, match=r"^watermark\.at"):
        Watermark.from_cursor(
            '{"v":1,"at":"x","floor":1,"as_of":1,"seen":{},"gaps":0,"gap_seconds":0}'
        )
    with pytest.raises(InvalidInput, match="not JSON"):
        Watermark.from_cursor("cursor-of-a-full-scan")


@pytest.mark.parametrize(
    ("created_at", "second"),
    [("2026-12-07T04:00:01Z", T0 + 1), ("2026-12-07T04:00:01.900+00:00", T0 + 1), (T0, T0)],
)
def test_created_at_is_read_as_rfc_3339_or_unix_seconds(created_at: object, second: int) -> None:
    assert second_of(created_at) == second


@pytest.mark.parametrize("created_at", [None, "yesterday", -5, True, 1.5])
def test_a_created_at_that_is_no_time_is_refused_by_name(created_at: object) -> None:
    with pytest.raises(InvalidInput, match=r"^createdAt: must be"):
        second_of(created_at)


def test_fresh_is_refused_on_markets_that_cannot_sort_by_creation_time() -> None:
    settings = Settings()
    for params, shown in (
        (ScanParams(game="csgo", fresh=True, poll_every_seconds=2), "simulated"),
        (
            ScanParams(
                game="csgo",
                market="dmarket",
                fresh=True,
                poll_every_seconds=2,
                market_options={"api": "v1"},
            ),
            "dmarket with api v1",
        ),
    ):
        with pytest.raises(
            InvalidInput, match=rf"^--fresh: only market dmarket .* got market {shown}$"
        ):
            params.configured(settings)
    fresh = ScanParams(game="csgo", market="dmarket", fresh=True, poll_every_seconds=2)
    assert fresh.configured(settings).fresh


def test_every_goes_down_to_one_second_only_for_a_fresh_watch() -> None:
    assert parse_every("1s", fresh=True) == 1
    with pytest.raises(InvalidInput, match=r"^EVERY must be at least 10s without --fresh"):
        parse_every("2s")
    with pytest.raises(InvalidInput, match=r"^EVERY must be from 1s"):
        parse_every("0s", fresh=True)
    with pytest.raises(InvalidInput, match=r"^every_seconds must be a whole number"):
        every_seconds_of(1.5, fresh=True)
    with pytest.raises(InvalidInput, match=r"^poll_every_seconds must be a whole number from 1"):
        ScanParams(game="csgo", market="dmarket", fresh=True, poll_every_seconds=0)
    with pytest.raises(InvalidInput, match=r"^poll_every_seconds and fresh_since: only a fresh"):
        ScanParams(game="csgo", poll_every_seconds=5)
