"""The lifecycle states of a scan, as the tables store them (defined in worker.domain.status,
with the table of moves between them)."""

from worker.domain.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ScanStatus

__all__ = ["ACTIVE_STATUSES", "TERMINAL_STATUSES", "ScanStatus"]
