"""The `marketscan` command line: migrations, scans, recovery, cleanup and the bot."""

from __future__ import annotations

import time

import click

from worker.cli.scan import scan
from worker.cli.support import cli_session, emit_json, fail, handle_errors
from worker.cli.watch import watch
from worker.db import DBAPIError
from worker.redaction import redacted


@click.group()
def main() -> None:
    """marketscan: long marketplace scans on Celery workers, checkpointed in PostgreSQL."""


@main.command()
@handle_errors
def migrate() -> None:
    """Bring the database schema up to date (alembic upgrade head)."""
    from worker.db.migrate import upgrade
    from worker.settings import get_settings

    try:
        upgrade(get_settings().database_url)
    except DBAPIError as exc:
        fail(f"cannot migrate the database: {str(exc.orig).strip().splitlines()[0]}", 1)
    click.echo("database schema is up to date")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def recover(as_json: bool) -> None:
    """Republish every orphaned in-progress scan now (what beat does every few seconds)."""
    from worker.app import publisher
    from worker.chain.recovery import recover as recover_scans
    from worker.settings import get_settings

    with cli_session() as session:
        reclaimed = recover_scans(
            session, publisher.publish_recovered_page, get_settings().lease_seconds
        )
    if as_json:
        emit_json({"recovered": [str(item.scan_id) for item in reclaimed]})
        return
    for item in reclaimed:
        click.echo(
            f"recovered {item.scan_id} ({item.cause.value}; was "
            f"{item.old_owner or 'unowned'}) at page {item.message.page_seq}"
        )
    click.echo(f"{len(reclaimed)} scans recovered")


@main.command()
@click.option("--days", type=click.IntRange(min=0), default=None, help="Retention in days.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def cleanup(days: int | None, dry_run: bool, as_json: bool) -> None:
    """Delete completed, failed and cancelled scans older than the retention."""
    from worker.db.retention import cleanup_old_checkpoints, count_old_checkpoints
    from worker.settings import get_settings

    settings = get_settings()
    retention = settings.retention_days if days is None else days
    with cli_session() as session:
        if dry_run:
            count = count_old_checkpoints(session, retention)
        else:
            count = cleanup_old_checkpoints(
                session, retention, settings.cleanup_batch_size, settings.cleanup_pause_ratio
            )
    if as_json:
        emit_json(
            {
                "days": retention,
                "dry_run": dry_run,
                "deleted": 0 if dry_run else count,
                "matched": count,
            }
        )
    else:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {count} terminal scans older than {retention} days")


@main.command()
@click.option("--dir", "directory", default=".marketscan", show_default=True,
              help="Where the embedded servers keep their data.")  # fmt: skip
@handle_errors
def dev(directory: str) -> None:
    """Run everything locally: embedded PostgreSQL and Redis, a worker, beat and Flower,
    and the Telegram bot when MARKETSCAN_TELEGRAM_BOT_TOKEN is set."""
    from pathlib import Path

    from worker.devtools.devstack import dev_stack, flower_credentials, stop_on_signals
    from worker.devtools.embedded import free_port
    from worker.settings import DEV_MODE_VARIABLE, get_settings

    stop_on_signals()
    with dev_stack(Path(directory).resolve()) as stack:
        port, basic_auth = flower_credentials()
        click.echo(f"DATABASE_URL={redacted(stack.services.database_url)}")
        click.echo(f"CELERY_BROKER_URL={redacted(stack.services.broker_url)}")
        # A development fleet: a CLI that starts scans injecting faults must say so too.
        click.echo(f"{DEV_MODE_VARIABLE}=1")
        stack.worker()
        stack.beat()
        stack.flower(port, basic_auth)
        metrics_port = free_port()
        stack.metrics(metrics_port)
        if get_settings().telegram_bot_token:
            stack.bot()
            click.echo(
                "Telegram bot: polling; it answers the ids in MARKETSCAN_TELEGRAM_ALLOWED_USERS"
            )
        user, password = basic_auth.split(":", 1)
        click.echo(f"Flower: http://127.0.0.1:{port}  (user {user}, password {password})")
        click.echo(f"Metrics: http://127.0.0.1:{metrics_port}/metrics")
        click.echo("Press Ctrl-C to stop everything.")
        try:
            while all(c.process and c.process.poll() is None for c in stack.children):
                time.sleep(0.5)
            fail("a child process exited; stopping the stack", 1)
        except KeyboardInterrupt:
            click.echo("stopping...")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=9808, show_default=True,
              help="Port to listen on (0: any free port).")  # fmt: skip
@handle_errors
def metrics(host: str, port: int) -> None:
    """Serve the whole fleet's Prometheus metrics on /metrics (read at each scrape)."""
    from worker.metrics.exporter import Exporter
    from worker.settings import get_settings

    try:
        settings = get_settings()
        exporter = Exporter(host, port, settings.broker_url, settings.sentinel_master)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", 1)
    click.echo(f"serving metrics on {exporter.url}", err=False)
    try:
        exporter.serve_forever()
    except KeyboardInterrupt:
        exporter.shutdown()


@main.command()
@handle_errors
def bot() -> None:
    """Run the Telegram bot (long polling) for the users in MARKETSCAN_TELEGRAM_ALLOWED_USERS."""
    from worker.bot.polling import main as run_bot

    run_bot()


@main.command()
@handle_errors
def demo() -> None:
    """Scan a simulated market, SIGKILL the worker midway, and watch the scan resume."""
    from rich.console import Console

    from worker.devtools.demo import run_demo

    if not run_demo(Console()):
        fail("the demo scan's results differ from an uninterrupted run", 1)


main.add_command(scan)
main.add_command(watch)


def run() -> None:
    """The console script: click's usage errors become one line, like every other error."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)


if __name__ == "__main__":
    run()
