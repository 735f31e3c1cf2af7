"""The examples in examples/ run as written, against a real worker or the loopback Bot API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.fakes.telegram_server import FakeTelegram
from tests.support.processes import CeleryProcess
from tests.support.scans import expected_opportunities, wait_for_status
from worker.db import driver_url
from worker.db.scan_queries import top_opportunities
from worker.domain.scan_params import ScanParams

ROOT = Path(__file__).resolve().parents[2]


def test_the_scan_bot_example_starts_follows_and_prints_the_top_opportunities(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a worker, and the example's environment pointing where the worker's does
    start_worker()
    scan_id = uuid.uuid4()
    # When the example bot runs a 700-item scan to its end
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "scan_bot.py"), "--items", "700",
         "--seed", "8", "--top", "3", "--scan-id", str(scan_id)],
        env=celery_env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    # Then it exits 0 having followed the scan to completion
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"started scan {scan_id}"
    assert lines.index("completed: 700/700 items") == lines.index("top 3 opportunities:") - 1
    # And the scan it followed found exactly the uninterrupted walk's opportunities
    row = wait_for_status(database_url, scan_id)
    params = ScanParams.from_json(row.params)
    assert len(expected_opportunities(params)) >= 3
    # And it printed the scan's three best, best first
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        best = top_opportunities(session, scan_id, 3)
    engine.dispose()
    printed = lines[lines.index("top 3 opportunities:") + 1 :]
    assert [line.split()[4] for line in printed] == [hit["item_id"] for hit in best]


def test_the_guides_scan_with_progress_handler_runs_on_python_telegram_bot(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    # Given the guide's Telegram example running against the loopback Bot API
    with FakeTelegram() as telegram:
        example_env = {
            **env,
            "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
            "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        }
        log_path = tmp_path / "scan_with_progress.log"
        with open(log_path, "wb") as log:
            example = subprocess.Popen(
                [sys.executable, str(ROOT / "examples" / "scan_with_progress.py")],
                env=example_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            _wait(lambda: telegram.calls_of("getUpdates"), log_path, "the example's polling")
            # When a user sends /scan
            telegram.user_says(42, "/scan")
            final = "✅ Сканирование завершено!\n📊 Обработано: 1000 предметов"
            _wait(lambda: telegram.text_of(42, 2) == final, log_path, "the final message")
        finally:
            example.send_signal(signal.SIGTERM)
            returncode = example.wait(timeout=30)
    # Then its one message went from 0 through every hundred to the guide's final text
    assert telegram.sent_to(42) == [(2, final)]
    edits = [call.text for call in telegram.calls_of("editMessageText")]
    assert edits[0] == "🔄 Сканирование: 100/1000 (10%)\n⏱️ Продолжаем..."
    assert len(edits) == 11 and edits[-1] == final
    # And its checkpoint, a caller row of the user, completed with every item
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        (checkpoint,) = session.scalars(select(ScanCheckpoint)).all()
    engine.dispose()
    assert (checkpoint.user_id, checkpoint.status, checkpoint.processed_items) == (
        42, "completed", 1000,
    )  # fmt: skip
    assert checkpoint.runner == "caller"
    # And SIGTERM stopped it cleanly
    assert returncode == 0


def _wait(condition: Callable[[], object], log_path: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"no {what}:\n{log_path.read_text()}"
        time.sleep(0.05)
