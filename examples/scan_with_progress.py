"""The seed guide's Telegram example, runnable: /scan on python-telegram-bot with StateManager.

`scan_with_progress(update, context)` is the guide's handler, its loop and its messages
kept: it checkpoints every 100 items through StateManager and edits its one message as it
goes. Only what the guide leaves to its reader is filled in around it: `fetch_items`
(pages of marketscan's simulated catalog), `get_session`, and the Application.
`StateManager` is imported as its asyncio flavour, which `StateManager(AsyncSession)`
returns, so that the type checker knows its methods are awaitable.

    MARKETSCAN_TELEGRAM_BOT_TOKEN=... DATABASE_URL=... python examples/scan_with_progress.py

The scan runs inside this process, as the guide writes it (no worker): its row is a
`caller` row, which chain recovery never touches (invariant 7). To run scans on the
workers, with buttons and exactly-once starts, run `marketscan bot` instead.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import uuid4

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from worker.db.engine import get_session
from worker.markets.simulated import SimulatedMarket, SimulatedOptions
from worker.settings import get_settings
from worker.state.manager import AsyncStateManager as StateManager

CATALOG = SimulatedMarket(SimulatedOptions(items=1000, seed=42))


async def fetch_items(cursor: str | None = None, limit: int = 100) -> tuple[list[str], str | None]:
    """One page of the catalog: its item ids and the next page's cursor (None at the end)."""
    page = await asyncio.to_thread(CATALOG.fetch_page, cursor, limit)
    return [item.item_id for item in page.items], page.next_cursor


# The guide's handler, as the guide has it (its Russian texts included).
async def scan_with_progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Сканирование с отображением прогресса в Telegram."""
    assert update.effective_user is not None and update.message is not None
    user_id = update.effective_user.id
    scan_id = uuid4()

    async with get_session() as session:
        state_manager = StateManager(session)

        # Создать checkpoint
        await state_manager.create_checkpoint(
            scan_id=scan_id,
            user_id=user_id,
            operation_type="arbitrage_scan",
        )

        # Отправить начальное сообщение
        message = await update.message.reply_text(
            "🔄 Начинаю сканирование...\nПрогресс: 0/1000 (0%)"
        )

        cursor = None
        processed = 0
        total = 1000

        while processed < total:
            # Fetch batch
            items, cursor = await fetch_items(cursor=cursor, limit=100)

            # Process items
            for _item in items:
                # ... обработка ...
                processed += 1

                # Обновить прогресс каждые 100 предметов
                if processed % 100 == 0:
                    await state_manager.save_checkpoint(
                        scan_id=scan_id,
                        cursor=cursor,
                        processed_items=processed,
                        total_items=total,
                    )

                    # Обновить сообщение в Telegram
                    percent = (processed / total) * 100
                    await message.edit_text(
                        f"🔄 Сканирование: {processed}/{total} ({percent:.0f}%)\n⏱️ Продолжаем..."
                    )

            if not cursor:
                break

        # Завершить
        await state_manager.mark_checkpoint_completed(scan_id)
        await message.edit_text(f"✅ Сканирование завершено!\n📊 Обработано: {processed} предметов")


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines carry the token
    settings = get_settings()
    if not settings.telegram_bot_token:
        raise SystemExit("set MARKETSCAN_TELEGRAM_BOT_TOKEN (ask @BotFather for one)")
    application = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(f"{settings.telegram_api_url}/bot")
        .build()
    )
    application.add_handler(CommandHandler("scan", scan_with_progress))
    # PTB's own polling; SIGTERM or Ctrl-C stops it.
    application.run_polling(allowed_updates=[Update.MESSAGE])


if __name__ == "__main__":
    main()
