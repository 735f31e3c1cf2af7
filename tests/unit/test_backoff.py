"""retry_delay_seconds: the server's wait when given, else capped exponential full jitter."""

from __future__ import annotations

import random

import pytest

from worker.errors import InvalidInput
from worker.markets.fleet.backoff import retry_delay_seconds

DRAWS = 2000


def draws(attempt: int, base_seconds: float, max_seconds: float) -> list[float]:
    rng = random.Random(1234)
    return [
        retry_delay_seconds(attempt, base_seconds, max_seconds, None, rng) for _ in range(DRAWS)
    ]


def test_the_servers_requested_wait_is_used_as_is() -> None:
    # Given a server that asked for 7 s, When the third retry is planned, Then it waits 7 s
    assert retry_delay_seconds(3, 1.0, 60.0, retry_after_seconds=7.0) == 7.0


def test_the_servers_requested_wait_is_capped_at_the_maximum() -> None:
    assert retry_delay_seconds(0, 1.0, 60.0, retry_after_seconds=3600.0) == 60.0


def test_a_negative_requested_wait_means_retry_now() -> None:
    assert retry_delay_seconds(0, 1.0, 60.0, retry_after_seconds=-5.0) == 0.0


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 1.0), (1, 2.0), (3, 8.0), (5, 32.0)])
def test_without_a_requested_wait_the_ceiling_doubles_per_attempt(
    attempt: int, ceiling: float
) -> None:
    # Given no server wait, a 1 s base and a 60 s cap
    delays = draws(attempt, base_seconds=1.0, max_seconds=60.0)
    # Then every delay is within [0, base * 2**attempt], and the draws reach near the top
    assert all(0.0 <= delay <= ceiling for delay in delays)
    assert max(delays) > 0.95 * ceiling


def test_the_jitter_is_full_reaching_down_to_zero() -> None:
    # Full jitter (not "half plus jitter") is what spreads a herd of retries apart.
    delays = draws(4, base_seconds=1.0, max_seconds=60.0)
    assert min(delays) < 0.05 * 16.0


def test_the_exponential_ceiling_is_capped_at_the_maximum() -> None:
    delays = draws(10, base_seconds=1.0, max_seconds=60.0)
    assert all(delay <= 60.0 for delay in delays)
    assert max(delays) > 0.95 * 60.0


def test_an_absurd_attempt_number_stays_at_the_cap_without_overflowing() -> None:
    assert 0.0 <= retry_delay_seconds(100_000, 1.0, 60.0, None, random.Random(1)) <= 60.0


def test_the_same_seed_gives_the_same_delay() -> None:
    first = retry_delay_seconds(3, 1.0, 60.0, None, random.Random(42))
    second = retry_delay_seconds(3, 1.0, 60.0, None, random.Random(42))
    assert first == second


def test_without_an_rng_a_shared_one_is_used() -> None:
    assert 0.0 <= retry_delay_seconds(2, 1.0, 60.0, None) <= 4.0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ((-1, 1.0, 60.0, None), "attempt"),
        ((0, -1.0, 60.0, None), "base_seconds"),
        ((0, 1.0, -1.0, None), "max_seconds"),
        ((0, 1.0, 60.0, float("nan")), "retry_after_seconds"),
    ],
)
def test_invalid_arguments_are_invalid_input_naming_the_argument(
    arguments: tuple[int, float, float, float | None], field: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"^{field}:"):
        retry_delay_seconds(*arguments)
