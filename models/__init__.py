"""SQLAlchemy models of marketscan's tables."""

from models.base import Base
from models.checkpoint import RUNNER_CALLER, RUNNER_CHAIN, ScanCheckpoint
from models.opportunity import ScanOpportunity
from models.row_tally import RowTally
from models.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ScanStatus
from models.tally import MetricTally
from models.watch import ScanWatch, WatchPass

__all__ = [
    "ACTIVE_STATUSES",
    "RUNNER_CALLER",
    "RUNNER_CHAIN",
    "TERMINAL_STATUSES",
    "Base",
    "MetricTally",
    "RowTally",
    "ScanCheckpoint",
    "ScanOpportunity",
    "ScanStatus",
    "ScanWatch",
    "WatchPass",
]
