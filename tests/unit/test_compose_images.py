"""Every image of the deployment is pinned to an exact version, so a rebuild cannot bring a
different server: no `latest`, no missing tag, no floating major or minor."""

from __future__ import annotations

import re

from tests.support.compose_file import ROOT, built_services, services

# PostgreSQL numbers its releases major.minor (16.6); the other images major.minor.patch.
VERSION_PARTS = {"postgres": 2}
DEFAULT_VERSION_PARTS = 3
# [registry/]name[:tag][@sha256:digest]
IMAGE_REFERENCE = re.compile(
    r"(?P<name>[a-z0-9][a-z0-9._/-]*)"
    r"(?::(?P<tag>\w[\w.-]*))?"
    r"(?:@sha256:(?P<digest>[0-9a-f]{64}))?"
)
VERSION_TAG = re.compile(r"v?(?P<version>\d+(?:\.\d+)*)(?:-[a-z0-9][a-z0-9.-]*)?")


def pin_problem(reference: str) -> str | None:
    """Why an image reference may change under a rebuild; None when it is exact."""
    match = IMAGE_REFERENCE.fullmatch(reference)
    if match is None:
        return f"{reference!r} is not an image reference"
    name, tag, digest = match.group("name", "tag", "digest")
    if digest is not None:
        return None
    if tag is None or tag == "latest":
        return f"{reference!r} floats: give an exact version"
    version = VERSION_TAG.fullmatch(tag)
    parts = VERSION_PARTS.get(name.rsplit("/", 1)[-1], DEFAULT_VERSION_PARTS)
    if version is None or version.group("version").count(".") + 1 < parts:
        return f"{reference!r} floats: {tag!r} is not a full version"
    return None


def dockerfile_bases() -> list[str]:
    return [
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.upper().startswith("FROM ")
    ]


def test_every_image_is_pinned_to_an_exact_version() -> None:
    # Given every image compose pulls, and the Dockerfile's base
    pulled = {
        name: service["image"] for name, service in services().items() if "build" not in service
    }
    assert set(pulled) == set(services()) - set(built_services()), "every service names its image"
    # Then each is an exact version (or a digest)
    problems = [pin_problem(image) for image in [*pulled.values(), *dockerfile_bases()]]
    assert [problem for problem in problems if problem] == []
    # And the image built here is named by a tag of its own, never latest
    for name, service in built_services().items():
        tag = str(service.get("image", "")).rpartition(":")[2]
        assert tag and tag != "latest" and "/" not in tag, (name, service.get("image"))


def test_the_pin_check_catches_floating_tags() -> None:
    # The check above is only worth something if it can fail.
    for floating in (
        "redis",
        "redis:latest",
        "redis:7",
        "postgres:16",
        "python:3.11-slim",
        "prom/prometheus:v2",
        "grafana/grafana:11.1",
        "redis:7-bookworm",
    ):
        assert pin_problem(floating), floating
    for exact in (
        "postgres:16.6-bookworm",
        "redis:7.4.1-bookworm",
        "prom/prometheus:v2.55.1",
        "grafana/grafana:11.3.1",
        "python:3.11.11-slim-bookworm",
        "redis@sha256:" + "0" * 64,
        "redis:7@sha256:" + "a" * 64,
    ):
        assert pin_problem(exact) is None, exact
