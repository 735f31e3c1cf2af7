"""redacted(): the password of every URL in a text is hidden; everything else is kept."""

from __future__ import annotations

import pytest

from worker.redaction import redacted


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        # A port then words, an '@' later on the line: no password, nothing hidden.
        (
            "the Bot API at http://127.0.0.1:4567 refused it; check it with @BotFather",
            "the Bot API at http://127.0.0.1:4567 refused it; check it with @BotFather",
        ),
        (
            "http://127.0.0.1:4567/bot refused: ask @BotFather",
            "http://127.0.0.1:4567/bot refused: ask @BotFather",
        ),
        ("the broker at rediss://admin:hunter2@h:6380/0 is down",
         "the broker at rediss://admin:***@h:6380/0 is down"),
        ("postgresql://u:p@ss@db.example/db?sslmode=require",
         "postgresql://u:***@db.example/db?sslmode=require"),
        ("from string 'postgresql+asyncpg://u:pw@[bad'", "from string 'postgresql+asyncpg://u:***@[bad'"),
        ("a=redis://:x@h/0 b=amqp://guest:guest@h:5672//", "a=redis://:***@h/0 b=amqp://guest:***@h:5672//"),
        # Passwords as PostgreSQL and SQLAlchemy take them, unencoded: a '/', a space, quotes.
        ("postgresql://u:hunter/2@db:5432/x failed", "postgresql://u:***@db:5432/x failed"),
        ("postgresql://u:hun/ter@2@db/x", "postgresql://u:***@db/x"),
        ("from string 'postgresql://u:hunter 2@[bad'", "from string 'postgresql://u:***@[bad'"),
        ("DATABASE_URL=postgresql://u:hun ter 2@db/x is down",
         "DATABASE_URL=postgresql://u:***@db/x is down"),
        ("postgresql://u:hun'ter2@db/x", "postgresql://u:***@db/x"),
        ("""database_url='redis://:hun"ter2@h/0'""", "database_url='redis://:***@h/0'"),
        ("a=redis://:hunter 2@h/0 b=amqp://guest:guest@h:5672//",
         "a=redis://:***@h/0 b=amqp://guest:***@h:5672//"),
        ("postgresql://u:hunter%2F2@db/x", "postgresql://u:***@db/x"),
        # The password as a query parameter (libpq's and redis-py's `?password=`).
        ("postgresql://u@db/x?password=hunter2&sslmode=require",
         "postgresql://u@db/x?password=***&sslmode=require"),
        ("redis://h:6379/0?password=hunter2 is down", "redis://h:6379/0?password=*** is down"),
        ("broker_url='redis://h/0?password=hun'ter2'", "broker_url='redis://h/0?password=***'"),
        ("postgresql://db/x?sslmode=require&PASSWORD=hunter2",
         "postgresql://db/x?sslmode=require&PASSWORD=***"),
        # A Telegram bot token, as Bot API URLs carry it.
        ("POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
         "POST https://api.telegram.org/bot***/getMe"),
        # Nothing secret: kept as it is, so `marketscan dev` prints a URL that still works.
        ("postgresql://postgres:@/test?host=%2Ftmp", "postgresql://postgres:@/test?host=%2Ftmp"),
        ("http://user@host:80/path", "http://user@host:80/path"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://localhost:6379/0 and redis://h:1/0", "redis://localhost:6379/0 and redis://h:1/0"),
        ("postgresql://db/x?sslmode=require&passwords_left=3",
         "postgresql://db/x?sslmode=require&passwords_left=3"),
        ("mail me at a:b@c", "mail me at a:b@c"),
        ("scan 1 page 2: 10 of 20 items", "scan 1 page 2: 10 of 20 items"),
    ],
)  # fmt: skip
def test_passwords_in_urls_are_hidden_and_nothing_else_changes(text: str, shown: str) -> None:
    assert redacted(text) == shown
    assert "hunter" not in redacted(text)
