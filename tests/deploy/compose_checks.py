"""Static checks of a compose file (no Docker engine needed); each returns a list of problems."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from checks import has_healthcheck


def services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def dockerfile_of(service: Mapping[str, Any], base: Path) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    build = {"context": build} if isinstance(build, str) else build
    return (base / build.get("context", ".")).resolve() / build.get("dockerfile", "Dockerfile")


def built_from(compose: Mapping[str, Any], base: Path, dockerfile: Path) -> list[str]:
    """Services whose build uses this Dockerfile: one image may run as several services (one per role)."""
    return [name for name, svc in services(compose).items() if dockerfile_of(svc, base) == dockerfile]


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


def dependencies(svc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on") or {}
    return {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps


def depends_on_problems(compose: Mapping[str, Any], base: Path) -> list[str]:
    """Targets exist, wait conditions can be met, and always-on services don't need profiled ones."""
    problems = []
    for name, svc in services(compose).items():
        for dep, spec in dependencies(svc).items():
            problem = _dependency_problem(compose, base, svc, dep, spec or {})
            if problem:
                problems.append(f"{name}: {problem}")
    return problems


def _dependency_problem(
    compose: Mapping[str, Any], base: Path, svc: Mapping[str, Any], dep: str, spec: Mapping[str, Any]
) -> str | None:
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


def env_values(svc: Mapping[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    pairs = (e.partition("=")[::2] for e in env) if isinstance(env, list) else env.items()
    return {name: "" if value is None else str(value) for name, value in pairs}


ADDRESS_SUFFIXES = ("_BOOTSTRAP", "_URL", "_ADDR", "_DSN")


def hostnames(compose: Mapping[str, Any]) -> set[str]:
    """Names containers resolve on the compose network: service names, hostnames and network aliases."""
    names = set(services(compose))
    for svc in services(compose).values():
        names |= {svc["hostname"]} if svc.get("hostname") else set()
        networks = svc.get("networks") or {}
        if isinstance(networks, Mapping):
            names |= {alias for net in networks.values() for alias in (net or {}).get("aliases") or []}
    return names


def address_hosts(value: str) -> list[str]:
    """Hosts of a URL (scheme://host:port/path) or of a comma-separated host:port list (Kafka bootstrap)."""
    hosts = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        host = urlsplit(part).hostname if "://" in part else part.rsplit(":", 1)[0]
        hosts += [host] if host else []
    return hosts


def address_problems(compose: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Addresses the services are given (env names ending _BOOTSTRAP, _URL, _ADDR, _DSN) name a host of the compose
    network; localhost would be the container itself."""
    problems, known = [], hostnames(compose)
    for name in names:
        for key, value in env_values(services(compose).get(name, {})).items():
            if not key.upper().endswith(ADDRESS_SUFFIXES):
                continue
            problems += [
                f"{name}: {key}={value}: {host} is not a compose service, hostname or alias"
                for host in address_hosts(value)
                if host not in known
            ]
    return problems


def _command(svc: Mapping[str, Any]) -> list[str]:
    command = svc.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def _flag_values(command: list[str], flag: str) -> list[str]:
    """Values of `--flag=value` and `--flag value` in a command line."""
    values = [word.split("=", 1)[1] for word in command if word.startswith(f"{flag}=")]
    return values + [after for word, after in zip(command, command[1:], strict=False) if word == flag]


def _host_path(svc: Mapping[str, Any], base: Path, inside: str) -> Path | None:
    """The repository path bind-mounted at (or above) the in-container path `inside`."""
    for kind, source, target in mounts(svc):
        if kind == "bind" and (inside == target or inside.startswith(target.rstrip("/") + "/")):
            return (base / source).resolve() / inside[len(target) :].lstrip("/")
    return None


def is_triton(svc: Mapping[str, Any]) -> bool:
    command = _command(svc)
    return bool(command) and Path(command[0]).name == "tritonserver"


def triton_repository(svc: Mapping[str, Any], base: Path) -> Path | None:
    """The repository folder behind a tritonserver service's --model-repository, if it is bind-mounted and exists."""
    paths = [_host_path(svc, base, inside) for inside in _flag_values(_command(svc), "--model-repository")]
    return next((path for path in paths if path is not None and path.is_dir()), None)


def triton_models(svc: Mapping[str, Any], base: Path) -> dict[str, Path]:
    """Models a tritonserver service loads at start-up, each with the config file it uses: configs/<variant>.pbtxt
    under --model-config-name=<variant> where the model has one, else config.pbtxt. Names not in the repository map
    to a path that does not exist."""
    command, repository = _command(svc), triton_repository(svc, base)
    if repository is None:
        return {}
    loads = _flag_values(command, "--load-model")
    if "*" in loads or _flag_values(command, "--model-control-mode") in ([], ["none"], ["poll"]):
        loads = sorted(p.name for p in repository.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    variant = (_flag_values(command, "--model-config-name") or [None])[-1]
    models = {}
    for model in loads:
        custom = repository / model / "configs" / f"{variant}.pbtxt"
        models[model] = custom if variant and custom.is_file() else repository / model / "config.pbtxt"
    return models


def _reserves_gpu(svc: Mapping[str, Any]) -> bool:
    devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any("gpu" in d.get("capabilities", []) for d in devices)


def _uses_gpu(config: Path) -> bool:
    return config.is_file() and re.search(r"kind\s*:\s*KIND_GPU", config.read_text()) is not None


def triton_problems(compose: Mapping[str, Any], base: Path) -> list[str]:
    """Every tritonserver service reads a bind-mounted model repository that exists; each model it loads is in it
    with a config; a --model-config-name variant exists for some model. A server with a GPU reserved runs some
    model on it (KIND_GPU), and one without never loads a KIND_GPU config (the load would fail)."""
    problems = []
    for name, svc in services(compose).items():
        if not is_triton(svc):
            continue
        command, models = _command(svc), triton_models(svc, base)
        if triton_repository(svc, base) is None:
            problems.append(f"{name}: --model-repository is not a bind-mounted folder of the repository")
        elif not models:
            problems.append(f"{name}: loads no model at start-up")
        problems += [
            f"{name}: loads {model}, which is not in the repository or has no config.pbtxt"
            for model, config in models.items()
            if not config.is_file()
        ]
        for variant in _flag_values(command, "--model-config-name")[-1:]:
            if not any(config.parent.name == "configs" for config in models.values()):
                problems.append(f"{name}: --model-config-name={variant}, but no model has configs/{variant}.pbtxt")
        gpu_configs = [model for model, config in models.items() if _uses_gpu(config)]
        if _reserves_gpu(svc) and models and not gpu_configs:
            problems.append(f"{name}: reserves a GPU but loads no KIND_GPU model config (--model-config-name?)")
        if not _reserves_gpu(svc) and gpu_configs:
            problems.append(f"{name}: loads KIND_GPU configs of {gpu_configs} without a GPU reserved")
    return problems


def providers(compose: Mapping[str, Any], host: str) -> list[str]:
    """Services that answer to `host` on the compose network (service name, hostname or alias)."""
    return [name for name, svc in services(compose).items() if host in hostnames({"services": {name: svc}})]


def gpu_profile_problems(compose: Mapping[str, Any], profile: str = "gpu") -> list[str]:
    """Some service of the profile reserves an NVIDIA GPU."""
    for svc in services(compose).values():
        if profile in (svc.get("profiles") or []) and _reserves_gpu(svc):
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
