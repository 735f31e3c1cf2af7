"""The compose deployment leaks nothing: each service sees only the credentials it uses.

A table says which service may see which credential; the compose file must give each exactly
that, whichever way a container gets a variable (environment, command line, healthcheck,
env_file), and each process must read exactly those through Settings. A secret an operator
must choose is shown as change-me in .env.example and stops compose until it is set.
(What the passwords guard is tested beside: test_compose_database_role.py and
test_compose_redis_password.py.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import nacl.signing
import pytest
from sqlalchemy.engine import make_url

from tests.support.compose_file import (
    PLACEHOLDER,
    REQUIRED_VARIABLE,
    ROOT,
    VARIABLE,
    MissingVariable,
    built_services,
    compose,
    env_example,
    env_example_values,
    environment_of,
    filled_env_example,
    interpolated,
    services,
    strings_in,
    variables_in,
)
from worker.settings import Settings

DMARKET_PUBLIC_KEY = "MARKETSCAN_DMARKET_PUBLIC_KEY"
DMARKET_SECRET_KEY = "MARKETSCAN_DMARKET_SECRET_KEY"
BOT_TOKEN = "MARKETSCAN_TELEGRAM_BOT_TOKEN"
DB_PASSWORD = "MARKETSCAN_DB_PASSWORD"
REDIS_PASSWORD = "MARKETSCAN_REDIS_PASSWORD"
SUPERUSER_PASSWORD = "POSTGRES_PASSWORD"
FLOWER_AUTH = "FLOWER_BASIC_AUTH"
GRAFANA_PASSWORD = "GRAFANA_ADMIN_PASSWORD"

# Who may see what. Only the worker calls DMarket (its page tasks; beat and the bot build a
# market to check a scan's options but never send it a request). The worker (progress),
# beat (the alert follower) and the bot (polling) talk to Telegram. Flower reads the broker
# alone; the exporter reads the rows and the broker; the migration only the database.
CREDENTIALS: dict[str, frozenset[str]] = {
    "redis": frozenset({REDIS_PASSWORD}),
    "postgres": frozenset({SUPERUSER_PASSWORD, DB_PASSWORD}),
    "migrate": frozenset({DB_PASSWORD}),
    "worker": frozenset(
        {DB_PASSWORD, REDIS_PASSWORD, DMARKET_PUBLIC_KEY, DMARKET_SECRET_KEY, BOT_TOKEN}
    ),
    "beat": frozenset({DB_PASSWORD, REDIS_PASSWORD, BOT_TOKEN}),
    "flower": frozenset({REDIS_PASSWORD, FLOWER_AUTH}),
    "metrics": frozenset({DB_PASSWORD, REDIS_PASSWORD}),
    "bot": frozenset({DB_PASSWORD, REDIS_PASSWORD, BOT_TOKEN}),
    "prometheus": frozenset(),
    "grafana": frozenset({GRAFANA_PASSWORD}),
}
ALL_CREDENTIALS = frozenset().union(*CREDENTIALS.values())
# Optional: empty turns the feature off (unsigned requests, no Telegram). Every other
# credential is required, so compose refuses to start without it.
OPTIONAL_CREDENTIALS = frozenset({DMARKET_PUBLIC_KEY, DMARKET_SECRET_KEY, BOT_TOKEN})
# How a variable that holds a credential is named, so that a new one must join the table.
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|AUTH")

# --- what each service sees ----------------------------------------------------------------


def env_file_variables(service: Mapping[str, Any]) -> set[str]:
    """The variables a service's env_file hands its container whole."""
    entries = service.get("env_file") or []
    names: set[str] = set()
    for entry in [entries] if isinstance(entries, str | Mapping) else entries:
        path = ROOT / (entry["path"] if isinstance(entry, Mapping) else entry)
        # An operator's .env (not in the repository) holds what .env.example lists.
        source = path if path.exists() else ROOT / ".env.example"
        for line in source.read_text().splitlines():
            name, equals, _ = line.strip().partition("=")
            if equals and not name.startswith("#"):
                names.add(name.strip())
    return names


def credentials_seen(service: Mapping[str, Any]) -> set[str]:
    """The credentials a service's container can read: interpolated anywhere into its
    definition (environment, command, healthcheck) or handed over by an env_file."""
    # environment_of reads a bare NAME (passed through from the host) as ${NAME}.
    passed = variables_in(service) | variables_in(environment_of(service))
    return (passed | env_file_variables(service)) & ALL_CREDENTIALS


def test_each_service_sees_exactly_the_credentials_of_its_row() -> None:
    # Given the table of who may see what, and every service of the compose file
    assert set(services()) == set(CREDENTIALS), "place every service in CREDENTIALS"
    # When the credentials each service's container can read are collected
    seen = {name: credentials_seen(service) for name, service in services().items()}
    # Then each sees exactly its row: nothing more, and what it needs to work
    wrong = {
        name: {"extra": sorted(seen[name] - allowed), "missing": sorted(allowed - seen[name])}
        for name, allowed in CREDENTIALS.items()
        if seen[name] != allowed
    }
    assert wrong == {}


def test_an_env_file_counts_as_seeing_every_variable_in_it() -> None:
    # The check above is only worth something if an env_file cannot slip past it.
    assert credentials_seen({"env_file": ".env"}) == ALL_CREDENTIALS
    assert credentials_seen({"env_file": [{"path": ".env", "required": False}]}) == (
        ALL_CREDENTIALS
    )
    assert credentials_seen({"environment": ["MARKETSCAN_TELEGRAM_BOT_TOKEN"]}) == {BOT_TOKEN}


def test_every_variable_named_like_a_credential_is_in_the_table() -> None:
    # A credential added later (to the shared block, say) must be placed in the table.
    named = {
        name
        for name in variables_in(compose()) | set(env_example_values())
        if CREDENTIAL_NAME.search(name)
    }
    assert named - ALL_CREDENTIALS == set()


def sample_env() -> dict[str, str]:
    """A filled-in .env with every credential set, the optional ones too."""
    signing_key = nacl.signing.SigningKey.generate()
    public_key = bytes(signing_key.verify_key)
    return {
        **filled_env_example(),
        DMARKET_PUBLIC_KEY: public_key.hex(),
        DMARKET_SECRET_KEY: (bytes(signing_key) + public_key).hex(),
        BOT_TOKEN: "123456:sample-bot-token",
    }


def settings_of(name: str, env: Mapping[str, str]) -> Settings:
    """The settings service `name`'s processes build from their environment under `env`."""
    return Settings.from_env(interpolated(environment_of(services()[name]), env))


def test_each_process_of_the_image_reads_only_the_credentials_of_its_row() -> None:
    # Given a .env with every credential set
    env = sample_env()
    for name in built_services():
        allowed = CREDENTIALS[name]
        # When the service's processes read their settings from the environment compose
        # gives them
        settings = settings_of(name, env)
        # Then they hold the keys, the token and the passwords of their row, and no other
        signs = settings.dmarket_secret_key is not None
        assert signs == (DMARKET_SECRET_KEY in allowed), name
        assert (settings.dmarket_public_key is not None) == (DMARKET_PUBLIC_KEY in allowed)
        assert (settings.telegram_bot_token is not None) == (BOT_TOKEN in allowed), name
        database_password = make_url(settings.database_url).password
        assert (database_password == env[DB_PASSWORD]) == (DB_PASSWORD in allowed), name
        broker_password = urlsplit(settings.broker_url).password
        assert (broker_password == env[REDIS_PASSWORD]) == (REDIS_PASSWORD in allowed), name


def test_a_required_secret_stops_compose_until_it_is_set() -> None:
    # Given the secrets an operator must choose: .env.example shows each as change-me
    placeholders = {name for name, value in env_example_values().items() if PLACEHOLDER in value}
    assert placeholders == ALL_CREDENTIALS - OPTIONAL_CREDENTIALS
    env = sample_env()
    assert interpolated(compose(), env), "a filled-in .env starts everything"
    for name in placeholders:
        # Then compose names each one required wherever it uses it (no fallback)...
        uses = [text for text in strings_in(compose()) if re.search(rf"\$\{{{name}\b", text)]
        assert uses and all(
            REQUIRED_VARIABLE.findall(text).count(name)
            == [braced or bare for braced, bare in VARIABLE.findall(text)].count(name)
            for text in uses
        ), f"{name} has a default somewhere: {uses}"
        # ...and refuses to start without it
        without = {key: value for key, value in env.items() if key != name}
        with pytest.raises(MissingVariable, match=name):
            interpolated(compose(), without)
    # And an optional one left empty starts everything, with the feature off
    assert interpolated(compose(), {**env, BOT_TOKEN: "", DMARKET_SECRET_KEY: ""})


def test_env_example_comments_every_secret_with_how_to_make_one() -> None:
    comments = {name: comment or "" for name, _, comment in env_example()}
    for name in ALL_CREDENTIALS - OPTIONAL_CREDENTIALS:
        assert comments[name], f"no comment above {name}"
