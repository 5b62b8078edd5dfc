"""Each deploy check accepts a good artefact and fails on a broken one (a check that cannot fail proves nothing)."""

import copy
import textwrap

import pytest
import yaml

import checks
import compose_checks
import k8s_checks

GOOD_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
RUN uv sync --frozen --package kestrel-demo
FROM python:3.11-slim
COPY app.txt /app/
COPY --from=build /app/.venv /app/.venv
USER 10001:10001
EXPOSE 50051 9100
HEALTHCHECK CMD python -c "print(1)" \\
  || exit 1
ENTRYPOINT ["kestrel-demo"]
"""

PYPROJECT = '[project]\nname = "kestrel-demo"\n[project.scripts]\nkestrel-demo = "kestrel.demo:main"\n'


@pytest.fixture
def context(tmp_path):
    (tmp_path / "app.txt").write_text("x")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "Dockerfile").write_text(GOOD_DOCKERFILE)
    (tmp_path / ".dockerignore").write_text(".venv\n**/__pycache__\n")
    return tmp_path


def rewrite(path, old, new):
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def test_dockerfile_parser_joins_continuations_and_tracks_stages():
    instructions = checks.parse_dockerfile(GOOD_DOCKERFILE)
    assert [i.keyword for i in instructions][:3] == ["FROM", "RUN", "FROM"]
    assert instructions[-2].args.endswith("|| exit 1") and instructions[-1].stage == 1


def test_good_dockerfile_passes(context):
    dockerfile, pyproject = context / "Dockerfile", context / "pyproject.toml"
    assert checks.dockerfile_copy_problems(dockerfile, context) == []
    assert checks.entrypoint_problems(dockerfile, pyproject) == []
    assert checks.non_root_problems(dockerfile) == []
    assert checks.has_healthcheck(dockerfile) and checks.exposed_ports(dockerfile) == {50051, 9100}


def test_copy_of_a_missing_or_ignored_path_fails(context):
    rewrite(context / "Dockerfile", "COPY app.txt", "COPY missing.txt")
    assert "not in the build context" in checks.dockerfile_copy_problems(context / "Dockerfile", context)[0]
    rewrite(context / "Dockerfile", "COPY missing.txt", "COPY app.txt")
    (context / ".dockerignore").write_text("*.txt\n")
    assert "excluded by .dockerignore" in checks.dockerfile_copy_problems(context / "Dockerfile", context)[0]


@pytest.mark.parametrize("old, new, message", [
    ('["kestrel-demo"]', '["kestrel-other"]', "not in"),
    ('ENTRYPOINT ["kestrel-demo"]', "ENTRYPOINT kestrel-demo", "exec-form"),
    ("--package kestrel-demo", "--package kestrel-other", "uv sync --package"),
])
def test_entrypoint_not_declared_by_the_package_fails(context, old, new, message):
    rewrite(context / "Dockerfile", old, new)
    assert message in " ".join(checks.entrypoint_problems(context / "Dockerfile", context / "pyproject.toml"))


@pytest.mark.parametrize("user", ["USER root\n", "USER 0:0\n", ""])
def test_root_final_stage_fails(context, user):
    rewrite(context / "Dockerfile", "USER 10001:10001\n", user)
    assert checks.non_root_problems(context / "Dockerfile")


def test_env_names_of_the_final_stage(context):
    rewrite(context / "Dockerfile", "USER 10001:10001\n", "ENV A=1 B=\"two words\"\nENV LEGACY value\nUSER 1\n")
    assert checks.dockerfile_env_names(context / "Dockerfile") == ["A", "B", "LEGACY"]


def test_healthcheck_none_counts_as_none(context):
    rewrite(context / "Dockerfile", 'HEALTHCHECK CMD python -c "print(1)" \\\n  || exit 1', "HEALTHCHECK NONE")
    assert not checks.has_healthcheck(context / "Dockerfile")


def test_dockerignore_patterns_follow_docker_semantics():
    patterns = [".venv", "**/__pycache__", "docs", "!docs/keep.md"]
    assert checks.is_ignored("libs/x/__pycache__/a.pyc", patterns)
    assert checks.is_ignored(".venv/bin/python", patterns)
    assert not checks.is_ignored("docs/keep.md", patterns) and checks.is_ignored("docs/other.md", patterns)
    assert checks.dockerignore_problems(patterns, [".git"]) == [".dockerignore must exclude .git"]


# ---------------------------------------------------------------- compose

GOOD_COMPOSE = textwrap.dedent("""\
    services:
      db:
        image: postgres:16
        ports: ["127.0.0.1:5432:5432"]
        volumes: [db-data:/var/lib/postgresql/data, ./conf:/etc/conf:ro]
        healthcheck: {test: [CMD, pg_isready]}
      job:
        image: kestrel/tools:dev
        build: {context: ., dockerfile: Dockerfile}
        command: [apply, --file, /etc/conf/topics.yaml]
        volumes: [./conf:/etc/conf:ro]
        restart: "no"
      api:
        image: kestrel/api:dev
        build: {context: ., dockerfile: Dockerfile}
        environment: {KESTREL_API_PORT: "1"}
        ports: ["8000-8002:8000-8002"]
        depends_on:
          db: {condition: service_healthy}
          job: {condition: service_completed_successfully}
      gpu:
        image: nvcr.io/nvidia/tritonserver:24.10-py3
        profiles: [gpu]
        deploy: {resources: {reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}}}
    volumes:
      db-data:
    """)


@pytest.fixture
def compose(context):
    (context / "conf").mkdir()
    (context / "conf" / "topics.yaml").write_text("topics: []")
    return yaml.safe_load(GOOD_COMPOSE)


def all_compose_problems(compose, base):
    return (compose_checks.compose_build_problems(compose, base) + compose_checks.depends_on_problems(compose, base)
            + compose_checks.mount_problems(compose, base) + compose_checks.healthcheck_problems(compose, ["db"])
            + compose_checks.host_port_problems(compose) + compose_checks.gpu_profile_problems(compose)
            + compose_checks.reads_file_problems(compose, base, "job", base / "conf" / "topics.yaml")
            + checks.env_problems("api", compose_checks.env_names(compose["services"]["api"]), "KESTREL_API_"))


def test_good_compose_passes(compose, context):
    assert all_compose_problems(compose, context) == []


def broken(compose, path, value):
    """A copy of the compose document with the dotted `path` set to `value` (None deletes it)."""
    doc = copy.deepcopy(compose)
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


@pytest.mark.parametrize("path, value, message", [
    ("services.db.image", None, "needs `image` or `build`"),
    ("services.db.image", "postgres", "pin image"),
    ("services.job.build.dockerfile", "Missing.Dockerfile", "does not exist"),
    ("version", "3.9", "obsolete"),
    ("services.api.depends_on.nope", {"condition": "service_started"}, "undefined service"),
    ("services.db.healthcheck", None, "has no healthcheck"),
    ("services.job.restart", "unless-stopped", "restarts forever"),
    ("services.db.profiles", ["extra"], "only runs under a profile"),
    ("services.db.volumes", ["./missing:/x"], "does not exist"),
    ("services.db.volumes", ["undeclared:/x"], "not declared"),
    ("services.db.healthcheck", {"test": ["CMD", "true"], "disable": True}, "needs a healthcheck"),
    ("services.api.ports", ["5432:80"], "already published"),
    ("services.gpu.ports", ["127.0.0.1:8001:8001"], "already published"),
    ("services.api.environment", ["KESTREL_OTHER_PORT=1"], "does not start with"),
    ("services.gpu.profiles", ["cpu"], "reserves a GPU"),
    ("services.gpu.deploy", {}, "reserves a GPU"),
    ("services.job.command", ["apply"], "never tells"),
    ("services.job.volumes", [], "does not mount"),
])
def test_broken_compose_fails(compose, context, path, value, message):
    problems = all_compose_problems(broken(compose, path, value), context)
    assert any(message in p for p in problems), problems


def test_env_names_must_be_settings_fields():
    known = {"KESTREL_API_PORT"}
    assert checks.env_problems("api", ["KESTREL_API_PORT"], "KESTREL_API_", known) == []
    assert "not a settings field" in checks.env_problems("api", ["KESTREL_API_PROT"], "KESTREL_API_", known)[0]


def test_settings_env_names_come_from_the_settings_class():
    ingest = next(d for d in checks.DEPLOYABLES if d.name == "ingest")
    assert "KESTREL_INGEST_KAFKA_BOOTSTRAP" in checks.settings_env_names(ingest)


# ---------------------------------------------------------------- Kubernetes

GOOD_K8S = textwrap.dedent("""\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: demo, namespace: kestrel}
    data: {KESTREL_DEMO_PORT: "50051"}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: demo, namespace: kestrel}
    spec:
      selector: {matchLabels: {app: demo}}
      template:
        metadata: {labels: {app: demo, tier: api}}
        spec:
          securityContext: {runAsNonRoot: true}
          containers:
            - name: demo
              image: kestrel/demo
              ports: [{name: grpc, containerPort: 50051}, {name: metrics, containerPort: 9100}]
              envFrom: [{configMapRef: {name: demo}}]
              env: [{name: KESTREL_DEMO_TOKEN, value: x}]
              resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: "1", memory: 128Mi}}
              startupProbe: {grpc: {port: 50051}}
              readinessProbe: {grpc: {port: 50051}}
              livenessProbe: {httpGet: {port: metrics, path: /}}
              securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: demo, namespace: kestrel}
    spec:
      selector: {app: demo}
      ports: [{name: grpc, port: 50051, targetPort: grpc}, {name: metrics, port: 9100}]
    ---
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {name: demo, namespace: kestrel}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: demo}
      minReplicas: 2
      maxReplicas: 4
    ---
    apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: {name: demo, namespace: kestrel}
    spec: {maxUnavailable: 1, selector: {matchLabels: {app: demo}}}
    """)


@pytest.fixture
def manifests():
    return list(yaml.safe_load_all(GOOD_K8S))


def all_k8s_problems(docs):
    return (k8s_checks.metadata_problems(docs) + k8s_checks.selector_problems(docs) + k8s_checks.service_problems(docs)
            + k8s_checks.container_problems(docs) + k8s_checks.reference_problems(docs))


def test_good_manifests_pass(manifests):
    assert all_k8s_problems(manifests) == []
    assert k8s_checks.container_env_names(manifests) == ["KESTREL_DEMO_TOKEN", "KESTREL_DEMO_PORT"]


def kind(docs, name):
    return next(d for d in docs if d["kind"] == name)


def hpa(docs):
    return kind(docs, "HorizontalPodAutoscaler")


def container(docs):
    return kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


BREAKAGES = {
    "namespace": (lambda d: kind(d, "Service")["metadata"].pop("namespace"), "metadata.namespace"),
    "name": (lambda d: kind(d, "ConfigMap")["metadata"].pop("name"), "metadata.name"),
    "selector": (lambda d: kind(d, "Deployment")["spec"]["selector"]["matchLabels"].update(app="x"), "pod template"),
    "pdb": (lambda d: kind(d, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update(app="x"), "selects no"),
    "service": (lambda d: kind(d, "Service")["spec"]["selector"].update(app="x"), "matches no workload"),
    "target port": (lambda d: kind(d, "Service")["spec"]["ports"][0].update(targetPort="http"), "targetPort http"),
    "probe port": (lambda d: container(d)["readinessProbe"]["grpc"].update(port=50052), "port 50052"),
    "probe": (lambda d: container(d).pop("livenessProbe"), "no livenessProbe"),
    "limits": (lambda d: container(d)["resources"].pop("limits"), "limits.cpu"),
    "root": (lambda d: kind(d, "Deployment")["spec"]["template"]["spec"].pop("securityContext"), "runAsNonRoot"),
    "rootfs": (lambda d: container(d)["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
    "escalation": (lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilege"),
    "hpa target": (lambda d: hpa(d)["spec"]["scaleTargetRef"].update(name="x"), "Deployment/x"),
    "hpa bounds": (lambda d: hpa(d)["spec"].update(minReplicas=9), "minReplicas"),
    "configmap": (lambda d: d.remove(kind(d, "ConfigMap")), "ConfigMap demo does not exist"),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_broken_manifests_fail(manifests, breakage):
    mutate, message = BREAKAGES[breakage]
    mutate(manifests)
    problems = all_k8s_problems(manifests)
    assert any(message in p for p in problems), problems


@pytest.fixture
def kustomize_tree(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "kustomization.yaml").write_text("resources: [ns.yaml, app]\n")
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: kestrel}\n")
    (tmp_path / "app" / "kustomization.yaml").write_text("resources: [all.yaml]\n")
    (tmp_path / "app" / "all.yaml").write_text(GOOD_K8S)
    return tmp_path


def test_good_kustomization_passes(kustomize_tree):
    assert k8s_checks.kustomization_problems(kustomize_tree) == []
    assert len(k8s_checks.kustomize_manifests(kustomize_tree)) == 6


@pytest.mark.parametrize("edit, message", [
    (lambda root: (root / "ns.yaml").unlink(), "ns.yaml does not exist"),
    (lambda root: (root / "app" / "kustomization.yaml").unlink(), "without kustomization.yaml"),
    (lambda root: (root / "app" / "extra.yaml").write_text("kind: X\n"), "extra.yaml is not listed"),
])
def test_broken_kustomization_fails(kustomize_tree, edit, message):
    edit(kustomize_tree)
    assert any(message in p for p in k8s_checks.kustomization_problems(kustomize_tree))
