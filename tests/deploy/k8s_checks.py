"""Static checks of Kubernetes manifests and kustomizations; each returns a list of problems."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from checks import NAMESPACE, load_documents, load_yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def kustomization_problems(folder: Path) -> list[str]:
    """Listed resources exist, nested folders are kustomizations, and no manifest is left unlisted."""
    kustomization = load_yaml(folder / "kustomization.yaml")
    listed = kustomization.get("resources") or []
    problems = []
    for entry in listed:
        target = folder / entry
        if target.is_dir():
            problems += (
                kustomization_problems(target)
                if (target / "kustomization.yaml").is_file()
                else [f"{folder}: resource {entry} is a folder without kustomization.yaml"]
            )
        elif not target.is_file():
            problems.append(f"{folder}: resource {entry} does not exist")
    for manifest in sorted(folder.glob("*.yaml")):
        if manifest.name != "kustomization.yaml" and manifest.name not in listed:
            problems.append(f"{folder}: {manifest.name} is not listed in kustomization.yaml")
    return problems


def kustomize_manifests(folder: Path) -> list[dict[str, Any]]:
    """Every manifest a kustomization reaches, following nested folders (no patches are applied)."""
    docs: list[dict[str, Any]] = []
    for entry in load_yaml(folder / "kustomization.yaml").get("resources") or []:
        target = folder / entry
        docs += kustomize_manifests(target) if target.is_dir() else load_documents(target)
    return docs


def _ident(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def metadata_problems(docs: Iterable[Mapping[str, Any]], namespace: str = NAMESPACE) -> list[str]:
    """apiVersion, kind and metadata.name everywhere; namespaced kinds say their namespace explicitly."""
    problems = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        if not doc.get("apiVersion") or not doc.get("kind") or not meta.get("name"):
            problems.append(f"{_ident(doc)}: needs apiVersion, kind and metadata.name")
        elif doc["kind"] not in CLUSTER_SCOPED and meta.get("namespace") != namespace:
            problems.append(f"{_ident(doc)}: metadata.namespace must be {namespace}")
    return problems


def workloads(docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [d for d in docs if d.get("kind") in WORKLOADS]


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"].get("labels") or {}


def containers(workload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selector_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """A workload's selector matches its own pod template, and a PDB selects some workload."""
    docs = list(docs)
    problems = [
        f"{_ident(w)}: spec.selector does not match the pod template labels"
        for w in workloads(docs)
        if not _selects(w["spec"].get("selector", {}).get("matchLabels", {}), pod_labels(w))
    ]
    for pdb in (d for d in docs if d.get("kind") == "PodDisruptionBudget"):
        selector = pdb["spec"].get("selector", {}).get("matchLabels", {})
        if not any(_selects(selector, pod_labels(w)) for w in workloads(docs)):
            problems.append(f"{_ident(pdb)}: selects no workload's pods")
    return problems


def _port_known(port: Any, ports: list[Mapping[str, Any]]) -> bool:
    return any(port in (p.get("containerPort"), p.get("name")) for p in ports)


def service_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """A Service selects some workload's pods, and each targetPort is a container port of every workload it selects
    (a Service that also selects another role's pods would send traffic to pods that do not listen)."""
    docs, problems = list(docs), []
    for svc in (d for d in docs if d.get("kind") == "Service"):
        matched = [w for w in workloads(docs) if _selects(svc["spec"].get("selector") or {}, pod_labels(w))]
        if not matched:
            problems.append(f"{_ident(svc)}: selector matches no workload's pod labels")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port.get("port"))
            problems += [
                f"{_ident(svc)}: targetPort {target} is not a container port of {_ident(w)}"
                for w in matched
                if not _port_known(target, [p for c in containers(w) for p in c.get("ports", [])])
            ]
    return problems


def overlap_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Workloads own disjoint pods: no workload's selector matches another's pod labels (their controllers would
    fight over the pods), at most one PDB covers a workload's pods (the eviction API refuses pods with several),
    and at most one HPA scales a workload."""
    docs = list(docs)
    problems = [
        f"{_ident(w)}: spec.selector also matches the pods of {_ident(other)}"
        for w in workloads(docs)
        for other in workloads(docs)
        if other is not w and _selects(w["spec"].get("selector", {}).get("matchLabels", {}), pod_labels(other))
    ]
    pdbs = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    for w in workloads(docs):
        covering = [
            _ident(p) for p in pdbs if _selects(p["spec"].get("selector", {}).get("matchLabels", {}), pod_labels(w))
        ]
        if len(covering) > 1:
            problems.append(f"{_ident(w)}: its pods are selected by more than one PodDisruptionBudget: {covering}")
        scalers = [_ident(h) for h in _hpas_of(w, docs)]
        if len(scalers) > 1:
            problems.append(f"{_ident(w)}: scaled by more than one HorizontalPodAutoscaler: {scalers}")
    return problems


def _hpas_of(workload: Mapping[str, Any], docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        d
        for d in docs
        if d.get("kind") == "HorizontalPodAutoscaler"
        and (d["spec"].get("scaleTargetRef", {}).get("kind"), d["spec"].get("scaleTargetRef", {}).get("name"))
        == (workload.get("kind"), workload["metadata"].get("name"))
    ]


CONSUMES = "kestrel.io/consumes"
"""Workload annotation: the topics (comma-separated) it reads in one consumer group."""


def consumer_scaling_problems(docs: Iterable[Mapping[str, Any]], partitions: Mapping[str, int]) -> list[str]:
    """A workload annotated kestrel.io/consumes reads catalogue topics and never runs more replicas (its own, or its
    HPA's maxReplicas) than the smallest partition count among them: the rest would sit idle in the group."""
    docs, problems = list(docs), []
    for w in workloads(docs):
        annotation = ((w.get("metadata") or {}).get("annotations") or {}).get(CONSUMES) or ""
        topics = [t.strip() for t in annotation.split(",") if t.strip()]
        problems += [
            f"{_ident(w)}: consumes {t}, which is not in the topic catalogue" for t in topics if t not in partitions
        ]
        ceiling = min((partitions[t] for t in topics if t in partitions), default=None)
        if ceiling is None:
            continue
        counts = [("replicas", w["spec"]["replicas"])] if "replicas" in w["spec"] else []
        counts += [(f"{_ident(h)} maxReplicas", h["spec"].get("maxReplicas", 0)) for h in _hpas_of(w, docs)]
        problems += [
            f"{_ident(w)}: {what} {count} exceeds the {ceiling} partitions of {', '.join(topics)}"
            for what, count in counts
            if count > ceiling
        ]
    return problems


def image_problems(docs: Iterable[Mapping[str, Any]], kustomization: Mapping[str, Any], image: str) -> list[str]:
    """Every container runs `image` (untagged in the manifests), and the kustomization pins its tag or digest."""
    problems = [
        f"{_ident(w)}/{c.get('name')}: image {c.get('image')} is not {image}"
        for w in workloads(docs)
        for c in containers(w)
        if c.get("image") != image
    ]
    pins = [i for i in kustomization.get("images") or [] if i.get("name") == image]
    if not any(i.get("newTag") or i.get("digest") for i in pins):
        problems.append(f"kustomization: images does not pin a newTag or digest for {image}")
    return problems


def _env_values(container: Mapping[str, Any], maps: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Literal env of a container: its ConfigMaps (envFrom) first, then `env` values, which win."""
    values = {
        k: str(v)
        for s in container.get("envFrom", [])
        if "configMapRef" in s
        for k, v in maps.get(s["configMapRef"].get("name"), {}).items()
    }
    values |= {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    return values


def port_setting_problems(docs: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    """A port setting <prefix><NAME>_PORT given to a container equals its container port named <name> (grpc,
    health, metrics), so the process listens where Services and probes look."""
    docs, problems = list(docs), []
    maps = {(d.get("metadata") or {}).get("name"): d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    for w in workloads(docs):
        for c in containers(w):
            declared = {str(p.get("name", "")).lower(): p.get("containerPort") for p in c.get("ports", [])}
            for key, value in _env_values(c, maps).items():
                if not (key.startswith(prefix) and key.endswith("_PORT")):
                    continue
                name = key[len(prefix) : -len("_PORT")].lower()
                if name in declared and str(declared[name]) != value:
                    problems.append(
                        f"{_ident(w)}/{c.get('name')}: {key}={value} but container port {name} is {declared[name]}"
                    )
    return problems


def container_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Probes use declared ports; cpu/memory requests and limits are set; the container runs locked down."""
    problems = []
    for workload in workloads(docs):
        pod_security = workload["spec"]["template"]["spec"].get("securityContext") or {}
        for c in containers(workload):
            where = f"{_ident(workload)}/{c.get('name')}"
            problems += _probe_problems(where, c) + _resource_problems(where, c)
            problems += _security_problems(where, c.get("securityContext") or {}, pod_security)
    return problems


def _probe_problems(where: str, container: Mapping[str, Any]) -> list[str]:
    problems = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if probe is None:
            problems.append(f"{where}: no {kind}")
            continue
        for handler in ("grpc", "httpGet", "tcpSocket"):
            port = (probe.get(handler) or {}).get("port")
            if port is not None and not _port_known(port, container.get("ports", [])):
                problems.append(f"{where}: {kind} uses port {port}, which the container does not declare")
    return problems


def _resource_problems(where: str, container: Mapping[str, Any]) -> list[str]:
    resources = container.get("resources") or {}
    return [
        f"{where}: resources.{kind}.{res} is not set"
        for kind in ("requests", "limits")
        for res in ("cpu", "memory")
        if not (resources.get(kind) or {}).get(res)
    ]


def _security_problems(where: str, ctx: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    problems = []
    if not ctx.get("runAsNonRoot", pod.get("runAsNonRoot")):
        problems.append(f"{where}: runAsNonRoot is not true")
    if not ctx.get("readOnlyRootFilesystem"):
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if ctx.get("allowPrivilegeEscalation", True):
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    return problems


def reference_problems(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """HPAs scale an existing workload within sane bounds; ConfigMaps loaded with envFrom exist."""
    docs = list(docs)
    names = {(d.get("kind"), d["metadata"].get("name")) for d in docs if d.get("metadata")}
    problems = [p for hpa in docs if hpa.get("kind") == "HorizontalPodAutoscaler" for p in _hpa_problems(hpa, names)]
    for workload in workloads(docs):
        refs = [s["configMapRef"] for c in containers(workload) for s in c.get("envFrom", []) if "configMapRef" in s]
        problems += [
            f"{_ident(workload)}: envFrom ConfigMap {ref['name']} does not exist"
            for ref in refs
            if not ref.get("optional") and ("ConfigMap", ref["name"]) not in names
        ]
    return problems


def _hpa_problems(hpa: Mapping[str, Any], names: set[tuple[str, str]]) -> list[str]:
    spec, problems = hpa["spec"], []
    ref = spec.get("scaleTargetRef", {})
    if (ref.get("kind"), ref.get("name")) not in names:
        problems.append(f"{_ident(hpa)}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist")
    if spec.get("minReplicas", 1) > spec.get("maxReplicas", 0):
        problems.append(f"{_ident(hpa)}: minReplicas exceeds maxReplicas")
    return problems


def container_env_names(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Env names a workload sets: its explicit env plus the keys of ConfigMaps it loads with envFrom."""
    docs = list(docs)
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    names = []
    for c in (c for w in workloads(docs) for c in containers(w)):
        names += [e["name"] for e in c.get("env", [])]
        names += [k for s in c.get("envFrom", []) for k in maps.get((s.get("configMapRef") or {}).get("name"), {})]
    return names
