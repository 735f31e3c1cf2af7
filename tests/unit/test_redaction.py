"""redacted(): the password of every URL in a text is hidden; everything else is kept."""

from __future__ import annotations

import pytest

from worker.redaction import redacted


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("the broker at rediss://admin:hunter2@h:6380/0 is down",
         "the broker at rediss://admin:***@h:6380/0 is down"),
        ("postgresql://u:p@ss@db.example/db?sslmode=require",
         "postgresql://u:***@db.example/db?sslmode=require"),
        ("from string 'postgresql+asyncpg://u:pw@[bad'", "from string 'postgresql+asyncpg://u:***@[bad'"),
        ("a=redis://:x@h/0 b=amqp://guest:guest@h:5672//", "a=redis://:***@h/0 b=amqp://guest:***@h:5672//"),
        # Nothing secret: kept as it is, so `marketscan dev` prints a URL that still works.
        ("postgresql://postgres:@/test?host=%2Ftmp", "postgresql://postgres:@/test?host=%2Ftmp"),
        ("http://user@host:80/path", "http://user@host:80/path"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("mail me at a:b@c", "mail me at a:b@c"),
    ],
)  # fmt: skip
def test_passwords_in_urls_are_hidden_and_nothing_else_changes(text: str, shown: str) -> None:
    assert redacted(text) == shown
    assert "hunter2" not in redacted(text)
