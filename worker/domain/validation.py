"""The validation every store and entry point applies first: each value checked against
what its column holds, with an error naming the field and what is allowed."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from worker.domain.status import ScanStatus
from worker.errors import InvalidInput

# Metadata rides in every checkpoint row; a bound keeps a page commit cheap and a row small.
METADATA_MAX_BYTES = 64 * 1024
OPERATION_TYPE_MAX_CHARS = 50
# As long as upstream's TEXT column takes in practice, and at least what a DMarket page may
# hand on (worker.markets.dmarket.bounds.CURSOR_MAX_BYTES, 64 KiB of UTF-8: never more
# characters than bytes), so a chain scan's cursor is one a StateManager save accepts.
CURSOR_MAX_CHARS = 64 * 1024
DEFAULT_CHECKPOINT_INTERVAL = 100
# The upstream module's default: errors in a row before record_error() says "shut down".
DEFAULT_MAX_CONSECUTIVE_ERRORS = 5
_BIGINT_MAX = 2**63 - 1
# Prices are stored in BIGINT cents; a typed amount is bounded well inside, where a float
# still counts every cent exactly (2**53 cents).
PRICE_MAX_CENTS = _BIGINT_MAX
PRICE_MAX_DOLLARS = 10_000_000_000.0


def scan_id_of(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidInput(f"scan_id must be a UUID, got {value!r}")


def user_id_of(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"user_id must be an integer, got {value!r}")
    if abs(value) > _BIGINT_MAX:
        raise InvalidInput(f"user_id must fit in 64 bits, got {value}")
    return value


def id_span_of(name: str, prefix: object) -> tuple[uuid.UUID, uuid.UUID]:
    """The lowest and highest ids whose hex digits start with `prefix` (a short id, as the
    bot shows them): a range the id's index answers, however many ids its owner has."""
    if not isinstance(prefix, str) or not 1 <= len(prefix) <= 32:
        raise InvalidInput(f"{name} must be 1 to 32 hex digits, got {prefix!r}")
    digits = prefix.lower()
    if digits.strip("0123456789abcdef"):
        raise InvalidInput(f"{name} must be hex digits (0-9, a-f), got {prefix!r}")
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def operation_type_of(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"operation_type must be a non-empty string, got {value!r}")
    if len(value) > OPERATION_TYPE_MAX_CHARS:
        raise InvalidInput(
            f"operation_type must be at most {OPERATION_TYPE_MAX_CHARS} characters, "
            f"got {len(value)}"
        )
    return value


def cursor_of(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"cursor must be a string or None, got {type(value).__name__}")
    if len(value) > CURSOR_MAX_CHARS:
        raise InvalidInput(
            f"cursor must be at most {CURSOR_MAX_CHARS} characters, got {len(value)}"
        )
    return value


def count_of(name: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise InvalidInput(f"{name} must be a non-negative integer, got {value}")
    if value > 2**31 - 1:
        raise InvalidInput(f"{name} must be below 2**31, got {value}")
    return value


def counts_of(
    processed_items: object, total_items: object, total_is_lower_bound: bool = False
) -> tuple[int, int | None]:
    """The counts, checked; past a lower-bound total, the total becomes the count."""
    processed = count_of("processed_items", processed_items)
    total = count_of("total_items", total_items, optional=True)
    assert processed is not None
    if total is not None and processed > total:
        if not total_is_lower_bound:
            raise InvalidInput(exceeds_total_message(processed, total))
        total = processed
    return processed, total


def exceeds_total_message(processed: int, total: int | None) -> str:
    return (
        f"processed_items ({processed}) must not exceed total_items ({total}) unless the "
        "total is a lower bound (pass total_is_lower_bound=True)"
    )


def lower_bound_of(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"total_is_lower_bound must be a bool, got {value!r}")
    return value


def metadata_of(value: object, name: str = "metadata") -> dict[str, Any]:
    """`value` as a JSON object of at most METADATA_MAX_BYTES, or InvalidInput."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name} must be a JSON object (dict), got {type(value).__name__}")
    try:
        encoded = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be JSON-serialisable: {exc}") from None
    size = len(encoded.encode())
    if size > METADATA_MAX_BYTES:
        raise InvalidInput(f"{name} must be at most {METADATA_MAX_BYTES} bytes as JSON, got {size}")
    loaded: dict[str, Any] = json.loads(encoded)
    return loaded


def metadata_patch_of(metadata: object, extra_data: object) -> dict[str, Any] | None:
    """The caller's metadata, given as `metadata` or as `extra_data` (the upstream module's
    name for it) but not both, checked by metadata_of; None when neither is given."""
    if extra_data is None:
        return None if metadata is None else metadata_of(metadata)
    if metadata is not None:
        raise InvalidInput(
            "extra_data is the upstream module's name for metadata: give one of extra_data "
            "and metadata, not both"
        )
    return metadata_of(extra_data, "extra_data")


def status_of(value: object) -> ScanStatus:
    """A scan status by its value ('in_progress', 'paused', ...), or InvalidInput."""
    allowed = ", ".join(repr(status.value) for status in ScanStatus)
    if isinstance(value, str):
        try:
            return ScanStatus(value)
        except ValueError:
            pass
    raise InvalidInput(f"status must be one of {allowed}, got {value!r}")


def finite_number_of(name: str, value: object, *, minimum: float, below: float) -> float:
    """`value` as a float in [minimum, below); NaN, infinities and 1e400 (inf) are refused."""
    allowed = f"a finite number from {minimum:g} to below {below:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be {allowed}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise InvalidInput(f"{name} must be {allowed}, got {value}") from None
    # math.isfinite first: every comparison with NaN is False, so a range check alone lets it in.
    if not math.isfinite(number) or not minimum <= number < below:
        raise InvalidInput(f"{name} must be {allowed}, got {value!r}")
    return number


def price_cents_of(name: str, value: object) -> int | None:
    """An optional price in integer cents that a BIGINT price column can hold."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PRICE_MAX_CENTS:
        shown = repr(value) if not isinstance(value, int) or value < 10**30 else "a huge integer"
        raise InvalidInput(f"{name} must be an integer from 0 to {PRICE_MAX_CENTS}, got {shown}")
    return value


def dollars_to_cents(name: str, dollars: float) -> int:
    """A USD amount typed by a person, as integer cents; refused unless finite and in range."""
    allowed = f"a finite, non-negative amount of USD up to {PRICE_MAX_DOLLARS:g}"
    if not math.isfinite(dollars) or not 0 <= dollars <= PRICE_MAX_DOLLARS:
        raise InvalidInput(f"{name} must be {allowed}, got {dollars}")
    return round(dollars * 100)


def checkpoint_interval_of(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"checkpoint_interval must be a positive integer, got {value!r}")
    return value


def max_consecutive_errors_of(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"max_consecutive_errors must be a non-negative integer, got {value!r}")
    return value


def days_of(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"days must be a non-negative integer, got {value!r}")
    return value
