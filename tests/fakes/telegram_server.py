"""The loopback Telegram Bot API the tests fake Telegram with: the package's, shared with dev."""

from worker.testing.telegram_server import (
    DEFAULT_TOKEN,
    NOT_MODIFIED_DESCRIPTION,
    FakeTelegram,
    HeldCall,
    RecordedCall,
    ScriptedReply,
)

__all__ = [
    "DEFAULT_TOKEN",
    "NOT_MODIFIED_DESCRIPTION",
    "FakeTelegram",
    "HeldCall",
    "RecordedCall",
    "ScriptedReply",
]
