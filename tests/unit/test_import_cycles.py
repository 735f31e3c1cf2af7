"""The import-cycle check of `make lint` finds every circle, however it is written, and
the project has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from worker.devtools import import_cycles

ROOT = Path(__file__).resolve().parents[2]


def write_package(base: Path, modules: dict[str, str]) -> None:
    """Modules by dotted name, each with its source; packages get their __init__.py."""
    for name, source in modules.items():
        path = base.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in path.relative_to(base).parents:
            (base / package / "__init__.py").touch()
        path.write_text(source)


def test_a_circle_closed_inside_a_function_is_found_and_named(tmp_path: Path) -> None:
    # Given a root that imports its glue, whose publisher imports the root back in a function
    write_package(
        tmp_path,
        {
            "app.root": "from app.glue import signals\n",
            "app.glue.signals": "from app.glue.publisher import publish\n",
            "app.glue.publisher": "def publish():\n    from app.root import celery\n",
        },
    )
    # When the check runs over it
    found = import_cycles.cycles(tmp_path, ["app"])
    # Then the circle is named, module by module, back to where it began
    assert found == [["app.glue.publisher", "app.root", "app.glue.signals", "app.glue.publisher"]]


def test_relative_imports_type_checking_imports_and_a_name_of_a_package_count(
    tmp_path: Path,
) -> None:
    # Given three circles: relative, type-only, and through a package's submodule by name
    write_package(
        tmp_path,
        {
            "kit.a": "from . import b\n",
            "kit.b": "from .a import thing\n",
            "kit.c": "import typing\nif typing.TYPE_CHECKING:\n    from kit.d import D\n",
            "kit.d": "import kit.c\n",
            "kit.e": "from kit import f\n",
            "kit.f": "from kit.e import *\n",
        },
    )
    # When the check runs, Then each is found
    assert sorted(circle[0] for circle in import_cycles.cycles(tmp_path, ["kit"])) == [
        "kit.a",
        "kit.c",
        "kit.e",
    ]


def test_modules_that_import_downward_only_pass(tmp_path: Path) -> None:
    # Given a chain of imports with no way back, and a module that imports itself by name
    write_package(
        tmp_path,
        {
            "flat.top": "import flat.middle\nfrom flat import bottom\n",
            "flat.middle": "def later():\n    from flat.bottom import value\n",
            "flat.bottom": "import os\nimport flat.bottom\nvalue = 1\n",
        },
    )
    # Then no circle is reported
    assert import_cycles.cycles(tmp_path, ["flat"]) == []


def test_the_project_has_no_import_cycle() -> None:
    # Given worker/, tasks/, models/ and bench/ as they are
    # When `make lint`'s check runs over them
    done = subprocess.run(
        [sys.executable, "-m", "worker.devtools.import_cycles"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then it passes, naming none
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "no import cycle in worker, tasks, models, bench"
