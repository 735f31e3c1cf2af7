"""The compose PostgreSQL: every marketscan process connects as a role that is no superuser.

The postgres service creates the superuser for itself; its init script
(deploy/postgres/initdb, mounted on /docker-entrypoint-initdb.d) makes the application's
role. The script is run for real, as the image's entrypoint runs it (psql as the superuser,
in the new database, with the service's environment), against the test PostgreSQL: the role
it makes must run the migrations and be unable to do anything a superuser could.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from sqlalchemy.engine import make_url

from tests.support.compose_file import (
    ROOT,
    built_services,
    environment_of,
    filled_env_example,
    interpolated,
    services,
)
from tests.support.scans import cli
from tests.support.services import TestServices, plain_url
from worker.db.migrate import downgrade, upgrade

DB_PASSWORD = "MARKETSCAN_DB_PASSWORD"
INIT_DIRECTORY = "/docker-entrypoint-initdb.d"


def test_every_process_connects_as_the_application_role_never_the_superuser() -> None:
    env = filled_env_example()
    postgres = interpolated(services()["postgres"], env)
    superuser = postgres["environment"]["POSTGRES_USER"]
    database = postgres["environment"]["POSTGRES_DB"]
    connected = []
    for name, service in built_services().items():
        url = interpolated(environment_of(service), env).get("DATABASE_URL")
        if url is None:
            continue  # test_compose_secrets.py's table says who needs none
        connected.append(name)
        parsed = make_url(url)
        assert parsed.username == postgres["environment"]["MARKETSCAN_DB_USER"] != superuser
        assert parsed.password == postgres["environment"][DB_PASSWORD] == env[DB_PASSWORD]
        assert (parsed.host, parsed.database) == ("postgres", database), name
    assert {"migrate", "worker", "beat"} <= set(connected), connected
    # And the postgres service runs the role's init script on its first start
    assert init_scripts(), f"nothing is mounted on {INIT_DIRECTORY}"


def init_scripts() -> list[Path]:
    """The repository files the postgres service mounts into /docker-entrypoint-initdb.d, in
    the order the image's entrypoint runs them."""
    found: list[Path] = []
    for volume in services()["postgres"].get("volumes", []):
        source, target, *_ = volume.split(":")
        if target.rstrip("/") == INIT_DIRECTORY:
            found.extend(sorted((ROOT / source).iterdir()))
        elif target.startswith(INIT_DIRECTORY + "/"):
            found.append(ROOT / source)
    # Only SQL: the test runs each as the entrypoint does (psql -f); a .sh would be sourced.
    assert all(path.suffix == ".sql" for path in found), found
    return sorted(found, key=lambda path: path.name)


@dataclass
class FreshDatabase:
    """A database as the postgres image makes it on its first start, on the test server."""

    services: TestServices
    name: str
    role: str

    @property
    def superuser(self) -> str:
        username = make_url(self.services.database_url).username
        assert username, self.services.database_url
        return username

    def admin(self, statement: str, *parameters: object) -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(plain_url(self.services.url_of(self.name)))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, parameters)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def role_url(self, password: str) -> str:
        url = make_url(self.services.url_of(self.name))
        return url.set(username=self.role, password=password).render_as_string(False)

    def run_init_scripts(self, password: str, role: str | None = None) -> None:
        """Run the init scripts as the entrypoint does: psql as the superuser, in the
        database, with the postgres service's environment from a filled-in .env."""
        env = {
            **filled_env_example(),
            "MARKETSCAN_DB_USER": role or self.role,
            DB_PASSWORD: password,
        }
        container_env = interpolated(environment_of(services()["postgres"]), env)
        container_env |= {"POSTGRES_USER": self.superuser, "POSTGRES_DB": self.name}
        for script in init_scripts():
            done = subprocess.run(
                [
                    psql(),
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--username",
                    container_env["POSTGRES_USER"],
                    "--no-password",
                    "--no-psqlrc",
                    "--dbname",
                    container_env["POSTGRES_DB"],
                    "-f",
                    str(script),
                ],
                env={"PATH": os.environ["PATH"], **container_env, **self._libpq_env()},
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0:
                raise InitScriptFailed(f"{script.name}: {done.stderr}")

    def _libpq_env(self) -> dict[str, str]:
        """Where the test server listens, as libpq reads it (the entrypoint's socket)."""
        url = make_url(self.services.database_url)
        host = url.query.get("host") or url.host
        assert isinstance(host, str), url
        found = {"PGHOST": host}
        if url.port:
            found["PGPORT"] = str(url.port)
        if url.password:
            found["PGPASSWORD"] = url.password
        return found


class InitScriptFailed(Exception):
    """psql ran an init script and stopped on an error."""


def psql() -> str:
    found = shutil.which("psql") or "/usr/bin/psql"
    assert Path(found).exists(), "psql is needed to run the init scripts"
    return found


@pytest.fixture
def fresh_database(services: TestServices) -> Iterator[FreshDatabase]:
    """An empty database owned by the superuser, and a role name no other test uses (roles
    are the whole server's)."""
    suffix = uuid.uuid4().hex[:12]
    fresh = FreshDatabase(services, f"fresh_{suffix}", f"marketscan_app_{suffix}")
    with contextlib.closing(psycopg2.connect(plain_url(services.database_url))) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{fresh.name}"')
    try:
        yield fresh
    finally:
        services.drop_database(fresh.name)
        with contextlib.closing(psycopg2.connect(plain_url(services.database_url))) as admin:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'DROP ROLE IF EXISTS "{fresh.role}"')


def password_matches(verifier: str, role: str, password: str) -> bool:
    """Whether `password` is the one PostgreSQL stored (pg_authid.rolpassword) for `role`."""
    if verifier.startswith("md5"):
        return verifier == "md5" + hashlib.md5((password + role).encode()).hexdigest()
    # SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (RFC 5802's keys)
    method, iterations_and_salt, keys = verifier.split("$")
    assert method == "SCRAM-SHA-256", verifier
    iterations, salt = iterations_and_salt.split(":")
    stored_key = base64.b64decode(keys.split(":")[0])
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest() == stored_key


def role_attributes(fresh: FreshDatabase) -> tuple[Any, ...]:
    rows = fresh.admin(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
        " rolbypassrls FROM pg_roles WHERE rolname = %s",
        fresh.role,
    )
    assert len(rows) == 1, f"no role {fresh.role}"
    return rows[0]


def stored_password(fresh: FreshDatabase) -> str:
    ((verifier,),) = fresh.admin("SELECT rolpassword FROM pg_authid WHERE rolname = %s", fresh.role)
    assert isinstance(verifier, str)
    return verifier


def objects_not_owned_by_the_role(fresh: FreshDatabase) -> list[tuple[Any, ...]]:
    """Schemas and relations of the application's schemas that another role owns."""
    return fresh.admin(
        "SELECT 'schema', nspname FROM pg_namespace"
        " WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema'"
        "   AND nspowner NOT IN (%s::regrole, 'pg_database_owner'::regrole)"
        " UNION ALL"
        " SELECT 'relation', relnamespace::regnamespace || '.' || relname FROM pg_class"
        " WHERE relnamespace::regnamespace::text NOT LIKE 'pg\\_%%'"
        "   AND relnamespace::regnamespace::text <> 'information_schema'"
        "   AND relowner <> %s::regrole",
        f'"{fresh.role}"',
        f'"{fresh.role}"',
    )


def test_the_init_script_makes_a_role_that_migrates_its_database_and_nothing_more(
    fresh_database: FreshDatabase,
) -> None:
    # Given a fresh database, as the postgres image makes it on its first start
    fresh = fresh_database
    password = "first-" + uuid.uuid4().hex
    # When the init scripts run as the entrypoint runs them
    fresh.run_init_scripts(password)
    # Then the role logs in with the password of its variable and holds no privilege
    login, superuser, create_db, create_role, replication, bypass_rls = role_attributes(fresh)
    assert login and not (superuser or create_db or create_role or replication or bypass_rls)
    assert password_matches(stored_password(fresh), fresh.role, password)
    ((owner,),) = fresh.admin(
        "SELECT datdba::regrole::text FROM pg_database WHERE datname = %s", fresh.name
    )
    assert owner.strip('"') == fresh.role
    # And `marketscan migrate`, with the migrate service's environment pointed at this server,
    # builds the schema as the role (schemas, tables, partitions)
    role_url = fresh.role_url(password)
    migrate_env = interpolated(environment_of(services()["migrate"]), filled_env_example())
    migrate_env |= {"DATABASE_URL": role_url, "PATH": os.environ["PATH"]}
    done = cli(["migrate"], {**migrate_env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert objects_not_owned_by_the_role(fresh) == []
    assert fresh.admin("SELECT count(*) FROM pg_tables WHERE tablename = 'scan_checkpoints'") == [
        (1,)
    ]
    with contextlib.closing(psycopg2.connect(plain_url(role_url))) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == (fresh.role,)
            # But it can make neither a role nor a database
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(f'CREATE ROLE "{fresh.role}_other"')
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(f'CREATE DATABASE "{fresh.name}_other"')
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(f'ALTER ROLE "{fresh.role}" SUPERUSER')


def test_running_the_init_script_again_rotates_the_role_password(
    fresh_database: FreshDatabase,
) -> None:
    # Given a role made on the first start
    fresh = fresh_database
    fresh.run_init_scripts("old-" + uuid.uuid4().hex)
    # When the script runs again with a new MARKETSCAN_DB_PASSWORD
    new_password = "new-" + uuid.uuid4().hex
    fresh.run_init_scripts(new_password)
    # Then the role has the new password and is still no superuser
    assert password_matches(stored_password(fresh), fresh.role, new_password)
    assert role_attributes(fresh)[1:] == (False, False, False, False, False)


def test_the_init_script_hands_an_install_made_by_the_superuser_over_to_the_role(
    fresh_database: FreshDatabase,
) -> None:
    # Given an install from before the role: the superuser ran the migrations
    fresh = fresh_database
    upgrade(fresh.services.url_of(fresh.name))
    # When the script runs on it
    password = uuid.uuid4().hex
    fresh.run_init_scripts(password)
    # Then the role owns every schema and relation the migrations made
    assert objects_not_owned_by_the_role(fresh) == []
    # And its migrations can alter what the superuser's made: the newest down and up again
    downgrade(fresh.role_url(password), "-1")
    upgrade(fresh.role_url(password))


def test_the_init_script_refuses_to_demote_the_superuser(fresh_database: FreshDatabase) -> None:
    # Given MARKETSCAN_DB_USER set to the superuser's name by mistake
    fresh = fresh_database
    # When the script runs, Then it stops before changing anything
    with pytest.raises(InitScriptFailed, match="must differ from POSTGRES_USER"):
        fresh.run_init_scripts(uuid.uuid4().hex, role=fresh.superuser)
    rows = fresh.admin("SELECT rolsuper FROM pg_roles WHERE rolname = %s", fresh.superuser)
    assert rows == [(True,)]
