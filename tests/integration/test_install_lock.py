"""The install is reproducible: what `make` installs is exactly what uv.lock pins.

Two fresh environments synced from the lock the way the Makefile syncs `.venv` list the same
packages at the same versions, each the version the lock names. The packages come from uv's
cache, which `make` filled when it built `.venv`, so this needs no network of its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
# What the Makefile installs for `make demo` and `make test`.
EXTRAS = ("--extra", "dev", "--extra", "embedded")


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def fresh_install(environment: Path) -> list[str]:
    """Sync a new environment from the lock as the Makefile does; its `pip freeze`."""
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(environment),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    subprocess.run(
        [str(UV), "sync", "--locked", "--quiet", "--python", sys.executable, *EXTRAS],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    frozen = subprocess.run(
        [str(UV), "pip", "freeze", "--python", str(environment / "bin" / "python")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted(line for line in frozen.splitlines() if not line.startswith("-e "))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_two_fresh_installs_of_one_commit_list_the_same_versions_the_lock_pins(
    tmp_path: Path,
) -> None:
    first = fresh_install(tmp_path / "first")
    second = fresh_install(tmp_path / "second")

    assert first == second
    pins = {canonical(name): version for name, version in locked_versions().items()}
    installed = dict(line.split("==", 1) for line in first)
    assert {"celery", "redis", "sqlalchemy", "pytest", "mypy", "pgserver"} <= {
        canonical(name) for name in installed
    }
    assert {canonical(name): version for name, version in installed.items()} == {
        canonical(name): pins[canonical(name)] for name in installed
    }


def test_the_running_environment_is_the_locked_one() -> None:
    """`.venv` (this interpreter's) holds the lock's versions, not whatever is newest."""
    frozen = subprocess.run(
        [str(UV), "pip", "freeze", "--python", sys.executable],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = {canonical(name): version for name, version in locked_versions().items()}
    for line in frozen.splitlines():
        if line.startswith("-e ") or "==" not in line:
            continue
        name, version = line.split("==", 1)
        if canonical(name) in {"uv", "pip"}:
            continue  # the bootstrap: uv from deploy/uv-requirements.txt, pip from venv
        assert pins.get(canonical(name)) == version, line
