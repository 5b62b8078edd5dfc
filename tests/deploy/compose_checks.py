"""Static checks of a compose file (no Docker engine needed); each returns a list of problems."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from checks import has_healthcheck


def services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def dockerfile_of(service: Mapping[str, Any], base: Path) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    build = {"context": build} if isinstance(build, str) else build
    return (base / build.get("context", ".")).resolve() / build.get("dockerfile", "Dockerfile")


def compose_build_problems(compose: Mapping[str, Any], base: Path) -> list[str]:
    """Every service has an image or a build whose context and Dockerfile exist; images are pinned."""
    problems = []
    for name, svc in services(compose).items():
        dockerfile = dockerfile_of(svc, base)
        image = svc.get("image")
        if dockerfile is None and not image:
            problems.append(f"{name}: needs `image` or `build`")
        elif dockerfile is not None and not dockerfile.is_file():
            problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
        if image and dockerfile is None and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            problems.append(f"{name}: pin image {image} to a version tag")
    if "version" in compose:
        problems.append("the top-level `version` key is obsolete in the compose spec")
    return problems


def healthy(name: str, compose: Mapping[str, Any], base: Path) -> bool:
    """Whether the service has a healthcheck of its own or from its image's Dockerfile."""
    svc = services(compose)[name]
    check = svc.get("healthcheck")
    if check is not None:
        return not check.get("disable") and bool(check.get("test"))
    dockerfile = dockerfile_of(svc, base)
    return dockerfile is not None and dockerfile.is_file() and has_healthcheck(dockerfile)


def _dependencies(svc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on") or {}
    return {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps


def depends_on_problems(compose: Mapping[str, Any], base: Path) -> list[str]:
    """Targets exist, wait conditions can be met, and always-on services don't need profiled ones."""
    problems = []
    for name, svc in services(compose).items():
        for dep, spec in _dependencies(svc).items():
            problem = _dependency_problem(compose, base, svc, dep, spec or {})
            if problem:
                problems.append(f"{name}: {problem}")
    return problems


def _dependency_problem(compose: Mapping[str, Any], base: Path, svc: Mapping[str, Any], dep: str,
                        spec: Mapping[str, Any]) -> str | None:
    target = services(compose).get(dep)
    condition = spec.get("condition", "service_started")
    if target is None:
        return f"depends on undefined service {dep}"
    if condition == "service_healthy" and not healthy(dep, compose, base):
        return f"waits for {dep} to be healthy, but {dep} has no healthcheck"
    if condition == "service_completed_successfully" and target.get("restart", "no") not in ("no", "on-failure"):
        return f"waits for {dep} to complete, but {dep} restarts forever"
    if target.get("profiles") and not svc.get("profiles") and spec.get("required", True):
        return f"always runs but depends on {dep}, which only runs under a profile"
    return None


def mounts(svc: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(type, source, target) of each volume entry; short syntax is a bind when the source is a path."""
    for entry in svc.get("volumes") or []:
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            yield kind, source, rest.split(":")[0]
        else:
            yield entry.get("type", "volume"), entry.get("source", ""), entry.get("target", "")


def mount_problems(compose: Mapping[str, Any], base: Path) -> list[str]:
    """Bind-mount sources exist in the repository; named volumes are declared at the top level."""
    problems, declared = [], set(compose.get("volumes") or {})
    for name, svc in services(compose).items():
        for kind, source, _ in mounts(svc):
            if kind == "bind" and not (base / source).exists():
                problems.append(f"{name}: bind-mount source {source} does not exist")
            elif kind == "volume" and source and source not in declared:
                problems.append(f"{name}: named volume {source} is not declared under `volumes:`")
    return problems


def healthcheck_problems(compose: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Each named service exists and declares an enabled healthcheck in the compose file itself."""
    problems = []
    for name in names:
        check = services(compose).get(name, {}).get("healthcheck") or {}
        if name not in services(compose) or check.get("disable") or not check.get("test"):
            problems.append(f"{name}: needs a healthcheck")
    return problems


def published_ports(svc: Mapping[str, Any]) -> Iterator[tuple[str, int, str]]:
    """(host ip, host port, protocol) for every published port, ranges expanded."""
    for entry in svc.get("ports") or []:
        if isinstance(entry, Mapping):
            if entry.get("published"):
                yield entry.get("host_ip", ""), int(entry["published"]), entry.get("protocol", "tcp")
            continue
        spec, _, proto = str(entry).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue
        ip, published = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])
        low, _, high = published.partition("-")
        for port in range(int(low), int(high or low) + 1):
            yield ip.strip("[]"), port, proto or "tcp"


def host_port_problems(compose: Mapping[str, Any]) -> list[str]:
    """No two services (in any profile) publish the same host port on overlapping addresses."""
    problems, taken = [], {}
    for name, svc in services(compose).items():
        for ip, port, proto in published_ports(svc):
            for (other_ip, other_port, other_proto), owner in taken.items():
                wildcard = {ip, other_ip} & {"", "0.0.0.0", "::"}
                if (port, proto) == (other_port, other_proto) and (ip == other_ip or wildcard):
                    problems.append(f"{name}: host port {port}/{proto} already published by {owner}")
            taken[(ip, port, proto)] = name
    return problems


def env_names(svc: Mapping[str, Any]) -> list[str]:
    env = svc.get("environment") or {}
    return [e.split("=", 1)[0] for e in env] if isinstance(env, list) else list(env)


def gpu_profile_problems(compose: Mapping[str, Any], profile: str = "gpu") -> list[str]:
    """Some service of the profile reserves an NVIDIA GPU."""
    for svc in services(compose).values():
        devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        if profile in (svc.get("profiles") or []) and any("gpu" in d.get("capabilities", []) for d in devices):
            return []
    return [f"no service in profile {profile!r} reserves a GPU (deploy.resources.reservations.devices)"]


def reads_file_problems(compose: Mapping[str, Any], base: Path, name: str, path: Path) -> list[str]:
    """The service mounts the repository file `path` and names its in-container path in its command or env."""
    svc = services(compose).get(name)
    if svc is None:
        return [f"no service {name}"]
    said = json.dumps([svc.get("command"), svc.get("entrypoint"), svc.get("environment")])
    for kind, source, target in mounts(svc):
        host = (base / source).resolve()
        if kind == "bind" and (host == path or host in path.parents):
            inside = str(Path(target) / path.relative_to(host)) if host != path else target
            if inside in said:
                return []
            return [f"{name}: mounts {path.name} at {inside} but never tells the command about it"]
    return [f"{name}: does not mount {path}"]
