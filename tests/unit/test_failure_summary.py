"""The Telegram summary of a failed scan tells why, and shows no credential the cause quotes."""

from __future__ import annotations

import uuid

import pytest

from worker.domain.progress import ScanProgress
from worker.notify.messages import failed_text

PROGRESS = ScanProgress(uuid.UUID(int=1), user_id=7, processed=300, total=1000)


@pytest.mark.parametrize(
    ("cause", "shown"),
    [
        ("the broker at redis://:hunter2@redis:6379/0 is unreachable",
         "the broker at redis://:***@redis:6379/0 is unreachable"),
        ("could not parse 'postgresql://u:hunter 2@db/x'", "could not parse 'postgresql://u:***@db/x'"),
        ("DMarket answered 400: proxy http://u@p:3128/?password=hunter2 refused",
         "DMarket answered 400: proxy http://u@p:3128/?password=*** refused"),
    ],
)  # fmt: skip
def test_the_failure_summary_names_the_cause_without_its_password(cause: str, shown: str) -> None:
    # Given a scan that failed on a cause quoting a password
    # When its user's summary is written
    text = failed_text(PROGRESS, cause)
    # Then it gives the cause with the password hidden
    assert text.endswith(f"failed after 300 items: {shown}")
    assert "hunter" not in text
