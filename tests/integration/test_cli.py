"""The `marketscan` CLI: its outputs, and bad input refused with one line and nothing stored."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from worker.cli.main import main


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _queued(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen("marketscan"))
    finally:
        client.close()


def _stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ScanCheckpoint)) or 0


def test_scan_start_stores_the_scan_and_publishes_its_first_page(
    env: dict[str, str], session: Session
) -> None:
    code, out, err = _run(
        "scan", "start", "--game", "csgo", "--market-opt", "items=300", "--meta", "who=test",
        "--min-price", "1.50", "--max-price", "80", "--json",
    )  # fmt: skip
    assert code == 0, err
    scan_id = uuid.UUID(json.loads(out)["scan_id"])
    row = session.scalars(select(ScanCheckpoint)).one()
    assert row.scan_id == scan_id and row.status == "in_progress"
    assert row.meta == {"who": "test"}
    assert row.params is not None
    assert (row.params["min_price_cents"], row.params["max_price_cents"]) == (150, 8000)
    assert row.params["market_options"] == {"items": 300}
    assert _queued(env["CELERY_BROKER_URL"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--game", "minecraft"], "'minecraft' is not one of"),
        (["--game", "csgo", "--market", "steam"], "'steam' is not one of"),
        (["--game", "csgo", "--min-price", "10", "--max-price", "5"], "must not exceed max price"),
        (["--game", "csgo", "--min-price", "-1"], "--min-price must be a finite, non-negative"),
        (["--game", "csgo", "--page-size", "0"], "page_size must be an integer from 1 to 100"),
        (["--game", "csgo", "--page-size", "-3"], "page_size must be an integer from 1 to 100"),
        (["--game", "csgo", "--page-size", "101"], "page_size must be an integer from 1 to 100"),
        (["--game", "csgo", "--meta", "novalue"], "--meta takes KEY=VALUE, got 'novalue'"),
        (["--game", "csgo", "--market-opt", "=3"], "--market-opt takes KEY=VALUE"),
        (["--game", "csgo", "--market-opt", "colour=red"], "unknown simulated market option"),
        (["--game", "csgo", "--market-opt", "items=-5"], "option items must be an integer"),
        (["--game", "csgo", "--level", "godlike"], "level must be one of boost, medium"),
    ],
)
def test_scan_start_refuses_bad_input_and_stores_and_enqueues_nothing(
    env: dict[str, str], session: Session, args: list[str], message: str
) -> None:
    code, out, err = _run("scan", "start", *args)
    assert code != 0
    assert message in err
    assert out == ""
    assert _stored(session) == 0
    assert _queued(env["CELERY_BROKER_URL"]) == 0


@pytest.mark.parametrize("command", ["status", "results", "pause", "resume", "cancel"])
def test_unknown_scan_id_is_one_clear_line(env: dict[str, str], command: str) -> None:
    unknown = uuid.uuid4()
    code, _, err = _run("scan", command, str(unknown))
    assert code == 2
    assert err.strip() == f"error: no scan with scan_id {unknown}"


def test_malformed_scan_id_names_the_field(env: dict[str, str]) -> None:
    code, _, err = _run("scan", "status", "not-a-uuid")
    assert code == 2 and err.strip() == "error: scan_id must be a UUID, got 'not-a-uuid'"


def test_unreachable_database_is_one_clear_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.db import reset_engines
    from worker.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    reset_engines()
    code, _, err = _run("scan", "list")
    assert code == 1
    assert err.startswith("error: the database is unreachable")
    assert len(err.strip().splitlines()) == 1


def test_status_list_and_results_print_one_json_document(
    env: dict[str, str], session: Session
) -> None:
    _, out, _ = _run("scan", "start", "--game", "csgo", "--user-id", "77", "--json")
    scan_id = json.loads(out)["scan_id"]
    code, out, _ = _run("scan", "status", scan_id, "--json")
    assert code == 0
    status = json.loads(out)
    assert status["scan_id"] == scan_id and status["status"] == "in_progress"
    for key in ("processed_items", "total_items", "page_seq", "cursor", "error_message",
                "recoveries", "created_at", "updated_at", "metadata"):  # fmt: skip
        assert key in status
    code, out, _ = _run("scan", "list", "--user-id", "77", "--json")
    assert code == 0 and [s["scan_id"] for s in json.loads(out)] == [scan_id]
    code, out, _ = _run("scan", "list", "--status", "completed", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = _run("scan", "list", "--status", "sleeping")
    assert code == 2 and "status must be one of" in err
    code, out, _ = _run("scan", "results", scan_id, "--json")
    assert code == 0 and json.loads(out) == []


def test_pause_resume_cancel_transitions_and_their_errors(
    env: dict[str, str], session: Session
) -> None:
    _, out, _ = _run("scan", "start", "--game", "csgo", "--json")
    scan_id = json.loads(out)["scan_id"]
    assert _run("scan", "resume", scan_id)[2].strip() == (
        f"error: scan {scan_id} is in_progress; only a scan that is failed or paused can become "
        "in_progress"
    )
    assert _run("scan", "pause", scan_id)[:2] == (0, f"scan {scan_id} is paused\n")
    assert _run("scan", "pause", scan_id)[0] == 2
    token_before = session.scalars(select(ScanCheckpoint.lease_token)).one()
    assert _run("scan", "resume", scan_id)[:2] == (0, f"scan {scan_id} is in_progress\n")
    session.expire_all()
    assert session.scalars(select(ScanCheckpoint.lease_token)).one() != token_before
    assert _run("scan", "cancel", scan_id)[:2] == (0, f"scan {scan_id} is cancelled\n")
    code, _, err = _run("scan", "cancel", scan_id)
    assert code == 2 and "is cancelled" in err
    code, _, err = _run("scan", "resume", scan_id)
    assert code == 2 and "is cancelled" in err


def test_resume_refuses_a_paused_checkpoint_the_callers_own_loop_runs(
    env: dict[str, str], session: Session
) -> None:
    from worker.db import checkpoints as checkpoint_store

    # Given a seed-style checkpoint (StateManager), paused by its user
    checkpoint_store.create_checkpoint(session, "7b0c9f2e-0000-4000-8000-000000000001", 5, "mine")
    session.commit()
    scan_id = "7b0c9f2e-0000-4000-8000-000000000001"
    assert _run("scan", "pause", scan_id)[0] == 0
    # When someone resumes it from the CLI
    code, _, err = _run("scan", "resume", scan_id)
    # Then it is refused, and nothing was published for a chain that does not run it
    assert code == 2 and "run by its caller's own loop" in err
    session.expire_all()
    row = session.scalars(select(ScanCheckpoint)).one()
    assert (row.status, row.lease_token, row.queued_at) == ("paused", None, None)


def test_cleanup_dry_run_counts_without_deleting(env: dict[str, str], session: Session) -> None:
    code, out, _ = _run("cleanup", "--dry-run", "--json")
    assert code == 0 and json.loads(out) == {"days": 7, "dry_run": True, "deleted": 0, "matched": 0}
    code, _, err = _run("cleanup", "--days", "-1")
    assert code == 2 and "-1" in err


def test_the_console_script_prints_usage_errors_as_one_line(env: dict[str, str]) -> None:
    from tests.support.scans import cli

    done = cli(["scan", "start", "--game", "minecraft"], env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: Invalid value for '--game': 'minecraft' is not one of "
        "'cs2', 'csgo', 'dota2', 'rust', 'tf2'."
    ]


@pytest.mark.parametrize("option", ["--min-price", "--max-price"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "1e300"])
def test_absurd_prices_are_one_line_exit_2_and_store_nothing(
    env: dict[str, str], session: Session, option: str, value: str
) -> None:
    from tests.support.scans import cli

    # Given a number that float() accepts but no price can be
    # When it is passed through the real console script
    done = cli(["scan", "start", "--game", "csgo", option, value], env)
    # Then one line names the option and what is allowed, and nothing is stored or enqueued
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {option} must be a finite")
    assert _stored(session) == 0
    assert _queued(env["CELERY_BROKER_URL"]) == 0


SECRET = "hunter2"


@pytest.mark.parametrize(
    ("variable", "url", "args"),
    [
        (
            "CELERY_BROKER_URL",
            f"redis://:{SECRET}@127.0.0.1:1/0",
            ["scan", "start", "--game", "csgo"],
        ),
        (
            "CELERY_BROKER_URL",
            f"redis://admin:{SECRET}@127.0.0.1:1/0",
            ["scan", "start", "--game", "csgo"],
        ),
        ("DATABASE_URL", f"postgresql://admin:{SECRET}@127.0.0.1:1/none", ["scan", "list"]),
        ("DATABASE_URL", f"postgresql://admin:{SECRET}@127.0.0.1:1/none", ["migrate"]),
        ("DATABASE_URL", f"postgresql://admin:{SECRET}@127.0.0.1:1/none", ["recover"]),
    ],
)
def test_an_unreachable_server_is_reported_without_its_password(
    env: dict[str, str], variable: str, url: str, args: list[str]
) -> None:
    from tests.support.scans import cli

    # Given a URL with a password, pointing at nothing
    # When a command needs that server
    done = cli(args, {**env, variable: url})
    # Then it fails with one line that shows where, but never the password
    assert done.returncode == 1, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "127.0.0.1" in done.stderr
