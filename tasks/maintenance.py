"""Maintenance tasks: recovery of orphaned scans (on demand; beat runs it on its own clock),
cleanup of old checkpoints (beat, daily)."""

from __future__ import annotations

from worker.app import app, publisher
from worker.chain.recovery import recover as recover_scans
from worker.db import session_scope
from worker.db.retention import cleanup_old_checkpoints
from worker.settings import get_settings


@app.task(name="marketscan.maintenance.recover")
def recover(own_hostname: str | None = None) -> list[str]:
    """Republish every orphaned scan; returns the scan_ids reclaimed."""
    with session_scope() as session:
        reclaimed = recover_scans(
            session,
            publisher.publish_recovered_page,
            get_settings().lease_seconds,
            own_hostname=own_hostname,
        )
    return [str(item.scan_id) for item in reclaimed]


@app.task(name="marketscan.maintenance.cleanup")
def cleanup(days: int | None = None) -> int:
    """Delete terminal checkpoints older than the retention; returns how many."""
    settings = get_settings()
    with session_scope() as session:
        return cleanup_old_checkpoints(
            session,
            settings.retention_days if days is None else days,
            settings.cleanup_batch_size,
            settings.cleanup_pause_ratio,
        )
