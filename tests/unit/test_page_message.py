"""A page message's label: how a page task's result, which Flower shows, names the page."""

from __future__ import annotations

import uuid

from worker.domain.page_message import PageMessage

SCAN = uuid.UUID("1a2b3c4d-0000-4000-8000-000000000000")


def test_the_label_names_the_scan_and_the_page() -> None:
    message = PageMessage(SCAN, uuid.uuid4(), 12, 0)
    assert message.label() == f"scan {SCAN} page 12"


def test_a_mid_page_continuation_says_where_in_the_page_it_resumes() -> None:
    message = PageMessage(SCAN, uuid.uuid4(), 12, 40)
    assert message.label() == f"scan {SCAN} page 12 from item 40"
