"""Closed doors in the Kubernetes manifests: every container that serves gRPC requires its bearer tokens from a
Secret that is not optional, refuses to start without them, serves TLS from a mounted Secret, and is probed over
HTTPS (kubelet's gRPC probes cannot speak TLS)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from k8s_checks import _env_values, containers, workloads

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def grpc_servers(docs: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(workload, container) for each container that declares a port named grpc."""
    return [
        (w, c)
        for w in workloads(docs)
        for c in containers(w)
        if any(p.get("name") == "grpc" for p in c.get("ports", []))
    ]


def door_problems(docs: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    docs = list(docs)
    maps = {(d.get("metadata") or {}).get("name"): d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    problems = []
    for workload, container in grpc_servers(docs):
        where = f"{workload['metadata']['name']}/{container.get('name')}"
        env = _env_values(container, maps)
        problems += [f"{where}: {p}" for p in _auth_problems(container, env, prefix)]
        problems += [f"{where}: {p}" for p in _tls_problems(workload, container, env, prefix)]
        problems += [f"{where}: {p}" for p in _probe_problems(container)]
    return problems


def optional_secret_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """No auth token Secret anywhere may be optional: a missing Secret must stop the pod, not open the API."""
    return [
        f"{w['metadata']['name']}/{c.get('name')}: {e['name']} comes from an optional Secret"
        for w in workloads(docs)
        for c in containers(w)
        for e in c.get("env", [])
        if e["name"].endswith("_AUTH_TOKENS") and ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("optional")
    ]


def _auth_problems(container: Mapping[str, Any], env: Mapping[str, str], prefix: str) -> list[str]:
    name = f"{prefix}AUTH_TOKENS"
    ref = next(
        ((e.get("valueFrom") or {}).get("secretKeyRef") for e in container.get("env", []) if e["name"] == name), None
    )
    problems = []
    if not ref:
        problems.append(f"{name} does not come from a Secret (secretKeyRef)")
    elif ref.get("optional"):
        problems.append(f"{name} comes from an optional Secret: without it the API would run open")
    if env.get(f"{prefix}REQUIRE_AUTH", "").lower() != "true":
        problems.append(f'{prefix}REQUIRE_AUTH is not "true": an empty token list would open the API')
    return problems


def _tls_problems(
    workload: Mapping[str, Any], container: Mapping[str, Any], env: Mapping[str, str], prefix: str
) -> list[str]:
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    mounts = [
        m["mountPath"].rstrip("/") + "/"
        for m in container.get("volumeMounts", [])
        if "secret" in volumes.get(m["name"], {}) and not volumes[m["name"]]["secret"].get("optional")
    ]
    problems = []
    for setting in ("TLS_CERTFILE", "TLS_KEYFILE"):
        path = env.get(f"{prefix}{setting}")
        if not path:
            problems.append(f"{prefix}{setting} is not set: gRPC would be plaintext")
        elif not any(path.startswith(m) for m in mounts):
            problems.append(f"{prefix}{setting}={path} is not inside a mounted, non-optional Secret volume")
    return problems


def _probe_problems(container: Mapping[str, Any]) -> list[str]:
    problems = []
    for kind in PROBES:
        probe = container.get(kind) or {}
        if (probe.get("httpGet") or {}).get("scheme") != "HTTPS":
            problems.append(f"{kind} is not an httpGet with scheme HTTPS (gRPC probes cannot speak TLS)")
    return problems
