"""Real `celery worker` and `celery beat` subprocesses: the package's, shared with bench/."""

from worker.devtools.processes import READY_TIMEOUT_SECONDS, CeleryProcess, beat, bot, worker

__all__ = ["READY_TIMEOUT_SECONDS", "CeleryProcess", "beat", "bot", "worker"]
