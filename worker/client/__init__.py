"""The client for apps (a bot, a web backend) and the CLI: start, read, steer and follow
scans with the CLI's validation; `worker.client.async_client` is the asyncio twin."""

from worker.client.sync import cancel, pause, progress, results, resume, start, status

__all__ = ["cancel", "pause", "progress", "results", "resume", "start", "status"]
