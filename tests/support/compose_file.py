"""docker-compose.yml and .env.example as data, read the way `docker compose` reads them.

Docker does not run under the test suite, so the tests that check the deployment parse the
files themselves: PyYAML resolves the anchors and merge keys as compose does, and
`interpolated` substitutes `${...}` with compose's rules, so a test sees the environment
and command line a container would get from a given .env.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# What .env.example puts where an operator must choose a secret.
PLACEHOLDER = "change-me"

# `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$VAR`, but not the `$$` escape.
VARIABLE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?")
# One substitution: the `$$` escape, `${NAME[:]-default}`, `${NAME[:]?error}`, `${NAME}`, `$NAME`.
_SUBSTITUTION = re.compile(
    r"\$\$"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(Exception):
    """A `${VAR:?error}` (or `${VAR?error}`) whose variable is not set: compose refuses."""


@functools.cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def built_services() -> dict[str, dict[str, Any]]:
    """The services that run this repository's image."""
    return {name: service for name, service in services().items() if "build" in service}


def env_example() -> list[tuple[str, str, str | None]]:
    """(name, value, comment above it) of every variable of .env.example."""
    entries = []
    comment: str | None = None
    for line in ENV_EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment = stripped.lstrip("# ").strip() or comment
        elif "=" in stripped:
            name, _, value = stripped.partition("=")
            entries.append((name.strip(), value.strip(), comment))
            comment = None
        else:
            comment = None
    return entries


def env_example_values() -> dict[str, str]:
    return {name: value for name, value, _ in env_example()}


def filled_env_example() -> dict[str, str]:
    """.env.example as an operator fills it in: each `change-me` replaced by a secret of its
    own (hex, so it is safe in a URL), the same every call."""
    return {
        name: value.replace(PLACEHOLDER, hashlib.sha256(name.encode()).hexdigest()[:32])
        for name, value in env_example_values().items()
    }


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def variables_in(node: Any) -> set[str]:
    """Every variable interpolated anywhere in `node`."""
    return {braced or bare for text in strings_in(node) for braced, bare in VARIABLE.findall(text)}


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment:`; a bare NAME (the host's value passed through) maps to
    `${NAME}`, which is what compose gives the container."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = {}
        for entry in environment:
            name, equals, value = str(entry).partition("=")
            pairs[name] = value if equals else f"${{{name}}}"
        return pairs
    return {
        str(key): f"${{{key}}}" if value is None else str(value)
        for key, value in environment.items()
    }


def options_of(argv: list[str]) -> dict[str, str]:
    """NAME=VALUE or --name=value tokens as a dict."""
    pairs = {}
    for token in argv:
        name, _, value = token.partition("=")
        pairs[name] = value
    return pairs


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """`text` with its variables substituted from `values` (a .env), as compose does."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        operator, argument = match.group("operator"), match.group("argument") or ""
        value = values.get(name)
        unset_or_empty = not value if operator and operator.startswith(":") else value is None
        if operator in ("-", ":-") and unset_or_empty:
            return argument
        if operator in ("?", ":?") and unset_or_empty:
            raise MissingVariable(f"{name}: {argument}")
        return value or ""

    return _SUBSTITUTION.sub(substitute, text)


def interpolated(node: Any, values: Mapping[str, str]) -> Any:
    """`node` (any part of the compose file) with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, values)
    if isinstance(node, Mapping):
        return {key: interpolated(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, values) for item in node]
    return node
