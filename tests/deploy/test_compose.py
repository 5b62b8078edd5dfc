"""compose/docker-compose.yml, checked statically: no Docker engine is needed (or available) here."""

import shutil
import subprocess

import pytest
from checks import (
    COMPOSE_FILE,
    DEPLOYABLES,
    REPO_ROOT,
    STATEFUL,
    env_problems,
    exposed_ports,
    load_yaml,
    project_table,
    settings_class,
    settings_env_names,
)
from compose_checks import (
    address_hosts,
    address_problems,
    built_from,
    compose_build_problems,
    depends_on_problems,
    dockerfile_of,
    env_names,
    env_values,
    gpu_profile_problems,
    healthcheck_problems,
    healthy,
    host_port_problems,
    is_triton,
    mount_problems,
    providers,
    reads_file_problems,
    services,
    triton_models,
    triton_problems,
)
from stack_checks import pending

BASE = COMPOSE_FILE.parent


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE_FILE)


def test_every_service_has_an_image_or_an_existing_dockerfile(compose):
    present = {**compose, "services": {name: svc for name, svc in services(compose).items() if not pending(name)}}
    assert compose_build_problems(present, BASE) == []


def test_dependencies_exist_and_can_be_met(compose):
    assert depends_on_problems(compose, BASE) == []


def test_mount_sources_exist_and_volumes_are_declared(compose):
    assert mount_problems(compose, BASE) == []


def test_stateful_services_have_healthchecks(compose):
    assert healthcheck_problems(compose, STATEFUL) == []


def test_host_ports_do_not_collide(compose):
    assert host_port_problems(compose) == []


def test_gpu_profile_reserves_a_gpu(compose):
    assert gpu_profile_problems(compose, "gpu") == []


def test_simulator_runs_only_under_the_sim_profile(compose):
    assert services(compose)["simulator"].get("profiles") == ["sim"]


def test_topics_job_reads_the_catalogue(compose):
    assert reads_file_problems(compose, BASE, "topics", REPO_ROOT / "infra" / "topics.yaml") == []


def test_triton_servers_load_models_of_the_repository(compose):
    assert triton_problems(compose, BASE) == []


def test_gpu_profile_runs_a_model_on_the_gpu(compose):
    gpu = [name for name, svc in services(compose).items() if "gpu" in (svc.get("profiles") or []) and is_triton(svc)]
    assert gpu, "no tritonserver service in the gpu profile"
    assert [
        m
        for name in gpu
        for m, config in triton_models(services(compose)[name], BASE).items()
        if "kind: KIND_GPU" in config.read_text()
    ], "the gpu profile's Triton runs no model on the GPU"


def roles(compose, deployable):
    """Every compose service that runs the deployable's image (the services built from its Dockerfile)."""
    return built_from(compose, BASE, REPO_ROOT / deployable.dockerfile)


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_kestrel_service_env_uses_its_prefix(compose, deployable):
    for name in roles(compose, deployable):
        names = env_names(services(compose)[name])
        assert env_problems(name, names, deployable.env_prefix, settings_env_names(deployable)) == []


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_kestrel_service_is_built_from_its_dockerfile(compose, deployable):
    assert dockerfile_of(services(compose)[deployable.name], BASE) == REPO_ROOT / deployable.dockerfile
    assert {services(compose)[name].get("image") for name in roles(compose, deployable)} == {f"{deployable.image}:dev"}


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_published_container_ports_are_exposed_by_the_image(compose, deployable):
    for name in roles(compose, deployable):
        svc = services(compose)[name]
        targets = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])}
        assert targets <= exposed_ports(REPO_ROOT / deployable.dockerfile), name


@pytest.mark.parametrize("deployable", DEPLOYABLES, ids=lambda d: d.name)
def test_kestrel_service_addresses_resolve_on_the_compose_network(compose, deployable):
    assert address_problems(compose, roles(compose, deployable)) == []


INFERENCE = next(d for d in DEPLOYABLES if d.name == "inference")


@pytest.mark.parametrize("name, script", [("inference", None), ("inference-scorer", "kestrel-inference-scorer")])
def test_inference_services_run_their_console_script_and_are_healthchecked(compose, name, script):
    """The API runs the image's entrypoint; the scorer overrides it with its own console script."""
    assert name in roles(compose, INFERENCE)
    entrypoint = services(compose)[name].get("entrypoint")
    assert (entrypoint[0] if entrypoint else None) == script
    assert script is None or script in project_table(REPO_ROOT / INFERENCE.pyproject)["scripts"]
    assert healthy(name, compose, BASE)


def test_inference_model_is_loaded_by_every_triton_it_can_reach(compose):
    default = settings_class(INFERENCE).model_fields["model_name"].default
    for name in roles(compose, INFERENCE):
        env = env_values(services(compose)[name])
        model = env.get("KESTREL_INFERENCE_MODEL_NAME", default)
        (host,) = address_hosts(env["KESTREL_INFERENCE_TRITON_URL"])
        tritons = [p for p in providers(compose, host) if is_triton(services(compose)[p])]
        assert tritons, f"{name}: no tritonserver answers to {host}"
        for triton in tritons:
            assert model in triton_models(services(compose)[triton], BASE), f"{triton} does not load {model}"


def test_ingest_is_healthchecked_by_its_image(compose):
    assert healthy("ingest", compose, BASE)


def _compose_cli() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_cli(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_the_file():
    for profiles in ([], ["--profile", "gpu", "--profile", "sim"]):
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE_FILE), *profiles, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


def test_alerting_rules_are_the_repositorys_routed_to_the_alertmanager_beside_it(compose):
    from kestrel.alerting.config import load_config

    ours, repository = load_yaml(BASE / "alerting" / "rules.yaml"), load_yaml(REPO_ROOT / "infra/alerting/rules.yaml")
    assert (ours["rules"], ours["inhibit_rules"]) == (repository["rules"], repository["inhibit_rules"])
    receivers = load_config(BASE / "alerting" / "rules.yaml").receivers.values()
    pushes_to = {r.url for r in receivers if r.kind == "alertmanager"}
    assert pushes_to == {"http://alertmanager:9093"} and "alertmanager" in services(compose)


def test_redis_keeps_what_it_acknowledged_on_a_volume_with_an_append_only_file(compose):
    redis = services(compose)["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "redis-data:/data" in redis["volumes"] and "redis-data" in compose["volumes"]
