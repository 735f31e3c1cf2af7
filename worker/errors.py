"""The error hierarchy: one base, with retryable and permanent failures kept apart."""

from __future__ import annotations


class MarketscanError(Exception):
    """Unexpected marketscan error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class ConfigError(MarketscanError):
    """Invalid configuration."""


class InvalidInput(MarketscanError, ValueError):
    """Invalid input."""


class CheckpointNotFound(MarketscanError, LookupError):
    """No scan with this scan_id."""

    @classmethod
    def of_scan(cls, scan_id: object) -> CheckpointNotFound:
        # One wording for every store and command: users meet it in the CLI and the seed API.
        return cls(f"no scan with scan_id {scan_id}")


class DuplicateScan(MarketscanError):
    """A checkpoint with this scan_id already exists."""

    @classmethod
    def of_scan(cls, scan_id: object) -> DuplicateScan:
        return cls(f"a checkpoint with scan_id {scan_id} already exists")


class InvalidTransition(MarketscanError):
    """The scan is not in a state that allows this change."""

    @classmethod
    def not_active(cls, scan_id: object, status: str, change: str) -> InvalidTransition:
        """`change` completes "only an in_progress or paused scan can ...", e.g. "become failed"."""
        return cls(f"scan {scan_id} is {status}; only an in_progress or paused scan can {change}")


class ServiceUnavailable(MarketscanError):
    """The database or the broker could not be reached."""


class CorruptCheckpoint(MarketscanError):
    """A checkpoint file could not be read back."""


class MarketError(MarketscanError):
    """The market could not deliver a page."""


class RetryableMarketError(MarketError):
    """The market failed in a way that may pass if we wait (429, 5xx, timeout)."""

    # Whether waiting this out spends one of the page's MARKETSCAN_MAX_RETRIES.
    counts_as_retry = True

    def __init__(self, message: str | None = None, retry_after_seconds: float | None = None):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RateBudgetWait(RetryableMarketError):
    """The fleet's request budget for the market has no slot yet; nothing was sent."""

    # Waiting one's turn is not a failure: a page queued behind the budget must not run
    # out of retries however long the queue.
    counts_as_retry = False


class PermanentMarketError(MarketError):
    """The market answered in a way that waiting will not fix (4xx, malformed body)."""


class WatchNotFound(MarketscanError, LookupError):
    """No watch with this watch_id."""

    @classmethod
    def of_watch(cls, watch_id: object) -> WatchNotFound:
        # Also what another owner's watch answers: nobody learns which ids exist.
        return cls(f"no watch with watch_id {watch_id}")


class ChatGone(MarketscanError):
    """The chat takes no more messages from the bot (it was blocked, removed or deleted)."""


class ChatMigrated(MarketscanError):
    """The group became a supergroup: its messages go to `new_chat_id` now."""

    new_chat_id: int = 0
