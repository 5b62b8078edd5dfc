"""infra/k8s: every manifest parses and hangs together (selectors, ports, probes, references)."""

import shutil
import subprocess

import pytest
from checks import (
    DEPLOYABLES,
    K8S_ROOT,
    REPO_ROOT,
    env_problems,
    exposed_ports,
    load_documents,
    load_yaml,
    project_table,
    settings_env_names,
    topic_partitions,
)
from k8s_checks import (
    consumer_scaling_problems,
    container_env_names,
    container_problems,
    containers,
    image_problems,
    kustomization_problems,
    kustomize_manifests,
    metadata_problems,
    overlap_problems,
    port_setting_problems,
    reference_problems,
    selector_problems,
    service_problems,
    workloads,
)

ON_K8S = [d for d in DEPLOYABLES if d.k8s]
by_name = pytest.mark.parametrize("deployable", ON_K8S, ids=lambda d: d.name)


@pytest.fixture(scope="module")
def manifests():
    return kustomize_manifests(K8S_ROOT)


def test_kustomizations_list_existing_files_and_nothing_is_left_out():
    assert kustomization_problems(K8S_ROOT) == []


def test_every_manifest_parses_with_identity_and_namespace():
    docs = [
        d
        for path in sorted(K8S_ROOT.rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        for d in load_documents(path)
    ]
    assert docs
    assert metadata_problems(docs) == []


def test_selectors_match_pod_labels(manifests):
    assert selector_problems(manifests) == []


def test_services_select_pods_and_target_their_ports(manifests):
    assert service_problems(manifests) == []


def test_containers_have_probes_resources_and_a_locked_down_context(manifests):
    assert container_problems(manifests) == []


def test_hpas_and_configmap_references_resolve(manifests):
    assert reference_problems(manifests) == []


def test_workloads_own_disjoint_pods_with_one_pdb_and_one_hpa_each(manifests):
    assert overlap_problems(manifests) == []


def test_kafka_consumers_scale_within_their_topics_partitions(manifests):
    assert consumer_scaling_problems(manifests, topic_partitions()) == []


@by_name
def test_service_is_part_of_the_root_kustomization(deployable):
    assert deployable.name in load_yaml(K8S_ROOT / "kustomization.yaml")["resources"]


@by_name
def test_env_uses_the_service_prefix(deployable):
    names = container_env_names(kustomize_manifests(deployable.k8s_dir))
    assert env_problems(deployable.name, names, deployable.env_prefix, settings_env_names(deployable)) == []


@by_name
def test_every_container_runs_the_pinned_image(deployable):
    docs = kustomize_manifests(deployable.k8s_dir)
    assert workloads(docs)
    assert image_problems(docs, load_yaml(deployable.k8s_dir / "kustomization.yaml"), deployable.image) == []


@by_name
def test_port_settings_match_the_named_container_ports(deployable):
    assert port_setting_problems(kustomize_manifests(deployable.k8s_dir), deployable.env_prefix) == []


@by_name
def test_container_ports_are_exposed_by_the_image(deployable):
    docs = kustomize_manifests(deployable.k8s_dir)
    ports = {p["containerPort"] for w in workloads(docs) for c in containers(w) for p in c.get("ports", [])}
    assert ports and ports <= exposed_ports(REPO_ROOT / deployable.dockerfile)


@by_name
def test_container_commands_are_console_scripts_of_the_package(deployable):
    scripts = project_table(REPO_ROOT / deployable.pyproject).get("scripts", {})
    docs = kustomize_manifests(deployable.k8s_dir)
    commands = [c["command"] for w in workloads(docs) for c in containers(w) if c.get("command")]
    assert [c for c in commands if c[0] not in scripts] == []


def test_inference_runs_each_console_script_once_with_the_ports_it_serves():
    """One image, two Deployments: the API serves gRPC, the scorer HTTP health; each names its own command."""
    docs = kustomize_manifests(K8S_ROOT / "inference")
    served = {}
    for c in (c for w in workloads(docs) for c in containers(w)):
        served.setdefault(tuple(c.get("command", ())), []).append({p.get("name") for p in c.get("ports", [])})
    api, scorer = ("kestrel-inference",), ("kestrel-inference-scorer",)
    assert sorted(served) == [api, scorer] and all(len(ports) == 1 for ports in served.values())
    assert "grpc" in served[api][0] and "health" in served[scorer][0]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_tree():
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S_ROOT)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Deployment" in rendered.stdout


def test_every_grpc_api_fails_closed_with_tls_and_https_probes():
    """Auth tokens from a non-optional Secret, REQUIRE_AUTH, TLS from a mounted Secret, HTTPS probes."""
    from door_checks import door_problems, grpc_servers, optional_secret_problems

    docs = kustomize_manifests(K8S_ROOT)
    assert optional_secret_problems(docs) == []
    served = []
    for deployable in ON_K8S:
        service_docs = kustomize_manifests(deployable.k8s_dir)
        served += [w["metadata"]["name"] for w, _ in grpc_servers(service_docs)]
        assert door_problems(service_docs, deployable.env_prefix) == []
    assert sorted(served) == ["kestrel-inference-api", "kestrel-ingest"]
