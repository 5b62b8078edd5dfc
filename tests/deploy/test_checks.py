"""Each deploy check accepts a good artefact and fails on a broken one (a check that cannot fail proves nothing)."""

import copy
import textwrap

import checks
import compose_checks
import k8s_checks
import pytest
import yaml

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


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('["kestrel-demo"]', '["kestrel-other"]', "not in"),
        ('ENTRYPOINT ["kestrel-demo"]', "ENTRYPOINT kestrel-demo", "exec-form"),
        ("--package kestrel-demo", "--package kestrel-other", "uv sync --package"),
    ],
)
def test_entrypoint_not_declared_by_the_package_fails(context, old, new, message):
    rewrite(context / "Dockerfile", old, new)
    assert message in " ".join(checks.entrypoint_problems(context / "Dockerfile", context / "pyproject.toml"))


@pytest.mark.parametrize("user", ["USER root\n", "USER 0:0\n", ""])
def test_root_final_stage_fails(context, user):
    rewrite(context / "Dockerfile", "USER 10001:10001\n", user)
    assert checks.non_root_problems(context / "Dockerfile")


def test_env_names_of_the_final_stage(context):
    rewrite(context / "Dockerfile", "USER 10001:10001\n", 'ENV A=1 B="two words"\nENV LEGACY value\nUSER 1\n')
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
        environment: {KESTREL_API_PORT: "1", KESTREL_API_DB_URL: "postgres://db:5432/x", KESTREL_API_ADDR: "gpu:8001"}
        ports: ["8000-8002:8000-8002"]
        depends_on:
          db: {condition: service_healthy}
          job: {condition: service_completed_successfully}
      gpu:
        image: nvcr.io/nvidia/tritonserver:24.10-py3
        command: [tritonserver, --model-repository=/models, --model-control-mode=explicit, --load-model=m,
                  --model-config-name=gpu]
        volumes: [./models:/models:ro]
        profiles: [gpu]
        deploy: {resources: {reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}}}
    volumes:
      db-data:
    """)


@pytest.fixture
def compose(context):
    (context / "conf").mkdir()
    (context / "conf" / "topics.yaml").write_text("topics: []")
    (context / "models" / "m" / "configs").mkdir(parents=True)
    for config, kind_ in (("config.pbtxt", "KIND_CPU"), ("configs/gpu.pbtxt", "KIND_GPU")):
        (context / "models" / "m" / config).write_text(f'name: "m"\ninstance_group [ {{ kind: {kind_} }} ]\n')
    return yaml.safe_load(GOOD_COMPOSE)


def all_compose_problems(compose, base):
    return (
        compose_checks.compose_build_problems(compose, base)
        + compose_checks.depends_on_problems(compose, base)
        + compose_checks.mount_problems(compose, base)
        + compose_checks.healthcheck_problems(compose, ["db"])
        + compose_checks.host_port_problems(compose)
        + compose_checks.gpu_profile_problems(compose)
        + compose_checks.reads_file_problems(compose, base, "job", base / "conf" / "topics.yaml")
        + checks.env_problems("api", compose_checks.env_names(compose["services"]["api"]), "KESTREL_API_")
        + compose_checks.address_problems(compose, ["api"])
        + compose_checks.triton_problems(compose, base)
    )


def test_good_compose_passes(compose, context):
    assert all_compose_problems(compose, context) == []
    assert compose_checks.built_from(compose, context, context / "Dockerfile") == ["job", "api"]
    assert list(compose_checks.triton_models(compose["services"]["gpu"], context)) == ["m"]
    assert compose_checks.triton_models(compose["services"]["gpu"], context)["m"].name == "gpu.pbtxt"


@pytest.mark.parametrize(
    "value, hosts",
    [
        ("kafka:9092", ["kafka"]),
        ("k1:9092, k2:9092", ["k1", "k2"]),
        ("http://schema-registry:8081", ["schema-registry"]),
        ("rediss://:secret@redis:6380/0", ["redis"]),
        ("", []),
    ],
)
def test_address_hosts(value, hosts):
    assert compose_checks.address_hosts(value) == hosts


def test_network_aliases_are_hostnames():
    compose = {"services": {"a": {"networks": {"default": {"aliases": ["b"]}}}, "c": {"hostname": "d"}}}
    assert compose_checks.hostnames(compose) == {"a", "b", "c", "d"}
    assert compose_checks.providers(compose, "b") == ["a"]


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


@pytest.mark.parametrize(
    "path, value, message",
    [
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
        ("services.api.environment", {"KESTREL_API_DB_URL": "postgres://localhost:5432/x"}, "localhost is not a"),
        ("services.api.environment", {"KESTREL_API_ADDR": "gpu2:8001"}, "gpu2 is not a"),
        ("services.gpu.volumes", [], "not a bind-mounted folder"),
        (
            "services.gpu.command",
            ["tritonserver", "--model-repository=/models", "--model-control-mode=explicit"],
            "loads no model",
        ),
        (
            "services.gpu.command",
            ["tritonserver", "--model-repository=/models", "--model-control-mode=explicit", "--load-model=nope"],
            "nope, which is",
        ),
        (
            "services.gpu.command",
            ["tritonserver", "--model-repository=/models", "--model-config-name=h100"],
            "no model has configs/h100.pbtxt",
        ),
        ("services.gpu.command", ["tritonserver", "--model-repository=/models"], "loads no KIND_GPU"),
        ("services.gpu.deploy", {}, "without a GPU reserved"),
    ],
)
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
    data: {KESTREL_DEMO_PORT: "50051", KESTREL_DEMO_GRPC_PORT: "50051"}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: demo, namespace: kestrel, annotations: {kestrel.io/consumes: demo.v1}}
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


KUSTOMIZATION = {"images": [{"name": "kestrel/demo", "newTag": "0.1.0"}]}


def all_k8s_problems(docs):
    return (
        k8s_checks.metadata_problems(docs)
        + k8s_checks.selector_problems(docs)
        + k8s_checks.service_problems(docs)
        + k8s_checks.container_problems(docs)
        + k8s_checks.reference_problems(docs)
        + k8s_checks.overlap_problems(docs)
        + k8s_checks.consumer_scaling_problems(docs, {"demo.v1": 4})
        + k8s_checks.port_setting_problems(docs, "KESTREL_DEMO_")
        + k8s_checks.image_problems(docs, KUSTOMIZATION, "kestrel/demo")
    )


def test_good_manifests_pass(manifests):
    assert all_k8s_problems(manifests) == []
    assert k8s_checks.container_env_names(manifests) == [
        "KESTREL_DEMO_TOKEN",
        "KESTREL_DEMO_PORT",
        "KESTREL_DEMO_GRPC_PORT",
    ]


def test_an_unpinned_image_fails(manifests):
    assert "does not pin" in k8s_checks.image_problems(manifests, {"images": []}, "kestrel/demo")[0]


def kind(docs, name):
    return next(d for d in docs if d["kind"] == name)


def hpa(docs):
    return kind(docs, "HorizontalPodAutoscaler")


def container(docs):
    return kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def add_copy(docs, kind_name, name):
    """A second object of that kind, renamed, otherwise identical (so it selects the same pods)."""
    clone = copy.deepcopy(kind(docs, kind_name))
    clone["metadata"]["name"] = name
    docs.append(clone)
    return clone


def add_worker(docs):
    """A second role of the same app that serves no gRPC, with selectors kept apart."""
    kind(docs, "Deployment")["spec"]["selector"]["matchLabels"]["tier"] = "api"
    worker = add_copy(docs, "Deployment", "worker")
    worker["spec"]["selector"]["matchLabels"]["tier"] = "worker"
    worker["spec"]["template"]["metadata"]["labels"]["tier"] = "worker"
    worker["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "metrics", "containerPort": 9100}]


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
    "service role": (add_worker, "targetPort grpc is not a container port of Deployment/worker"),
    "overlap": (lambda d: add_copy(d, "Deployment", "demo-2"), "also matches the pods of Deployment/demo-2"),
    "two pdbs": (lambda d: add_copy(d, "PodDisruptionBudget", "demo-2"), "more than one PodDisruptionBudget"),
    "two hpas": (lambda d: add_copy(d, "HorizontalPodAutoscaler", "demo-2"), "more than one HorizontalPodAutoscaler"),
    "consumer hpa": (lambda d: hpa(d)["spec"].update(maxReplicas=5), "maxReplicas 5 exceeds the 4 partitions"),
    "consumer replicas": (lambda d: kind(d, "Deployment")["spec"].update(replicas=8), "replicas 8 exceeds"),
    "topic": (
        lambda d: kind(d, "Deployment")["metadata"]["annotations"].update({"kestrel.io/consumes": "x.v1"}),
        "x.v1, which is not in the topic catalogue",
    ),
    "port setting": (
        lambda d: kind(d, "ConfigMap")["data"].update(KESTREL_DEMO_GRPC_PORT="50052"),
        "container port grpc is 50051",
    ),
    "image": (lambda d: container(d).update(image="kestrel/other"), "image kestrel/other is not kestrel/demo"),
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


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda root: (root / "ns.yaml").unlink(), "ns.yaml does not exist"),
        (lambda root: (root / "app" / "kustomization.yaml").unlink(), "without kustomization.yaml"),
        (lambda root: (root / "app" / "extra.yaml").write_text("kind: X\n"), "extra.yaml is not listed"),
    ],
)
def test_broken_kustomization_fails(kustomize_tree, edit, message):
    edit(kustomize_tree)
    assert any(message in p for p in k8s_checks.kustomization_problems(kustomize_tree))
