"""A chat command's arguments, read from its words; whatever the client checks is left to it.

Only what a chat adds is checked here: the word order of /scan, the MIN-MAX price range,
the N of /top and the short form of a scan id. Game, level, prices and intervals go to
the client as they are, so the bot refuses them with the client's own messages.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from worker.domain.validation import dollars_to_cents
from worker.errors import InvalidInput

SCAN_USAGE = "/scan GAME [LEVEL] [MIN-MAX]"
WATCH_USAGE = "/watch GAME LEVEL EVERY [MIN-MAX] [fresh]"
# The word that makes a /watch follow the newest listings (worker.markets.fresh).
FRESH_WORD = "fresh"
TOP_USAGE = "/top SCAN [N]"
DEFAULT_TOP = 5
# A chat message holds about 4,000 characters: twenty finds fit with their titles.
MAX_TOP = 20
# Messages show a scan by its first 8 hex digits; a shorter prefix is too likely to clash.
MIN_SCAN_PREFIX = 8
# The scan ids of chat commands, uuid5 of chat and message under this namespace.
CHAT_COMMAND_NAMESPACE = uuid.UUID("5b0f3c1e-2a4d-5e8f-9b6a-7c1d2e3f4a5b")

_PRICE_RANGE = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{8,32}$")


@dataclass(frozen=True)
class ScanRequest:
    """What /scan (and /watch) asks for; the client validates each field."""

    game: str
    level: str = "standard"
    min_price_cents: int | None = None
    max_price_cents: int | None = None


@dataclass(frozen=True)
class ScanRef:
    """A scan (or watch) as a user names it: a whole UUID, or the first hex digits shown."""

    scan_id: uuid.UUID | None
    prefix: str

    @property
    def id_prefix(self) -> str:
        """The hex digits every id it names starts with: all 32 of a whole id."""
        return self.scan_id.hex if self.scan_id else self.prefix


def scan_request(words: Sequence[str]) -> ScanRequest:
    """GAME [LEVEL] [MIN-MAX], as /scan takes them."""
    if not words:
        raise InvalidInput(f"GAME is missing: {SCAN_USAGE}, e.g. /scan csgo standard 1-50")
    if len(words) > 3:
        raise InvalidInput(f"too many arguments: {SCAN_USAGE}")
    game, rest = words[0].lower(), list(words[1:])
    low = high = None
    if rest and _PRICE_RANGE.match(rest[-1]):
        low, high = price_range(rest.pop())
    if len(rest) > 1:
        raise InvalidInput(f"MIN-MAX must be two USD prices like 1-50, got {rest[-1]!r}")
    level = rest[0] if rest else "standard"
    return ScanRequest(game, level, low, high)


def watch_request(words: Sequence[str]) -> tuple[ScanRequest, str, bool]:
    """GAME LEVEL EVERY [MIN-MAX] [fresh], as /watch takes them; EVERY as typed (`15m`);
    `fresh` last: follow the market's newest listings (EVERY from 1s)."""
    fresh = bool(words) and words[-1].lower() == FRESH_WORD
    if fresh:
        words = words[:-1]
    if len(words) < 3:
        missing = ("GAME", "LEVEL", "EVERY")[len(words)]
        raise InvalidInput(f"{missing} is missing: {WATCH_USAGE}, e.g. /watch csgo standard 15m")
    if len(words) > 4:
        raise InvalidInput(f"too many arguments: {WATCH_USAGE}")
    low, high = price_range(words[3]) if len(words) == 4 else (None, None)
    return ScanRequest(words[0].lower(), words[1], low, high), words[2], fresh


def price_range(word: str) -> tuple[int, int]:
    """MIN-MAX in USD (`1-50`, `0.5-20`) as integer cents."""
    match = _PRICE_RANGE.match(word)
    if match is None:
        raise InvalidInput(f"MIN-MAX must be two USD prices like 1-50, got {word!r}")
    low = dollars_to_cents("MIN", float(match.group(1)))
    high = dollars_to_cents("MAX", float(match.group(2)))
    if low > high:
        raise InvalidInput(f"MIN-MAX must have MIN <= MAX, got {word!r}")
    return low, high


def scan_ref(words: Sequence[str], usage: str) -> ScanRef:
    """The SCAN argument: a scan id, or its first 8 (or more) hex digits."""
    return id_ref(words, "SCAN", f"{usage}; /status lists your scans")


def id_ref(words: Sequence[str], name: str, usage: str) -> ScanRef:
    """A SCAN or WATCH argument: a whole id, or its first 8 (or more) hex digits."""
    if not words:
        raise InvalidInput(f"{name} is missing: {usage}")
    word = words[0].lower().strip()
    try:
        return ScanRef(uuid.UUID(word), "")
    except ValueError:
        pass
    if not _HEX_PREFIX.match(word):
        raise InvalidInput(
            f"{name} must be an id or its first {MIN_SCAN_PREFIX} hex digits "
            f"(as messages show it), got {words[0]!r}"
        )
    return ScanRef(None, word)


def top_count(words: Sequence[str]) -> int:
    """The N of /top: how many finds to show, 1 to MAX_TOP."""
    if len(words) < 2:
        return DEFAULT_TOP
    if len(words) > 2 or not words[1].isdigit() or not 1 <= int(words[1]) <= MAX_TOP:
        raise InvalidInput(f"N must be a whole number from 1 to {MAX_TOP}: {TOP_USAGE}")
    return int(words[1])


def chat_scan_id(chat_id: int, message_id: int) -> uuid.UUID:
    """The scan id of the /scan in this message: the same however often Telegram delivers
    it (invariant 9). A message id is never reused in its chat, while an update id may be
    after a week without updates."""
    return uuid.uuid5(CHAT_COMMAND_NAMESPACE, f"{chat_id}:{message_id}")


def chat_watch_id(chat_id: int, message_id: int) -> uuid.UUID:
    """The watch id of the /watch in this message, for the client's idempotent add."""
    return uuid.uuid5(CHAT_COMMAND_NAMESPACE, f"watch:{chat_id}:{message_id}")
