"""Static checks of compose as a stack of services, each deployable alone: what it runs, what it starts with it."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from checks import exec_form, final_stage, parse_dockerfile
from compose_checks import (
    ADDRESS_SUFFIXES,
    address_hosts,
    dependencies,
    dockerfile_of,
    env_values,
    healthy,
    providers,
    services,
)

PENDING = {"retrain-trigger": Path(__file__).resolve().parents[2] / "services" / "retrain-trigger" / "Dockerfile"}
"""Compose services whose image another branch of issue 13 is adding: their build is checked once it exists."""


def pending(name: str) -> bool:
    return name in PENDING and not PENDING[name].is_file()


def started_with(compose: Mapping[str, Any], name: str) -> set[str]:
    """Services `docker compose up <name>` starts: the service and its depends_on, transitively."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen and current in services(compose):
            seen.add(current)
            todo += list(dependencies(services(compose)[current]))
    return seen


def unstarted_address_problems(compose: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Each service deploys alone: every host its addresses name is started with it (depends_on, transitively)."""
    problems = []
    for name in names:
        started = started_with(compose, name)
        for key, value in env_values(services(compose).get(name, {})).items():
            hosts = address_hosts(value) if key.upper().endswith(ADDRESS_SUFFIXES) else []
            problems += [
                f"{name}: {key} names {host}, which `up {name}` does not start (add it to depends_on)"
                for host in hosts
                if not set(providers(compose, host)) & started
            ]
    return problems


def entrypoint(svc: Mapping[str, Any], base: Path) -> list[str]:
    """What the container runs first: the service's `entrypoint`, else its image's exec-form ENTRYPOINT."""
    own = svc.get("entrypoint")
    if own:
        return shlex.split(own) if isinstance(own, str) else [str(word) for word in own]
    dockerfile = dockerfile_of(svc, base)
    if dockerfile is None or not dockerfile.is_file():
        return []
    entries = [
        exec_form(i.args) for i in final_stage(parse_dockerfile(dockerfile.read_text())) if i.keyword == "ENTRYPOINT"
    ]
    return (entries[-1] or []) if entries else []


def service_problems(
    compose: Mapping[str, Any], base: Path, name: str, scripts: Iterable[str], script: str | None = None
) -> list[str]:
    """The service exists, runs a console script of its package (`script` when given) and has a healthcheck."""
    if name not in services(compose):
        return [f"no compose service {name}"]
    problems, command = [], entrypoint(services(compose)[name], base)
    if not command or command[0] not in set(scripts):
        problems.append(f"{name}: runs {command[:1]}, not a console script of its package")
    elif script is not None and command[0] != script:
        problems.append(f"{name}: runs {command[0]}, expected {script}")
    if not healthy(name, compose, base):
        problems.append(f"{name}: no healthcheck, its own or its image's")
    return problems


def container_ports(svc: Mapping[str, Any]) -> set[int]:
    """Container-side ports the service publishes or `expose`s."""
    ports = set()
    for entry in [*(svc.get("ports") or []), *(svc.get("expose") or [])]:
        spec = str(entry["target"]) if isinstance(entry, Mapping) else str(entry).split("/")[0].rsplit(":", 1)[-1]
        low, _, high = spec.partition("-")
        ports |= set(range(int(low), int(high or low) + 1))
    return ports
