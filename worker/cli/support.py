"""What every `marketscan` command shares: one-line errors, JSON output, sessions."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click

from worker.db import DBAPIError, Session, unavailable
from worker.errors import MarketscanError, ServiceUnavailable
from worker.redaction import redacted

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, and a non-zero exit; a password in any URL it quotes is hidden."""
    click.echo(f"error: {redacted(message)}", err=True)
    sys.exit(code)


def emit_json(document: object) -> None:
    click.echo(json.dumps(document, default=str, sort_keys=True))


@contextmanager
def cli_session() -> Iterator[Session]:
    """A session whose failures become one line naming the problem."""
    from worker.db import session_scope

    try:
        with session_scope() as session:
            yield session
    except DBAPIError as exc:
        fail(str(unavailable(exc)), 1)


def handle_errors(command: F) -> F:
    """Turn marketscan errors into one line: exit 1 for a service down, 2 for the rest."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ServiceUnavailable as exc:
            fail(str(exc), 1)
        except MarketscanError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]
