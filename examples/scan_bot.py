"""A bot-like app on marketscan's client: start a scan, follow it, print the best finds.

Run it next to a worker, with the worker's configuration in the environment:

    DATABASE_URL=... CELERY_BROKER_URL=... python examples/scan_bot.py --game csgo --top 5

A real bot would send these lines to its user instead of printing them; the asyncio
version is the same with `worker.async_client`, `await` and `async for`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from worker import async_client
from worker.errors import MarketscanError


async def run(arguments: argparse.Namespace) -> int:
    # A caller-chosen scan_id makes the start safe to retry: a second call returns the same
    # scan instead of making another.
    scan_id = await async_client.start(
        arguments.game,
        level=arguments.level,
        user_id=arguments.user_id,
        market_options={"items": arguments.items, "seed": arguments.seed},
        metadata={"started_by": "scan_bot"},
        scan_id=arguments.scan_id or uuid.uuid4(),
    )
    print(f"started scan {scan_id}")
    async for checkpoint in async_client.progress(scan_id, poll_seconds=0.2):
        total = "?" if checkpoint.total_items is None else checkpoint.total_items
        print(f"{checkpoint.status.value}: {checkpoint.processed_items}/{total} items")
    if checkpoint.status.value != "completed":
        print(f"scan ended {checkpoint.status.value}: {checkpoint.error_message}")
        return 1
    print(f"top {arguments.top} opportunities:")
    for found in await async_client.results(scan_id, top=arguments.top):
        print(
            f"  {found['profit_percent']:6.2f} %  buy ${found['price_cents'] / 100:.2f}  "
            f"{found['item_id']}  {found['title']}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="csgo")
    parser.add_argument("--level", default="standard")
    parser.add_argument("--user-id", type=int, default=1)
    parser.add_argument("--items", type=int, default=1000, help="simulated catalog size")
    parser.add_argument("--seed", type=int, default=42, help="simulated catalog seed")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--scan-id", type=uuid.UUID, default=None)
    try:
        return asyncio.run(run(parser.parse_args()))
    except MarketscanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
