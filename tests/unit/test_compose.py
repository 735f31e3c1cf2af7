"""docker-compose.yml, the Dockerfile and .env.example agree with the code they run.

Commands are checked against the real CLIs: Celery's and Flower's own help texts, and the
`marketscan` click group. Variables are checked against what worker/settings.py reads and
what docs/configuration.md's table documents.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.support.compose_file import (
    REQUIRED_VARIABLE,
    ROOT,
    VARIABLE,
    built_services,
    compose,
    env_example,
    env_example_values,
    environment_of,
    filled_env_example,
    interpolated,
    options_of,
    services,
    variables_in,
)
from worker import settings
from worker.cli.main import main as marketscan_cli
from worker.settings import Settings

# The Dockerfile's WORKDIR: the repository's files live there in the image.
IMAGE_ROOT = "/app"
CELERY_SUBCOMMANDS = ("worker", "beat", "flower")
MIN_GRACE_SECONDS = 30
ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
# Settings that carry a credential: each reaches only the services that use it
# (tests/unit/test_compose_secrets.py holds the table). Compose builds the two URLs itself,
# from the application role's and Redis's passwords, so .env holds each password once.
SETTINGS_WITH_CREDENTIALS = frozenset(
    {
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "MARKETSCAN_DMARKET_PUBLIC_KEY",
        "MARKETSCAN_DMARKET_SECRET_KEY",
        "MARKETSCAN_TELEGRAM_BOT_TOKEN",
    }
)
BUILT_BY_COMPOSE = frozenset({"DATABASE_URL", "CELERY_BROKER_URL"})


# --- the files under test -------------------------------------------------------------


@functools.cache
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_argv(keyword: str) -> list[str]:
    found = [arguments for instruction, arguments in dockerfile() if instruction == keyword]
    if not found:
        return []
    # Exec form only: the shell form would put /bin/sh between Docker and Celery's signals.
    argv: list[str] = json.loads(found[-1])
    return argv


def service_argv(service: Mapping[str, Any]) -> list[str]:
    """What a service's container runs: entrypoint + command, the image's when not given."""

    def split(value: str | list[str] | None) -> list[str] | None:
        return shlex.split(value) if isinstance(value, str) else value

    entrypoint = split(service.get("entrypoint"))
    command = split(service.get("command"))
    if entrypoint is None:
        entrypoint = dockerfile_argv("ENTRYPOINT") if "build" in service else []
    if command is None:
        command = dockerfile_argv("CMD") if "build" in service else []
    return [*entrypoint, *command]


def compose_variables() -> set[str]:
    """Every variable docker-compose.yml interpolates."""
    return variables_in(compose())


def settings_variables() -> list[str]:
    """Every environment variable Settings.from_env reads, in the order it reads them."""

    class RecordingEnvironment(Mapping[str, str]):
        def __init__(self) -> None:
            self.read: list[str] = []

        def __getitem__(self, key: str) -> str:
            self.read.append(key)
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            return iter(())

        def __len__(self) -> int:
            return 0

    environment = RecordingEnvironment()
    Settings.from_env(environment)
    return list(dict.fromkeys(environment.read))


def documented_variables() -> set[str]:
    """The variable names in the first column of docs/configuration.md's table."""
    page = ROOT / "docs" / "configuration.md"
    required = sorted(compose_variables() | set(env_example_values()))
    assert page.exists(), f"{page} is missing; its configuration table must list {required}"
    names: set[str] = set()
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("|"):
            first_cell = line.strip().strip("|").split("|")[0]
            names.update(ENV_NAME.findall(first_cell))
    return names


def documented_defaults() -> dict[str, str]:
    """The default cell of each variable in docs/configuration.md's table, as written; a
    row of several variables gives each its own of as many comma-separated defaults."""
    defaults: dict[str, str] = {}
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 2:
            continue
        names, parts = ENV_NAME.findall(cells[0]), [part.strip() for part in cells[1].split(",")]
        for index, name in enumerate(names):
            defaults[name] = parts[index] if len(parts) == len(names) else cells[1]
    return defaults


def documents(text: str, value: object) -> bool:
    """Whether `text`, a default as the configuration page writes it, is `value`."""
    if isinstance(value, bool):
        return text == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(text) == value
        except ValueError:
            return False
    return text == value


def duration_seconds(value: str) -> float:
    """A compose duration ("60s", "1m30s", "1h") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def repository_path(container_path: str) -> Path:
    """The repository file that `container_path` (absolute, or relative to WORKDIR) is."""
    if container_path.startswith("/"):
        assert container_path.startswith(IMAGE_ROOT + "/"), f"{container_path} is not in the image"
        container_path = container_path.removeprefix(IMAGE_ROOT + "/")
    return ROOT / container_path


# --- the real command lines -----------------------------------------------------------


@functools.cache
def celery_help(*subcommand: str) -> str:
    """The help text of `celery -A worker <subcommand>`, from the real CLI."""
    # Flower's options are Tornado's: `flower --help` shows only click's; `-- --help` theirs.
    tail = ["--", "--help"] if subcommand == ("flower",) else ["--help"]
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", *subcommand, *tail],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"celery -A worker {' '.join(subcommand)} --help:\n{done.stderr}"
    return done.stdout + done.stderr


def option_name(token: str, subcommand: str) -> str:
    name = token.partition("=")[0]
    # Tornado accepts --state_save_interval and --state-save-interval; its help shows dashes.
    return "--" + name[2:].replace("_", "-") if subcommand == "flower" else name


def check_celery(argv: list[str], where: str) -> str:
    """Check a `celery ...` command line; returns its subcommand."""
    program, rest = (1, argv[1:]) if argv[0] == "celery" else (3, argv[3:])
    assert argv[:program] in (["celery"], ["python", "-m", "celery"]), where
    app: str | None = None
    global_options: list[str] = []
    while rest and rest[0].startswith("-"):
        token = rest.pop(0)
        if token in ("-A", "--app"):
            app = rest.pop(0)
        elif token.startswith("--app="):
            app = token.partition("=")[2]
        else:
            global_options.append(token)
    assert app == "worker", f"{where}: runs celery without `-A worker`: {argv}"
    assert rest and rest[0] in CELERY_SUBCOMMANDS, f"{where}: no worker|beat|flower in {argv}"
    subcommand, options = rest[0], rest[1:]
    for token in global_options:
        assert mentions(celery_help(), token.partition("=")[0]), f"{where}: celery has no {token}"
    help_text = celery_help(subcommand)
    for token in options:
        assert token.startswith("--"), f"{where}: write options as --name=value, got {token!r}"
        name = option_name(token, subcommand)
        assert mentions(help_text, name), f"{where}: `celery {subcommand}` has no option {name}"
    return subcommand


def mentions(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def check_marketscan(argv: list[str], where: str) -> click.Command:
    """Check a `marketscan ...` command line against the click group; returns the command."""
    command: click.Command = marketscan_cli
    for token in argv[1:]:
        if token.startswith("-"):
            known = {opt for param in command.params for opt in getattr(param, "opts", [])}
            assert token.partition("=")[0] in known, f"{where}: {command.name} has no {token}"
        elif isinstance(command, click.Group):
            assert token in command.commands, f"{where}: no `marketscan ... {token}` command"
            command = command.commands[token]
    assert not isinstance(command, click.Group), f"{where}: {argv} names a group, not a command"
    return command


def check_alembic(argv: list[str], where: str) -> None:
    config = "alembic.ini"
    if argv[1:2] == ["-c"]:
        config, argv = argv[2], [argv[0], *argv[3:]]
    elif argv[1].startswith("--config="):
        config, argv = argv[1].partition("=")[2], [argv[0], *argv[2:]]
    assert repository_path(config) == ROOT / "alembic.ini", f"{where}: alembic uses {config}"
    assert argv[1:] == ["upgrade", "head"], f"{where}: {argv}"


def check_program(argv: list[str], where: str) -> str:
    """Check any command line of the marketscan image; returns a short description."""
    assert argv, f"{where}: runs nothing"
    if "celery" in argv[:3]:
        return "celery " + check_celery(argv, where)
    if argv[0] == "marketscan":
        return "marketscan " + str(check_marketscan(argv, where).name)
    if argv[0] == "alembic":
        check_alembic(argv, where)
        return "alembic upgrade"
    raise AssertionError(f"{where}: runs {argv[0]!r}, not celery, marketscan or alembic")


def runs(name: str) -> str:
    return check_program(service_argv(services()[name]), f"service {name}")


def services_running(what: str) -> list[str]:
    return [name for name in built_services() if runs(name) == what]


# --- commands ---------------------------------------------------------------------------


def test_every_command_of_the_image_is_a_real_command_line() -> None:
    # Given every service of the marketscan image, and the image's default command
    # When each command line is checked against the real CLIs
    ran = {name: runs(name) for name in built_services()}
    ran["Dockerfile CMD"] = check_program(service_argv({"build": "."}), "Dockerfile CMD")
    # Then all of them check out, and together they run the whole system
    assert {"celery worker", "celery beat", "celery flower"} <= set(ran.values()), ran
    assert {"marketscan migrate", "alembic upgrade"} & set(ran.values()), ran
    assert ran["Dockerfile CMD"] == "celery worker"


def test_a_bad_option_is_caught_by_the_celery_check() -> None:
    # The check above is only worth something if it can fail.
    with pytest.raises(AssertionError, match="has no option --hostnam"):
        check_celery(["celery", "-A", "worker", "worker", "--hostnam=x"], "probe")
    with pytest.raises(AssertionError, match="has no option --persistant"):
        check_celery(["celery", "-A", "worker", "flower", "--persistant=True"], "probe")
    with pytest.raises(AssertionError, match=r"no `marketscan \.\.\. migrat` command"):
        check_marketscan(["marketscan", "migrat"], "probe")


def test_the_worker_has_a_fixed_hostname_and_time_to_finish_a_page() -> None:
    workers = services_running("celery worker")
    assert workers
    hostnames = []
    for name in workers:
        service = services()[name]
        hostname = options_of(service_argv(service)).get("--hostname", "")
        # %h, %n and ${...} would change with the container: restart recovery would miss.
        assert re.fullmatch(r"[\w.-]+@[\w.-]+", hostname), f"{name}: hostname {hostname!r}"
        hostnames.append(hostname)
        grace = duration_seconds(str(service.get("stop_grace_period", "10s")))
        assert grace > MIN_GRACE_SECONDS, f"{name}: stop_grace_period {grace}s"
        assert service.get("restart") == "unless-stopped", name
        # Two replicas would share one hostname, and each would reclaim the other's scans.
        assert service.get("deploy", {}).get("replicas", 1) == 1 and "scale" not in service
    assert len(hostnames) == len(set(hostnames)), f"workers share a hostname: {hostnames}"


def test_exactly_one_bot_kept_out_of_a_plain_up_until_it_has_a_token() -> None:
    # Two bots on one token take each other's updates; without a token the bot only exits.
    bots = services_running("marketscan bot")
    assert len(bots) == 1, bots
    assert services()[bots[0]].get("profiles"), "a plain `docker compose up` would start it"
    grace = duration_seconds(services()[bots[0]]["stop_grace_period"])
    assert grace >= 10, "SIGTERM lets the update in hand finish"


def test_exactly_one_beat_with_its_schedule_on_a_volume() -> None:
    beats = services_running("celery beat")
    assert len(beats) == 1, f"beat services: {beats}"
    service = services()[beats[0]]
    assert service.get("deploy", {}).get("replicas", 1) == 1 and "scale" not in service
    options = options_of(service_argv(service))
    assert_on_volume(service, options.get("--schedule") or options.get("-s", ""))


def test_flower_needs_credentials_keeps_state_and_listens_on_loopback_only() -> None:
    (name,) = services_running("celery flower")
    service = services()[name]
    options = options_of(service_argv(service))
    # Basic auth from a variable compose insists on (in the environment, out of `ps`)
    auth = environment_of(service).get("FLOWER_BASIC_AUTH") or options.get("--basic-auth", "")
    assert REQUIRED_VARIABLE.search(auth), f"{name}: basic auth is {auth!r}"
    assert options.get("--persistent") == "True"
    assert_on_volume(service, options.get("--db", ""))
    assert published_host_ips(service) == {"127.0.0.1"}, service.get("ports")


def test_every_published_port_is_bound_to_loopback() -> None:
    for name, service in services().items():
        assert published_host_ips(service) <= {"127.0.0.1"}, f"{name}: {service.get('ports')}"


def published_host_ips(service: Mapping[str, Any]) -> set[str]:
    """The host addresses of a service's published ports ("" for all interfaces)."""
    addresses = set()
    for port in service.get("ports", []):
        if isinstance(port, Mapping):
            addresses.add(str(port.get("host_ip", "")))
        else:
            parts = re.sub(r"\$\{[^}]*\}", "VARIABLE", str(port)).split(":")
            addresses.add(parts[0] if len(parts) == 3 else "")
    return addresses


def assert_on_volume(service: Mapping[str, Any], path: str) -> None:
    assert path.startswith("/"), f"not an absolute path: {path!r}"
    targets = [
        volume["target"] if isinstance(volume, Mapping) else volume.split(":")[1]
        for volume in service.get("volumes", [])
    ]
    assert any(path.startswith(target.rstrip("/") + "/") for target in targets), (
        f"{path} is not on a volume ({targets}): it would be lost with the container"
    )
    named = {
        volume.split(":")[0]
        for volume in service.get("volumes", [])
        if ":" in volume and not volume.startswith((".", "/"))
    }
    assert named <= set(compose().get("volumes") or {}), named


# --- dependencies and the services around Celery --------------------------------------


def test_workers_beat_and_the_bot_start_after_the_migration_succeeded() -> None:
    migrations = services_running("marketscan migrate")
    assert len(migrations) == 1, migrations
    (migrate,) = migrations
    assert services()[migrate].get("restart", "no") == "no", "a migration runs once"
    starters = ("celery worker", "celery beat", "marketscan bot")
    for name in [service for what in starters for service in services_running(what)]:
        depends_on = services()[name].get("depends_on")
        assert isinstance(depends_on, Mapping), f"{name}: depends_on needs conditions"
        assert depends_on.get(migrate, {}).get("condition") == "service_completed_successfully"
        for dependency, rule in depends_on.items():
            if dependency != migrate:
                assert rule.get("condition") == "service_healthy", f"{name} -> {dependency}"


def test_one_metrics_exporter_scraped_by_prometheus_with_the_rules_and_dashboard_mounted() -> None:
    # Given the exporter service: it runs `marketscan metrics` on the port Prometheus scrapes
    (exporter,) = services_running("marketscan metrics")
    argv = service_argv(services()[exporter])
    port = argv[argv.index("--port") + 1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "reachable from the prometheus service"
    depends_on = services()[exporter]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    # And Prometheus, whose mounted config scrapes it and loads the mounted rule file
    prometheus = services()["prometheus"]
    mounts = {
        target: ROOT / source
        for source, target, *_ in (volume.split(":") for volume in prometheus["volumes"])
        if source.startswith("./")
    }
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == [f"{exporter}:{port}"]
    assert config["scrape_configs"][0]["job_name"] == "marketscan", "the rules' job label"
    for rule_file in config["rule_files"]:
        assert mounts[rule_file].is_file(), rule_file
    assert mounts[config["rule_files"][0]] == ROOT / "deploy/prometheus/marketscan-rules.yml"
    # And Grafana, with the dashboard and its data source provisioned from the repository
    grafana = [v.split(":") for v in services()["grafana"]["volumes"] if v.startswith("./")]
    for source, _, *_ in grafana:
        assert (ROOT / source).exists(), source
    assert any(source.endswith("marketscan-dashboard.json") for source, *_ in grafana)


def test_redis_persists_every_message_and_reports_health() -> None:
    redis = services()["redis"]
    assert redis["image"].startswith("redis:7")
    argv = service_argv(redis)
    assert argv[argv.index("--appendonly") + 1] == "yes", argv
    assert_on_volume(redis, "/data/appendonlydir")
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])


def test_postgres_reports_health_with_pg_isready_and_keeps_its_data() -> None:
    postgres = services()["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert_on_volume(postgres, "/var/lib/postgresql/data/PG_VERSION")
    for variable in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert REQUIRED_VARIABLE.search(environment_of(postgres)[variable]), variable


# --- configuration ----------------------------------------------------------------------


def test_every_setting_but_the_credentials_reaches_every_process_of_the_image() -> None:
    settings = [name for name in settings_variables() if name not in SETTINGS_WITH_CREDENTIALS]
    assert "MARKETSCAN_LEASE_SECONDS" in settings
    assert set(settings_variables()) >= SETTINGS_WITH_CREDENTIALS, "a credential was renamed"
    for name, service in built_services().items():
        environment = environment_of(service)
        missing = [variable for variable in settings if variable not in environment]
        assert missing == [], f"{name} never receives {missing}"
        for variable in settings:
            assert VARIABLE.search(environment[variable]), f"{name}: {variable} is hard-coded"


def test_env_example_lists_every_variable_with_a_comment() -> None:
    names = [name for name, _, _ in env_example()]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(settings_variables()) - BUILT_BY_COMPOSE <= set(names)
    assert compose_variables() <= set(names), compose_variables() - set(names)
    undocumented = [name for name, _, comment in env_example() if not comment]
    assert undocumented == [], f"no comment above {undocumented}"


def test_env_example_shows_the_defaults_and_points_at_the_compose_services() -> None:
    # Given .env.example filled in, and the worker's environment compose builds from it
    example = filled_env_example()
    settings = Settings.from_env(interpolated(environment_of(services()["worker"]), example))
    # Every tunable shown is the built-in default, so the example documents them.
    defaults = Settings()
    tunables = replace(settings, database_url=defaults.database_url, broker_url=defaults.broker_url)
    assert tunables == defaults
    # And the connections name the compose services, as the application's role
    database = make_url(settings.database_url)
    broker = make_url(settings.broker_url)
    assert database.host in services() and broker.host in services()
    assert (database.username, database.password, database.database) == (
        example["MARKETSCAN_DB_USER"],
        example["MARKETSCAN_DB_PASSWORD"],
        example["POSTGRES_DB"],
    )
    assert broker.password == example["MARKETSCAN_REDIS_PASSWORD"]


def test_the_configuration_page_documents_every_variable() -> None:
    required = compose_variables() | set(env_example_values())
    missing = sorted(required - documented_variables())
    assert missing == [], f"docs/configuration.md's table does not list {missing}"


def test_the_configuration_page_shows_each_settings_default() -> None:
    # Given each field of Settings with its variable and default (DMarket's budgets have one
    # per auth mode), and the default docs/configuration.md's table gives it
    documented = documented_defaults()
    wrong = {}
    for item in fields(Settings):
        if item.name == "fee_configured":
            continue  # whether MARKETSCAN_FEE is set: the row is `fee`'s
        variable = settings.variable_of(item.name)
        unsigned = settings.default_of(item.name)
        signed = settings.default_of(item.name, signed=True)
        cell = documented.get(variable, "(not listed)")
        shown = re.findall(r"`([^`]+)`", cell)
        # Then a default of nothing reads "unset", a value is shown as the field holds it
        # (and as signing makes it, when it does), and only a list of values is told in words
        if unsigned in (None, (), frozenset()):
            right = cell == "unset"
        elif isinstance(unsigned, bool | int | float | str):
            expected = [unsigned] if signed == unsigned else [unsigned, signed]
            right = len(shown) == len(expected) and all(map(documents, shown, expected))
        else:
            right = not shown and cell not in ("unset", "(not listed)")
        if not right:
            wrong[variable] = f"{cell!r}, while the field's default is {unsigned!r}" + (
                f" ({signed!r} signed)" if signed != unsigned else ""
            )
    assert wrong == {}, f"docs/configuration.md's table: {wrong}"


# --- the image ---------------------------------------------------------------------------


def test_the_image_is_python_311_slim_runs_as_a_user_and_holds_the_runtime() -> None:
    instructions = dockerfile()
    assert instructions[0][0] == "FROM"
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", instructions[0][1]
    )
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    cmd_at = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "CMD")
    user_at = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "USER")
    assert user_at < cmd_at
    workdir = [arguments for keyword, arguments in instructions if keyword == "WORKDIR"]
    assert workdir[-1] == IMAGE_ROOT
    copied = {
        source.rstrip("/")
        for keyword, arguments in instructions
        if keyword == "COPY"
        for source in arguments.split()[:-1]
        if not source.startswith("--")
    }
    # What `celery -A worker`, `marketscan migrate` and `pip install .` need at run time.
    needed = {"pyproject.toml", "worker", "tasks", "models", "migrations", "celeryconfig.py"}
    assert needed | {"alembic.ini"} <= copied, needed - copied
    missing = sorted(source for source in copied if not (ROOT / source).exists())
    assert missing == [], f"the Dockerfile copies files the repository lacks: {missing}"
    assert any(
        keyword == "RUN" and re.search(r"\bpip install (\S+ )*\.(\s|$)", arguments)
        for keyword, arguments in instructions
    ), "the project is not installed from pyproject.toml"
