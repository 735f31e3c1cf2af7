"""`marketscan watch ...`: through the client, owner-checked, bad input refused with the
field named, exit 2 and nothing stored."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanWatch
from worker.cli.main import main

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
    ],
)
def test_bad_input_names_the_field_exits_2_and_stores_nothing(
    env: dict[str, str], session: Session, args: list[str], message: str
) -> None:
    code, _, err = _run("watch", "add", "--game", "csgo", "--owner-id", OWNER, *args)
    assert code == 2
    assert message in err
    assert _stored(session) == 0
