"""A small program written the upstream module's way, as its bot's main.py uses it: the
constructor call, a shutdown callback, a record_error loop and /status- and /resume-style
reads, run against worker.state_manager on the database in DATABASE_URL.

`python -m tests.support.upstream_program SCAN_ID OUTCOMES`: OUTCOMES is one word per
market call, `ok` (a page of 100 items) or `fail` (the market is down). Each line printed
is what the bot would have told its user.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from worker.db import get_session
from worker.state.protocol import AsyncStateManagerProtocol
from worker.state_manager import StateManager

PAGE_SIZE = 100


class MarketDown(Exception):
    pass


def fetch_page(outcomes: list[str], page: int) -> int:
    if outcomes.pop(0) == "fail":
        raise MarketDown(f"page {page}: 503")
    return PAGE_SIZE


async def scan(
    state_manager: AsyncStateManagerProtocol, scan_id: uuid.UUID, outcomes: list[str]
) -> None:
    checkpoint = await state_manager.load_checkpoint(scan_id)
    assert checkpoint is not None
    # The cursor is the number of the next page to fetch; None is the first.
    page, processed = int(checkpoint.cursor or "1"), checkpoint.processed_items
    while outcomes and not state_manager.is_paused:
        try:
            processed += fetch_page(outcomes, page)
        except MarketDown as exc:
            print(f"error: {exc}")
            if state_manager.record_error():
                await state_manager.trigger_emergency_shutdown(
                    f"{state_manager.consecutive_errors} consecutive errors"
                )
            continue
        state_manager.reset_error_counter()
        page += 1
        await state_manager.save_checkpoint(
            scan_id=scan_id,
            cursor=str(page),
            processed_items=processed,
            extra_data={"page": page},
        )


async def main(scan_id: uuid.UUID, outcomes: list[str]) -> None:
    async with get_session() as session:
        state_manager = StateManager(session=session, max_consecutive_errors=3)

        async def notify_admin(reason: str) -> None:
            await asyncio.sleep(0)  # the bot sends a Telegram message here
            print(f"ALERT: bot paused: {reason}")

        state_manager.set_shutdown_callback(notify_admin)
        await state_manager.create_checkpoint(
            scan_id=scan_id, user_id=123456789, operation_type="market_scan",
            extra_data={"game": "csgo"},
        )  # fmt: skip
        await scan(state_manager, scan_id, outcomes)
        status = await state_manager.load_checkpoint(scan_id)
        assert status is not None
        # /status
        print(
            f"/status errors={state_manager.consecutive_errors} paused={state_manager.is_paused} "
            f"processed={status.processed_items} cursor={status.cursor}"
        )
        # /resume
        if state_manager.is_paused:
            state_manager.resume_operations()
            print(f"/resume errors={state_manager.consecutive_errors} "
                  f"paused={state_manager.is_paused}")  # fmt: skip
            await scan(state_manager, scan_id, outcomes)
        finished = await state_manager.mark_checkpoint_completed(scan_id)
        print(f"done processed={finished.processed_items} extra_data={finished.extra_data}")


if __name__ == "__main__":
    asyncio.run(main(uuid.UUID(sys.argv[1]), sys.argv[2].split(",")))
