"""`marketscan watch ...`: through the client, owner-checked, bad input refused with the
field named, exit 2 and nothing stored."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanWatch
from worker.celery_glue.watch_clock import fire_due_watches
from worker.chain import lifecycle
from worker.cli.main import main
from worker.db import session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings

OWNER = "4242"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ScanWatch)) or 0


def test_watch_add_list_pause_resume_remove(env: dict[str, str], session: Session) -> None:
    code, out, err = _run(
        "watch", "add", "--game", "csgo", "--every", "15m", "--owner-id", OWNER,
        "--min-price", "2.5", "--overlap", "buffer_one", "--json",
    )  # fmt: skip
    assert code == 0, err
    added = json.loads(out)
    assert (added["every_seconds"], added["overlap"], added["min_price_cents"]) == (
        900,
        "buffer_one",
        250,
    )
    assert added["chat_id"] == int(OWNER)
    code, out, err = _run("watch", "list", "--owner-id", OWNER, "--json")
    assert code == 0, err
    assert [w["watch_id"] for w in json.loads(out)["watches"]] == [added["watch_id"]]
    code, out, _ = _run("watch", "pause", added["watch_id"], "--owner-id", OWNER)
    assert code == 0 and "paused" in out
    code, out, _ = _run("watch", "resume", added["watch_id"], "--owner-id", OWNER)
    assert code == 0 and "next " in out
    # Another owner is told there is no such watch, and changes nothing
    code, _, err = _run("watch", "remove", added["watch_id"], "--owner-id", "7")
    assert code == 2 and f"no watch with watch_id {added['watch_id']}" in err
    code, out, _ = _run("watch", "remove", added["watch_id"], "--owner-id", OWNER)
    assert code == 0 and _stored(session) == 0
    assert _run("watch", "list", "--owner-id", OWNER)[1].strip() == "no watches"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "15"], "EVERY must be a number with a unit s, m, h or d"),
        (["--every", "5s"], "EVERY must be at least 10s without --fresh"),
        (["--every", "1m", "--level", "ultra"], "level"),
        (["--every", "1m", "--overlap", "queue"], "--overlap"),
        (["--every", "1m", "--market-opt", "colour=red"], "colour"),
        (["--every", "1m", "--watch-id", "nope"], "watch_id must be a UUID"),
        (["--every", "0s", "--fresh"], "EVERY must be from 1s (with --fresh; 10s without)"),
        (
            ["--every", "2s", "--fresh"],
            "--fresh: only market dmarket with api v2 lists offers by creation time",
        ),
        (
            ["--every", "2s", "--fresh", "--market", "dmarket", "--market-opt", "api=v1"],
            "got market dmarket with api v1",
        ),
    ],
)
def test_bad_input_names_the_field_exits_2_and_stores_nothing(
    env: dict[str, str], session: Session, args: list[str], message: str
) -> None:
    code, _, err = _run("watch", "add", "--game", "csgo", "--owner-id", OWNER, *args)
    assert code == 2
    assert message in err
    assert _stored(session) == 0


def test_a_fresh_watch_is_one_long_lived_scan_paused_resumed_and_cancelled_with_it(
    env: dict[str, str], session: Session
) -> None:
    # Given a fresh watch on DMarket v2 (nothing is asked of the market to add it)
    code, out, err = _run(
        "watch", "add", "--game", "csgo", "--every", "2s", "--fresh", "--market", "dmarket",
        "--owner-id", OWNER, "--json",
    )  # fmt: skip
    assert code == 0, err
    added = json.loads(out)
    assert (added["fresh"], added["every_seconds"]) == (True, 2)
    code, out, _ = _run("watch", "list", "--owner-id", OWNER)
    assert code == 0 and "fresh every 2s (starting)" in out
    # When beat's watch clock takes its first slot, Then it starts its one scan, and never
    # another however often the clock ticks
    started: list[PageMessage] = []

    def start(params: ScanParams, scan_id: uuid.UUID) -> object:
        with session_scope() as opened:
            return lifecycle.start_scan(opened, params, get_settings(), started.append, scan_id)

    assert fire_due_watches(start) == 1
    assert fire_due_watches(start) == 0
    (first_poll,) = started
    scan = session.scalars(
        select(ScanCheckpoint).where(ScanCheckpoint.scan_id == first_poll.scan_id)
    ).one()
    params = scan.params or {}
    assert params["fresh"] and params["poll_every_seconds"] == 2
    assert params["fresh_since"] is not None
    # Pausing the watch pauses its scan; resuming lets it rest, due at once, for beat's
    # fresh clock; removing the watch cancels it.
    watch_id = added["watch_id"]
    for command, status in (
        ("pause", "paused"),
        ("resume", "in_progress"),
        ("remove", "cancelled"),
    ):
        code, _, err = _run("watch", command, watch_id, "--owner-id", OWNER)
        assert code == 0, err
        session.expire_all()
        assert session.get(ScanCheckpoint, (scan.id, scan.created_at)).status == status  # type: ignore[union-attr]
