"""The arguments of a page task: which scan, which chain, which position."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from worker.domain.validation import scan_id_of
from worker.errors import InvalidInput

PAGE_TASK = "marketscan.scan.page"
# The queues page messages wait in (kombu's Redis transport keeps each as a list under its
# name). Recovered pages skip the backlog: a worker consumes both queues in turn, so a
# reclaimed page waits for at most one page per slot, not for every page queued before it.
PAGE_QUEUE = "marketscan"
RECOVERED_QUEUE = "marketscan.recovered"
QUEUES = (PAGE_QUEUE, RECOVERED_QUEUE)


@dataclass(frozen=True)
class PageMessage:
    """A hint that page `page_seq` (from item `page_offset`) of a scan is due.

    The four fields are the fence: a commit only lands if the row still holds all of them.
    """

    scan_id: uuid.UUID
    lease_token: uuid.UUID
    page_seq: int
    page_offset: int

    @classmethod
    def from_args(
        cls, scan_id: object, lease_token: object, page_seq: object, page_offset: object
    ) -> PageMessage:
        try:
            token = uuid.UUID(str(lease_token))
        except ValueError:
            raise InvalidInput(f"lease_token must be a UUID, got {lease_token!r}") from None
        for name, value in (("page_seq", page_seq), ("page_offset", page_offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
        assert isinstance(page_seq, int) and isinstance(page_offset, int)
        return cls(scan_id_of(scan_id), token, page_seq, page_offset)

    def as_args(self) -> tuple[str, str, int, int]:
        return (str(self.scan_id), str(self.lease_token), self.page_seq, self.page_offset)

    def label(self) -> str:
        """How a page task's result names the page (Flower's task list and search, the
        worker's log): its scan, its page, where in the page."""
        offset = f" from item {self.page_offset}" if self.page_offset else ""
        return f"scan {self.scan_id} page {self.page_seq}{offset}"

    def at(self, page_seq: int, page_offset: int) -> PageMessage:
        return PageMessage(self.scan_id, self.lease_token, page_seq, page_offset)
