"""Time in SQL, always by PostgreSQL's `now()` (never a worker's clock), written once:
lease deadlines, lapsed leases, and ages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, func, literal_column, or_

# Written into a statement's text, not bound: the lease statements run on every page, and
# each bound parameter costs every execution a lookup and a quoting.
_ZERO: ColumnElement[int] = literal_column("0")


def seconds(amount: Any) -> ColumnElement[Any]:
    """An interval of `amount` seconds (a number or a bound parameter)."""
    return func.make_interval(_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, amount)


def lease_until(lease_seconds: Any) -> ColumnElement[Any]:
    """The deadline of a lease taken or renewed now."""
    return func.now() + seconds(lease_seconds)


def lease_lapsed(lease_expires_at: Any) -> ColumnElement[bool]:
    """A lease that is gone: never taken, or past its deadline."""
    return or_(lease_expires_at.is_(None), lease_expires_at < func.now())


def older_than(moment: Any, age_seconds: Any) -> ColumnElement[bool]:
    older: ColumnElement[bool] = moment < func.now() - seconds(age_seconds)
    return older


def days_ago(days: int) -> ColumnElement[Any]:
    return func.now() - func.make_interval(0, 0, 0, days)


def unix_now() -> ColumnElement[Any]:
    """Now as whole seconds since the epoch, for a timestamp tally."""
    return func.floor(func.extract("epoch", func.now())).cast(BigInteger)
